"""Tracing over the wire: the real service process exports OTLP/gRPC to a real receiver on loopback, and a
trace started by the caller (W3C traceparent) continues through our server span into the cart and catalog
calls and the background generation."""

from __future__ import annotations

import secrets

import grpc
import pytest

from genproto import imagegeneration_pb2 as pb
from tests.conftest import peer_env, serving
from tests.fakes.fake_gemini import FakeGemini
from tests.fakes.otlp_receiver import OtlpReceiver
from tests.service import free_port

API_KEY = "AIzaFAKE-tracing-key-never-exported-42"
MODEL = "gemini-nano-banana-2.1"
SERVER_SPAN = "/hipstershop.ImageGenerationService/GenerateCartImage"
SPAN_KIND_SERVER, SPAN_KIND_CLIENT = 2, 3  # opentelemetry.proto.trace.v1.Span.SpanKind


@pytest.fixture(scope="module")
def receiver():
    with OtlpReceiver() as server:
        yield server


@pytest.fixture(scope="module")
def fake_gemini():
    with FakeGemini() as fake:
        yield fake


@pytest.fixture(scope="module")
def traced_service(tmp_path_factory, devstack, receiver, fake_gemini):
    """One traced service for the module: each test reads only its own trace (and draws its own style)."""
    env = {
        **peer_env(devstack),
        "ENABLE_TRACING": "1",
        "COLLECTOR_SERVICE_ADDR": receiver.addr,
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # the SDK's own variable: export every 0.1 s, not every 5 s
        "IMAGE_GENERATOR": "gemini",
        "GEMINI_API_KEY": API_KEY,
        "GEMINI_MODEL": MODEL,
        "GOOGLE_GEMINI_BASE_URL": fake_gemini.base_url,
    }
    with serving(env, tmp_path_factory.mktemp("traced")) as process:
        yield process


def traced_generation(service, trace_id: str, parent_id: str, style: str) -> str:
    """Starts a generation of shopper-1's cart inside the caller's trace; returns the generation id.

    Each test asks for a style of its own, so that no answer comes from another test's cached picture."""
    answer = service.stub.GenerateCartImage(
        pb.GenerateCartImageRequest(user_id="shopper-1", style_preference=style),
        metadata=(("traceparent", f"00-{trace_id}-{parent_id}-01"),), timeout=10,
    )
    assert service.wait_finished(answer.generation_id)[0].status == "completed"
    return answer.generation_id


def spans_of_trace(receiver, trace_id: str):
    """The trace's spans once the server span, the generation span and all four peer calls arrived."""
    def complete(spans):
        mine = [span for span in spans if span.trace_id == trace_id]
        names = [span.name for span in mine]
        return (SERVER_SPAN in names and "generate cart image" in names and "store image" in names
                and "/hipstershop.CartService/GetCart" in names
                and names.count("/hipstershop.ProductCatalogService/GetProduct") == 3
                and names.count("product picture") == 3)

    return [span for span in receiver.wait_for_spans(complete) if span.trace_id == trace_id]


def test_the_callers_trace_continues_through_our_server_span(traced_service, receiver):
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    traced_generation(traced_service, trace_id, parent_id, "modern")

    (server,) = [span for span in spans_of_trace(receiver, trace_id) if span.name == SERVER_SPAN]
    assert server.parent_span_id == parent_id
    assert server.kind == SPAN_KIND_SERVER
    assert server.service == "imagegenerationservice"


def test_cart_and_catalog_calls_are_client_spans_under_the_server_span(traced_service, receiver):
    trace_id = secrets.token_hex(16)
    traced_generation(traced_service, trace_id, secrets.token_hex(8), "playful")

    spans = spans_of_trace(receiver, trace_id)
    (server,) = [span for span in spans if span.name == SERVER_SPAN]
    peers = [span for span in spans if span.name.startswith("/hipstershop.") and span.name != SERVER_SPAN]
    assert sorted(span.name for span in peers) == ["/hipstershop.CartService/GetCart"] + [
        "/hipstershop.ProductCatalogService/GetProduct"] * 3
    assert all(span.kind == SPAN_KIND_CLIENT and span.parent_span_id == server.span_id for span in peers)


def test_the_background_work_is_in_the_trace_with_model_style_products_and_outcome(traced_service, receiver):
    trace_id = secrets.token_hex(16)
    traced_generation(traced_service, trace_id, secrets.token_hex(8), "vintage")

    spans = spans_of_trace(receiver, trace_id)
    (server,) = [span for span in spans if span.name == SERVER_SPAN]
    (generation,) = [span for span in spans if span.name == "generate cart image"]
    assert generation.parent_span_id == server.span_id
    assert generation.attributes["imagegen.model"] == MODEL
    assert generation.attributes["imagegen.style"] == "vintage"
    assert generation.attributes["imagegen.product_count"] == 3
    assert generation.attributes["imagegen.outcome"] == "image"
    pictures = [span for span in spans if span.name == "product picture"]
    (stored,) = [span for span in spans if span.name == "store image"]
    assert all(span.parent_span_id == server.span_id and span.attributes["imagegen.found"] for span in pictures)
    assert stored.parent_span_id == server.span_id and stored.attributes["imagegen.object_prefix"] == "generated"
    # Only small values: never the key, never image bytes.
    for span in spans:
        for value in span.attributes.values():
            assert API_KEY not in str(value) and not isinstance(value, bytes) and len(str(value)) < 300


def test_log_lines_carry_the_trace_id(traced_service, receiver):
    trace_id = secrets.token_hex(16)
    generation_id = traced_generation(traced_service, trace_id, secrets.token_hex(8), "luxury")

    lines = {record["message"]: record for record in traced_service.log_records()
             if record.get("generation_id") == generation_id}
    assert lines["generation accepted"]["trace_id"] == trace_id  # on the RPC thread
    assert lines["generation completed"]["trace_id"] == trace_id  # in the background worker


def test_a_refused_call_is_traced_with_its_error(traced_service, receiver):
    trace_id = secrets.token_hex(16)
    with pytest.raises(grpc.RpcError) as refused:
        traced_service.stub.GenerateCartImage(
            pb.GenerateCartImageRequest(user_id="shopper-empty"),
            metadata=(("traceparent", f"00-{trace_id}-{secrets.token_hex(8)}-01"),), timeout=10,
        )
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    spans = receiver.wait_for_spans(lambda spans: any(s.trace_id == trace_id and s.name == SERVER_SPAN for s in spans))
    (server,) = [span for span in spans if span.trace_id == trace_id and span.name == SERVER_SPAN]
    assert server.attributes["rpc.grpc.status_code"] == grpc.StatusCode.FAILED_PRECONDITION.value[0]


def test_sigterm_exits_within_the_grace_period_when_the_collector_is_unreachable(make_service):
    # Nothing listens on the collector's port; the SDK's exporter, told to keep trying for a minute (its
    # own OTEL_EXPORTER_OTLP_TIMEOUT), would hold the exit for 30 s if the service waited for it.
    service = make_service({
        "ENABLE_TRACING": "1",
        "COLLECTOR_SERVICE_ADDR": f"127.0.0.1:{free_port()}",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "60",
        "SHUTDOWN_GRACE_SECONDS": "2",
    })
    answer = service.stub.GenerateCartImage(pb.GenerateCartImageRequest(user_id="shopper-1"), timeout=10)
    assert service.wait_finished(answer.generation_id)[0].status == "completed"  # spans waiting for export

    service.process.send_signal(15)

    # 20 s stands for the pod's terminationGracePeriodSeconds, well past SHUTDOWN_GRACE_SECONDS.
    assert service.process.wait(20) == 0
    assert "spans not exported" in service.logs()


def test_a_call_the_gate_refuses_unread_is_traced_in_the_callers_trace(traced_service, receiver):
    trace_id = secrets.token_hex(16)
    with pytest.raises(grpc.RpcError) as refused:
        traced_service.stub.GenerateCartImage(  # past the gate's 1 MiB cap: refused before it is parsed
            pb.GenerateCartImageRequest(user_id="x" * (2 * 1024 * 1024)),
            metadata=(("traceparent", f"00-{trace_id}-{secrets.token_hex(8)}-01"),), timeout=10,
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    spans = receiver.wait_for_spans(lambda spans: any(s.trace_id == trace_id and s.name == SERVER_SPAN for s in spans))
    (server,) = [span for span in spans if span.trace_id == trace_id and span.name == SERVER_SPAN]
    assert server.attributes["rpc.grpc.status_code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]


def test_spans_still_buffered_at_sigterm_are_exported_even_with_no_grace_left(make_service, receiver):
    service = make_service({
        "ENABLE_TRACING": "1",
        "COLLECTOR_SERVICE_ADDR": receiver.addr,
        "OTEL_BSP_SCHEDULE_DELAY": "600000",  # nothing is exported before the shutdown
        "SHUTDOWN_GRACE_SECONDS": "0",
    })
    trace_id = secrets.token_hex(16)
    answer = service.stub.GenerateCartImage(
        pb.GenerateCartImageRequest(user_id="shopper-1", style_preference="minimalist"),
        metadata=(("traceparent", f"00-{trace_id}-{secrets.token_hex(8)}-01"),), timeout=10,
    )
    assert service.wait_finished(answer.generation_id)[0].status == "completed"

    service.process.send_signal(15)

    assert service.process.wait(30) == 0
    receiver.wait_for_spans(lambda spans: any(s.trace_id == trace_id and s.name == SERVER_SPAN for s in spans))

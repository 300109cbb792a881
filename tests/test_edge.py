"""The gRPC edge under abuse, over real gRPC against the service process: in-flight limits checked before a
request is read, health and status answering while peers are slow, field lengths, malformed bytes."""

from __future__ import annotations

import base64
import threading
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health_pb2

from genproto import imagegeneration_pb2 as pb
from tests.fakes.held_catalog import HeldCatalog
from tests.service import SERVICE, raw_call, upload_slots_held, wait_for

MUG = "6E92ZMYYFZ"


def refusal(call, request, timeout: float = 30) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(request, timeout=timeout)
    return caught.value


@pytest.fixture
def held_catalog():
    catalog = HeldCatalog()
    yield catalog
    catalog.close()


def generate_for(user: int) -> pb.GenerateCartImageRequest:
    return pb.GenerateCartImageRequest(style_preference="modern", cart_items=[pb.CartItem(product_id=MUG, quantity=1 + user % 5)])


# ---- slow peers do not starve health and status ----

def test_64_shoppers_waiting_on_a_slow_catalog_leave_health_and_status_answering(make_service, held_catalog):
    # The generation queue is made large enough that only the gate is under test.
    service = make_service({"PRODUCT_CATALOG_SERVICE_ADDR": held_catalog.addr, "PEER_TIMEOUT_SECONDS": "120",
                            "GENERATION_QUEUE_SIZE": "100"})
    pending = [service.stub.GenerateCartImage.future(generate_for(i), timeout=120) for i in range(64)]
    # Every one of them is inside the service, waiting on the catalog: none was queued behind the others.
    wait_for(lambda: held_catalog.arrived >= 64, timeout=60, what="64 generations waiting on the catalog")
    for _ in range(10):  # answered at once (the deadlines are generous for a loaded test machine)
        health = service.health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        status = service.stub.GetImageGenerationStatus(pb.GetStatusRequest(generation_id="nope"), timeout=5)
        assert status.status == "not_found"
    held_catalog.release.set()
    answers = [call.result() for call in pending]
    assert all(answer.generation_id and answer.status in ("processing", "completed") for answer in answers)


def test_generations_beyond_the_in_flight_limit_are_refused_at_once(make_service, held_catalog):
    service = make_service({"PRODUCT_CATALOG_SERVICE_ADDR": held_catalog.addr, "PEER_TIMEOUT_SECONDS": "120",
                            "GENERATE_MAX_INFLIGHT": "3"})
    pending = [service.stub.GenerateCartImage.future(generate_for(i), timeout=120) for i in range(3)]
    wait_for(lambda: held_catalog.arrived >= 3, timeout=60, what="3 generations waiting on the catalog")
    # Refused while the three are still held (the catalog would hold it for 60 s; the deadline is 30 s).
    error = refusal(service.stub.GenerateCartImage, generate_for(9))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "too many image generations" in error.details()
    assert held_catalog.arrived == 3
    metrics = service.http_get(service.http_base + "/metrics")[2].decode()
    assert 'imagegen_requests_refused_total{code="RESOURCE_EXHAUSTED",method="GenerateCartImage"} 1.0' in metrics
    held_catalog.release.set()
    assert all(call.result().generation_id for call in pending)
    after = service.stub.GenerateCartImage(generate_for(9), timeout=30)  # the slots came back
    assert after.generation_id


# ---- upload bodies are not read beyond the limit ----

def hold_upload_slots(service, count: int) -> tuple[threading.Event, list]:
    """Starts `count` uploads that take a slot and then send nothing until the returned event is set."""
    release = threading.Event()

    def one_slow_message():
        release.wait(120)
        yield pb.UploadBackgroundRequest(image_data="bm90IGFuIGltYWdl")

    upload = raw_call(service.channel, "UploadBackground")
    calls = [upload.future(one_slow_message(), timeout=180) for _ in range(count)]

    wait_for(lambda: upload_slots_held(service), timeout=60, what="the slow uploads to hold every upload slot")
    return release, calls


def test_a_flood_of_large_uploads_waits_its_turn_or_is_refused_without_reading_their_bodies(make_service):
    service = make_service({"UPLOAD_CONCURRENCY": "2"})
    release, held = hold_upload_slots(service, 2)
    before = service.memory_mib("VmHWM")
    body = "A" * (13 * 1024 * 1024)  # base64 of ~10 MB, the largest upload the server takes
    with futures.ThreadPoolExecutor(30) as pool:
        flood = [pool.submit(refusal, service.stub.UploadBackground, pb.UploadBackgroundRequest(image_data=body))
                 for _ in range(30)]
        # Beyond the waiting room (8 a slot) refused at once; the 16 waiting hold no body while the slots are held.
        wait_for(lambda: sum(call.done() for call in flood) >= 14, timeout=60, what="the flood beyond the room refused")
        rise = service.memory_mib("VmHWM") - before
        release.set()
        outcomes = [call.result().code() for call in flood]
    # 30 bodies read would be 390 MB at least; waiting or refused unread they cost next to nothing.
    assert rise < 32, f"peak RSS rose by {rise:.0f} MiB while 30 uploads of 13 MB waited or were refused"
    assert outcomes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) >= 14
    # The waiting ones were then read in turn, two at a time, and refused as not an image.
    assert set(outcomes) <= {grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INVALID_ARGUMENT}
    # One 13 MB upload alone peaks about 55 MiB (gRPC holds its frames, one joined copy and Python's bytes at
    # once, then the parsed field); 16 read at once would be 600 MiB and more.
    served = service.memory_mib("VmHWM") - before
    assert served < 2 * 80, f"peak RSS rose by {served:.0f} MiB reading 16 uploads of 13 MB two at a time"
    for call in held:  # the held ones then go on normally (and fail as not an image), or were cut at their time
        with pytest.raises(grpc.RpcError) as caught:
            call.result()
        assert caught.value.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.CANCELLED)


# ---- field lengths ----

@pytest.mark.parametrize("fields, field, limit", [
    ({"user_id": "u" * 16 * 1024}, "user_id", 256),
    ({"user_id": "u", "style_preference": "s" * 100_000}, "style_preference", 64),
    ({"user_id": "u", "background_image_url": "http://x/" + "b" * 100_000}, "background_image_url", 4096),
    ({"cart_items": [pb.CartItem(product_id="P" * 100_000, quantity=1)]}, "cart_items.product_id", 128),
    ({"cart_items": [pb.CartItem(product_id=MUG, quantity=1)] * 101}, "cart_items", 100),
])
def test_overlong_fields_are_invalid_argument_naming_field_and_limit(service, fields, field, limit):
    error = refusal(service.stub.GenerateCartImage, pb.GenerateCartImageRequest(**fields))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith(field + ":") and f"at most {limit}" in error.details()
    assert len(error.details()) < 200


def test_overlong_generation_id_is_invalid_argument(service):
    error = refusal(service.stub.GetImageGenerationStatus, pb.GetStatusRequest(generation_id="g" * 10_000))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "generation_id: at most 128 characters, got 10,000"


@pytest.mark.parametrize("call, request_, field, cap", [
    ("GenerateCartImage", pb.GenerateCartImageRequest(user_id="u", style_preference="s" * 13 * 1024 * 1024),
     "style_preference", "1,048,576"),
    ("GenerateCartImage", pb.GenerateCartImageRequest(
        cart_items=[pb.CartItem(product_id="P" * 1000, quantity=1)] * 2000), "cart_items", "1,048,576"),
    ("GetImageGenerationStatus", pb.GetStatusRequest(generation_id="g" * 1024 * 1024), "generation_id", "65,536"),
])
def test_requests_larger_than_their_method_takes_are_refused_unparsed_naming_the_field(service, call, request_,
                                                                                         field, cap):
    error = refusal(getattr(service.stub, call), request_)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith(f"{field}: too long; a request may be at most {cap} bytes, got ")


def test_huge_style_preferences_do_not_fill_the_logs(service):
    before = len(service.logs())
    huge = pb.GenerateCartImageRequest(user_id="u", style_preference="s" * 13 * 1024 * 1024)
    for _ in range(5):
        assert refusal(service.stub.GenerateCartImage, huge).code() == grpc.StatusCode.INVALID_ARGUMENT
    wait_for(lambda: service.logs().count("style_preference: too long") >= 5, what="the refusals to be logged")
    assert len(service.logs()) - before < 5 * 1024


# ---- malformed bytes ----

@pytest.mark.parametrize("method", ["GenerateCartImage", "UploadBackground", "GetImageGenerationStatus"])
def test_bytes_that_are_not_a_protobuf_message_are_invalid_argument_with_one_short_log_line(service, method):
    raw = service.channel.unary_unary(SERVICE + method)  # no serializers: bytes on the wire as given
    before = len(service.log_records())
    error = refusal(raw, b"\x0a\xff\xff\xff\xff\x0f garbage")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid protobuf message" in error.details()
    wait_for(lambda: any(line.get("method") == method for line in service.log_records()[before:]),
             what="the refusal to be logged")
    lines = service.log_records()[before:]
    assert [line["message"] for line in lines] == ["request refused"]
    assert "Traceback" not in service.logs()


def test_malformed_health_check_is_invalid_argument_too(service):
    raw = service.channel.unary_unary("/grpc.health.v1.Health/Check")
    assert refusal(raw, b"\x0a\x05ab").code() == grpc.StatusCode.INVALID_ARGUMENT


def test_malformed_reflection_request_is_invalid_argument_without_a_traceback(service):
    raw = service.channel.stream_stream("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
    with pytest.raises(grpc.RpcError) as caught:
        list(raw(iter([b"\x0a\xff\xff\xff\xff\x0f"]), timeout=30))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    wait_for(lambda: "ServerReflectionInfo" in service.logs(), what="the refusal to be logged")
    assert "Traceback" not in service.logs()


def test_good_requests_still_pass_the_gate(service):
    answer = service.stub.GenerateCartImage(generate_for(1), timeout=30)
    assert service.wait_finished(answer.generation_id)[0].status == "completed"
    url = service.stub.UploadBackground(pb.UploadBackgroundRequest(
        image_data=base64.b64encode(_tiny_png()).decode()), timeout=30).image_url
    assert service.http_get(url)[0] == 200


def _tiny_png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 40, 40)).save(buffer, "PNG")
    return buffer.getvalue()


def test_peers_that_never_send_their_request_are_cut_off_and_others_get_their_turn(service):
    raw = raw_call(service.channel, "GenerateCartImage")
    never = threading.Event()

    def nothing():
        never.wait(120)
        yield from ()

    silent = [raw.future(nothing(), timeout=120) for _ in range(4)]  # every read turn
    try:
        answer = service.stub.GenerateCartImage(generate_for(2), timeout=60)  # waits for a turn, then reads
        assert answer.generation_id
        for call in silent:  # each was cancelled by the server's read timeout
            with pytest.raises(grpc.RpcError) as caught:
                call.result(timeout=60)
            assert caught.value.code() == grpc.StatusCode.CANCELLED
        # The shopper's wait cut one off (silent past 1 s while it waited), the read deadline the others.
        wait_for(lambda: service.logs().count("the request was still arriving after 1 s while another call waited")
                 + service.logs().count("the request was not received within 2 s") >= 4,
                 what="the cut-off peers to be logged")
        assert "the request was still arriving after 1 s while another call waited" in service.logs()
        assert "Traceback" not in service.logs()
    finally:
        never.set()

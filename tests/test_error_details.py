"""Refusals carry google.rpc details over the wire: ErrorInfo (reason, domain), BadRequest, RetryInfo; and
ListStyles answers the service's styles. Decoded as a caller does, with grpc_status.rpc_status.from_call."""

from __future__ import annotations

import re

import grpc
import pytest
from google.rpc import error_details_pb2

from genproto import imagegeneration_pb2 as pb
from imagegen.status_details import DOMAIN
from imagegen.styles import DEFAULT_STYLE, STYLES
from grpc_status import rpc_status
from tests.fakes.held_catalog import HeldCatalog
from tests.service import wait_for

MUG, CANDLE = "6E92ZMYYFZ", "0PUK6V6EV0"
KINDS = (error_details_pb2.ErrorInfo, error_details_pb2.BadRequest, error_details_pb2.RetryInfo)


def refused(call, request, **kwargs) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(request, timeout=30, **kwargs)
    return caught.value


def details(error: grpc.RpcError) -> dict[str, object]:
    """The refusal's details by type name, as a caller decodes them."""
    status = rpc_status.from_call(error)
    assert status is not None, f"no details in {error.code()}: {error.details()}"
    found = {}
    for packed in status.details:
        for kind in KINDS:
            if packed.Is(kind.DESCRIPTOR):
                found[kind.__name__] = kind()
                packed.Unpack(found[kind.__name__])
    assert found["ErrorInfo"].domain == DOMAIN
    return found


def generate(*pairs, **fields) -> pb.GenerateCartImageRequest:
    return pb.GenerateCartImageRequest(cart_items=[pb.CartItem(product_id=p, quantity=q) for p, q in pairs], **fields)


def test_a_bad_field_is_a_field_violation_with_the_problem(service):
    error = refused(service.stub.GenerateCartImage, pb.GenerateCartImageRequest(user_id="u", style_preference="cubist"))
    found = details(error)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert found["ErrorInfo"].reason == "INVALID_FIELD" and "RetryInfo" not in found
    [violation] = found["BadRequest"].field_violations
    assert violation.field == "style_preference"
    assert violation.description.startswith("unknown style 'cubist'; choose one of: modern")
    assert error.details() == f"{violation.field}: {violation.description}"  # the message is as before


def test_an_empty_cart_says_empty_cart(service):
    error = refused(service.stub.GenerateCartImage, pb.GenerateCartImageRequest(user_id="shopper-empty"))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert details(error)["ErrorInfo"].reason == "EMPTY_CART"


def test_an_unknown_product_names_it_in_the_metadata(service):
    error = refused(service.stub.GenerateCartImage, generate((MUG, 1), ("NOSUCHPROD", 1)))
    info = details(error)["ErrorInfo"]
    assert info.reason == "PRODUCT_NOT_FOUND" and dict(info.metadata) == {"product_id": "NOSUCHPROD"}


def test_a_refusal_keeps_the_request_id_in_the_trailing_metadata(service):
    error = refused(service.stub.GenerateCartImage, pb.GenerateCartImageRequest(user_id="shopper-empty"),
                    metadata=(("x-request-id", "req-details-1"),))
    assert ("x-request-id", "req-details-1") in tuple(error.trailing_metadata())
    assert details(error)["ErrorInfo"].reason == "EMPTY_CART"


def test_a_request_too_large_is_a_field_violation_refused_unparsed(service):
    error = refused(service.stub.GenerateCartImage,
                    pb.GenerateCartImageRequest(user_id="u", style_preference="s" * 2 * 1024 * 1024))
    found = details(error)
    assert found["ErrorInfo"].reason == "REQUEST_TOO_LARGE"
    [violation] = found["BadRequest"].field_violations
    assert violation.field == "style_preference" and violation.description.startswith("too long; ")


def test_bytes_that_are_not_a_message_say_malformed(service):
    raw = service.channel.unary_unary("/hipstershop.ImageGenerationService/GetImageGenerationStatus")
    error = refused(raw, b"\xff\xff\xff\xff")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(error)["ErrorInfo"].reason == "MALFORMED_REQUEST"


def test_the_rate_limit_gives_its_wait_as_retry_info(make_service):
    service = make_service({"RATE_LIMIT_PER_USER": "1", "RATE_LIMIT_WINDOW_SECONDS": "600"})
    service.stub.GenerateCartImage(generate((MUG, 1), user_id="shopper-r"), timeout=10)
    error = refused(service.stub.GenerateCartImage, generate((MUG, 2), user_id="shopper-r"))
    found = details(error)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and found["ErrorInfo"].reason == "RATE_LIMITED"
    seconds = int(re.search(r"try again in (\d+) seconds", error.details()).group(1))
    assert found["RetryInfo"].retry_delay.seconds == seconds and 590 <= seconds <= 600


def test_a_full_queue_says_queue_full_with_a_retry_delay(make_service, held_pictures):
    service = make_service({"PRODUCT_IMAGE_BASE_URL": held_pictures.url, "MODEL_CONCURRENCY": "1",
                            "GENERATION_QUEUE_LIMIT": "0"})
    service.stub.GenerateCartImage(generate((MUG, 1)), timeout=10)
    assert held_pictures.arrived.wait(10)
    found = details(refused(service.stub.GenerateCartImage, generate((CANDLE, 1))))
    assert found["ErrorInfo"].reason == "QUEUE_FULL" and found["RetryInfo"].retry_delay.seconds == 5


def test_shutting_down_says_so_with_a_short_retry_delay(make_service, held_pictures):
    service = make_service({"PRODUCT_IMAGE_BASE_URL": held_pictures.url})
    service.stub.GenerateCartImage(generate((MUG, 3)), timeout=10)
    assert held_pictures.arrived.wait(10)
    service.process.send_signal(15)
    wait_for(lambda: "shutting down" in service.logs(), what="shutdown to begin")
    error = refused(service.stub.GenerateCartImage, generate((CANDLE, 4)))
    found = details(error)
    assert error.details() == "the service is shutting down; try again shortly"
    assert found["ErrorInfo"].reason == "SHUTTING_DOWN" and found["RetryInfo"].retry_delay.seconds == 2
    held_pictures.release.set()
    assert service.process.wait(30) == 0


def test_the_gates_in_flight_limit_says_generate_busy(make_service):
    catalog = HeldCatalog()
    try:
        service = make_service({"PRODUCT_CATALOG_SERVICE_ADDR": catalog.addr, "PEER_TIMEOUT_SECONDS": "120",
                                "GENERATE_MAX_INFLIGHT": "1"})
        pending = service.stub.GenerateCartImage.future(generate((MUG, 1)), timeout=120)
        wait_for(lambda: catalog.arrived >= 1, timeout=60, what="a generation waiting on the catalog")
        error = refused(service.stub.GenerateCartImage, generate((MUG, 2)))
        found = details(error)
        assert error.details() == "too many image generations are in progress; try again shortly"
        assert found["ErrorInfo"].reason == "GENERATE_BUSY" and found["RetryInfo"].retry_delay.seconds == 5
        catalog.release.set()
        assert pending.result().generation_id
    finally:
        catalog.close()


def test_list_styles_answers_the_services_styles_default_first(service):
    answer = service.stub.ListStyles(pb.ListStylesRequest(), timeout=5)
    assert [(style.name, style.label) for style in answer.styles] == [(s.name, s.label) for s in STYLES.values()]
    assert answer.styles[0].name == DEFAULT_STYLE

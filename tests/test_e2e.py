"""End to end over real gRPC on loopback: the service process, the dev-stack peers, real HTTP fetches."""

from __future__ import annotations

import base64
import io

import grpc
import pytest
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from google.protobuf import descriptor_pool
from PIL import Image

from genproto import imagegeneration_pb2 as pb
from tests.service import free_port, wait_for

SUNGLASSES, MUG, CANDLE, WATCH = "OLJCESPC7Z", "6E92ZMYYFZ", "0PUK6V6EV0", "1YMWWN1N4O"


def items(*pairs: tuple[str, int]) -> list[pb.CartItem]:
    return [pb.CartItem(product_id=product_id, quantity=quantity) for product_id, quantity in pairs]


def png_b64(size=(64, 48), color=(20, 120, 200)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def refused(call, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(request, timeout=15)
    return caught.value


# ---- health, reflection, side port ----

def test_health_is_serving_for_the_server_and_the_service(service):
    for name in ("", "hipstershop.ImageGenerationService"):
        answer = service.health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_service_like_grpcurl(service):
    database = ProtoReflectionDescriptorDatabase(service.channel)
    names = set(database.get_services())
    assert {"hipstershop.ImageGenerationService", "grpc.health.v1.Health"} <= names
    pool = descriptor_pool.DescriptorPool(database)
    service_descriptor = pool.FindServiceByName("hipstershop.ImageGenerationService")
    assert {m.name for m in service_descriptor.methods} == {
        "GenerateCartImage", "UploadBackground", "GetImageGenerationStatus", "CancelImageGeneration", "ListStyles"}


def test_healthz_answers_ok(service):
    code, _, body = service.http_get(service.http_base + "/healthz")
    assert (code, body) == (200, b"ok\n")


# ---- generating ----

def test_generate_from_cart_items_completes_with_a_fetchable_image(service):
    answer = service.stub.GenerateCartImage(
        pb.GenerateCartImageRequest(style_preference="vintage", cart_items=items((SUNGLASSES, 1), (MUG, 3))),
        timeout=10)
    assert answer.status == "processing" and answer.generation_id
    final, seen = service.wait_finished(answer.generation_id)
    assert (final.status, final.progress, final.error_message) == ("completed", 100, "")
    assert seen == sorted(seen), "progress went backwards"
    code, headers, body = service.http_get(final.image_url)
    # The collage stores a JPEG by default (COLLAGE_FORMAT): the URL's extension and content type agree.
    assert final.image_url.endswith(".jpg")
    assert code == 200 and headers["Content-Type"] == "image/jpeg"
    image = Image.open(io.BytesIO(body))
    assert image.format == "JPEG" and image.size == (512, 512)


def test_generate_from_user_id_reads_the_cart(service):
    answer = service.stub.GenerateCartImage(pb.GenerateCartImageRequest(user_id="shopper-1"), timeout=10)
    final, _ = service.wait_finished(answer.generation_id)
    assert final.status == "completed"
    assert service.http_get(final.image_url)[0] == 200


def test_same_cart_and_style_again_is_completed_at_once(service):
    request = pb.GenerateCartImageRequest(style_preference="minimalist", cart_items=items((CANDLE, 2)))
    first = service.stub.GenerateCartImage(request, timeout=10)
    final, _ = service.wait_finished(first.generation_id)
    again = service.stub.GenerateCartImage(request, timeout=10)
    assert (again.status, again.image_url) == ("completed", final.image_url)
    assert again.generation_id != first.generation_id


def test_a_full_size_picture_has_512_768_and_1024_px_webps_beside_it_also_when_answered_from_cache(make_service):
    service = make_service({"IMAGE_SIZE": "1024"})
    request = pb.GenerateCartImageRequest(style_preference="modern", cart_items=items((WATCH, 1), (MUG, 2)))
    final, _ = service.wait_finished(service.stub.GenerateCartImage(request, timeout=10).generation_id)
    assert final.status == "completed"
    variants = [(v.width, v.url, v.mime_type) for v in final.image_variants]
    assert [(width, mime) for width, _, mime in variants] == [(w, "image/webp") for w in (512, 768, 1024)]
    code, _, full = service.http_get(final.image_url)
    assert code == 200 and Image.open(io.BytesIO(full)).size == (1024, 1024)  # image_url stays the full picture
    for width, url, _ in variants:
        assert url.endswith(f"-w{width}.webp") and url != final.image_url
        code, headers, body = service.http_get(url)
        assert code == 200 and headers["Content-Type"] == "image/webp"
        assert Image.open(io.BytesIO(body)).size == (width, width)
        assert len(body) < len(full) * 0.75
    again = service.stub.GenerateCartImage(request, timeout=10)
    assert again.status == "completed"
    assert [(v.width, v.url, v.mime_type) for v in again.image_variants] == variants
    status = service.stub.GetImageGenerationStatus(pb.GetStatusRequest(generation_id=again.generation_id), timeout=5)
    assert [v.url for v in status.image_variants] == [url for _, url, _ in variants]


def test_a_picture_no_wider_than_a_variant_has_none(service):
    answer = service.stub.GenerateCartImage(
        pb.GenerateCartImageRequest(style_preference="vintage", cart_items=items((CANDLE, 1))), timeout=10)
    final, _ = service.wait_finished(answer.generation_id)
    assert final.status == "completed" and list(final.image_variants) == []  # IMAGE_SIZE=512 here


def test_style_is_case_insensitive_and_empty_means_default(service):
    for style in ("MODERN", ""):
        answer = service.stub.GenerateCartImage(
            pb.GenerateCartImageRequest(style_preference=style, cart_items=items((MUG, 1))), timeout=10)
        assert service.wait_finished(answer.generation_id)[0].status == "completed"


def test_unknown_generation_is_not_found(service):
    answer = service.stub.GetImageGenerationStatus(pb.GetStatusRequest(generation_id="no-such-id"), timeout=5)
    assert answer.status == "not_found" and answer.error_message


# ---- refusing bad requests ----

@pytest.mark.parametrize("request_fields, field", [
    ({}, "user_id"),
    ({"user_id": "shopper-1", "style_preference": "cubist"}, "style_preference"),
    ({"cart_items": items((MUG, 0))}, "cart_items"),
    ({"cart_items": items(("", 1))}, "cart_items"),
    ({"user_id": "shopper-1", "background_image_url": "https://example.com/beach.jpg"}, "background_image_url"),
    ({"user_id": "shopper-1", "background_image_url": "file:///etc/passwd"}, "background_image_url"),
])
def test_malformed_generate_requests_are_invalid_argument_naming_the_field(service, request_fields, field):
    error = refused(service.stub.GenerateCartImage, pb.GenerateCartImageRequest(**request_fields))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in error.details()


def test_background_url_of_ours_that_does_not_exist_is_invalid(service):
    url = f"http://localhost:{service.http_port}/images/backgrounds/{'a' * 64}.jpg"
    error = refused(service.stub.GenerateCartImage,
                    pb.GenerateCartImageRequest(user_id="shopper-1", background_image_url=url))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "background_image_url" in error.details()


def test_empty_cart_is_failed_precondition(service):
    error = refused(service.stub.GenerateCartImage, pb.GenerateCartImageRequest(user_id="shopper-empty"))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "empty" in error.details()


def test_unknown_product_is_not_found_naming_it(service):
    error = refused(service.stub.GenerateCartImage,
                    pb.GenerateCartImageRequest(cart_items=items((MUG, 1), ("NOSUCHPROD", 1))))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "NOSUCHPROD" in error.details()


def test_unreachable_cart_is_unavailable_naming_it(make_service):
    service = make_service({"CART_SERVICE_ADDR": f"127.0.0.1:{free_port()}", "PEER_TIMEOUT_SECONDS": "1"})
    error = refused(service.stub.GenerateCartImage, pb.GenerateCartImageRequest(user_id="shopper-1"))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "cart service" in error.details()


def test_unreachable_catalog_is_unavailable_naming_it(make_service):
    service = make_service({"PRODUCT_CATALOG_SERVICE_ADDR": f"127.0.0.1:{free_port()}", "PEER_TIMEOUT_SECONDS": "1"})
    error = refused(service.stub.GenerateCartImage, pb.GenerateCartImageRequest(cart_items=items((MUG, 1))))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "product catalog" in error.details()


# ---- uploads ----

def test_upload_plain_base64_then_fetch_it(service):
    answer = service.stub.UploadBackground(pb.UploadBackgroundRequest(image_data=png_b64()), timeout=10)
    assert answer.status == "success" and not answer.error_message
    code, headers, body = service.http_get(answer.image_url)
    assert code == 200
    assert Image.open(io.BytesIO(body)).size == (64, 48)


def test_upload_data_url_like_a_browser_filereader(service):
    buffer = io.BytesIO()
    Image.new("RGB", (80, 60), (200, 80, 40)).save(buffer, "JPEG")
    data_url = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()
    answer = service.stub.UploadBackground(pb.UploadBackgroundRequest(image_data=data_url), timeout=10)
    assert answer.status == "success"
    assert "/backgrounds/" in answer.image_url


def test_same_background_twice_is_stored_once(service):
    data = png_b64(color=(1, 2, 3))
    first = service.stub.UploadBackground(pb.UploadBackgroundRequest(image_data=data), timeout=10)
    second = service.stub.UploadBackground(pb.UploadBackgroundRequest(image_data=data), timeout=10)
    assert first.image_url == second.image_url


@pytest.mark.parametrize("image_data", [
    "",
    "this is not base64 at all!!!",
    base64.b64encode(b"just some text, not a picture").decode(),
    base64.b64encode(b"GIF89a" + b"\x00" * 40).decode(),
])
def test_bad_uploads_are_invalid_argument_naming_image_data(service, image_data):
    error = refused(service.stub.UploadBackground, pb.UploadBackgroundRequest(image_data=image_data))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "image_data" in error.details()


def test_decompression_bomb_is_refused(service):
    # A valid PNG that declares 30000 x 30000 pixels (900 MP) while being a few kilobytes.
    buffer = io.BytesIO()
    Image.new("1", (30000, 30000)).save(buffer, "PNG")
    error = refused(service.stub.UploadBackground,
                    pb.UploadBackgroundRequest(image_data=base64.b64encode(buffer.getvalue()).decode()))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "image_data" in error.details()


def test_too_large_upload_is_refused_by_size(make_service):
    service = make_service({"MAX_UPLOAD_BYTES": "20000"})
    noise = base64.b64encode(bytes(range(256)) * 100).decode()  # 25,600 decoded bytes
    error = refused(service.stub.UploadBackground, pb.UploadBackgroundRequest(image_data=noise))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "image_data" in error.details()
    huge = "A" * 200_000  # beyond the server's receive limit for this upload size
    error = refused(service.stub.UploadBackground, pb.UploadBackgroundRequest(image_data=huge))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_upload_then_generate_with_that_background(service):
    upload = service.stub.UploadBackground(
        pb.UploadBackgroundRequest(image_data=png_b64((300, 200), (10, 160, 60))), timeout=10)
    request = pb.GenerateCartImageRequest(style_preference="playful", cart_items=items((MUG, 1)))
    plain = service.wait_finished(service.stub.GenerateCartImage(request, timeout=10).generation_id)[0]
    request.background_image_url = upload.image_url
    with_bg = service.wait_finished(service.stub.GenerateCartImage(request, timeout=10).generation_id)[0]
    assert with_bg.status == "completed"
    assert with_bg.image_url != plain.image_url
    assert service.http_get(with_bg.image_url)[2] != service.http_get(plain.image_url)[2]


# ---- observability ----

def test_metrics_count_generations_uploads_and_latency(service):
    answer = service.stub.GenerateCartImage(
        pb.GenerateCartImageRequest(style_preference="luxury", cart_items=items((SUNGLASSES, 4))), timeout=10)
    service.wait_finished(answer.generation_id)
    code, headers, body = service.http_get(service.http_base + "/metrics")
    text = body.decode()
    assert code == 200 and headers["Content-Type"].startswith("text/plain")
    assert 'imagegen_generations_total{generator="collage",outcome="completed",style="luxury"}' in text
    assert "imagegen_uploads_total" in text
    assert 'imagegen_generation_duration_seconds_count{generator="collage",outcome="completed"}' in text


def test_logs_are_json_with_request_and_generation_ids(service):
    answer, call = service.stub.GenerateCartImage.with_call(
        pb.GenerateCartImageRequest(style_preference="rustic", cart_items=items((MUG, 5))),
        metadata=(("x-request-id", "req-e2e-42"),), timeout=10)
    service.wait_finished(answer.generation_id)
    assert ("x-request-id", "req-e2e-42") in tuple(call.trailing_metadata())

    def lines_for_generation():
        lines = service.log_records()
        mine = [line for line in lines if line.get("generation_id") == answer.generation_id]
        return mine if any(line["message"] == "generation completed" for line in mine) else None

    mine = wait_for(lines_for_generation, what="log lines of the generation")
    for line in mine:
        assert {"timestamp", "severity", "name", "message"} <= set(line)
        assert line["request_id"] == "req-e2e-42"
        assert line["severity"].isupper()


# ---- capacity and shutdown ----

def test_full_queue_is_resource_exhausted_and_work_goes_on(make_service, held_pictures):
    service = make_service({"PRODUCT_IMAGE_BASE_URL": held_pictures.url, "MODEL_CONCURRENCY": "1",
                            "GENERATION_QUEUE_LIMIT": "0"})
    first = service.stub.GenerateCartImage(pb.GenerateCartImageRequest(cart_items=items((MUG, 1))), timeout=10)
    assert first.status == "processing"  # answered while its generation is held
    assert held_pictures.arrived.wait(10)
    error = refused(service.stub.GenerateCartImage, pb.GenerateCartImageRequest(cart_items=items((CANDLE, 1))))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    held_pictures.release.set()
    final, _ = service.wait_finished(first.generation_id)
    assert final.status == "completed"  # the missing picture degraded to a drawn card


def test_sigterm_lets_a_running_generation_finish_then_exits_zero(make_service, held_pictures):
    service = make_service({"PRODUCT_IMAGE_BASE_URL": held_pictures.url})
    answer = service.stub.GenerateCartImage(pb.GenerateCartImageRequest(cart_items=items((MUG, 1))), timeout=10)
    assert held_pictures.arrived.wait(10)
    service.process.send_signal(15)
    wait_for(lambda: "shutting down" in service.logs(), what="shutdown to begin")
    held_pictures.release.set()
    assert service.process.wait(30) == 0
    logs = service.log_records()
    finished = [line for line in logs if line.get("generation_id") == answer.generation_id
                and line["message"] == "generation completed"]
    assert finished, "the running generation did not finish before exit"


def test_sigterm_fails_what_outlasts_the_grace_period_and_still_exits_zero(make_service, held_pictures):
    service = make_service({"PRODUCT_IMAGE_BASE_URL": held_pictures.url, "SHUTDOWN_GRACE_SECONDS": "1"})
    answer = service.stub.GenerateCartImage(pb.GenerateCartImageRequest(cart_items=items((CANDLE, 3))), timeout=10)
    assert held_pictures.arrived.wait(10)
    service.process.send_signal(15)
    assert service.process.wait(20) == 0  # the picture stays held: the generation never finishes
    logs = service.log_records()
    stopped = [line for line in logs if line["message"] == "stopped"]
    assert stopped and stopped[0]["unfinished_generations"] == 1
    assert not any(line.get("generation_id") == answer.generation_id and line["message"] == "generation completed"
                   for line in logs)


def test_status_stays_readable_while_shutting_down(make_service, held_pictures):
    service = make_service({"PRODUCT_IMAGE_BASE_URL": held_pictures.url})
    answer = service.stub.GenerateCartImage(pb.GenerateCartImageRequest(cart_items=items((WATCH, 2))), timeout=10)
    assert held_pictures.arrived.wait(10)
    service.process.send_signal(15)
    wait_for(lambda: "shutting down" in service.logs(), what="shutdown to begin")
    status = service.stub.GetImageGenerationStatus(pb.GetStatusRequest(generation_id=answer.generation_id), timeout=5)
    assert status.status == "processing"
    error = refused(service.stub.GenerateCartImage, pb.GenerateCartImageRequest(cart_items=items((MUG, 9))))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "shutting down" in error.details()
    held_pictures.release.set()
    assert service.process.wait(30) == 0


def test_bad_configuration_exits_with_a_clear_message(make_service):
    service = make_service({"PORT": "not-a-port", "IMAGE_GENERATOR": "dalle"}, wait=False)
    assert service.process.wait(30) == 2
    logs = service.logs()
    assert "PORT must be" in logs and "IMAGE_GENERATOR must be" in logs

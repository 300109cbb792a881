"""End to end with the Cloud Storage store: the service process uses the real google-cloud-storage client
against gcp-storage-emulator on loopback (STORAGE_EMULATOR_HOST)."""

from __future__ import annotations

import base64
import io

import grpc
import pytest
from PIL import Image

from genproto import imagegeneration_pb2 as pb
from tests.conftest import peer_env
from tests.fakes.gcs_emulator import GcsEmulator
from tests.service import ServiceProcess

MUG, WATCH = "6E92ZMYYFZ", "1YMWWN1N4O"


@pytest.fixture(scope="module")
def emulator():
    emulator = GcsEmulator(bucket="boutique-images")
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def gcs_service(tmp_path_factory, devstack, emulator):
    process = ServiceProcess({**peer_env(devstack), **emulator.env(), "PROJECT_ID": "test-project"},
                             tmp_path_factory.mktemp("gcs-service"))
    process.wait_serving()
    yield process
    process.close()


def jpeg_b64(color=(200, 120, 40), size=(160, 120)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "JPEG")
    return base64.b64encode(buffer.getvalue()).decode()


def object_name(emulator, url: str) -> str:
    prefix = f"{emulator.endpoint}/{emulator.bucket}/"
    assert url.startswith(prefix), url
    return url[len(prefix):]


def test_upload_lands_in_the_bucket_under_backgrounds(gcs_service, emulator):
    answer = gcs_service.stub.UploadBackground(pb.UploadBackgroundRequest(image_data=jpeg_b64()), timeout=20)
    assert answer.status == "success"
    name = object_name(emulator, answer.image_url)
    assert name.startswith("backgrounds/") and name.endswith(".jpg")
    blob = emulator.client().bucket(emulator.bucket).get_blob(name)
    assert blob.content_type == "image/jpeg"
    assert Image.open(io.BytesIO(blob.download_as_bytes())).size == (160, 120)


def test_generated_image_lands_in_the_bucket_and_its_url_serves_it(gcs_service, emulator):
    answer = gcs_service.stub.GenerateCartImage(pb.GenerateCartImageRequest(
        style_preference="modern", cart_items=[pb.CartItem(product_id=MUG, quantity=2)]), timeout=20)
    final, _ = gcs_service.wait_finished(answer.generation_id)
    assert final.status == "completed", final.error_message
    name = object_name(emulator, final.image_url)
    assert name.startswith("generated/") and name.endswith(".jpg")
    code, headers, body = gcs_service.http_get(final.image_url)
    assert code == 200
    assert Image.open(io.BytesIO(body)).size == (512, 512)


def test_bucket_background_is_used_in_a_generation(gcs_service, emulator):
    upload = gcs_service.stub.UploadBackground(pb.UploadBackgroundRequest(image_data=jpeg_b64((20, 90, 180))),
                                               timeout=20)
    gs_uri = f"gs://{emulator.bucket}/{object_name(emulator, upload.image_url)}"
    for url in (upload.image_url, gs_uri):
        answer = gcs_service.stub.GenerateCartImage(pb.GenerateCartImageRequest(
            style_preference="minimalist", background_image_url=url,
            cart_items=[pb.CartItem(product_id=WATCH, quantity=1)]), timeout=20)
        assert gcs_service.wait_finished(answer.generation_id)[0].status == "completed"


def test_other_buckets_urls_are_refused(gcs_service, emulator):
    with pytest.raises(grpc.RpcError) as caught:
        gcs_service.stub.GenerateCartImage(pb.GenerateCartImageRequest(
            user_id="shopper-1",
            background_image_url=f"{emulator.endpoint}/someone-elses-bucket/backgrounds/{'a' * 64}.jpg"),
            timeout=20)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "background_image_url" in caught.value.details()


def test_storage_down_fails_uploads_and_generations_clearly(make_service, emulator):
    service = make_service({**emulator.env(), "PROJECT_ID": "test-project", "STORE_TIMEOUT_SECONDS": "2"})
    emulator.stop()
    try:
        with pytest.raises(grpc.RpcError) as caught:
            service.stub.UploadBackground(pb.UploadBackgroundRequest(image_data=jpeg_b64((9, 9, 9))), timeout=30)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "Cloud Storage" in caught.value.details()
        answer = service.stub.GenerateCartImage(pb.GenerateCartImageRequest(
            style_preference="festive", cart_items=[pb.CartItem(product_id=MUG, quantity=7)]), timeout=20)
        final, _ = service.wait_finished(answer.generation_id, timeout=30)
        assert final.status == "failed"
        assert "could not be saved" in final.error_message
    finally:
        emulator.start()

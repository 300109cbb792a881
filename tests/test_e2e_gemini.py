"""End to end with the Gemini generator: the real service process and the real google-genai SDK,
talking to a fake Gemini REST server on loopback through GOOGLE_GEMINI_BASE_URL."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from genproto import imagegeneration_pb2 as pb
from tests.conftest import peer_env
from tests.fakes.fake_gemini import FakeGemini, blocked, error, finish, image, sample_png
from tests.service import ServiceProcess, wait_for

API_KEY = "AIzaFAKE-e2e-key-never-logged-0123456789"
MODELS = "gemini-gone-model,gemini-live-model"
SUNGLASSES, MUG, CANDLE, WATCH, JAR, LOAFERS = (
    "OLJCESPC7Z", "6E92ZMYYFZ", "0PUK6V6EV0", "1YMWWN1N4O", "9SIQT8TOJO", "L9ECAV7KIM")
TANK_TOP, HAIRDRYER, SALT_AND_PEPPER = "66VCHSJNUP", "2ZYFJ3GM2N", "LS4PSXUNUM"
# The service caches results by cart+style+background, so every generation below uses a cart (a quantity)
# no other test in this module uses: each one really reaches the fake Gemini whatever ran before.


@pytest.fixture(scope="module")
def fake_gemini():
    with FakeGemini() as fake:
        fake.model_gone("gemini-gone-model")
        yield fake


def gemini_env(fake_gemini):
    """The Gemini settings of the services under test."""
    return {"IMAGE_GENERATOR": "auto", "GEMINI_API_KEY": API_KEY, "GEMINI_MODEL": MODELS,
            "GOOGLE_GEMINI_BASE_URL": fake_gemini.base_url, "GEMINI_TIMEOUT_SECONDS": "5",
            "GEMINI_TOTAL_TIMEOUT_SECONDS": "20"}


@pytest.fixture(scope="module")
def gemini_service(tmp_path_factory, devstack, fake_gemini):
    env = {**peer_env(devstack), **gemini_env(fake_gemini)}
    process = ServiceProcess(env, tmp_path_factory.mktemp("gemini-service"))
    process.wait_serving()
    yield process
    process.close()


def start(service, *pairs, style="vintage", background=""):
    """Asks for a generation of the cart (product id, quantity) pairs; returns its id."""
    answer = service.stub.GenerateCartImage(pb.GenerateCartImageRequest(
        style_preference=style, background_image_url=background,
        cart_items=[pb.CartItem(product_id=p, quantity=q) for p, q in pairs]), timeout=10)
    assert answer.status == "processing"
    return answer.generation_id


def generate(service, *pairs, style="vintage", background=""):
    """The final status of a generation of the cart."""
    return service.wait_finished(start(service, *pairs, style=style, background=background))[0]


def live_requests(fake_gemini):
    """The recorded calls to the live model (the gone one is called once per process, by whichever test is first)."""
    return [r for r in fake_gemini.requests if r.model == "gemini-live-model"]


def metric_samples(service):
    """The /metrics samples as {(name, sorted label items): value}."""
    code, _, body = service.http_get(service.http_base + "/metrics")
    assert code == 200
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(body.decode()) for sample in family.samples}


def test_auto_picks_gemini_and_logs_the_chain_without_the_key(gemini_service):
    logs = gemini_service.logs()
    assert '"generator": "gemini"' in logs and "gemini-live-model" in logs


def test_generation_sends_the_carts_pictures_and_style_and_stores_the_answer(gemini_service, fake_gemini):
    fake_gemini.clear()
    returned = sample_png((10, 200, 90), 96)
    fake_gemini.script(image(returned))
    final = generate(gemini_service, (SUNGLASSES, 1), (MUG, 3))
    assert final.status == "completed", final.error_message
    live = live_requests(fake_gemini)
    assert len(live) == 1
    request = live[0]
    assert request.path.startswith("/v1beta/models/gemini-live-model:generateContent")
    assert request.headers["x-goog-api-key"] == API_KEY
    assert len(request.inline_images()) == 2  # one picture a product
    assert all(Image.open(io.BytesIO(data)).size[0] > 0 for _, data in request.inline_images())
    prompt = " ".join(request.texts())
    assert "Sunglasses" in prompt and "Mug" in prompt and "3" in prompt and "vintage" in prompt.lower()
    assert "IMAGE" in request.generation_config["responseModalities"]
    assert request.generation_config["imageConfig"]["aspectRatio"] == "1:1"
    code, headers, body = gemini_service.http_get(final.image_url)
    assert code == 200 and body == returned


def test_gone_model_is_skipped_and_remembered(gemini_service, fake_gemini):
    fake_gemini.clear()
    assert generate(gemini_service, (WATCH, 11)).status == "completed"
    first = [r.model for r in fake_gemini.requests]
    fake_gemini.clear()
    assert generate(gemini_service, (WATCH, 12)).status == "completed"
    second = [r.model for r in fake_gemini.requests]
    # The service remembers per process, so an earlier test may already have met the gone model: at most once.
    assert (first + second).count("gemini-gone-model") <= 1
    assert first[-1] == "gemini-live-model"
    assert second == ["gemini-live-model"]  # straight to the live model, no retry of the gone one
    assert "gemini model not found; skipping it from now on" in gemini_service.logs()


def test_background_is_sent_as_an_inline_part(gemini_service, fake_gemini):
    buffer = io.BytesIO()
    Image.new("RGB", (120, 80), (30, 60, 200)).save(buffer, "JPEG")
    upload = gemini_service.stub.UploadBackground(
        pb.UploadBackgroundRequest(image_data=base64.b64encode(buffer.getvalue()).decode()), timeout=10)
    fake_gemini.clear()
    assert generate(gemini_service, (CANDLE, 2), background=upload.image_url).status == "completed"
    assert len(fake_gemini.requests[-1].inline_images()) == 2  # the candle holder and the background


def test_rate_limit_then_success_completes(gemini_service, fake_gemini):
    fake_gemini.clear()
    fake_gemini.script(error(429), error(503))
    assert generate(gemini_service, (JAR, 1), style="modern").status == "completed"
    assert len(live_requests(fake_gemini)) == 3


def test_safety_block_fails_with_a_message_a_shopper_reads(gemini_service, fake_gemini):
    fake_gemini.clear()
    fake_gemini.script(finish("IMAGE_SAFETY"))
    final = generate(gemini_service, (LOAFERS, 1), style="modern")
    assert final.status == "failed"
    assert "safety" in final.error_message.lower()
    assert "IMAGE_SAFETY" in gemini_service.logs()  # the technical reason goes to the log


def test_blocked_prompt_fails_clearly(gemini_service, fake_gemini):
    fake_gemini.clear()
    fake_gemini.script(blocked("PROHIBITED_CONTENT"))
    final = generate(gemini_service, (LOAFERS, 2), style="luxury")
    assert final.status == "failed" and final.error_message


def test_api_error_fails_at_once_without_the_key(gemini_service, fake_gemini):
    fake_gemini.clear()
    fake_gemini.script(error(400, "Request contains an invalid argument."))
    final = generate(gemini_service, (MUG, 4), style="festive")
    assert final.status == "failed"
    assert len(live_requests(fake_gemini)) == 1


def test_the_key_never_reaches_logs_metrics_or_statuses(gemini_service, fake_gemini):
    fake_gemini.clear()
    succeeded = start(gemini_service, (TANK_TOP, 21), style="modern")
    assert gemini_service.wait_finished(succeeded)[0].status == "completed"
    # An error that echoes the key, as a misbehaving proxy might: the service must scrub it everywhere.
    fake_gemini.script(error(400, f"API key {API_KEY} is not valid for this request."))
    failed = start(gemini_service, (HAIRDRYER, 22), style="modern")
    final = gemini_service.wait_finished(failed)[0]
    assert final.status == "failed"
    # Google's own 4xx text stays in the log: the shopper reads a plain sentence.
    assert final.error_message == "The image service could not make this picture. Please try again later."
    assert fake_gemini.requests[-1].headers["x-goog-api-key"] == API_KEY  # the key was in play

    assert API_KEY not in gemini_service.logs()
    assert API_KEY.encode() not in gemini_service.http_get(gemini_service.http_base + "/metrics")[2]
    for generation_id in (succeeded, failed):
        status = gemini_service.stub.GetImageGenerationStatus(pb.GetStatusRequest(generation_id=generation_id))
        assert API_KEY.encode() not in status.SerializeToString()  # every field, set or not
        assert all(API_KEY not in str(value) for _, value in status.ListFields())


def test_token_usage_is_counted_in_metrics(make_service, fake_gemini):
    # A service of its own, so the counters hold this test's traffic only.
    service = make_service({**gemini_env(fake_gemini), "IMAGE_GENERATOR": "gemini"})
    fake_gemini.clear()
    assert generate(service, (SALT_AND_PEPPER, 31)).status == "completed"
    samples = metric_samples(service)
    live = (("model", "gemini-live-model"),)
    assert samples[("imagegen_gemini_tokens_total", (("kind", "prompt"), *live))] == 1500  # the fake's usage
    assert samples[("imagegen_gemini_tokens_total", (("kind", "candidates"), *live))] == 1290
    assert samples[("imagegen_gemini_tokens_total", (("kind", "total"), *live))] == 2790
    gone = ("imagegen_gemini_calls_total", (("model", "gemini-gone-model"), ("outcome", "model_gone")))
    assert samples[gone] == 1  # met once, then remembered


def test_every_model_gone_fails_plainly_and_the_log_names_models_and_setting(make_service, fake_gemini):
    service = make_service({"IMAGE_GENERATOR": "gemini", "GEMINI_API_KEY": API_KEY,
                            "GEMINI_MODEL": "gemini-gone-model", "GOOGLE_GEMINI_BASE_URL": fake_gemini.base_url})
    final = generate(service, (SUNGLASSES, 2))
    assert final.status == "failed"
    assert final.error_message == "The image service is unavailable right now. Please try again later."
    (record,) = [r for r in service.log_records() if "no model of the chain" in r["message"]]
    assert record["models"] == ["gemini-gone-model"] and "GEMINI_MODEL" in record["message"]


def test_the_key_never_reaches_logs_metrics_or_statuses_from_the_model_listing_or_the_fallback(make_service):
    with FakeGemini(default=error(503, f"backend for key {API_KEY} overloaded")) as fake:
        # The listing at start and every model call fail with text that echoes the key.
        fake.refuse_listing(error(403, f"API key {API_KEY} lacks permission to list models."))
        service = make_service({**gemini_env(fake), "GEMINI_FALLBACK": "collage", "GEMINI_TIMEOUT_SECONDS": "2",
                                "GEMINI_TOTAL_TIMEOUT_SECONDS": "2"})
        final = generate(service, (SUNGLASSES, 31))

        assert final.status == "completed"  # drawn by the collage in the model's place
        assert fake.list_requests and fake.list_requests[0].headers["x-goog-api-key"] == API_KEY
        assert fake.requests[-1].headers["x-goog-api-key"] == API_KEY
        wait_for(lambda: "could not be listed" in service.logs(), 20, what="the listing's failure logged")
        logs = service.logs()
        assert "drawing the offline collage" in logs
        assert API_KEY not in logs
        assert API_KEY.encode() not in service.http_get(service.http_base + "/metrics")[2]
        assert API_KEY.encode() not in final.SerializeToString()

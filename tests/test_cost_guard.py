"""The cost guard and the model chain over the wire: the real service process, the real google-genai SDK and
a fake Gemini REST server on loopback; the shared variants with a real redis-server and several processes."""

from __future__ import annotations

import io
import re

import grpc
import pytest
from PIL import Image

from genproto import imagegeneration_pb2 as pb
from tests.conftest import replica_env, started_together
from tests.fakes.fake_gemini import FakeGemini, error, image
from tests.service import free_port, wait_for
from tests.test_e2e_gemini import metric_samples

API_KEY = "AIzaFAKE-cost-guard-key-0123456789"
NANO, LITE = "gemini-nano-banana-2.1", "gemini-3.1-flash-lite-image"
SUNGLASSES, MUG = "OLJCESPC7Z", "6E92ZMYYFZ"
# The fake's usageMetadata: 1500 prompt and 1290 candidate tokens, at the nano model's $0.50 / $60 per 1M.
USD_PER_IMAGE = (1500 * 0.50 + 1290 * 60.0) / 1_000_000


@pytest.fixture
def fake_gemini():
    with FakeGemini() as fake:
        yield fake


def gemini_env(fake: FakeGemini, **extra: str) -> dict[str, str]:
    """A Gemini service with the default model chain, pointed at the fake."""
    return {"IMAGE_GENERATOR": "gemini", "GEMINI_API_KEY": API_KEY, "GOOGLE_GEMINI_BASE_URL": fake.base_url,
            "GEMINI_TIMEOUT_SECONDS": "5", "GEMINI_TOTAL_TIMEOUT_SECONDS": "20", **extra}


def generate(service, quantity: int):
    """The final status of one generation; each quantity is a different cart, so no answer comes from cache."""
    answer = service.stub.GenerateCartImage(pb.GenerateCartImageRequest(
        style_preference="modern", cart_items=[pb.CartItem(product_id=SUNGLASSES, quantity=quantity)]), timeout=10)
    return service.wait_finished(answer.generation_id)[0]


def picture_side(service, url: str) -> int:
    code, _, body = service.http_get(url)
    assert code == 200
    return Image.open(io.BytesIO(body)).size[0]


# --- the model chain ---------------------------------------------------------------------------------


def test_the_default_chain_starts_with_the_current_model(make_service, fake_gemini):
    service = make_service(gemini_env(fake_gemini))
    assert generate(service, 1).status == "completed"
    assert [r.model for r in fake_gemini.requests] == [NANO]


def test_the_chain_moves_on_for_404_and_not_supported_and_asks_the_lite_model_for_1k(make_service, fake_gemini):
    fake_gemini.model_gone("gemini-retired")
    fake_gemini.limit_sizes(NANO, "1K")  # as if this key's nano model refused 2K
    fake_gemini.limit_sizes(LITE, "1K")
    service = make_service(gemini_env(fake_gemini, GEMINI_MODEL=f"gemini-retired,{NANO},{LITE}", IMAGE_SIZE="2048"))

    final = generate(service, 2)

    assert final.status == "completed", final.error_message
    asked = [(r.model, r.generation_config.get("imageConfig", {}).get("imageSize")) for r in fake_gemini.requests]
    assert asked == [("gemini-retired", None), (NANO, "2K"), (LITE, "1K")]
    samples = metric_samples(service)
    assert samples[("imagegen_images_served_total", (("model", LITE),))] == 1
    assert samples[("imagegen_gemini_calls_total", (("model", NANO), ("outcome", "unsupported")))] == 1


def test_models_missing_for_the_key_are_logged_at_start(make_service, fake_gemini):
    fake_gemini.offer_models(NANO, "gemini-2.0-flash")
    service = make_service(gemini_env(fake_gemini))

    record = wait_for(lambda: [r for r in service.log_records() if "not offered" in r["message"]], 20)[0]
    assert record["missing"] == [LITE]
    assert len(fake_gemini.list_requests) == 1


def test_a_model_listing_that_fails_does_not_stop_the_start(make_service, fake_gemini):
    service = make_service(gemini_env(fake_gemini, GOOGLE_GEMINI_BASE_URL=f"http://127.0.0.1:{free_port()}"))  # refused
    wait_for(lambda: "could not be listed" in service.logs(), 30)
    assert service.process.poll() is None


# --- spend and the daily budget --------------------------------------------------------------------------


def test_spend_accumulates_from_the_models_usage_metadata(make_service, fake_gemini):
    service = make_service(gemini_env(fake_gemini))
    assert generate(service, 3).status == "completed"
    assert generate(service, 4).status == "completed"

    samples = metric_samples(service)
    assert samples[("imagegen_gemini_spend_usd_total", (("model", NANO),))] == pytest.approx(2 * USD_PER_IMAGE)
    assert samples[("imagegen_gemini_spend_today_usd", ())] == pytest.approx(2 * USD_PER_IMAGE)
    assert samples[("imagegen_gemini_budget_reached", ())] == 0


def test_the_budget_reached_switches_to_the_collage_and_says_so_once(make_service, fake_gemini):
    service = make_service(gemini_env(fake_gemini, GEMINI_DAILY_BUDGET_USD="0.1"))  # reached by the 2nd image
    assert generate(service, 5).status == "completed"
    assert generate(service, 6).status == "completed"
    assert len(fake_gemini.requests) == 2

    third, fourth = generate(service, 7), generate(service, 8)

    assert third.status == fourth.status == "completed"
    assert len(fake_gemini.requests) == 2  # the model was not asked again
    assert picture_side(service, third.image_url) == 512  # the collage's IMAGE_SIZE, not the fake's 64 px
    samples = metric_samples(service)
    assert samples[("imagegen_gemini_budget_reached", ())] == 1
    assert samples[("imagegen_images_served_total", (("model", "collage"),))] == 2
    assert samples[("imagegen_fallbacks_total", (("reason", "budget_reached"),))] == 2
    reached = [r for r in service.log_records() if r["message"] == "daily image model budget reached"]
    assert len(reached) == 1 and reached[0]["budget_usd"] == 0.1


def test_a_stand_in_collage_is_not_reused_for_the_same_cart(make_service, fake_gemini):
    service = make_service(gemini_env(fake_gemini, GEMINI_DAILY_BUDGET_USD="0.01"))  # reached by the 1st image
    assert generate(service, 3).status == "completed"
    stand_in = generate(service, 4)

    again = generate(service, 4)  # once the budget is back, this cart deserves the model's picture

    assert stand_in.status == again.status == "completed"
    assert again.image_url != stand_in.image_url


def test_the_budget_reached_can_fail_generations_instead(make_service, fake_gemini):
    service = make_service(gemini_env(fake_gemini, GEMINI_DAILY_BUDGET_USD="0.01", BUDGET_EXCEEDED_ACTION="fail"))
    assert generate(service, 9).status == "completed"

    final = generate(service, 10)

    assert final.status == "failed"
    assert final.error_message == "Pictures by the image model are paused for today. Please try again tomorrow."
    assert len(fake_gemini.requests) == 1


def test_a_model_unavailable_after_its_retries_falls_back_to_the_collage_when_configured(make_service, fake_gemini):
    fake_gemini.set_default(error(503))
    service = make_service(gemini_env(fake_gemini, GEMINI_FALLBACK="collage", GEMINI_TIMEOUT_SECONDS="2",
                                      GEMINI_TOTAL_TIMEOUT_SECONDS="2"))

    final = generate(service, 11)

    assert final.status == "completed", final.error_message
    assert len(fake_gemini.requests) >= 2  # retried first
    assert picture_side(service, final.image_url) == 512
    assert metric_samples(service)[("imagegen_fallbacks_total", (("reason", "model_unavailable"),))] == 1


def test_without_the_fallback_an_unavailable_model_fails_the_generation(make_service, fake_gemini):
    fake_gemini.set_default(error(503))
    service = make_service(gemini_env(fake_gemini, GEMINI_TIMEOUT_SECONDS="2", GEMINI_TOTAL_TIMEOUT_SECONDS="2"))

    final = generate(service, 12)

    assert final.status == "failed"
    assert final.error_message == "The image service is unavailable right now. Please try again later."


# --- the per-shopper rate limit ---------------------------------------------------------------------------


# Long enough for the few calls a test makes inside it, short enough not to be waited out for long.
WINDOW = 4


def ask(service, user_id: str, quantity: int) -> pb.GenerateCartImageResponse:
    """Starts a generation of the shopper's cart (not waiting for it: the window is the point)."""
    return service.stub.GenerateCartImage(pb.GenerateCartImageRequest(
        user_id=user_id, cart_items=[pb.CartItem(product_id=MUG, quantity=quantity)]), timeout=10)


def assert_limited(service, user_id: str, quantity: int) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        ask(service, user_id, quantity)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert re.fullmatch(r"too many image generations for this shopper; try again in \d+ seconds",
                        refused.value.details())


def allowed_again(service, user_id: str, quantity: int) -> bool:
    try:
        return ask(service, user_id, quantity).status == "processing"
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error
        return False


def test_the_rate_limit_refuses_a_shopper_past_it_and_lets_them_back_after_the_window(make_service):
    service = make_service({"RATE_LIMIT_PER_USER": "2", "RATE_LIMIT_WINDOW_SECONDS": str(WINDOW)})
    ask(service, "shopper-a", 1)
    ask(service, "shopper-a", 2)

    assert_limited(service, "shopper-a", 3)
    assert ask(service, "shopper-b", 4).status == "processing"  # other shoppers are unaffected
    assert metric_samples(service)[("imagegen_rate_limited_total", ())] == 1

    counter = iter(range(100, 1000))
    wait_for(lambda: allowed_again(service, "shopper-a", next(counter)), 40, interval=0.2,
             what="shopper-a allowed again after the window")


def test_replicas_sharing_redis_count_one_limit_together(make_service, redis_addr, gcs_emulator):
    env = {**replica_env(redis_addr, gcs_emulator), "RATE_LIMIT_PER_USER": "2",
           "RATE_LIMIT_WINDOW_SECONDS": str(WINDOW)}
    first, second, third = started_together(make_service, env, 3)
    ask(first, "shopper-c", 1)
    ask(second, "shopper-c", 2)

    assert_limited(third, "shopper-c", 3)
    assert_limited(first, "shopper-c", 4)

    counter = iter(range(100, 1000))
    wait_for(lambda: allowed_again(second, "shopper-c", next(counter)), 40, interval=0.2,
             what="shopper-c allowed again after the window")


def test_replicas_sharing_redis_spend_one_budget_together(make_service, redis_addr, gcs_emulator, fake_gemini):
    env = gemini_env(fake_gemini, **replica_env(redis_addr, gcs_emulator), GEMINI_DAILY_BUDGET_USD="0.1")
    first, second = started_together(make_service, env, 2)
    assert generate(first, 13).status == "completed"
    assert generate(second, 14).status == "completed"  # together past the budget

    final = generate(first, 15)

    assert final.status == "completed"
    assert len(fake_gemini.requests) == 2
    assert picture_side(first, final.image_url) == 512
    # With the shop-wide queue either replica may draw the last one: the one that checked the budget last
    # reports the shop's whole spend.
    spent = [metric_samples(replica)[("imagegen_gemini_spend_today_usd", ())] for replica in (first, second)]
    assert max(spent) == pytest.approx(2 * USD_PER_IMAGE)


def test_refused_requests_do_not_count_against_a_shoppers_limit(make_service):
    service = make_service({"RATE_LIMIT_PER_USER": "2", "RATE_LIMIT_WINDOW_SECONDS": "600"})
    invalid = [
        pb.GenerateCartImageRequest(user_id="victim", cart_items=[pb.CartItem(product_id="6E92ZMYYFZ", quantity=0)]),
        pb.GenerateCartImageRequest(user_id="victim", cart_items=[pb.CartItem(product_id=" ", quantity=1)]),
        pb.GenerateCartImageRequest(user_id="victim", style_preference="no-such-style"),
        pb.GenerateCartImageRequest(user_id="victim", background_image_url="https://elsewhere.example/x.png"),
    ]
    for index in range(60):  # someone else's script, carrying the victim's user_id
        with pytest.raises(grpc.RpcError) as refused:
            service.stub.GenerateCartImage(invalid[index % len(invalid)], timeout=10)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, refused.value.details()

    assert ask(service, "victim", 1).status == "processing"
    assert ask(service, "victim", 2).status == "processing"
    assert_limited(service, "victim", 3)  # the limit still counts the requests that were accepted

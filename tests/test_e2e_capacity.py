"""A shop's burst, end to end: the real service with default settings and the real google-genai SDK against
the fake Gemini server, which holds its answers and counts the calls in flight."""

from __future__ import annotations

import concurrent.futures

import pytest

from genproto import imagegeneration_pb2 as pb
from imagegen.settings import Settings
from tests.fakes.fake_gemini import FakeGemini
from tests.service import wait_for

PRODUCTS = ("OLJCESPC7Z", "6E92ZMYYFZ", "0PUK6V6EV0", "1YMWWN1N4O", "9SIQT8TOJO")


@pytest.fixture
def fake_gemini():
    with FakeGemini() as fake:
        yield fake


@pytest.fixture
def gemini_service(make_service, fake_gemini):
    # Nothing about concurrency or admission is set: the defaults are under test.
    yield make_service({"IMAGE_GENERATOR": "gemini", "GEMINI_API_KEY": "AIzaFAKE-capacity-key",
                        "GEMINI_MODEL": "gemini-live-model", "GOOGLE_GEMINI_BASE_URL": fake_gemini.base_url,
                        "GEMINI_TIMEOUT_SECONDS": "60", "GEMINI_TOTAL_TIMEOUT_SECONDS": "120"})
    fake_gemini.release()


def start_all(service, carts):
    def start(cart):
        return service.stub.GenerateCartImage(pb.GenerateCartImageRequest(
            style_preference="modern", cart_items=[pb.CartItem(product_id=p, quantity=q) for p, q in cart]), timeout=30)

    with concurrent.futures.ThreadPoolExecutor(len(carts)) as pool:
        return list(pool.map(start, carts))


def test_forty_shoppers_at_once_are_all_served_with_model_calls_side_by_side_up_to_the_limit(
        gemini_service, fake_gemini):
    limit = Settings.from_env({}).model_concurrency
    fake_gemini.hold()
    carts = [((PRODUCTS[n % len(PRODUCTS)], 1 + n),) for n in range(40)]
    answers = start_all(gemini_service, carts)
    assert all(answer.status == "processing" for answer in answers)  # none refused
    wait_for(lambda: fake_gemini.in_flight == limit, timeout=60, what=f"{limit} model calls at once")
    fake_gemini.release()
    finals = [gemini_service.wait_finished(answer.generation_id, timeout=120)[0] for answer in answers]
    assert all(final.status == "completed" for final in finals)
    assert fake_gemini.max_in_flight == limit  # never more than the limit
    assert len(fake_gemini.requests) == 40


def test_ten_identical_carts_at_once_cost_one_model_call_and_all_get_the_same_picture(gemini_service, fake_gemini):
    fake_gemini.hold()
    answers = start_all(gemini_service, [(("OLJCESPC7Z", 2), ("6E92ZMYYFZ", 1))] * 10)
    wait_for(lambda: fake_gemini.in_flight == 1, what="the model call")
    fake_gemini.release()
    finals = [gemini_service.wait_finished(answer.generation_id)[0] for answer in answers]
    assert all(final.status == "completed" for final in finals)
    assert len({final.image_url for final in finals}) == 1
    assert len(fake_gemini.requests) == 1


def test_queue_depth_running_model_calls_and_waiting_time_are_metrics(make_service, fake_gemini):
    service = make_service({"IMAGE_GENERATOR": "gemini", "GEMINI_API_KEY": "AIzaFAKE-capacity-key",
                            "GEMINI_MODEL": "gemini-live-model", "GOOGLE_GEMINI_BASE_URL": fake_gemini.base_url,
                            "MODEL_CONCURRENCY": "2"})
    fake_gemini.hold()
    answers = start_all(service, [((PRODUCTS[0], n),) for n in range(1, 6)])
    wait_for(lambda: fake_gemini.in_flight == 2, what="two model calls")

    def metric(name: str) -> str:
        body = service.http_get(service.http_base + "/metrics")[2].decode()
        return next((line.split()[-1] for line in body.splitlines() if line.startswith(name + " ")), "")

    wait_for(lambda: metric("imagegen_generations_queued") == "3.0", what="three queued")
    assert metric("imagegen_model_calls_running") == "2.0"
    fake_gemini.release()
    for answer in answers:
        assert service.wait_finished(answer.generation_id)[0].status == "completed"
    assert metric("imagegen_generations_queued") == "0.0" and metric("imagegen_model_calls_running") == "0.0"
    assert metric("imagegen_generation_queue_wait_seconds_count") == "5.0"

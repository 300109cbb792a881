"""The fleet as one service at a shop's peak: real service processes sharing a real redis-server (or a real
3-node Redis Cluster) and the Cloud Storage emulator, drawing with the real google-genai SDK against the
fake Gemini, which counts what the shop sends it."""

from __future__ import annotations

import concurrent.futures
import signal
import threading

import grpc
import pytest

from genproto import imagegeneration_pb2 as pb
from tests.conftest import replica_env, started_together
from tests.fakes.fake_gemini import FakeGemini, slow
from tests.redis_cluster import redis_cluster, redis_cluster_addr  # noqa: F401 (fixtures)
from tests.service import wait_for

MUG, CANDLE, WATCH, JAR = "6E92ZMYYFZ", "0PUK6V6EV0", "1YMWWN1N4O", "9SIQT8TOJO"


@pytest.fixture
def fake_gemini():
    with FakeGemini() as fake:
        yield fake


@pytest.fixture(params=["redis", "cluster"])
def shared_redis(request) -> str:
    """REDIS_ADDR: the session's redis-server, or one node of the 3-node cluster."""
    return request.getfixturevalue("redis_addr" if request.param == "redis" else "redis_cluster_addr")


def fleet(make_service, redis: str, gcs_emulator, fake_gemini, count: int, **env: str):
    common = {**replica_env(redis, gcs_emulator), "IMAGE_GENERATOR": "gemini", "GEMINI_API_KEY": "AIzaFAKE-fleet",
              "GEMINI_MODEL": "gemini-fleet-model", "GOOGLE_GEMINI_BASE_URL": fake_gemini.base_url,
              "GEMINI_TIMEOUT_SECONDS": "60", "GEMINI_TOTAL_TIMEOUT_SECONDS": "120", **env}
    return started_together(make_service, common, count)


def generate(service, *pairs, user_id: str = "") -> pb.GenerateCartImageResponse:
    return service.stub.GenerateCartImage(pb.GenerateCartImageRequest(
        user_id=user_id, cart_items=[pb.CartItem(product_id=p, quantity=q) for p, q in pairs]), timeout=20)


def status(service, generation_id: str) -> pb.GetStatusResponse:
    return service.stub.GetImageGenerationStatus(pb.GetStatusRequest(generation_id=generation_id), timeout=10)


def cancel(service, generation_id: str) -> pb.GetStatusResponse:
    return service.stub.CancelImageGeneration(pb.CancelImageGenerationRequest(generation_id=generation_id), timeout=10)


def test_every_accepted_generation_completes_when_one_replica_is_killed_and_another_rolled(
        make_service, shared_redis, gcs_emulator, fake_gemini):
    fake_gemini.set_default(slow(2.5))  # longer than the grace: the rolled replica has work to hand back
    one, two, three = fleet(make_service, shared_redis, gcs_emulator, fake_gemini, 3, MODEL_CONCURRENCY="3",
                            GENERATION_LEASE_SECONDS="2", SHUTDOWN_GRACE_SECONDS="1", SHUTDOWN_STATUS_SECONDS="0")
    services = (one, two, three)
    accepted = [generate(services[n % 3], (MUG, n)).generation_id for n in range(1, 19)]
    wait_for(lambda: fake_gemini.in_flight >= 9, what="every replica drawing")
    one.process.kill()  # SIGKILL mid-burst: its running jobs are taken again after their lease
    two.process.send_signal(signal.SIGTERM)  # rolled: its running jobs are handed back when the grace ends
    assert two.process.wait(30) == 0
    finals = [three.wait_finished(generation_id, timeout=120)[0] for generation_id in accepted]
    assert [final.status for final in finals] == ["completed"] * len(accepted), [f.error_message for f in finals]
    assert len({final.image_url for final in finals}) == len(accepted)  # one image per generation
    assert "handed back to the queue" in two.logs()


def test_the_shop_never_sends_gemini_more_calls_at_once_or_per_minute_than_its_limits(
        make_service, redis_addr, gcs_emulator, fake_gemini):
    fake_gemini.set_default(slow(0.5))
    services = fleet(make_service, redis_addr, gcs_emulator, fake_gemini, 2, MODEL_CONCURRENCY="4",
                     GEMINI_MAX_CONCURRENT_CALLS="3", GEMINI_MAX_CALLS_PER_MINUTE="8")
    accepted = [generate(services[n % 2], (CANDLE, n)).generation_id for n in range(1, 13)]
    wait_for(lambda: sum(status(services[0], g).status == "completed" for g in accepted) == 8,
             timeout=60, what="the minute's eight calls to be answered")
    waiting = [g for g in accepted if status(services[0], g).status == "processing"]
    assert len(waiting) == 4  # not refused, not sent: they wait for the next minute
    # In the queue, in their places: no worker holds one while the quota has no call for it.
    assert sorted(status(services[1], g).queue_position for g in waiting) == [0, 1, 2, 3]
    assert len(fake_gemini.requests) == 8
    assert fake_gemini.max_in_flight <= 3  # 8 workers across the replicas, 3 calls at once
    assert fake_gemini.most_calls_within(60) <= 8


def test_a_429_with_retry_info_pauses_every_replica_until_its_delay(
        make_service, redis_addr, gcs_emulator, fake_gemini):
    fake_gemini.set_default(slow(0.2))
    fake_gemini.enforce_quota(calls=1, window_seconds=3)  # one call per 3 s: beyond it, 429 with RetryInfo
    one, two = fleet(make_service, redis_addr, gcs_emulator, fake_gemini, 2, MODEL_CONCURRENCY="2")
    accepted = [generate((one, two)[n % 2], (JAR, n)).generation_id for n in range(1, 5)]
    finals = [two.wait_finished(generation_id, timeout=90)[0] for generation_id in accepted]
    assert [final.status for final in finals] == ["completed"] * 4
    first_429, delay = fake_gemini.rate_limited_at[0]
    assert delay > 1.5
    # Calls already on their way may land just after it; then no replica calls until the delay has passed.
    during_pause = [t for t in fake_gemini.arrivals if first_429 + 0.5 < t < first_429 + delay - 0.2]
    assert during_pause == []
    code, _, body = one.http_get(one.http_base + "/metrics")
    assert code == 200 and b'imagegen_gemini_quota_rate_limited{model="gemini-fleet-model"}' in body


def test_a_light_shopper_is_not_queued_behind_a_heavy_one(make_service, redis_addr, gcs_emulator, fake_gemini):
    fake_gemini.set_default(slow(0.3))
    fake_gemini.hold()
    (service,) = fleet(make_service, redis_addr, gcs_emulator, fake_gemini, 1, MODEL_CONCURRENCY="1")
    heavy = [generate(service, (WATCH, n), user_id="heavy-shopper").generation_id for n in range(1, 11)]
    wait_for(lambda: fake_gemini.in_flight == 1, timeout=60, what="the heavy shopper's first drawing")
    light = generate(service, (MUG, 1), user_id="light-shopper").generation_id
    assert status(service, light).queue_position <= 1  # behind one of the heavy's ten, not nine
    assert status(service, heavy[-1]).queue_position >= 8
    fake_gemini.release()
    order: list[str] = []

    def all_done() -> bool:
        for generation_id in [*heavy, light]:
            if generation_id not in order and status(service, generation_id).status == "completed":
                order.append(generation_id)
        return len(order) == 11

    wait_for(all_done, timeout=60, interval=0.02, what="every drawing")
    assert order.index(light) <= 2, order.index(light)


def test_a_waiting_shopper_is_told_position_and_estimate_and_can_cancel(
        make_service, shared_redis, gcs_emulator, fake_gemini):
    fake_gemini.set_default(slow(0.3))
    (service,) = fleet(make_service, shared_redis, gcs_emulator, fake_gemini, 1, MODEL_CONCURRENCY="1")
    warm = generate(service, (JAR, 9)).generation_id  # one run, so that the service knows a typical run
    assert service.wait_finished(warm)[0].status == "completed"
    fake_gemini.hold()
    running = generate(service, (CANDLE, 1)).generation_id
    wait_for(lambda: fake_gemini.in_flight == 1, what="the first drawing")
    waiting = [generate(service, (CANDLE, n)).generation_id for n in range(2, 6)]
    answers = [status(service, generation_id) for generation_id in waiting]
    assert [answer.queue_position for answer in answers] == [0, 1, 2, 3]
    assert all(answer.estimated_seconds > 0 for answer in answers)
    assert answers[-1].estimated_seconds >= answers[0].estimated_seconds
    assert status(service, running).queue_position == 0 and status(service, running).estimated_seconds > 0

    cancelled = cancel(service, waiting[-1])
    assert cancelled.status == "failed" and "cancelled" in cancelled.error_message
    going_on = cancel(service, running)  # started: it goes on
    assert going_on.status == "processing"
    unknown = cancel(service, "no-such-generation")
    assert unknown.status == "not_found"
    with pytest.raises(grpc.RpcError) as caught:
        cancel(service, "x" * 500)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    calls_before = len(fake_gemini.requests)
    fake_gemini.release()
    for generation_id in [running, *waiting[:-1]]:
        assert service.wait_finished(generation_id)[0].status == "completed"
    assert len(fake_gemini.requests) == calls_before + 3  # the cancelled one was never sent
    assert status(service, waiting[-1]).status == "failed"


def test_a_generation_an_identical_request_joined_is_not_withdrawn(make_service, redis_addr, gcs_emulator,
                                                                   fake_gemini):
    fake_gemini.hold()
    (service,) = fleet(make_service, redis_addr, gcs_emulator, fake_gemini, 1, MODEL_CONCURRENCY="1")
    generate(service, (WATCH, 7))
    wait_for(lambda: fake_gemini.in_flight == 1, what="the first drawing")
    first = generate(service, (MUG, 7)).generation_id
    assert generate(service, (MUG, 7)).generation_id == first  # joined
    assert cancel(service, first).status == "processing"  # the other shopper still wants it
    fake_gemini.release()
    assert service.wait_finished(first)[0].status == "completed"


def test_the_door_lets_256_simultaneous_shoppers_in_with_the_defaults(service):
    carts = [((product, quantity),) for product in (MUG, CANDLE, WATCH, JAR) for quantity in range(1, 65)]
    start = threading.Barrier(len(carts))

    def press(cart) -> str:
        start.wait()
        try:
            return generate(service, *cart).status
        except grpc.RpcError as error:
            return error.code().name

    with concurrent.futures.ThreadPoolExecutor(len(carts)) as pool:
        answers = list(pool.map(press, carts))
    assert answers.count("RESOURCE_EXHAUSTED") == 0
    assert set(answers) <= {"processing", "completed"}, set(answers)

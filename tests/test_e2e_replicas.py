"""Several replicas as one service: real service processes sharing one real redis-server and the Cloud
Storage emulator, drawing with the real google-genai SDK against the fake Gemini server."""

from __future__ import annotations

import concurrent.futures
import signal

import grpc
import pytest
from grpc_health.v1 import health_pb2

from genproto import imagegeneration_pb2 as pb
from tests.fakes.fake_gemini import FakeGemini
from tests.fakes.picture_server import MissingPictures
from tests.conftest import replica_env, started_together
from tests.service import wait_for

SUNGLASSES, MUG, CANDLE, WATCH, JAR = "OLJCESPC7Z", "6E92ZMYYFZ", "0PUK6V6EV0", "1YMWWN1N4O", "9SIQT8TOJO"
SERVICE = "hipstershop.ImageGenerationService"


@pytest.fixture
def fake_gemini():
    with FakeGemini() as fake:
        yield fake


@pytest.fixture
def replicas(make_service, redis_addr, gcs_emulator, fake_gemini):
    """Starts n replicas sharing Redis, the bucket and the model; extra environment optional."""

    def start(count: int = 2, **env: str):
        common = {**replica_env(redis_addr, gcs_emulator),
                  "IMAGE_GENERATOR": "gemini", "GEMINI_API_KEY": "AIzaFAKE-replicas-key",
                  "GEMINI_MODEL": "gemini-live-model", "GOOGLE_GEMINI_BASE_URL": fake_gemini.base_url,
                  "GEMINI_TIMEOUT_SECONDS": "60", "GEMINI_TOTAL_TIMEOUT_SECONDS": "120", **env}
        return started_together(make_service, common, count)

    yield start
    fake_gemini.release()


def generate(service, *pairs, style="modern") -> pb.GenerateCartImageResponse:
    return service.stub.GenerateCartImage(pb.GenerateCartImageRequest(
        style_preference=style, cart_items=[pb.CartItem(product_id=p, quantity=q) for p, q in pairs]), timeout=20)


def test_a_generation_started_on_one_replica_is_followed_to_the_end_on_another(replicas):
    one, two = replicas()
    answer = generate(one, (SUNGLASSES, 2), (MUG, 1))
    final, progress = two.wait_finished(answer.generation_id)
    assert final.status == "completed", final.error_message
    assert progress == sorted(progress)  # monotonic, whichever replica answers
    code, _, body = two.http_get(final.image_url)
    assert code == 200 and body.startswith(b"\x89PNG")
    assert one.stub.GetImageGenerationStatus(pb.GetStatusRequest(generation_id=answer.generation_id),
                                             timeout=5).image_url == final.image_url


def test_identical_carts_on_two_replicas_share_one_model_call_and_later_ones_hit_the_cache(replicas, fake_gemini):
    one, two = replicas()
    fake_gemini.hold()
    first = generate(one, (CANDLE, 4), style="vintage")
    wait_for(lambda: fake_gemini.in_flight == 1, what="the model call")
    second = generate(two, (CANDLE, 4), style="vintage")
    assert second.generation_id == first.generation_id
    fake_gemini.release()
    final, _ = two.wait_finished(first.generation_id)
    assert final.status == "completed"
    later = generate(two, (CANDLE, 4), style="vintage")
    assert later.status == "completed" and later.image_url == final.image_url
    assert len(fake_gemini.requests) == 1


def test_a_killed_replica_s_generation_is_finished_by_another(replicas, fake_gemini):
    one, two = replicas(GENERATION_LEASE_SECONDS="2")
    fake_gemini.hold()
    taken = generate(one, (WATCH, 3))
    wait_for(lambda: fake_gemini.in_flight >= 1, what="the model call")
    two.process.kill()  # SIGKILL: no shutdown, no goodbye (whichever replica's worker took it)
    one.process.kill()
    three = replicas(1, GENERATION_LEASE_SECONDS="2")[0]
    fake_gemini.release()
    final, _ = three.wait_finished(taken.generation_id, timeout=60)
    assert final.status == "completed", final.error_message
    assert len(fake_gemini.requests) == 2  # the model call was repeated once: at least once, stored once


def test_redis_stopped_means_unavailable_at_once_and_the_service_recovers_by_itself(replicas, redis_server):
    (service,) = replicas(1)
    done = generate(service, (JAR, 1))
    assert service.wait_finished(done.generation_id)[0].status == "completed"
    redis_server.stop()
    try:
        with pytest.raises(grpc.RpcError) as caught:
            service.stub.GetImageGenerationStatus(pb.GetStatusRequest(generation_id=done.generation_id), timeout=10)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE and "Redis" in caught.value.details()
        with pytest.raises(grpc.RpcError) as caught:
            generate(service, (JAR, 2))
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE

        def health(name: str) -> int:
            return service.health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5).status

        wait_for(lambda: health(SERVICE) == health_pb2.HealthCheckResponse.NOT_SERVING, what="NOT_SERVING")
        assert health("") == health_pb2.HealthCheckResponse.SERVING  # the process lives: no restart wanted
    finally:
        redis_server.start()
    wait_for(lambda: health(SERVICE) == health_pb2.HealthCheckResponse.SERVING, what="SERVING again")
    again = generate(service, (JAR, 2))
    assert service.wait_finished(again.generation_id)[0].status == "completed"


def test_several_shoppers_on_several_replicas_each_get_their_picture(replicas, fake_gemini):
    services = replicas(2)
    carts = [((MUG, quantity),) for quantity in range(1, 13)]
    with concurrent.futures.ThreadPoolExecutor(len(carts)) as pool:
        answers = list(pool.map(lambda i: generate(services[i % 2], *carts[i]), range(len(carts))))
    finals = [services[(i + 1) % 2].wait_finished(a.generation_id)[0] for i, a in enumerate(answers)]
    assert all(final.status == "completed" for final in finals)
    assert len({final.image_url for final in finals}) == len(carts)
    assert len(fake_gemini.requests) == len(carts)


def test_redis_with_the_local_store_refuses_to_start(make_service, redis_addr):
    service = make_service({"REDIS_ADDR": redis_addr}, wait=False)
    assert service.process.wait(30) == 2
    assert "REDIS_ADDR (several replicas) needs GCS_BUCKET" in service.logs()


def test_a_replica_started_while_redis_is_away_serves_once_it_returns(replicas, redis_server):
    redis_server.stop()
    try:
        (service,) = replicas(1, GENERATION_WORKERS="2")
        check = service.health.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=5)
        assert check.status == health_pb2.HealthCheckResponse.NOT_SERVING
    finally:
        redis_server.start()
    wait_for(lambda: service.health.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=5).status
             == health_pb2.HealthCheckResponse.SERVING, what="SERVING once Redis is back")
    answer = generate(service, (SUNGLASSES, 7))
    assert service.wait_finished(answer.generation_id)[0].status == "completed"
    logs = service.logs()
    assert "shared state unavailable" in logs and "shared state available again" in logs
    assert "GENERATION_WORKERS is deprecated" in logs  # the old name still works, with a warning


def test_a_generation_whose_end_redis_missed_is_drawn_again_and_completes_once_redis_answers(
        make_service, redis_addr, redis_server, gcs_emulator):
    held = MissingPictures(hold=True)
    try:
        service = make_service({**replica_env(redis_addr, gcs_emulator), "PRODUCT_IMAGE_BASE_URL": held.url,
                                "REDIS_TIMEOUT_SECONDS": "0.5", "GENERATION_LEASE_SECONDS": "3"})
        answer = generate(service, (CANDLE, 3))
        assert held.arrived.wait(20)
        redis_server.process.send_signal(signal.SIGSTOP)  # Redis stops answering mid-generation
        try:
            held.release.set()  # the generation goes on and ends while Redis cannot record it
            wait_for(lambda: "a peer is unavailable" in service.logs(), timeout=30, what="the end unrecorded")
        finally:
            redis_server.process.send_signal(signal.SIGCONT)
        final, _ = service.wait_finished(answer.generation_id, timeout=60)
        # Its queue entry was never acked: taken again after its lease, drawn and recorded this time.
        assert final.status == "completed", final
    finally:
        held.close()

"""Redis SIGKILLed and restarted empty on the same port (redis-cart keeps nothing across a pod loss): shoppers
polling through it still learn how each generation ended. Real service processes share a real redis-server of
their own and the Cloud Storage emulator, and draw with the real google-genai SDK against the fake Gemini."""

from __future__ import annotations

import threading
import time

import grpc
import pytest

from genproto import imagegeneration_pb2 as pb
from tests.conftest import replica_env
from tests.fakes.fake_gemini import FakeGemini, slow
from tests.redis_server import RedisServer
from tests.service import wait_for

MUG = "6E92ZMYYFZ"
ENDED = ("completed", "failed", "not_found")  # a shopper told not_found gives up


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server this test may kill (the session's is shared with other tests)."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def fake_gemini():
    with FakeGemini() as fake:
        yield fake


def kill(server: RedisServer) -> None:
    server.process.kill()
    server.process.wait(10)
    server.process = None


def kill_and_restart_empty(server: RedisServer) -> None:
    """SIGKILL, then a fresh redis-server on the same port, without persistence."""
    kill(server)
    server.start()


class Poller(threading.Thread):
    """A shopper polling one generation every 0.2 s, on each replica in turn (as behind a Service)."""

    def __init__(self, replicas, generation_id: str) -> None:
        super().__init__(daemon=True)
        self.replicas, self.generation_id = replicas, generation_id
        self.seen: list[str] = []
        self.last: pb.GetStatusResponse | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        turn = 0
        while not self.stop.is_set():
            replica = self.replicas[turn % len(self.replicas)]
            turn += 1
            try:
                answer = replica.stub.GetImageGenerationStatus(
                    pb.GetStatusRequest(generation_id=self.generation_id), timeout=3)
            except grpc.RpcError as error:  # Redis away: UNAVAILABLE, which the shopper retries
                self.seen.append(error.code().name)
            else:
                self.seen.append(answer.status)
                self.last = answer
                if answer.status in ENDED:
                    return
            self.stop.wait(0.2)


def test_every_generation_polled_through_a_redis_restart_ends_and_none_reads_not_found(
        make_service, own_redis, gcs_emulator, fake_gemini):
    fake_gemini.set_default(slow(2.0))
    common = {**replica_env(own_redis.addr, gcs_emulator), "IMAGE_GENERATOR": "gemini",
              "GEMINI_API_KEY": "AIzaFAKE-restart", "GEMINI_MODEL": "gemini-restart-model",
              "GOOGLE_GEMINI_BASE_URL": fake_gemini.base_url, "GEMINI_TIMEOUT_SECONDS": "60",
              "GEMINI_TOTAL_TIMEOUT_SECONDS": "120", "MODEL_CONCURRENCY": "2", "GENERATION_LEASE_SECONDS": "3",
              "REDIS_TIMEOUT_SECONDS": "0.5"}
    replicas = [make_service(common), make_service(common)]
    ids = [replicas[quantity % 2].stub.GenerateCartImage(pb.GenerateCartImageRequest(
        cart_items=[pb.CartItem(product_id=MUG, quantity=quantity)]), timeout=20).generation_id
        for quantity in range(1, 21)]
    pollers = [Poller(replicas, generation_id) for generation_id in ids]
    for poller in pollers:
        poller.start()
    wait_for(lambda: sum(poller.last is not None and poller.last.status == "completed" for poller in pollers) >= 4,
             timeout=60, interval=0.1, what="four generations completed before the restart")
    finished_before = {poller.generation_id: poller.last.image_url for poller in pollers
                       if poller.last is not None and poller.last.status == "completed"}

    kill(own_redis)
    wait_for(lambda: any("UNAVAILABLE" in poller.seen for poller in pollers), timeout=30, interval=0.1,
             what="a shopper to be told the service is unavailable while Redis is away")
    own_redis.start()  # the same port, nothing kept
    deadline = time.monotonic() + 120
    for poller in pollers:
        poller.join(max(0.0, deadline - time.monotonic()))
        poller.stop.set()

    endings = {poller.generation_id: poller.last.status if poller.last else None for poller in pollers}
    assert endings == dict.fromkeys(ids, "completed"), [
        (poller.last.status, poller.last.error_message) for poller in pollers if poller.last]
    for poller in pollers:
        if poller.generation_id in finished_before:
            assert poller.last.image_url == finished_before[poller.generation_id]
    # Workers keep taking from the re-created queue: a generation asked for after the restart completes.
    after = replicas[0].stub.GenerateCartImage(pb.GenerateCartImageRequest(
        cart_items=[pb.CartItem(product_id=MUG, quantity=42)]), timeout=20).generation_id
    answer, _ = replicas[1].wait_finished(after)
    assert answer.status == "completed", answer.error_message


def test_an_unknown_id_reads_not_found_again_once_the_replicas_have_written_back(make_service, own_redis, gcs_emulator):
    service = make_service({**replica_env(own_redis.addr, gcs_emulator), "GENERATION_LEASE_SECONDS": "3"})
    kill_and_restart_empty(own_redis)

    def unknown_reads_not_found() -> bool:
        try:
            return service.stub.GetImageGenerationStatus(
                pb.GetStatusRequest(generation_id="A" * 22), timeout=3).status == "not_found"
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.UNAVAILABLE, error
            return False

    wait_for(unknown_reads_not_found, timeout=30, interval=0.2, what="an unknown id to read not_found")

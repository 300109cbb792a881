"""On SIGTERM, a generation cut off by the end of the grace period is seen `failed` by a shopper who
keeps polling: over real gRPC against the service process."""

from __future__ import annotations

import signal

import grpc
import pytest

from genproto import imagegeneration_pb2 as pb
from tests.conftest import replica_env
from tests.service import wait_for


def poll_until_gone(service, generation_id: str) -> list[str]:
    """Polls every 20 ms until the server stops answering; returns every status seen."""
    seen: list[str] = []

    def gone() -> bool:
        try:
            answer = service.stub.GetImageGenerationStatus(pb.GetStatusRequest(generation_id=generation_id), timeout=2)
        except grpc.RpcError:
            return True
        seen.append(answer.status if answer.status != "failed" else f"failed: {answer.error_message}")
        return False

    wait_for(gone, timeout=60, interval=0.02, what="the server to stop answering")
    return seen


def test_a_generation_cut_off_by_shutdown_is_seen_failed_before_the_server_goes(make_service, held_pictures):
    service = make_service({"PRODUCT_IMAGE_BASE_URL": held_pictures.url, "SHUTDOWN_GRACE_SECONDS": "3",
                            "SHUTDOWN_STATUS_SECONDS": "2"})
    answer = service.stub.GenerateCartImage(
        pb.GenerateCartImageRequest(cart_items=[pb.CartItem(product_id="6E92ZMYYFZ", quantity=1)]), timeout=10)
    assert held_pictures.arrived.wait(10)
    service.process.send_signal(15)
    seen = poll_until_gone(service, answer.generation_id)
    assert service.process.wait(30) == 0
    assert seen[-1].startswith("failed: ") and "shut down" in seen[-1], seen[-5:]
    assert seen.count(seen[-1]) > 1, "failed was answered only once; status should keep answering for a while"


def test_sigterm_with_redis_not_answering_exits_without_waiting_on_redis_per_generation(
        make_service, held_pictures, redis_addr, redis_server, gcs_emulator):
    service = make_service({**replica_env(redis_addr, gcs_emulator), "PRODUCT_IMAGE_BASE_URL": held_pictures.url,
                            "REDIS_TIMEOUT_SECONDS": "2", "MODEL_CONCURRENCY": "2", "SHUTDOWN_GRACE_SECONDS": "3",
                            "SHUTDOWN_STATUS_SECONDS": "1"})
    for quantity in range(1, 7):  # six different carts: two generations held on their pictures, four queued
        service.stub.GenerateCartImage(pb.GenerateCartImageRequest(
            cart_items=[pb.CartItem(product_id="6E92ZMYYFZ", quantity=quantity)]), timeout=10)
    wait_for(lambda: held_pictures.count >= 2, timeout=30, what="two generations fetching their pictures")
    redis_server.process.send_signal(signal.SIGSTOP)  # Redis takes connections and never answers
    try:
        service.process.send_signal(signal.SIGTERM)
        # Marking each of the six failed and releasing it would wait out REDIS_TIMEOUT_SECONDS (and its
        # retry) twice: 48 s. 25 s stands for the pod's terminationGracePeriodSeconds.
        assert service.process.wait(25) == 0
    finally:
        redis_server.process.send_signal(signal.SIGCONT)
    assert "left to their leases" in service.logs()


def last_seen_while_answering(service, generation_ids: list[str], interval: float) -> dict[str, str]:
    """Polls every id once per interval, as a shopper's page does, until the server stops answering;
    returns the last status seen for each."""
    last: dict[str, str] = {}

    def gone() -> bool:
        for generation_id in generation_ids:
            try:
                answer = service.stub.GetImageGenerationStatus(
                    pb.GetStatusRequest(generation_id=generation_id), timeout=2)
            except grpc.RpcError:
                return True
            last[generation_id] = answer.status
        return False

    wait_for(gone, timeout=60, interval=interval, what="the server to stop answering")
    return last


def test_generations_that_finish_inside_the_grace_period_are_seen_ended_before_the_server_goes(
        make_service, held_pictures):
    service = make_service({"PRODUCT_IMAGE_BASE_URL": held_pictures.url, "SHUTDOWN_GRACE_SECONDS": "20",
                            "SHUTDOWN_STATUS_SECONDS": "2"})
    generation_ids = [service.stub.GenerateCartImage(pb.GenerateCartImageRequest(
        cart_items=[pb.CartItem(product_id="6E92ZMYYFZ", quantity=quantity)]), timeout=10).generation_id
        for quantity in range(1, 21)]  # twenty different carts, each held on its pictures
    wait_for(lambda: held_pictures.count >= 20, timeout=30, what="twenty generations fetching their pictures")
    service.process.send_signal(signal.SIGTERM)
    held_pictures.release.set()  # all twenty finish well inside the grace period
    last = last_seen_while_answering(service, generation_ids, interval=0.15)
    assert service.process.wait(30) == 0
    assert sorted(last) == sorted(generation_ids)
    unended = {generation_id: status for generation_id, status in last.items()
               if status not in ("completed", "failed")}
    assert not unended, f"{len(unended)} of 20 last seen {set(unended.values())}"

"""Redis killed and restarted empty (redis-cart has no persistence across pod loss): shoppers polling
through it still learn how their generations ended, over real gRPC against real replicas sharing a real
redis-server and the Cloud Storage emulator."""

from __future__ import annotations

import grpc
import pytest

from genproto import imagegeneration_pb2 as pb
from tests.conftest import replica_env
from tests.fakes.picture_server import MissingPictures
from tests.service import wait_for

MUG = "6E92ZMYYFZ"


@pytest.fixture
def held_pictures():
    held = MissingPictures(hold=True)
    yield held
    held.close()


def generate(service, quantity: int) -> str:
    return service.stub.GenerateCartImage(pb.GenerateCartImageRequest(
        cart_items=[pb.CartItem(product_id=MUG, quantity=quantity)]), timeout=20).generation_id


def kill_and_restart_empty(redis_server) -> None:
    """SIGKILL, then a fresh redis-server on the same port, without the data."""
    redis_server.process.kill()
    redis_server.process.wait(10)
    redis_server.process = None
    redis_server.start()
    assert redis_server.client().dbsize() == 0


def poll_until_ended(replicas, generation_ids: list[str]) -> tuple[dict[str, pb.GetStatusResponse], set[str]]:
    """Polls every id on every replica in turn, as shoppers behind a Service would, until each ended;
    returns the ends and every status seen (calls refused while Redis was away are skipped)."""
    ended: dict[str, pb.GetStatusResponse] = {}
    seen: set[str] = set()

    def all_ended() -> bool:
        for generation_id in generation_ids:
            for replica in replicas:
                try:
                    answer = replica.stub.GetImageGenerationStatus(
                        pb.GetStatusRequest(generation_id=generation_id), timeout=5)
                except grpc.RpcError as error:
                    assert error.code() == grpc.StatusCode.UNAVAILABLE, error
                    continue
                seen.add(answer.status)
                if answer.status in ("completed", "failed"):
                    ended[generation_id] = answer
        return len(ended) == len(generation_ids)

    wait_for(all_ended, timeout=60, interval=0.15, what="every generation to end")
    return ended, seen


def test_a_redis_restart_without_data_loses_no_generation_a_replica_still_holds(
        make_service, redis_addr, redis_server, gcs_emulator, held_pictures):
    common = {**replica_env(redis_addr, gcs_emulator), "GENERATION_LEASE_SECONDS": "3",
              "REDIS_TIMEOUT_SECONDS": "0.5"}
    finisher = make_service(common)
    runner = make_service({**common, "PRODUCT_IMAGE_BASE_URL": held_pictures.url})
    finished_id = generate(finisher, 1)
    before, _ = finisher.wait_finished(finished_id)
    assert before.status == "completed", before.error_message
    running_ids = [generate(runner, quantity) for quantity in (2, 3, 4)]
    wait_for(lambda: held_pictures.count >= 3, timeout=30, what="three generations fetching their pictures")

    kill_and_restart_empty(redis_server)
    held_pictures.release.set()  # the three running ones finish after the restart
    ended, seen = poll_until_ended([runner, finisher], [finished_id, *running_ids])

    assert "not_found" not in seen
    assert {generation_id: answer.status for generation_id, answer in ended.items()} == dict.fromkeys(
        [finished_id, *running_ids], "completed")
    assert ended[finished_id].image_url == before.image_url
    code, _, body = finisher.http_get(before.image_url)
    assert code == 200 and body[:3] == b"\xff\xd8\xff"  # the collage draws JPEG


def test_an_unknown_id_still_reads_not_found_once_the_replicas_have_written_back(
        make_service, redis_addr, redis_server, gcs_emulator):
    service = make_service({**replica_env(redis_addr, gcs_emulator), "GENERATION_LEASE_SECONDS": "3"})
    kill_and_restart_empty(redis_server)

    def not_found() -> bool:
        try:
            return service.stub.GetImageGenerationStatus(
                pb.GetStatusRequest(generation_id="no-such-generation"), timeout=5).status == "not_found"
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.UNAVAILABLE, error
            return False

    wait_for(not_found, timeout=30, interval=0.2, what="an unknown id to read not_found")

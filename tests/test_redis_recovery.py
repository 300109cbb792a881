"""What a replica writes back when Redis restarts empty, over a real redis-server killed and restarted on its
port; and the bounds of what it remembers to do so."""

from __future__ import annotations

import pytest

from imagegen import statuses
from imagegen.state.recovery import Recollection
from imagegen.state.redis import redis_state
from tests.redis_server import RedisServer
from tests.service import wait_for


@pytest.fixture
def own_redis(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


def restart_empty(server: RedisServer) -> None:
    server.process.kill()
    server.process.wait(10)
    server.process = None
    server.start()


def test_a_restarted_redis_gets_back_what_this_replica_runs_ended_and_accepted(own_redis):
    state = redis_state(own_redis.addr, status_max_entries=50, status_ttl_seconds=600, lease_seconds=3)
    store = state.statuses
    try:
        waiting, running, ended = store.create("modern"), store.create("modern"), store.create("vintage")
        requeued: list[str] = []
        state.queued(waiting.id, lambda: requeued.append(waiting.id))
        assert store.own(running.id)
        store.progress(running.id, 40)
        store.complete(ended.id, "https://images.example/done.jpg")

        restart_empty(own_redis)
        read = store.get(running.id)  # a read that misses finds the loss and writes back first
        assert (read.status, read.progress, read.started > 0) == (statuses.PROCESSING, 40, True)
        assert store.get(ended.id).image_url == "https://images.example/done.jpg"
        assert store.get(ended.id).style == "vintage"
        assert store.get(waiting.id).status == statuses.PROCESSING
        wait_for(lambda: requeued == [waiting.id], timeout=10, what="the waiting generation queued again")
        # An id no replica holds reads processing while others may still write back, then unknown again.
        assert store.get("B" * 22).status == statuses.PROCESSING
        wait_for(lambda: store.get("B" * 22) is None, timeout=10, what="an unknown id to read not_found")
        # What ends afterwards is recorded as usual.
        store.complete(running.id, "https://images.example/late.jpg")
        assert store.get(running.id).status == statuses.COMPLETED
    finally:
        state.close()


def test_a_waiting_generation_that_cannot_be_queued_again_fails_with_a_message_a_person_understands(own_redis):
    state = redis_state(own_redis.addr, status_max_entries=50, status_ttl_seconds=600, lease_seconds=3)
    try:
        record = state.statuses.create("modern")
        state.queued(record.id, lambda: (_ for _ in ()).throw(ValueError("the queue refused it")))
        restart_empty(own_redis)
        assert state.statuses.get(record.id).status == statuses.PROCESSING

        def failed() -> str:
            read = state.statuses.get(record.id)
            return read.error_message if read.status == statuses.FAILED else ""

        message = wait_for(failed, timeout=10, what="the generation to fail")
        assert "lost this picture's place in the queue" in message and "try again" in message
    finally:
        state.close()


@pytest.mark.fast
def test_what_a_replica_remembers_is_bounded_in_count_and_age():
    now = [1000.0]
    kept = Recollection(max_entries=3, ttl_seconds=60, clock=lambda: now[0])
    for number in range(5):
        kept.accepted(statuses.Generation(f"e{number}", statuses.PROCESSING, created=now[0]))
        kept.ended(f"e{number}", status=statuses.COMPLETED)
        kept.accepted(statuses.Generation(f"w{number}", statuses.PROCESSING, created=now[0]))
    _, ended, waiting = kept.snapshot()
    assert [held.record.id for held in waiting] == ["w2", "w3", "w4"]
    assert [record.id for record in ended] == ["e2", "e3", "e4"]
    now[0] += 61  # past the time to live: Redis would have dropped them too
    assert kept.snapshot() == ([], [], [])


@pytest.mark.fast
def test_the_first_end_of_a_generation_stands():
    kept = Recollection(max_entries=3, ttl_seconds=60, clock=lambda: 0.0)
    kept.accepted(statuses.Generation("g", statuses.PROCESSING))
    kept.ended("g", status=statuses.COMPLETED, image_url="u")
    assert kept.ended("g", status=statuses.FAILED, error_message="x").status == statuses.COMPLETED

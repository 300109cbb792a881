"""Shared state: the same contract in process and in a real redis-server; leases; Redis going away."""

from __future__ import annotations

import pytest

from imagegen import statuses
from imagegen.errors import PeerUnavailable
from imagegen.state import INTERRUPTED
from imagegen.state.memory import memory_state
from imagegen.state.redis import redis_state
from tests.service import wait_for


@pytest.fixture(params=["memory", "redis"])
def state(request):
    if request.param == "memory":
        yield memory_state(status_max_entries=50, status_ttl_seconds=600, results_max_entries=3)
        return
    addr = request.getfixturevalue("redis_addr")
    shared = redis_state(addr, status_max_entries=50, status_ttl_seconds=600, lease_seconds=5,
                         results_max_entries=3)
    yield shared
    shared.close()


def test_a_new_generation_is_processing_at_zero_and_readable(state):
    record = state.statuses.create("modern")
    read = state.statuses.get(record.id)
    assert (read.id, read.status, read.progress, read.style) == (record.id, statuses.PROCESSING, 0, "modern")


def test_unknown_ids_are_none(state):
    assert state.statuses.get("no-such-generation") is None
    assert state.statuses.get("") is None


def test_progress_only_rises_and_stays_below_100(state):
    record = state.statuses.create("modern")
    state.statuses.progress(record.id, 40)
    state.statuses.progress(record.id, 20)
    assert state.statuses.get(record.id).progress == 40
    state.statuses.progress(record.id, 250)
    assert state.statuses.get(record.id).progress == 99


def test_a_finished_generation_never_changes(state):
    record = state.statuses.create("modern")
    state.statuses.complete(record.id, "https://x/generated/a.png")
    state.statuses.fail(record.id, "late failure")
    state.statuses.progress(record.id, 10)
    done = state.statuses.get(record.id)
    assert (done.status, done.progress, done.image_url, done.error_message) == (
        statuses.COMPLETED, 100, "https://x/generated/a.png", "")
    failed = state.statuses.create("modern")
    state.statuses.fail(failed.id, "the model refused")
    state.statuses.complete(failed.id, "https://x/late.png")
    assert (state.statuses.get(failed.id).status, state.statuses.get(failed.id).error_message) == (
        statuses.FAILED, "the model refused")


def test_a_completed_generation_keeps_its_variants_in_order_and_none_is_empty(state):
    variants = (statuses.ImageVariant(512, "https://x/generated/a-w512.webp"),
                statuses.ImageVariant(768, "https://x/generated/a-w768.webp?X-Goog-Signature=ab", "image/jpeg"))
    record = state.statuses.create("modern")
    state.statuses.complete(record.id, "https://x/generated/a.jpg", variants)
    assert state.statuses.get(record.id).image_variants == variants
    plain = state.statuses.create("modern")
    state.statuses.complete(plain.id, "https://x/generated/b.jpg")
    assert state.statuses.get(plain.id).image_variants == ()


def test_discarded_generations_are_gone(state):
    record = state.statuses.create("modern")
    state.statuses.discard(record.id)
    assert state.statuses.get(record.id) is None


def test_a_finished_generation_read_many_times_is_gone_once_discarded(state):
    record = state.statuses.create("modern")
    state.statuses.complete(record.id, "https://x/generated/c.jpg")
    reads = [state.statuses.get(record.id) for _ in range(3)]  # the replica keeps ended records decoded
    assert {(read.status, read.image_url) for read in reads} == {(statuses.COMPLETED, "https://x/generated/c.jpg")}
    state.statuses.discard(record.id)
    assert state.statuses.get(record.id) is None


def test_statuses_are_bounded_in_count(state):
    ids = [state.statuses.create("modern").id for _ in range(60)]
    for generation_id in ids:
        state.statuses.complete(generation_id, "https://x/a.png")
    state.statuses.create("modern")
    kept = [i for i in ids if state.statuses.get(i) is not None]
    assert len(kept) <= 50 and ids[-1] in kept and ids[0] not in kept


def test_results_remember_names_and_drop_the_oldest_beyond_the_bound(state):
    for number in range(4):
        state.results.put(f"key-{number}", f"generated/{number}.png")
    assert state.results.get("key-0") is None
    assert [state.results.get(f"key-{n}") for n in (1, 2, 3)] == ["generated/1.png", "generated/2.png",
                                                                  "generated/3.png"]


def test_in_flight_claim_returns_the_holder_until_released(state):
    assert state.in_flight.claim("cart", "first") is None
    assert state.in_flight.claim("cart", "second") == "first"
    state.in_flight.release("cart", "second")  # not the holder: no effect
    assert state.in_flight.claim("cart", "third") == "first"
    assert state.in_flight.replace("cart", "first", "fourth") is True
    assert state.in_flight.replace("cart", "first", "fifth") is False
    state.in_flight.release("cart", "fourth")
    assert state.in_flight.claim("cart", "sixth") is None


def test_two_replicas_see_the_same_statuses_results_and_in_flight_work(redis_addr):
    one = redis_state(redis_addr, status_max_entries=50, status_ttl_seconds=600, lease_seconds=5)
    two = redis_state(redis_addr, status_max_entries=50, status_ttl_seconds=600, lease_seconds=5)
    try:
        record = one.statuses.create("vintage")
        one.statuses.progress(record.id, 60)
        assert two.statuses.get(record.id).progress == 60
        one.statuses.complete(record.id, "https://x/b.png")
        assert two.statuses.get(record.id).image_url == "https://x/b.png"
        one.results.put("cart", "generated/b.png")
        assert two.results.get("cart") == "generated/b.png"
        assert one.in_flight.claim("other-cart", record.id) is None
        assert two.in_flight.claim("other-cart", "another") == record.id
    finally:
        one.close()
        two.close()


def test_a_generation_whose_worker_stopped_renewing_its_lease_reads_as_interrupted(redis_addr):
    dead = redis_state(redis_addr, status_max_entries=50, status_ttl_seconds=600, lease_seconds=1)
    alive = redis_state(redis_addr, status_max_entries=50, status_ttl_seconds=600, lease_seconds=1)
    try:
        kept = alive.statuses.create("modern")
        lost = alive.statuses.create("modern")  # accepted here, drawn by the other replica's worker
        assert alive.statuses.own(kept.id) and dead.statuses.own(lost.id)
        dead.close()  # its heartbeat stops, as if the process had been killed
        interrupted = wait_for(lambda: (s := alive.statuses.get(lost.id)).status == statuses.FAILED and s,
                               what="the lease to run out")
        assert interrupted.error_message == INTERRUPTED
        assert alive.statuses.get(kept.id).status == statuses.PROCESSING  # renewed by its own replica
    finally:
        alive.close()


def test_a_lapsed_lease_is_no_interruption_while_the_queue_still_holds_the_generation(redis_addr):
    queued: set[str] = set()
    state = redis_state(redis_addr, status_max_entries=50, status_ttl_seconds=600, lease_seconds=1,
                        still_queued=queued.__contains__)
    try:
        waiting = state.statuses.create("modern")
        queued.add(waiting.id)
        gone = state.statuses.create("modern")
        wait_for(lambda: state.statuses.get(gone.id).status == statuses.FAILED, what="the lease to run out")
        assert state.statuses.get(waiting.id).status == statuses.PROCESSING
    finally:
        state.close()


def test_a_shared_or_started_generation_cannot_be_withdrawn(state):
    alone, joined, taken = (state.statuses.create("modern") for _ in range(3))
    assert state.statuses.share(joined.id).shared
    assert state.statuses.own(taken.id) and state.statuses.get(taken.id).started > 0
    assert not state.statuses.withdraw(joined.id, "cancelled") and not state.statuses.withdraw(taken.id, "cancelled")
    assert state.statuses.withdraw(alone.id, "cancelled")
    assert (state.statuses.get(alone.id).status, state.statuses.get(alone.id).error_message) == (
        statuses.FAILED, "cancelled")
    assert not state.statuses.own(alone.id)  # a worker taking it later skips it


def test_redis_away_is_peer_unavailable_fast_and_recovery_is_automatic(redis_server, redis_addr):
    state = redis_state(redis_addr, status_max_entries=50, status_ttl_seconds=600, lease_seconds=3)
    try:
        record = state.statuses.create("modern")
        redis_server.stop()
        with pytest.raises(PeerUnavailable, match="Redis at 127.0.0.1"):
            state.statuses.get(record.id)
        with pytest.raises(PeerUnavailable):
            state.statuses.create("modern")
        wait_for(lambda: not state.available(), what="the watch to notice")
        redis_server.start()
        wait_for(lambda: state.available(), what="the watch to see Redis back")
        again = state.statuses.create("modern")
        assert state.statuses.get(again.id).status == statuses.PROCESSING
    finally:
        state.close()

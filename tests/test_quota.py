"""Gemini's shop-wide quota: one contract in process, on a real redis-server and on a real Redis Cluster,
with two GeminiQuota objects on one store standing for two replicas."""

from __future__ import annotations

import threading

import pytest

from imagegen.errors import PeerUnavailable
from imagegen.quota import FirstCallGate, GeminiQuota, QuotaPolicy, QuotaTimeout
from imagegen.quota.memory import MemoryQuotaStore
from imagegen.quota.redis import RedisQuotaStore
from imagegen.redis_connect import connect
from tests.redis_cluster import BACKENDS, redis_cluster, redis_cluster_addr, replica_views  # noqa: F401 (fixtures)
from tests.service import wait_for

MODEL = "gemini-2.5-flash-image"


@pytest.fixture(params=BACKENDS)
def make_store(request):
    """Builds stores over one backing state (each one a replica's view)."""
    with replica_views(request, MemoryQuotaStore, RedisQuotaStore) as make:
        yield make


def replicas(make_store, **policy) -> tuple[GeminiQuota, GeminiQuota]:
    rules = QuotaPolicy(**policy)
    return GeminiQuota(make_store(), rules, poll_seconds=0.02), GeminiQuota(make_store(), rules, poll_seconds=0.02)


def test_peak_concurrency_across_two_replicas_never_exceeds_the_limit(make_store):
    one, two = replicas(make_store, max_concurrent=3)
    lock = threading.Lock()
    running, peak, done = [0], [0], []

    def call(quota: GeminiQuota) -> None:
        for _ in range(4):
            with quota.call(MODEL, timeout=60):
                with lock:
                    running[0] += 1
                    peak[0] = max(peak[0], running[0])
                threading.Event().wait(0.01)  # the model at work
                with lock:
                    running[0] -= 1
        done.append(1)

    threads = [threading.Thread(target=call, args=(one if n % 2 else two,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(done) == 10 and peak[0] == 3
    assert one.state(MODEL).in_flight == 0


def test_calls_per_minute_are_bounded_across_replicas(make_store):
    one, two = replicas(make_store, per_minute=5)
    sent, waited_out = 0, 0
    for number in range(8):
        try:
            with (one if number % 2 else two).call(MODEL, timeout=0.2):
                sent += 1
        except QuotaTimeout:
            waited_out += 1
    assert (sent, waited_out) == (5, 3)
    assert two.state(MODEL).calls_last_minute == 5


def test_a_429_pauses_the_model_for_the_other_replica_too(make_store):
    one, two = replicas(make_store, max_concurrent=8)
    with one.call(MODEL, timeout=1) as slot:
        slot.rate_limited(retry_after=30)
    seen = two.state(MODEL)
    assert 0 < seen.pause_remaining_seconds <= 30 and seen.rate_limited_total == 1 and seen.limit == 4
    with pytest.raises(QuotaTimeout, match="very busy across the shop"):
        two.acquire(MODEL, timeout=0.2)
    assert two.acquire("another-model", timeout=1) is not None  # the pause is the model's, not every model's


def test_without_retry_info_the_pause_is_exponential_and_ends(make_store):
    one, two = replicas(make_store, base_pause_seconds=0.2, max_pause_seconds=5)
    with one.call(MODEL, timeout=1) as slot:
        slot.rate_limited()
    assert 0 < two.state(MODEL).pause_remaining_seconds <= 0.2
    slot = wait_for(lambda: two.acquire(MODEL, timeout=1), what="the pause to end")
    slot.rate_limited()
    two.release(slot)  # a second 429 in a row: a longer pause
    assert 0.2 < one.state(MODEL).pause_remaining_seconds <= 0.4


def test_the_limit_is_cut_on_a_429_and_grows_back_slowly_with_successes(make_store):
    one, two = replicas(make_store, max_concurrent=8)
    with one.call(MODEL, timeout=1) as slot:
        slot.rate_limited(retry_after=0.1)
    assert one.state(MODEL).limit == 4
    wait_for(lambda: one.state(MODEL).pause_remaining_seconds == 0, what="the pause to end")
    limits = []
    for _ in range(40):
        with two.call(MODEL, timeout=5):
            pass
        limits.append(one.state(MODEL).limit)
    assert limits == sorted(limits) and limits[0] == 4 and limits[-1] == 8 and max(limits) <= 8


def test_a_crashed_replicas_slot_comes_back_after_its_lease(make_store):
    one, two = replicas(make_store, max_concurrent=1, slot_lease_seconds=0.5)
    held = one.acquire(MODEL, timeout=1)  # its replica dies: never released
    with pytest.raises(QuotaTimeout):
        two.acquire(MODEL, timeout=0.1)
    assert wait_for(lambda: _try(two), what="the slot's lease to run out")
    assert held.renew() is False


def test_an_exception_in_the_call_frees_the_slot_as_an_error(make_store):
    one, _ = replicas(make_store, max_concurrent=1)
    with pytest.raises(RuntimeError):
        with one.call(MODEL, timeout=1):
            raise RuntimeError("transport failed")
    state = one.state(MODEL)
    assert (state.in_flight, state.limit, state.rate_limited_total) == (0, 1, 0)


def _try(quota: GeminiQuota):
    try:
        return quota.acquire(MODEL, timeout=0.05)
    except QuotaTimeout:
        return None


def test_redis_away_is_peer_unavailable(redis_server, redis_addr):
    quota = GeminiQuota(RedisQuotaStore(connect(redis_addr), redis_addr), QuotaPolicy(max_concurrent=2))
    redis_server.stop()
    with pytest.raises(PeerUnavailable, match="Gemini quota \\(Redis at 127.0.0.1"):
        quota.acquire(MODEL, timeout=0.1)
    redis_server.start()
    quota.release(quota.acquire(MODEL, timeout=1))


def test_a_slot_reserved_before_a_job_is_taken_serves_the_workers_first_call_or_is_given_back(make_store):
    one, two = replicas(make_store, per_minute=1)
    gate = FirstCallGate(one, MODEL)
    reserved = gate.reserve(timeout=1)
    assert reserved is not None and two.reserve(MODEL, timeout=0.1) is None  # the minute's one call is taken
    with gate.handed(reserved):
        with one.call(MODEL, timeout=0.1) as slot:  # the worker's call: no wait, no second call counted
            assert slot is reserved
    assert two.reserve(MODEL, timeout=0.1) is None  # it was sent: the minute stays spent
    assert one.state(MODEL).calls_last_minute == 1


def test_a_reserved_slot_no_call_used_is_given_back_and_not_counted_in_the_minute(make_store):
    one, two = replicas(make_store, per_minute=1, max_concurrent=1)
    gate = FirstCallGate(one, MODEL)
    with gate.handed(gate.reserve(timeout=1)):
        pass  # the job needed no call (cancelled, failed before drawing)
    again = gate.reserve(timeout=0.1)
    assert again is not None  # the minute's call and the concurrency slot came back
    gate.release(again)  # no job to take after all
    assert two.reserve(MODEL, timeout=0.1) is not None
    assert one.state(MODEL).calls_last_minute == 1


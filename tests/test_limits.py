"""The rate limit and the spend budget at their unit, in process and against a real redis-server."""

from __future__ import annotations

import logging
import threading

import pytest

from imagegen.errors import RateLimited
from imagegen.limits import (
    DailyBudget,
    InProcessSpendLedger,
    InProcessWindowCounter,
    RedisSpendLedger,
    RedisWindowCounter,
    UserRateLimit,
)
from imagegen.redis_connect import connect
from tests.service import free_port

DAY = 86400.0


class Clock:
    def __init__(self, now: float = 1_790_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_shopper_past_the_limit_is_told_when_to_come_back():
    clock = Clock()
    limit = UserRateLimit(InProcessWindowCounter(clock=clock), limit=2, window_seconds=60)
    limit.check("u")
    clock.now += 15
    limit.check("u")

    with pytest.raises(RateLimited) as refused:
        limit.check("u")

    assert str(refused.value) == "too many image generations for this shopper; try again in 45 seconds"
    limit.check("someone-else")
    clock.now += 45
    limit.check("u")  # a new window


def test_a_zero_limit_turns_the_rate_limit_off():
    limit = UserRateLimit(InProcessWindowCounter(), limit=0, window_seconds=60)
    for _ in range(1000):
        limit.check("u")


def test_the_in_process_counter_is_bounded_in_keys():
    counter = InProcessWindowCounter(max_keys=3)
    for user in range(10):
        counter.hit(f"user-{user}", 60)
    assert len(counter._windows) == 3


def test_the_redis_counter_counts_concurrent_hits_atomically(redis_addr):
    counter = RedisWindowCounter(connect(redis_addr, 5.0))
    seen: list[int] = []
    lock = threading.Lock()

    def hit() -> None:
        hits, _ = counter.hit("k", 60)
        with lock:
            seen.append(hits)

    threads = [threading.Thread(target=hit) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(seen) == list(range(1, 21))
    assert 0 < connect(redis_addr).pttl("imagegen:ratelimit:k") <= 60_000  # the window expires with the key


def test_with_redis_away_the_rate_limit_lets_shoppers_through(caplog):
    limit = UserRateLimit(RedisWindowCounter(connect(f"127.0.0.1:{free_port()}", 0.5)), limit=1, window_seconds=60)
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            limit.check("u")
    assert "rate limit unavailable" in caplog.text


def test_the_budget_is_reached_at_the_cap_and_said_once_a_day(caplog):
    clock = Clock()
    budget = DailyBudget(InProcessSpendLedger(), cap_usd=0.1, clock=clock)
    budget.record("m", 0.06)
    assert not budget.reached()

    with caplog.at_level(logging.WARNING):
        budget.record("m", 0.06)
        assert budget.reached() and budget.reached()

    assert caplog.text.count("daily image model budget reached") == 1
    clock.now += DAY  # a new UTC day starts from zero
    assert not budget.reached()


def test_a_zero_budget_never_stops_the_model():
    budget = DailyBudget(InProcessSpendLedger(), cap_usd=0)
    budget.record("m", 1000.0)
    assert not budget.reached()


def test_the_redis_ledger_adds_concurrent_spend_exactly(redis_addr):
    ledger = RedisSpendLedger(connect(redis_addr, 5.0))
    threads = [threading.Thread(target=ledger.add, args=("2026-11-30", 0.25)) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert ledger.total("2026-11-30") == pytest.approx(10.0)
    assert ledger.total("2026-12-01") == 0.0
    assert 0 < connect(redis_addr).ttl("imagegen:spend:2026-11-30") <= 3 * DAY


def test_with_redis_away_the_budget_counts_as_reached():
    budget = DailyBudget(RedisSpendLedger(connect(f"127.0.0.1:{free_port()}", 0.5)), cap_usd=5.0)
    budget.record("m", 0.1)  # logged, not raised
    assert budget.reached()

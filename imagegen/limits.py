"""The cost guard: a per-shopper rate limit on generations and a daily spend budget for the image model.

Each keeps its shared state behind a small interface with an in-process implementation (one replica) and a
Redis one (every replica counts together), chosen in the composition root.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Protocol

import redis

from imagegen.errors import PeerUnavailable, RateLimited

log = logging.getLogger(__name__)

KEY_PREFIX = "imagegen:"


# --- the rate limit ----------------------------------------------------------------------------------


class WindowCounter(Protocol):
    """Counts hits per key in fixed windows that start at a key's first hit."""

    def hit(self, key: str, window_seconds: int) -> tuple[int, float]:
        """Counts one hit; returns the hits in the key's current window and the seconds left in it."""
        ...


class InProcessWindowCounter:
    """Windows in a dict, bounded in keys (the oldest windows go first when full)."""

    def __init__(self, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._windows: OrderedDict[str, tuple[float, int]] = OrderedDict()  # key -> (window end, hits)
        self._max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()

    def hit(self, key: str, window_seconds: int) -> tuple[int, float]:
        now = self._clock()
        with self._lock:
            end, hits = self._windows.get(key, (0.0, 0))
            if end <= now:
                self._windows.pop(key, None)
                end, hits = now + window_seconds, 0
            self._windows[key] = (end, hits + 1)
            if len(self._windows) > self._max_keys:
                self._prune(now)
            return hits + 1, end - now

    def _prune(self, now: float) -> None:
        for key in [key for key, (end, _) in self._windows.items() if end <= now]:
            del self._windows[key]
        while len(self._windows) > self._max_keys:
            self._windows.popitem(last=False)


# INCR and the window's expiry in one step, so every replica sees one count and no key outlives its window.
_HIT_SCRIPT = """
local hits = redis.call('INCR', KEYS[1])
if hits == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {hits, ttl}
"""


class RedisWindowCounter:
    """Windows as Redis keys with an expiry, counted atomically by a Lua script."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._script = client.register_script(_HIT_SCRIPT)

    def hit(self, key: str, window_seconds: int) -> tuple[int, float]:
        with _calling(self._client):
            hits, ttl_ms = self._script(keys=[KEY_PREFIX + "ratelimit:" + key], args=[window_seconds * 1000])
        return int(hits), int(ttl_ms) / 1000.0


class UserRateLimit:
    """At most `limit` generations per shopper (user_id) per window; 0 turns the limit off."""

    def __init__(
        self, counter: WindowCounter, limit: int, window_seconds: int, on_refused: Callable[[], None] = lambda: None
    ) -> None:
        self._counter = counter
        self._limit = limit
        self._window = window_seconds
        self._on_refused = on_refused  # a metric: refusals show a script at work

    def check(self, user_id: str) -> None:
        """Counts one generation request; raises RateLimited (saying when to retry) past the limit."""
        if self._limit <= 0:
            return
        # Hashed: user ids are caller-chosen text, keys stay short and carry no shopper data.
        key = hashlib.sha256(user_id.encode("utf-8", "replace")).hexdigest()[:32]
        try:
            hits, seconds_left = self._counter.hit(key, self._window)
        except PeerUnavailable as error:
            # Shared state is down: let shoppers through (the spend budget still bounds the bill).
            log.warning("rate limit unavailable; request allowed", extra={"reason": str(error)})
            return
        if hits > self._limit:
            self._on_refused()
            raise RateLimited(seconds_left)


# --- the daily spend budget -----------------------------------------------------------------------------


class SpendLedger(Protocol):
    """Dollars spent per UTC day."""

    def add(self, day: str, usd: float) -> float:
        """Adds to the day's spend; returns the day's total."""
        ...

    def total(self, day: str) -> float:
        """The day's spend so far."""
        ...


class InProcessSpendLedger:
    """Spend per day in a dict (only today's and yesterday's days are kept)."""

    def __init__(self) -> None:
        self._days: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, day: str, usd: float) -> float:
        with self._lock:
            self._days = {d: v for d, v in self._days.items() if d >= _previous(day)}
            self._days[day] = self._days.get(day, 0.0) + usd
            return self._days[day]

    def total(self, day: str) -> float:
        with self._lock:
            return self._days.get(day, 0.0)


class RedisSpendLedger:
    """Spend per day as INCRBYFLOAT keys that expire after a few days."""

    def __init__(self, client: redis.Redis, keep_seconds: int = 3 * 86400) -> None:
        self._client = client
        self._keep = keep_seconds

    def add(self, day: str, usd: float) -> float:
        key = KEY_PREFIX + "spend:" + day
        with _calling(self._client), self._client.pipeline(transaction=True) as pipe:
            pipe.incrbyfloat(key, usd)
            pipe.expire(key, self._keep)
            total, _ = pipe.execute()
        return float(total)

    def total(self, day: str) -> float:
        with _calling(self._client):
            value = self._client.get(KEY_PREFIX + "spend:" + day)
        return float(value) if value is not None else 0.0


class BudgetMetrics(Protocol):
    """Where the budget reports spend and state (observability.Metrics implements it)."""

    def spent(self, model: str, usd: float) -> None:
        """One call's cost."""

    def budget_state(self, today_usd: float, cap_usd: float, reached: bool) -> None:
        """Today's spend (all replicas, when shared) against the cap."""


class DailyBudget:
    """The image model's spend per UTC day against GEMINI_DAILY_BUDGET_USD (0: no cap, spend still counted)."""

    def __init__(
        self,
        ledger: SpendLedger,
        cap_usd: float,
        metrics: BudgetMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ledger = ledger
        self.cap_usd = cap_usd
        self._metrics = metrics
        self._clock = clock
        self._announced_day = ""  # the day whose cap was logged as reached
        self._lock = threading.Lock()

    def record(self, model: str, usd: float) -> None:
        """Adds one call's cost; logs once per day when the cap is reached."""
        if usd <= 0:
            return
        day = self._day()
        try:
            total = self._ledger.add(day, usd)
        except PeerUnavailable as error:
            log.error("spend could not be recorded", extra={"usd": round(usd, 6), "reason": str(error)})
            return
        reached = self._reached(total)
        if self._metrics is not None:
            self._metrics.spent(model, usd)
            self._metrics.budget_state(total, self.cap_usd, reached)
        if reached:
            self._announce(day, total)

    def reached(self) -> bool:
        """True when today's spend has reached the cap (or, with Redis down, when it cannot be known)."""
        if self.cap_usd <= 0:
            return False
        day = self._day()
        try:
            total = self._ledger.total(day)
        except PeerUnavailable as error:
            # Unknown spend counts as spent: the shopper still gets the fallback, the bill stays bounded.
            log.warning("spend unknown; treating the budget as reached", extra={"reason": str(error)})
            return True
        reached = self._reached(total)
        if self._metrics is not None:
            self._metrics.budget_state(total, self.cap_usd, reached)
        if reached:
            self._announce(day, total)
        return reached

    def _reached(self, total: float) -> bool:
        return self.cap_usd > 0 and total >= self.cap_usd

    def _announce(self, day: str, total: float) -> None:
        with self._lock:
            if self._announced_day == day:
                return
            self._announced_day = day
        log.warning(
            "daily image model budget reached",
            extra={"day": day, "spent_usd": round(total, 4), "budget_usd": self.cap_usd},
        )

    def _day(self) -> str:
        return datetime.datetime.fromtimestamp(self._clock(), datetime.timezone.utc).date().isoformat()


@contextlib.contextmanager
def _calling(client: redis.Redis) -> Iterator[None]:
    """Turns a Redis error into PeerUnavailable, so the rate limit and the budget need not know Redis."""
    try:
        yield
    except redis.RedisError as error:
        kind = "no answer in time" if isinstance(error, redis.TimeoutError) else type(error).__name__
        raise PeerUnavailable("shared state (Redis)", kind) from None


def _previous(day: str) -> str:
    return (datetime.date.fromisoformat(day) - datetime.timedelta(days=1)).isoformat()

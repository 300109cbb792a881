"""How long until a waiting generation is completed: from recent run times and the shop-wide throughput.

Run times and completion times are shared (Redis with REDIS_ADDR, so every replica gives the same answer)
and read at most every `refresh_seconds` per process, so a status call costs no Redis round trip mostly.
"""

from __future__ import annotations

import collections
import math
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from typing import Protocol

import redis

from imagegen.errors import PeerUnavailable

WINDOW_SECONDS = 120.0  # throughput is completions over this window
KEEP_RUNS = 100


class RunLog(Protocol):
    """Recent run times and completions."""

    def record(self, run_seconds: float) -> None:
        """One generation completed after running run_seconds."""
        ...

    def recent(self) -> tuple[list[float], int, float]:
        """The latest run times (up to KEEP_RUNS), completions in the last WINDOW_SECONDS, and the seconds
        since the oldest of those."""
        ...


class MemoryRunLog:
    """Run times and completion times in this process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._runs: collections.deque[float] = collections.deque(maxlen=KEEP_RUNS)
        self._done: collections.deque[float] = collections.deque()

    def record(self, run_seconds: float) -> None:
        with self._lock:
            self._runs.append(run_seconds)
            self._done.append(self._clock())

    def recent(self) -> tuple[list[float], int, float]:
        with self._lock:
            now = self._clock()
            while self._done and self._done[0] < now - WINDOW_SECONDS:
                self._done.popleft()
            return list(self._runs), len(self._done), (now - self._done[0]) if self._done else 0.0


# Keys (one slot): imagegen:{estimate}:runs (list of run seconds, newest first, trimmed to KEEP_RUNS),
# imagegen:{estimate}:done (sorted set of completions by Redis TIME in ms, trimmed to the window).
_RECORD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
redis.call('ZADD', KEYS[2], now, ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[4]))
redis.call('PEXPIRE', KEYS[2], ARGV[4])
"""

_RECENT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local from = now - tonumber(ARGV[1])
local oldest = redis.call('ZRANGEBYSCORE', KEYS[2], from, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
local span = 0
if #oldest > 0 then span = now - tonumber(oldest[2]) end
return {redis.call('LRANGE', KEYS[1], 0, -1), redis.call('ZCOUNT', KEYS[2], from, '+inf'), span}
"""


class RedisRunLog:
    """Run times and completions in Redis, shared by every replica."""

    KEYS = ["imagegen:{estimate}:runs", "imagegen:{estimate}:done"]

    def __init__(self, client: redis.Redis, addr: str = "") -> None:
        self._addr = addr
        self._record = client.register_script(_RECORD)
        self._recent = client.register_script(_RECENT)

    def record(self, run_seconds: float) -> None:
        self._call(self._record, [repr(round(run_seconds, 3)), KEEP_RUNS, uuid.uuid4().hex[:12],
                                  int(WINDOW_SECONDS * 1000)])

    def recent(self) -> tuple[list[float], int, float]:
        runs, done, span_ms = self._call(self._recent, [int(WINDOW_SECONDS * 1000)])
        return [float(run) for run in runs], int(done), int(span_ms) / 1000

    def _call(self, script, args: list):
        try:
            return script(keys=self.KEYS, args=args)
        except redis.RedisError as error:
            raise PeerUnavailable(f"the wait estimate (Redis at {self._addr or '?'})", type(error).__name__) from None


class Estimator:
    """Seconds until completed for a queue position, from the run log (0 when it cannot tell)."""

    def __init__(self, log: RunLog, refresh_seconds: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._log = log
        self._refresh = refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._read_at = -math.inf
        self._typical_run = 0.0  # median of recent runs
        self._per_second = 0.0  # completions per second, shop-wide

    def record(self, run_seconds: float) -> None:
        """A generation completed after running run_seconds (lost quietly when Redis is away)."""
        try:
            self._log.record(run_seconds)
        except PeerUnavailable:
            pass

    def estimate(self, position: int, running_for: float | None = None) -> int:
        """Seconds until completed: for a waiting job at `position`, or a running one started running_for ago."""
        typical, per_second = self._snapshot()
        if typical <= 0:
            return 0
        if running_for is not None:
            return max(1, math.ceil(typical - running_for))
        if per_second <= 0:
            return math.ceil(typical) if position == 0 else 0
        return math.ceil((position + 1) / per_second + typical)

    def _snapshot(self) -> tuple[float, float]:
        with self._lock:
            # Nothing known yet: ask again at once rather than answer 0 for a whole refresh period.
            if self._clock() - self._read_at < self._refresh and self._typical_run > 0:
                return self._typical_run, self._per_second
            self._read_at = self._clock()
        try:
            runs, done, span = self._log.recent()
        except PeerUnavailable:
            return self._typical_run, self._per_second
        with self._lock:
            self._typical_run = statistics.median(runs) if runs else 0.0
            # Over the time the completions actually span (a shop just started has not run a whole window),
            # but at least a typical run, so that a handful finishing together is not taken for a rate.
            elapsed = min(WINDOW_SECONDS, max(span, self._typical_run, 1.0))
            self._per_second = done / elapsed
            return self._typical_run, self._per_second

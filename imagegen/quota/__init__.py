"""Gemini's quota, held for the whole shop: concurrent calls, calls per minute, a pause after a 429, and a
concurrency that adapts (halved on a 429, grown back by one per `limit` successes: AIMD).

GeminiQuota is the policy callers use (`with quota.call(model) as slot: ...; slot.rate_limited(delay)`);
a QuotaStore holds the counts atomically: memory.py for one process, redis.py for every replica.
Calls beyond the limits wait (they are not refused); a wait longer than its timeout raises QuotaTimeout.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Protocol

from imagegen.errors import ModelUnavailable

OK, RATE_LIMITED, ERROR = "ok", "rate_limited", "error"
UNUSED = "unused"  # a reserved slot released without a call: neither the minute nor the limit counts it


@dataclasses.dataclass(frozen=True)
class QuotaPolicy:
    """The shop's limits: 0 turns a bound off."""

    max_concurrent: int = 0  # GEMINI_MAX_CONCURRENT_CALLS, all replicas together
    per_minute: int = 0  # GEMINI_MAX_CALLS_PER_MINUTE, all replicas together
    slot_lease_seconds: float = 120.0  # a crashed replica's slots come back after this
    base_pause_seconds: float = 2.0  # first pause after a 429 without RetryInfo, doubled per 429 in a row
    max_pause_seconds: float = 60.0
    forget_cut_seconds: float = 600.0  # an adaptive cut is forgotten this long after the last 429


@dataclasses.dataclass(frozen=True)
class Grant:
    """A store's answer: granted, or how long to wait before asking again."""

    granted: bool
    retry_in_seconds: float = 0.0


@dataclasses.dataclass(frozen=True)
class QuotaState:
    """What metrics show for one model, shop-wide."""

    in_flight: int
    limit: int  # effective concurrency limit; 0 = none
    pause_remaining_seconds: float
    rate_limited_total: int  # 429s seen, all replicas
    calls_last_minute: int


class QuotaStore(Protocol):
    """Slots, the minute's calls, the pause and the adaptive limit, updated atomically."""

    def try_acquire(self, model: str, token: str, policy: QuotaPolicy) -> Grant:
        """Takes a slot (and counts a call in the minute) when every limit allows it."""
        ...

    def release(self, model: str, token: str, outcome: str, retry_after: float | None, policy: QuotaPolicy) -> None:
        """Frees the slot and applies the outcome: ok grows the limit, rate_limited pauses and cuts it."""
        ...

    def renew(self, model: str, token: str, policy: QuotaPolicy) -> bool:
        """Extends a held slot's lease; False when it had run out."""
        ...

    def state(self, model: str, policy: QuotaPolicy) -> QuotaState:
        """The model's current counts."""
        ...


class QuotaTimeout(ModelUnavailable):
    """No call could be sent within the wait allowed."""

    def __init__(self) -> None:
        super().__init__("the image model is very busy across the shop right now; please try again in a minute")


class Slot:
    """One permitted call; report how it went (ok unless told otherwise) before leaving the `with`."""

    def __init__(self, quota: GeminiQuota, model: str, token: str) -> None:
        self._quota = quota
        self.model = model
        self.token = token
        self.outcome = OK
        self.retry_after: float | None = None

    def rate_limited(self, retry_after: float | None = None) -> None:
        """Gemini answered 429 (retry_after: its RetryInfo delay, when given)."""
        self.outcome, self.retry_after = RATE_LIMITED, retry_after

    def error(self) -> None:
        """The call failed otherwise (no change to the limits)."""
        self.outcome = ERROR

    def unused(self) -> None:
        """No call was sent with it (given back as it was taken)."""
        self.outcome = UNUSED

    def renew(self) -> bool:
        """Keeps the slot past its lease, for a call longer than slot_lease_seconds."""
        return self._quota.store.renew(self.model, self.token, self._quota.policy)


class GeminiQuota:
    """The shop-wide limits, waiting callers until a call may be sent."""

    def __init__(self, store: QuotaStore, policy: QuotaPolicy, poll_seconds: float = 0.2,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.policy = policy
        self._poll = poll_seconds  # other replicas' releases are not announced: ask again this often at most
        self._clock = clock
        self._released = threading.Condition()
        self._handed = threading.local()  # a slot reserved for this thread's next call (see handed)
        self.rate_limited_here = 0  # 429s reported by this process

    def acquire(self, model: str, timeout: float) -> Slot:
        """Waits until a call to model may be sent; raises QuotaTimeout after timeout seconds."""
        handed = getattr(self._handed, "slot", None)
        if handed is not None and handed.model == model:
            self._handed.slot = None
            return handed
        slot = self.reserve(model, timeout)
        if slot is None:
            raise QuotaTimeout()
        return slot

    def reserve(self, model: str, timeout: float) -> Slot | None:
        """A slot for one call to model, waiting up to timeout seconds for one; None when none came."""
        deadline = self._clock() + timeout
        token = uuid.uuid4().hex
        while True:
            grant = self.store.try_acquire(model, token, self.policy)
            if grant.granted:
                return Slot(self, model, token)
            remaining = deadline - self._clock()
            if remaining <= 0:
                return None
            with self._released:
                self._released.wait(min(remaining, max(0.005, grant.retry_in_seconds), self._poll))

    @contextlib.contextmanager
    def handed(self, slot: Slot) -> Iterator[None]:
        """Within it, this thread's first call to the slot's model uses the slot; unused, it is given back."""
        self._handed.slot = slot
        try:
            yield
        finally:
            if getattr(self._handed, "slot", None) is slot:
                self._handed.slot = None
                slot.unused()
                self.release(slot)

    def release(self, slot: Slot) -> None:
        """Frees the slot with its outcome."""
        if slot.outcome == RATE_LIMITED:
            self.rate_limited_here += 1
        self.store.release(slot.model, slot.token, slot.outcome, slot.retry_after, self.policy)
        with self._released:
            self._released.notify_all()

    @contextlib.contextmanager
    def call(self, model: str, timeout: float) -> Iterator[Slot]:
        """`with quota.call(model, timeout) as slot:` around one model call; an exception counts as an error."""
        slot = self.acquire(model, timeout)
        try:
            yield slot
        except BaseException:
            if slot.outcome == OK:
                slot.error()
            raise
        finally:
            self.release(slot)

    def state(self, model: str) -> QuotaState:
        """Current limit, pause, 429s and calls for metrics."""
        return self.store.state(model, self.policy)


def next_pause(streak: int, retry_after: float | None, policy: QuotaPolicy) -> float:
    """Seconds to pause after the streak-th 429 in a row: RetryInfo when given, else exponential."""
    if retry_after is not None and retry_after > 0:
        return min(retry_after, policy.max_pause_seconds)
    return min(policy.max_pause_seconds, policy.base_pause_seconds * 2 ** max(0, streak - 1))


class FirstCallGate:
    """A slot for the next call to the chain's first model, reserved before a job is taken from the queue:
    work the quota cannot send yet waits in the queue, in its place, not in a worker that shows it started."""

    def __init__(self, quota: GeminiQuota, model: str) -> None:
        self._quota = quota
        self._model = model

    def reserve(self, timeout: float) -> Slot | None:
        """A slot, waiting up to timeout seconds; None when the quota gave none."""
        return self._quota.reserve(self._model, timeout)

    def release(self, slot: Slot) -> None:
        """Gives a reserved slot back unused (no job to take after all)."""
        slot.unused()
        self._quota.release(slot)

    def handed(self, slot: Slot) -> contextlib.AbstractContextManager[None]:
        """Within it, the worker's first call to the model uses the slot (given back if none is made)."""
        return self._quota.handed(slot)


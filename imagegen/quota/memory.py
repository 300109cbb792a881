"""Gemini's quota counted in this process (one replica): the same rules as the Redis store."""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from collections.abc import Callable

from imagegen.quota import OK, RATE_LIMITED, UNUSED, Grant, QuotaPolicy, QuotaState, next_pause


@dataclasses.dataclass
class _Model:
    slots: dict[str, float] = dataclasses.field(default_factory=dict)  # token -> lease end
    calls: collections.deque = dataclasses.field(default_factory=collections.deque)  # (send time, token), last minute
    paused_until: float = 0.0
    adaptive: float = 0.0  # 0: no cut in force
    cut_until: float = 0.0
    streak: int = 0
    rate_limited: int = 0


class MemoryQuotaStore:
    """Per-model counts in a dict under one lock."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._models: dict[str, _Model] = collections.defaultdict(_Model)

    def try_acquire(self, model: str, token: str, policy: QuotaPolicy) -> Grant:
        now = self._clock()
        with self._lock:
            state = self._fresh(model, now)
            if state.paused_until > now:
                return Grant(False, state.paused_until - now)
            limit = _limit(state, policy)
            if limit and len(state.slots) >= limit:
                return Grant(False, 0.05)
            if policy.per_minute:
                if len(state.calls) >= policy.per_minute:
                    return Grant(False, state.calls[0][0] + 60 - now)
                state.calls.append((now, token))
            state.slots[token] = now + policy.slot_lease_seconds
            return Grant(True)

    def release(self, model: str, token: str, outcome: str, retry_after: float | None, policy: QuotaPolicy) -> None:
        now = self._clock()
        with self._lock:
            state = self._fresh(model, now)
            held = state.slots.pop(token, None) is not None
            if outcome == UNUSED:  # reserved and never sent: the minute does not count it
                state.calls = collections.deque(call for call in state.calls if call[1] != token)
            elif outcome == OK:
                state.streak = 0
                if state.adaptive:
                    state.adaptive += 1 / state.adaptive
                    if policy.max_concurrent and state.adaptive >= policy.max_concurrent:
                        state.adaptive = 0.0
            elif outcome == RATE_LIMITED:
                state.rate_limited += 1
                state.streak += 1
                pause = next_pause(state.streak, retry_after, policy)
                if state.paused_until <= now:  # one burst of 429s cuts the limit once
                    current = _limit(state, policy) or len(state.slots) + held
                    state.adaptive = max(1.0, current // 2)
                state.paused_until = max(state.paused_until, now + pause)
                state.cut_until = now + policy.forget_cut_seconds

    def renew(self, model: str, token: str, policy: QuotaPolicy) -> bool:
        now = self._clock()
        with self._lock:
            state = self._fresh(model, now)
            if token not in state.slots:
                return False
            state.slots[token] = now + policy.slot_lease_seconds
            return True

    def state(self, model: str, policy: QuotaPolicy) -> QuotaState:
        now = self._clock()
        with self._lock:
            state = self._fresh(model, now)
            return QuotaState(len(state.slots), _limit(state, policy), max(0.0, state.paused_until - now),
                              state.rate_limited, len(state.calls))

    def _fresh(self, model: str, now: float) -> _Model:
        state = self._models[model]
        for token in [t for t, end in state.slots.items() if end <= now]:
            del state.slots[token]
        while state.calls and state.calls[0][0] <= now - 60:
            state.calls.popleft()
        if state.adaptive and state.cut_until <= now:
            state.adaptive = 0.0
        return state


def _limit(state: _Model, policy: QuotaPolicy) -> int:
    """The concurrency in force: the configured bound, or the adaptive cut when lower; 0 = none."""
    if state.adaptive and (not policy.max_concurrent or state.adaptive < policy.max_concurrent):
        return int(state.adaptive)
    return policy.max_concurrent

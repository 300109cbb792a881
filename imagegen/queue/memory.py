"""The generation queue in this process: the same fair order, leases and attempts as the Redis one."""

from __future__ import annotations

import bisect
import dataclasses
import threading
import time
from collections.abc import Callable

from imagegen.queue import DEFAULT_MAX_ATTEMPTS, Claimed, Depth, Job


@dataclasses.dataclass
class _Entry:
    job: Job
    key: tuple[int, int]  # (tag, arrival): the fair order
    enqueued_at: float
    attempts: int = 0
    consumer: str = ""
    lease_end: float = 0.0
    lowest: int | None = None  # the lowest position reported


class MemoryQueue:
    """Waiting jobs in a sorted list, running ones in a dict, under one condition variable."""

    def __init__(self, lease_seconds: float, max_attempts: int = DEFAULT_MAX_ATTEMPTS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._lease = lease_seconds
        self._max_attempts = max_attempts
        self._clock = clock
        self._changed = threading.Condition()
        self._entries: dict[str, _Entry] = {}
        self._waiting: list[tuple[tuple[int, int], str]] = []
        self._returned: list[tuple[tuple[int, int], str]] = []
        self._running: set[str] = set()
        self._lane_tags: dict[str, int] = {}
        self._virtual = 0  # tag of the last job started
        self._arrivals = 0

    def enqueue(self, job: Job) -> bool:
        with self._changed:
            if job.generation_id in self._entries:
                return False
            self._drop_idle_lanes()
            tag = max(self._virtual, self._lane_tags.get(job.lane, 0)) + 1
            self._arrivals += 1
            entry = _Entry(job, (tag, self._arrivals), self._clock())
            self._entries[job.generation_id] = entry
            self._lane_tags[job.lane] = tag
            bisect.insort(self._waiting, (entry.key, job.generation_id))
            self._changed.notify_all()
            return True

    def take(self, consumer: str, block_seconds: float = 0.0) -> Claimed | None:
        deadline = self._clock() + block_seconds
        with self._changed:
            while True:
                claimed = self._take(consumer)
                if claimed is not None:
                    return claimed
                remaining = deadline - self._clock()
                if remaining <= 0:
                    return None
                # Abandoned leases end without a notification: look again at least every quarter lease.
                self._changed.wait(min(remaining, self._lease / 4))

    def wait_for_work(self, block_seconds: float) -> bool:
        deadline = self._clock() + block_seconds
        with self._changed:
            while not (self._waiting or self._returned or self._abandoned(self._clock()) is not None):
                remaining = deadline - self._clock()
                if remaining <= 0:
                    return False
                self._changed.wait(min(remaining, self._lease / 4))
            return True

    def renew(self, consumer: str, generation_id: str) -> bool:
        with self._changed:
            entry = self._entries.get(generation_id)
            if entry is None or generation_id not in self._running or entry.consumer != consumer:
                return False
            entry.lease_end = self._clock() + self._lease
            return True

    def ack(self, generation_id: str) -> bool:
        with self._changed:
            if generation_id not in self._running:
                return False
            self._running.discard(generation_id)
            self._returned = [item for item in self._returned if item[1] != generation_id]
            del self._entries[generation_id]
            return True

    def hand_back(self, consumer: str, generation_id: str) -> bool:
        with self._changed:
            entry = self._entries.get(generation_id)
            if entry is None or generation_id not in self._running or entry.consumer != consumer:
                return False
            self._running.discard(generation_id)
            entry.attempts -= 1  # a clean hand-back is not a failed attempt
            entry.consumer = ""
            bisect.insort(self._returned, (entry.key, generation_id))
            self._changed.notify_all()
            return True

    def cancel(self, generation_id: str) -> bool:
        with self._changed:
            entry = self._entries.get(generation_id)
            if entry is None or generation_id in self._running:
                return False
            for line in (self._waiting, self._returned):
                if (entry.key, generation_id) in line:
                    line.remove((entry.key, generation_id))
            del self._entries[generation_id]
            return True

    def position(self, generation_id: str) -> int | None:
        with self._changed:
            entry = self._entries.get(generation_id)
            if entry is None:
                return None
            if generation_id in self._running:
                return 0
            item = (entry.key, generation_id)
            if item in self._returned:
                rank = bisect.bisect_left(self._returned, item)
            else:
                rank = len(self._returned) + bisect.bisect_left(self._waiting, item)
            entry.lowest = rank if entry.lowest is None else min(entry.lowest, rank)
            return entry.lowest

    def holds(self, generation_id: str) -> bool:
        with self._changed:
            return generation_id in self._entries

    def depth(self) -> Depth:
        with self._changed:
            return Depth(waiting=len(self._waiting) + len(self._returned), running=len(self._running))

    def _take(self, consumer: str) -> Claimed | None:
        now = self._clock()
        poisoned = False
        if self._returned:
            _, generation_id = self._returned.pop(0)
        elif (abandoned := self._abandoned(now)) is not None:
            generation_id = abandoned
            poisoned = self._entries[generation_id].attempts >= self._max_attempts
        elif self._waiting:
            _, generation_id = self._waiting.pop(0)
        else:
            return None
        entry = self._entries[generation_id]
        if poisoned:
            self._running.discard(generation_id)
            del self._entries[generation_id]
            return Claimed(entry.job, entry.attempts, entry.enqueued_at, now - entry.enqueued_at, poisoned=True)
        entry.attempts += 1
        entry.consumer = consumer
        entry.lease_end = now + self._lease
        self._running.add(generation_id)
        self._virtual = max(self._virtual, entry.key[0])
        return Claimed(entry.job, entry.attempts, entry.enqueued_at, now - entry.enqueued_at)

    def _abandoned(self, now: float) -> str | None:
        expired = [gid for gid in self._running if self._entries[gid].lease_end <= now]
        return min(expired, key=lambda gid: self._entries[gid].key) if expired else None

    def _drop_idle_lanes(self) -> None:
        """Forgets lanes with nothing queued or running, so the map stays as small as the queue."""
        if len(self._lane_tags) > 2 * len(self._entries) + 16:
            busy = {entry.job.lane for entry in self._entries.values()}
            self._lane_tags = {lane: tag for lane, tag in self._lane_tags.items() if lane in busy}

"""What a replica remembers of the generations it holds, so that it can write them back when Redis restarts
empty (redis-cart keeps nothing across a pod loss, and a flush does the same).

Three kinds, each bounded: generations a worker here runs (with their last progress), generations that ended
here within STATUS_TTL_SECONDS (at most STATUS_MAX_ENTRIES), and generations accepted here that no worker has
taken yet, with the way to put their queue entry back (at most STATUS_MAX_ENTRIES, dropped once a worker
anywhere has taken them). Redis stays the truth: this is only read after Redis lost its data.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
from collections.abc import Callable

from imagegen import queue as shared_queue
from imagegen.statuses import Generation


@dataclasses.dataclass
class Held:
    """A generation accepted here that waits for a worker, and how to queue it again (None: not queued yet)."""

    record: Generation
    requeue: Callable[[], object] | None = None


class Recollection:
    """The generations this replica runs, ended, or accepted and still waiting; thread-safe, bounded."""

    def __init__(self, max_entries: int, ttl_seconds: float, clock: Callable[[], float]) -> None:
        self._max_entries = max_entries
        self._ttl = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._running: dict[str, Generation] = {}
        self._ended: collections.OrderedDict[str, Generation] = collections.OrderedDict()
        self._waiting: collections.OrderedDict[str, Held] = collections.OrderedDict()
        self._unwritten: set[str] = set()  # ended here while Redis could not be reached

    def accepted(self, record: Generation) -> None:
        """A generation was created here: it waits until a worker takes it or it ends."""
        with self._lock:
            self._waiting[record.id] = Held(record)
            _bound(self._waiting, self._max_entries)

    def queued(self, generation_id: str, requeue: Callable[[], object]) -> None:
        """Its queue entry was added here; requeue adds it again after a restart."""
        with self._lock:
            held = self._waiting.get(generation_id)
            if held is not None:
                held.requeue = requeue

    def running(self, record: Generation) -> None:
        """A worker here took the generation."""
        with self._lock:
            self._waiting.pop(record.id, None)
            self._running[record.id] = record

    def progressed(self, generation_id: str, percent: int) -> None:
        """A generation running here reached percent."""
        with self._lock:
            record = self._running.get(generation_id)
            if record is not None and percent > record.progress:
                self._running[generation_id] = dataclasses.replace(record, progress=percent)

    def ended(self, generation_id: str, **changes: object) -> Generation | None:
        """The generation ended here: its final record, the first end if it had ended already (None when this
        replica did not hold it)."""
        with self._lock:
            if generation_id in self._ended:  # the first end stands, as in Redis
                return self._ended[generation_id]
            record = self._running.pop(generation_id, None)
            held = self._waiting.pop(generation_id, None)
            record = record or (held.record if held is not None else None)
            if record is None:
                return None
            record = dataclasses.replace(record, **changes)
            self._ended[generation_id] = record
            _bound(self._ended, self._max_entries)
            return record

    def unwritten(self, record: Generation) -> None:
        """The end of a generation could not be written: to try again."""
        with self._lock:
            if record.id in self._ended:
                self._unwritten.add(record.id)

    def to_write(self) -> list[Generation]:
        """The ended generations whose end is still to be written."""
        with self._lock:
            self._unwritten &= self._ended.keys()
            return [self._ended[generation_id] for generation_id in self._unwritten]

    def written(self, generation_id: str) -> None:
        """The end of a generation has now been written."""
        with self._lock:
            self._unwritten.discard(generation_id)

    def forget(self, generation_id: str) -> None:
        """Nobody was told of the generation (discarded), or another worker keeps it now (handed back)."""
        with self._lock:
            self._running.pop(generation_id, None)
            self._waiting.pop(generation_id, None)

    def taken(self, generation_ids: list[str]) -> None:
        """A worker somewhere took these (or they ended there): their worker's replica holds them now."""
        with self._lock:
            for generation_id in generation_ids:
                self._waiting.pop(generation_id, None)

    def running_ids(self) -> list[str]:
        """The generations a worker here runs."""
        with self._lock:
            return list(self._running)

    def waiting_ids(self, limit: int) -> list[str]:
        """The oldest waiting ones first (the likeliest to have been taken elsewhere)."""
        with self._lock:
            return [generation_id for generation_id, _ in zip(self._waiting, range(limit))]

    def snapshot(self) -> tuple[list[Generation], list[Generation], list[Held]]:
        """What to write back: running, ended and waiting generations still within their time to live."""
        horizon = self._clock() - self._ttl
        with self._lock:
            for kept in (self._ended, self._waiting):
                for generation_id in [key for key, value in kept.items() if _created(value) < horizon]:
                    del kept[generation_id]
            return list(self._running.values()), list(self._ended.values()), list(self._waiting.values())


class RememberingQueue:
    """The shop's queue, telling the status store each entry accepted here so that a restart can put it back."""

    def __init__(self, queue: shared_queue.GenerationQueue, queued: Callable[[str, Callable[[], object]], None]) -> None:
        self._queue = queue
        self._queued = queued

    def enqueue(self, job: shared_queue.Job) -> bool:
        """Adds the job and tells the store how to add it again."""
        added = self._queue.enqueue(job)
        if added:  # one already queued was remembered when it was added
            self._queued(job.generation_id, lambda: self._queue.enqueue(job))
        return added

    def take(self, consumer: str, block_seconds: float = 0.0) -> shared_queue.Claimed | None:
        """The queue's next job in fair order."""
        return self._queue.take(consumer, block_seconds)

    def wait_for_work(self, block_seconds: float) -> bool:
        """Waits until a take may find a job."""
        return self._queue.wait_for_work(block_seconds)

    def renew(self, consumer: str, generation_id: str) -> bool:
        """Extends a running job's lease."""
        return self._queue.renew(consumer, generation_id)

    def ack(self, generation_id: str) -> bool:
        """Removes a finished job."""
        return self._queue.ack(generation_id)

    def hand_back(self, consumer: str, generation_id: str) -> bool:
        """Returns a running job at once."""
        return self._queue.hand_back(consumer, generation_id)

    def cancel(self, generation_id: str) -> bool:
        """Withdraws a job that has not started."""
        return self._queue.cancel(generation_id)

    def position(self, generation_id: str) -> int | None:
        """How many jobs the shop starts before this one."""
        return self._queue.position(generation_id)

    def holds(self, generation_id: str) -> bool:
        """Whether the job is in the queue, waiting or running."""
        return self._queue.holds(generation_id)

    def depth(self) -> shared_queue.Depth:
        """Waiting and running jobs across the shop."""
        return self._queue.depth()


def _created(value: Generation | Held) -> float:
    return (value.record if isinstance(value, Held) else value).created


def _bound(kept: collections.OrderedDict, max_entries: int) -> None:
    while len(kept) > max_entries:
        kept.popitem(last=False)

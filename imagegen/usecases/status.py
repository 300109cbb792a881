"""Reading a generation's status, with where it stands in the shop's queue; cancelling one not yet started."""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from collections.abc import Callable

from imagegen import queue as shared_queue
from imagegen.errors import PeerUnavailable
from imagegen.estimate import Estimator
from imagegen.state import StatusStore
from imagegen.statuses import COMPLETED, FAILED, PROCESSING, Generation

CANCELLED = "the image generation was cancelled before it started"
# An ended generation never changes, it only expires: its standing is kept here this long (so a replica
# answers a shopper's last polls without asking Redis), and an expired one reads not_found this late at most.
ENDED_SECONDS = 10.0
ENDED_ENTRIES = 4096


@dataclasses.dataclass(frozen=True)
class Standing:
    """A generation's status and, while it is processing, its place in the queue and the seconds left."""

    generation: Generation
    queue_position: int = 0  # generations the shop starts before this one; 0 once started or ended
    estimated_seconds: int = 0  # until completed; 0 when ended or unknown


class ReadStatus:
    """A generation's current status, from whichever replica drew it, and its standing in the queue."""

    def __init__(self, statuses: StatusStore, queue: shared_queue.GenerationQueue | None = None,
                 estimator: Estimator | None = None, ended: Ended | None = None) -> None:
        self._statuses = statuses
        self._queue = queue
        self._estimator = estimator
        self._ended = ended if ended is not None else Ended()

    def __call__(self, generation_id: str) -> Standing | None:
        """The generation's standing, or None when unknown or expired."""
        standing = self._ended.get(generation_id)
        if standing is not None:
            return standing
        record = self._statuses.get(generation_id)
        if record is None:
            return None
        standing = self.standing(record)
        if record.status in (COMPLETED, FAILED):
            self._ended.put(generation_id, standing)
        return standing

    def standing(self, record: Generation) -> Standing:
        """Position and estimate for a record (advisory: 0 when the queue cannot be asked)."""
        if record.status != PROCESSING or self._queue is None:
            return Standing(record)
        try:
            position = self._queue.position(record.id)
        except PeerUnavailable:
            return Standing(record)
        if position is None or self._estimator is None:
            return Standing(record, position or 0)
        if position == 0 and record.started:
            seconds = self._estimator.estimate(0, running_for=max(0.0, time.time() - record.started))
        else:
            seconds = self._estimator.estimate(position)
        return Standing(record, position, seconds)


class Ended:
    """The standings of ended generations, each for ENDED_SECONDS, the newest ENDED_ENTRIES of them."""

    def __init__(self, seconds: float = ENDED_SECONDS, entries: int = ENDED_ENTRIES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._seconds, self._entries, self._clock = seconds, entries, clock
        self._lock = threading.Lock()
        self._standings: collections.OrderedDict[str, tuple[float, Standing]] = collections.OrderedDict()

    def get(self, generation_id: str) -> Standing | None:
        """The standing kept for the id, or None when none is (or it is too old)."""
        kept = self._standings.get(generation_id)
        if kept is None or kept[0] < self._clock():
            return None
        return kept[1]

    def put(self, generation_id: str, standing: Standing) -> None:
        """Keeps an ended generation's standing, the oldest kept going first beyond the count."""
        with self._lock:
            self._standings[generation_id] = (self._clock() + self._seconds, standing)
            self._standings.move_to_end(generation_id)
            while len(self._standings) > self._entries:
                self._standings.popitem(last=False)


class CancelGeneration:
    """Withdraws a generation nobody joined and no worker took; one already started or shared goes on."""

    def __init__(self, statuses: StatusStore, status: ReadStatus,
                 withdrawn: Callable[[str], None] = lambda generation_id: None) -> None:
        self._statuses = statuses
        self._status = status
        self._withdrawn = withdrawn

    def __call__(self, generation_id: str) -> Standing | None:
        """The standing after the call; None when the id is unknown or expired."""
        record = self._statuses.get(generation_id)
        if record is None:
            return None
        # The status decides (atomically with joins and starts); a worker taking it later skips it.
        if self._statuses.withdraw(generation_id, CANCELLED):
            self._withdrawn(generation_id)
        return self._status(generation_id)

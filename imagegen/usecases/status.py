"""Reading a generation's status, with where it stands in the shop's queue; cancelling one not yet started."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from imagegen import queue as shared_queue
from imagegen.errors import PeerUnavailable
from imagegen.estimate import Estimator
from imagegen.state import StatusStore
from imagegen.statuses import PROCESSING, Generation

CANCELLED = "the image generation was cancelled before it started"


@dataclasses.dataclass(frozen=True)
class Standing:
    """A generation's status and, while it is processing, its place in the queue and the seconds left."""

    generation: Generation
    queue_position: int = 0  # generations the shop starts before this one; 0 once started or ended
    estimated_seconds: int = 0  # until completed; 0 when ended or unknown


class ReadStatus:
    """A generation's current status, from whichever replica drew it, and its standing in the queue."""

    def __init__(self, statuses: StatusStore, queue: shared_queue.GenerationQueue | None = None,
                 estimator: Estimator | None = None) -> None:
        self._statuses = statuses
        self._queue = queue
        self._estimator = estimator

    def __call__(self, generation_id: str) -> Standing | None:
        """The generation's standing, or None when unknown or expired."""
        record = self._statuses.get(generation_id)
        if record is None:
            return None
        return self.standing(record)

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

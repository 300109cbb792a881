"""Generation records as a caller sees them, and the in-process status store, bounded in count and age."""

from __future__ import annotations

import collections
import dataclasses
import secrets
import threading
import time
from collections.abc import Callable

PROCESSING = "processing"
COMPLETED = "completed"
FAILED = "failed"
NOT_FOUND = "not_found"


@dataclasses.dataclass(frozen=True)
class ImageVariant:
    """A smaller copy of a stored picture, as the wire's ImageVariant carries it."""

    width: int
    url: str
    mime_type: str = "image/webp"


@dataclasses.dataclass(frozen=True)
class Generation:
    """A snapshot of one generation as a caller sees it."""

    id: str
    status: str
    progress: int = 0
    image_url: str = ""
    error_message: str = ""
    style: str = ""
    created: float = 0.0
    started: float = 0.0  # when a worker took it (time.time()), 0 while it waits
    shared: bool = False  # an identical request joined it: cancelling it would cancel theirs too
    image_variants: tuple[ImageVariant, ...] = ()  # smaller copies of image_url, narrowest first


def new_generation_id() -> str:
    """An unguessable id: 128 random bits, URL-safe."""
    return secrets.token_urlsafe(16)


class InProcessStatuses:
    """Thread-safe generation statuses; the oldest records go first when count or age limits are hit.

    Progress never goes backwards and a finished generation never changes again.
    """

    def __init__(self, max_entries: int, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._max_entries = max_entries
        self._ttl = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._records: collections.OrderedDict[str, Generation] = collections.OrderedDict()

    def create(self, style: str) -> Generation:
        """Registers a new generation in `processing` at progress 0."""
        with self._lock:
            self._evict()
            record = Generation(id=new_generation_id(), status=PROCESSING, style=style, created=self._clock())
            self._records[record.id] = record
            return record

    def get(self, generation_id: str) -> Generation | None:
        """The current record, or None when unknown or expired."""
        with self._lock:
            self._evict()
            return self._records.get(generation_id)

    def progress(self, generation_id: str, percent: int) -> None:
        """Raises progress (clamped to 0-99 while processing); never lowers it."""
        percent = max(0, min(99, int(percent)))
        with self._lock:
            record = self._records.get(generation_id)
            if record is not None and record.status == PROCESSING and percent > record.progress:
                self._records[generation_id] = dataclasses.replace(record, progress=percent)

    def complete(self, generation_id: str, image_url: str, variants: tuple[ImageVariant, ...] = ()) -> None:
        """Marks a generation completed with its image URL and any display variants."""
        self._finish(generation_id, status=COMPLETED, progress=100, image_url=image_url, image_variants=tuple(variants))

    def fail(self, generation_id: str, message: str) -> None:
        """Marks a generation failed with a message a person understands."""
        self._finish(generation_id, status=FAILED, error_message=message)

    def discard(self, generation_id: str) -> None:
        """Forgets a generation nobody was told about."""
        with self._lock:
            self._records.pop(generation_id, None)

    def share(self, generation_id: str) -> Generation | None:
        """Marks a generation joined by an identical request; the record, or None when unknown."""
        with self._lock:
            record = self._records.get(generation_id)
            if record is not None and record.status == PROCESSING and not record.shared:
                record = self._records[generation_id] = dataclasses.replace(record, shared=True)
            return record

    def withdraw(self, generation_id: str, message: str) -> bool:
        """Fails a generation nobody joined and no worker took; False when it was shared, started or ended."""
        with self._lock:
            record = self._records.get(generation_id)
            if record is None or record.status != PROCESSING or record.shared or record.started:
                return False
            self._records[generation_id] = dataclasses.replace(record, status=FAILED, error_message=message)
            return True

    def own(self, generation_id: str) -> bool:
        """Notes that a worker of this process started the generation; False when it already ended."""
        with self._lock:
            record = self._records.get(generation_id)
            if record is None or record.status != PROCESSING:
                return False
            self._records[generation_id] = dataclasses.replace(record, started=time.time())
            return True

    def disown(self, generation_id: str) -> None:
        """Nothing to do in process: the generation ends with the process (see the Redis store)."""

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def _finish(self, generation_id: str, **changes: object) -> None:
        with self._lock:
            record = self._records.get(generation_id)
            if record is not None and record.status == PROCESSING:
                self._records[generation_id] = dataclasses.replace(record, **changes)

    def _evict(self) -> None:
        # Records are kept in creation order: the expired ones are at the front. Over the count
        # limit, the oldest finished records go; running ones are bounded by admission.
        horizon = self._clock() - self._ttl
        while self._records and next(iter(self._records.values())).created < horizon:
            self._records.popitem(last=False)
        if len(self._records) >= self._max_entries:
            # Evict a tenth at once, so the scan is paid once per many creations, not on each.
            excess = len(self._records) - self._max_entries + 1 + self._max_entries // 10
            finished = [key for key, record in self._records.items() if record.status != PROCESSING]
            for key in finished[:excess]:
                del self._records[key]

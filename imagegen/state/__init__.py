"""State every replica must share: generation statuses, finished results, in-flight generations.

Each is a small interface with an in-process implementation (state/memory.py, the default) and a Redis
one (state/redis.py, when REDIS_ADDR is set), chosen in the composition root. Errors: a Redis
implementation raises errors.PeerUnavailable when Redis cannot be reached.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Protocol

from imagegen.statuses import Generation, ImageVariant

INTERRUPTED = "the image generation was interrupted; please try again"


class StatusStore(Protocol):
    """Generation statuses: progress never goes backwards and a finished generation never changes."""

    def create(self, style: str) -> Generation:
        """Registers a new generation in `processing`, owned (kept alive) by this process."""
        ...

    def get(self, generation_id: str) -> Generation | None:
        """The current record, or None when unknown or expired."""
        ...

    def progress(self, generation_id: str, percent: int) -> None:
        """Raises progress (0-99 while processing); never lowers it."""
        ...

    def complete(self, generation_id: str, image_url: str, variants: tuple[ImageVariant, ...] = ()) -> None:
        """Marks a generation completed with its image URL and any display variants (narrowest first)."""
        ...

    def fail(self, generation_id: str, message: str) -> None:
        """Marks a generation failed with a message a person understands."""
        ...

    def discard(self, generation_id: str) -> None:
        """Forgets a generation nobody was told about (refused, or joined to an identical one)."""
        ...

    def share(self, generation_id: str) -> Generation | None:
        """Marks a generation joined by an identical request; the record after, or None when unknown."""
        ...

    def withdraw(self, generation_id: str, message: str) -> bool:
        """Fails a generation nobody joined and no worker took; False when shared, started or ended."""
        ...

    def own(self, generation_id: str) -> bool:
        """A worker here took the generation: its start is noted and its lease kept alive here; False when ended."""
        ...

    def disown(self, generation_id: str) -> None:
        """This process handed the generation back: another worker will keep it alive."""
        ...


class ResultCache(Protocol):
    """Finished images by request key (object names, so URLs are minted afresh), bounded in count."""

    def get(self, key: str) -> str | None:
        """The object name drawn for this key, or None."""
        ...

    def put(self, key: str, name: str) -> None:
        """Remembers the object name drawn for this key."""
        ...


class InFlight(Protocol):
    """Which generation is drawing each request key right now, so identical requests share it."""

    def claim(self, key: str, generation_id: str) -> str | None:
        """Registers generation_id for key; returns the id already registered instead, if any."""
        ...

    def replace(self, key: str, old_id: str, new_id: str) -> bool:
        """Registers new_id in place of old_id (which ended without an image); False if another won."""
        ...

    def release(self, key: str, generation_id: str) -> None:
        """Unregisters generation_id for key (a no-op if another id is registered)."""
        ...


@dataclasses.dataclass
class SharedState:
    """The three shared parts, plus a check that they can be reached and a way to stop background work."""

    statuses: StatusStore
    results: ResultCache
    in_flight: InFlight
    available: Callable[[], bool] = lambda: True
    close: Callable[[], None] = lambda: None
    description: str = "in-process"
    # Told each queue entry added here, with how to add it again should the shared state restart empty.
    queued: Callable[[str, Callable[[], object]], None] = lambda generation_id, requeue: None

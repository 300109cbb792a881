"""The shop-wide generation queue: accepted work waits here, is taken fairly across shoppers, and survives
the replica that accepted it.

Fair order: every entry gets a tag when enqueued, max(tag of the last entry started, last tag of its lane) + 1,
and entries start in tag order (ties by arrival). A shopper with one request therefore waits for about one
entry per busy shopper, not behind another's twenty. Taken entries hold a lease; a consumer that stops
renewing it (died) has its entries taken again after the lease, up to max_attempts deliveries; an entry
handed back (shutdown) is the next one taken. Two implementations: memory.py (one process, the default) and
redis.py (Redis Streams and a consumer group, every replica); the contract is tests/test_queue.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Protocol

DEFAULT_MAX_ATTEMPTS = 3


@dataclasses.dataclass(frozen=True)
class Job:
    """What waits in the queue: a generation id, its shopper's lane ("" = the shared lane) and the work."""

    generation_id: str
    lane: str
    payload: bytes


@dataclasses.dataclass(frozen=True)
class Claimed:
    """A job taken by a consumer: run it (renewing the lease) and ack it, or fail it when poisoned."""

    job: Job
    attempts: int  # deliveries so far, this one included
    enqueued_at: float  # the queue's clock (Redis TIME with Redis), seconds
    waited_seconds: float  # from enqueue to this take
    poisoned: bool = False  # delivered max_attempts times without an ack: already removed, fail it


@dataclasses.dataclass(frozen=True)
class Depth:
    """Entries waiting (not started) and running (taken, not acked) across the shop."""

    waiting: int
    running: int


class GenerationQueue(Protocol):
    """The shop-wide queue of accepted generations."""

    def enqueue(self, job: Job) -> bool:
        """Adds a job at the end of its lane; False when that generation id is already queued or running."""
        ...

    def take(self, consumer: str, block_seconds: float = 0.0) -> Claimed | None:
        """The next job in fair order (handed-back, then abandoned, then waiting), waiting up to block_seconds."""
        ...

    def wait_for_work(self, block_seconds: float) -> bool:
        """Waits up to block_seconds until a take may find a job (waiting, handed back or abandoned); takes none."""
        ...

    def renew(self, consumer: str, generation_id: str) -> bool:
        """Extends the lease of a running job; False when it is no longer this consumer's (reclaimed or ended)."""
        ...

    def ack(self, generation_id: str) -> bool:
        """Removes a finished job (completed or failed); False when it was not running."""
        ...

    def hand_back(self, consumer: str, generation_id: str) -> bool:
        """Returns a running job at once (shutdown); it is the next one taken and the attempt is not counted."""
        ...

    def cancel(self, generation_id: str) -> bool:
        """Withdraws a job that has not started (or was handed back); False when running, ended or unknown."""
        ...

    def position(self, generation_id: str) -> int | None:
        """How many jobs the shop starts before this one: 0 once running, None when unknown or ended.

        Never rises while a job waits: a newcomer placed ahead of a heavy lane's later jobs (the fairness)
        holds their number instead of raising it.
        """
        ...

    def holds(self, generation_id: str) -> bool:
        """Whether the job is in the queue, waiting or running (cheaper than its position)."""
        ...

    def depth(self) -> Depth:
        """Waiting and running jobs across the shop."""
        ...


def lane_for(user_id: str) -> str:
    """The lane of a shopper: hashed (keys carry no shopper data), "" for calls without a user_id."""
    user_id = user_id.strip()
    return hashlib.sha256(user_id.encode("utf-8", "replace")).hexdigest()[:32] if user_id else ""

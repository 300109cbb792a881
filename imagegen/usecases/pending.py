"""The generations this process accepted and has not finished, and what shutdown does with them."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from imagegen.errors import PeerUnavailable
from imagegen.observability import Metrics
from imagegen.state import InFlight, StatusStore

log = logging.getLogger(__name__)

SHUT_DOWN = "the service shut down before the image was finished; please try again"


class Pending:
    """Accepting or not, the generations queued or running here, and shared-state updates that may be lost."""

    def __init__(self, statuses: StatusStore, in_flight: InFlight, metrics: Metrics) -> None:
        self._statuses = statuses
        self._in_flight = in_flight
        self._metrics = metrics
        self._accepting = True
        self._state_lost = False  # a shared-state update failed during shutdown: skip the rest
        self._lock = threading.Lock()
        self._keys: dict[str, str] = {}  # generation id -> request key
        self._last_ended: float | None = None  # monotonic time the last generation here ended

    @property
    def accepting(self) -> bool:
        """False once shutdown has begun."""
        return self._accepting

    @property
    def last_ended(self) -> float | None:
        """When (time.monotonic) the last generation here ended, None before any has."""
        return self._last_ended

    def add(self, generation_id: str, cache_key: str) -> None:
        """Counts a generation queued here."""
        with self._lock:
            self._keys[generation_id] = cache_key
        self._metrics.queue_depth.inc()

    def forget(self, generation_id: str, cache_key: str) -> None:
        """Lets identical requests draw again (or use the cache) once a generation has ended."""
        self._metrics.queue_depth.dec()
        with self._lock:
            self._keys.pop(generation_id, None)
            self._last_ended = time.monotonic()
        self.quietly(self._in_flight.release, cache_key, generation_id)

    def owed(self) -> list[tuple[str, str]]:
        """The generation ids and request keys still owed, in the order they came."""
        with self._lock:
            return list(self._keys.items())

    def fail(self, generation_id: str, message: str) -> bool:
        """Marks a generation failed, quietly (see quietly); False when the shared state missed it."""
        return self.quietly(self._statuses.fail, generation_id, message)

    def stop(self) -> None:
        """Stops accepting new generations."""
        self._accepting = False

    def fail_unfinished(self) -> int:
        """Marks every generation still pending failed and releases its key; returns how many there were."""
        with self._lock:
            unfinished = list(self._keys.items())
        for generation_id, cache_key in unfinished:
            self.fail(generation_id, SHUT_DOWN)
            self.quietly(self._in_flight.release, cache_key, generation_id)
        if unfinished:
            log.warning("shutdown grace period ended with generations unfinished", extra={"count": len(unfinished)})
        return len(unfinished)

    def quietly(self, call: Callable[..., object], *args: object) -> bool:
        """Runs a shared-state update whose loss (Redis briefly away) must not end the work at hand; True
        when it was made.

        Once one is lost during shutdown the rest are skipped: each would wait out the Redis timeout too,
        holding the exit past the grace period (the generations' leases end them for other replicas).
        """
        if self._state_lost:
            return False
        try:
            call(*args)
        except PeerUnavailable as error:
            log.warning("shared state update lost", extra={"reason": str(error)})
            if not self._accepting:
                self._state_lost = True
                log.warning("shared state unavailable while shutting down: unfinished generations are left "
                            "to their leases")
            return False
        return True

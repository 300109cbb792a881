"""In-process shared state: right for one replica, lost with the process."""

from __future__ import annotations

import collections
import threading

from imagegen.statuses import InProcessStatuses
from imagegen.state import SharedState


class MemoryResultCache:
    """A least-recently-stored map of request key -> object name, bounded in count."""

    def __init__(self, max_entries: int = 256) -> None:
        self._max_entries = max_entries
        self._lock = threading.Lock()
        self._names: collections.OrderedDict[str, str] = collections.OrderedDict()

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._names.get(key)

    def put(self, key: str, name: str) -> None:
        with self._lock:
            self._names[key] = name
            self._names.move_to_end(key)
            while len(self._names) > self._max_entries:
                self._names.popitem(last=False)


class MemoryInFlight:
    """Request key -> id of the generation drawing it, under a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: dict[str, str] = {}

    def claim(self, key: str, generation_id: str) -> str | None:
        with self._lock:
            existing = self._ids.setdefault(key, generation_id)
        return None if existing == generation_id else existing

    def replace(self, key: str, old_id: str, new_id: str) -> bool:
        with self._lock:
            if self._ids.get(key) not in (old_id, None):
                return False
            self._ids[key] = new_id
            return True

    def release(self, key: str, generation_id: str) -> None:
        with self._lock:
            if self._ids.get(key) == generation_id:
                del self._ids[key]


def memory_state(status_max_entries: int, status_ttl_seconds: float, results_max_entries: int = 256) -> SharedState:
    """Statuses, results and in-flight generations held in this process."""
    return SharedState(
        statuses=InProcessStatuses(status_max_entries, status_ttl_seconds),
        results=MemoryResultCache(results_max_entries),
        in_flight=MemoryInFlight(),
    )

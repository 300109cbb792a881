"""A least-recently-used store bounded by the bytes its values take: what the collage keeps between carts."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class Kept(Generic[V]):
    """Values by key, the least recently used dropped first once their cost passes limit bytes; thread-safe."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._entries: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._lock = threading.Lock()

    def lookup(self, key: Hashable) -> tuple[bool, V | None]:
        """Returns (True, value) when key is kept, else (False, None)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return False, None
            self._entries.move_to_end(key)
            return True, entry[0]

    def put(self, key: Hashable, value: V, cost: int) -> None:
        """Keeps value under key (cost: its size in bytes); a value bigger than the whole limit is not kept."""
        cost = max(1, cost)
        with self._lock:
            if key in self._entries or cost > self.limit:
                return
            self._entries[key] = (value, cost)
            self.used += cost
            while self.used > self.limit:
                _, (_, freed) = self._entries.popitem(last=False)
                self.used -= freed

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

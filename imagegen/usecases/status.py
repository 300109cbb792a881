"""Reading a generation's status."""

from __future__ import annotations

from imagegen.state import StatusStore
from imagegen.statuses import Generation


class ReadStatus:
    """A generation's current status, from whichever replica drew it."""

    def __init__(self, statuses: StatusStore) -> None:
        self._statuses = statuses

    def __call__(self, generation_id: str) -> Generation | None:
        """The generation's current status, or None when unknown or expired."""
        return self._statuses.get(generation_id)

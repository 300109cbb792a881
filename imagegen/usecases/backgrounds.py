"""Storing a background: decode and normalise an upload, keep it once by its content, answer its URL."""

from __future__ import annotations

import logging

from imagegen.errors import ImageGenError, InvalidArgument
from imagegen.observability import Metrics
from imagegen.stores import ImageStore
from imagegen.uploads import UploadLimits, decode_background

log = logging.getLogger(__name__)


class StoreBackground:
    """Stores a shopper's background; how many run at once is bounded at the gate (capacity.py)."""

    def __init__(self, store: ImageStore, metrics: Metrics, limits: UploadLimits = UploadLimits()) -> None:
        self._store = store
        self._metrics = metrics
        self._limits = limits

    def __call__(self, image_data: str) -> str:
        """Decodes, normalises and stores a background; returns its URL."""
        try:
            background = decode_background(image_data, self._limits)
            if not self._store.exists(background.name):
                self._store.put(background.name, background.picture.data, background.picture.mime_type)
            url = self._store.url_for(background.name)
        except InvalidArgument:
            self._metrics.uploads.labels(outcome="invalid").inc()
            raise
        except ImageGenError:
            self._metrics.uploads.labels(outcome="error").inc()
            raise
        self._metrics.uploads.labels(outcome="success").inc()
        log.info("background stored", extra={"background": background.name, "width": background.width,
                                             "height": background.height})
        return url

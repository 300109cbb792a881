"""Image stores: where generated images and uploaded backgrounds live."""

from __future__ import annotations

import re
from typing import Protocol

# Object name prefixes, the same for every store.
GENERATED_PREFIX = "generated/"
BACKGROUNDS_PREFIX = "backgrounds/"
# Every object name a store accepts: a known prefix, a random token or content hash, an image extension.
OBJECT_NAME = re.compile(r"^(generated|backgrounds)/[A-Za-z0-9_-]{16,128}\.(png|jpg|webp)$")


class ImageStore(Protocol):
    """Puts and gets bytes by object name, gives the URL a shopper uses, recognises its own URLs.

    Object names look like "generated/<token>.png" or "backgrounds/<sha256>.jpg".
    Errors: errors.NotFound for a missing object, errors.StoreError for any other failure.
    """

    def put(self, name: str, data: bytes, content_type: str) -> None:
        """Stores data under name, whole or not at all."""
        ...

    def get(self, name: str) -> bytes:
        """Returns the bytes stored under name."""
        ...

    def exists(self, name: str) -> bool:
        """True when an object with this name is stored."""
        ...

    def url_for(self, name: str) -> str:
        """The URL a shopper's browser uses to fetch the object."""
        ...

    def name_from_url(self, url: str) -> str | None:
        """The object name behind a URL this store issued, or None when the URL is not ours."""
        ...

"""The shop's words as plain data (products, cart lines, pictures) and the ports the use cases speak through."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from imagegen.styles import Style


@dataclasses.dataclass(frozen=True)
class Product:
    """A catalog product, as ProductCatalogService describes it."""

    id: str
    name: str
    description: str = ""
    picture: str = ""  # path under PRODUCT_IMAGE_BASE_URL, e.g. /static/img/products/mug.jpg
    categories: tuple[str, ...] = ()
    price_units: int = 0
    price_nanos: int = 0
    currency_code: str = "USD"


@dataclasses.dataclass(frozen=True)
class Picture:
    """Encoded image bytes and their MIME type (image/png, image/jpeg or image/webp)."""

    data: bytes = dataclasses.field(repr=False)
    mime_type: str
    # Drawn by a stand-in (the collage in place of the model): answered, but never reused from the cache.
    stand_in: bool = False


@dataclasses.dataclass(frozen=True)
class CartLine:
    """One product of the cart with its quantity and, when it could be fetched, its picture."""

    product: Product
    quantity: int
    picture: Picture | None = None


@dataclasses.dataclass(frozen=True)
class GenerationInput:
    """Everything a generator needs to draw one cart picture."""

    lines: tuple[CartLine, ...]
    style: "Style"
    background: Picture | None = None
    size: int = 1024


# Progress callback for generators: a fraction of the generator's own work, 0.0 to 1.0.
Progress = Callable[[float], None]


class Generator(Protocol):
    """Turns a cart into a picture. Raises errors.GenerationFailed with a shopper-readable message."""

    name: str

    def generate(self, request: GenerationInput, progress: Progress) -> Picture:
        """Draws the picture; calls progress(fraction) as work advances."""
        ...


class Cart(Protocol):
    """The shopper's cart (CartService). Errors: errors.PeerUnavailable."""

    def get_cart(self, user_id: str) -> list[tuple[str, int]]:
        """The (product_id, quantity) lines of a user's cart."""
        ...


class Catalog(Protocol):
    """The product catalog (ProductCatalogService). Errors: errors.ProductNotFound, errors.PeerUnavailable."""

    def get_products(self, product_ids: list[str]) -> dict[str, Product]:
        """Every id resolved to its product."""
        ...


class Pictures(Protocol):
    """Product pictures by their catalog path; a picture that cannot be had is None, never an error."""

    def get(self, path: str, deadline: float | None = None) -> Picture | None:
        """The picture at path, or None when unavailable or past the monotonic deadline."""
        ...


class RateLimit(Protocol):
    """The per-shopper limit (limits.UserRateLimit): raises errors.RateLimited past it."""

    def check(self, user_id: str) -> None:
        """Counts one request of user_id; raises errors.RateLimited past the limit."""
        ...


def sniff_image_type(data: bytes) -> str | None:
    """The MIME type of PNG, JPEG or WebP bytes, judged by their magic numbers alone; else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None

"""Starting a generation: validate, resolve the cart and products, answer from the cache or join, queue."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time

from imagegen.domain import Cart, Catalog, Product, RateLimit
from imagegen.errors import Busy, EmptyCart, InvalidArgument, PeerUnavailable, ShuttingDown
from imagegen.observability import Metrics, request_id_var, trace_carrier
from imagegen.state import SharedState
from imagegen.statuses import FAILED, Generation
from imagegen.stores import BACKGROUNDS_PREFIX, ImageStore
from imagegen.styles import Style, resolve_style
from imagegen.usecases.pending import Pending
from imagegen.usecases.queue import GenerationQueue
from imagegen.usecases.run import Job
from imagegen.variants import stored_variants

log = logging.getLogger(__name__)

MAX_CART_LINES = 20
MAX_QUANTITY = 999


@dataclasses.dataclass(frozen=True)
class CartRequest:
    """What GenerateCartImage asks for, in the shop's words."""

    user_id: str = ""
    style_preference: str = ""
    background_image_url: str = ""
    items: tuple[tuple[str, int], ...] = ()


@dataclasses.dataclass(frozen=True)
class Drawing:
    """What every generation here is drawn with: part of the request key, so a change redraws."""

    generator: str
    size: int = 1024


class StartGeneration:
    """Turns a cart request into a generation id: cached, joined to an identical one, or queued to run."""

    def __init__(
        self,
        *,
        cart: Cart,
        catalog: Catalog,
        store: ImageStore,
        state: SharedState,
        queue: GenerationQueue,
        pending: Pending,
        metrics: Metrics,
        drawing: Drawing,
        rate_limit: RateLimit | None = None,
    ) -> None:
        self._cart = cart
        self._catalog = catalog
        self._store = store
        self._statuses = state.statuses
        self._results = state.results
        self._in_flight = state.in_flight
        self._queue = queue
        self._pending = pending
        self._metrics = metrics
        self._drawing = drawing
        self._rate_limit = rate_limit

    def __call__(self, request: CartRequest) -> Generation:
        """Validates the request, reads the cart and products, and queues the generation.

        An identical request already being drawn (by any replica) is joined: the caller gets its id.
        """
        style = resolve_style(request.style_preference)
        items = validate_items(request)
        background_name = self._background_name(request.background_image_url)
        # Counted once the request is valid (a refused one cannot lock its user_id out), and before any
        # peer is asked (a flood of valid ones cannot reach the cart, catalog or store): raises RateLimited.
        if self._rate_limit is not None:
            self._rate_limit.check(request.user_id)
        if background_name and not self._store.exists(background_name):
            raise InvalidArgument("background_image_url", "no background is stored at this URL; upload it again")
        if not items:
            items = merge(self._cart.get_cart(request.user_id))
            items = [(product_id, quantity) for product_id, quantity in items if quantity > 0]
            if not items:
                raise EmptyCart(f"the cart of user {request.user_id!r} is empty")
            if len(items) > MAX_CART_LINES:
                raise InvalidArgument("user_id", f"the cart holds {len(items)} products; at most {MAX_CART_LINES} can be drawn")
        products = self._catalog.get_products([product_id for product_id, _ in items])
        lines = tuple((products[product_id], quantity) for product_id, quantity in items)
        cache_key = request_key(self._drawing, style, background_name, lines)

        cached = self._from_cache(cache_key, style)
        if cached is not None:
            return cached
        if not self._pending.accepting:
            raise ShuttingDown()
        record = self._statuses.create(style.name)
        try:
            joined = self._join(cache_key, record.id)
        except PeerUnavailable:
            self._pending.quietly(self._statuses.discard, record.id)
            raise
        if joined is not None:
            self._pending.quietly(self._statuses.discard, record.id)
            self._count("joined", style)
            log.info("generation joined an identical one", extra={"generation_id": joined.id, "style": style.name})
            return joined
        job = Job(record.id, style, lines, background_name, cache_key, time.monotonic(), self._drawing.size,
                  user_id=request.user_id, request_id=request_id_var.get() or "",
                  trace=tuple(trace_carrier().items()))
        try:
            self._queue.submit(job)
        except Busy:
            self._pending.quietly(self._statuses.discard, record.id)
            raise
        log.info(
            "generation accepted",
            extra={"generation_id": record.id, "style": style.name, "products": len(lines),
                   "generator": self._drawing.generator},
        )
        return record

    def _background_name(self, url: str) -> str:
        """The store's name for a background URL this service issued ("" for none); asks no peer."""
        url = url.strip()
        if not url:
            return ""
        name = self._store.name_from_url(url)
        if name is None or not name.startswith(BACKGROUNDS_PREFIX):
            raise InvalidArgument(
                "background_image_url",
                "not a background URL issued by this service; upload the picture with UploadBackground first",
            )
        return name

    def _from_cache(self, cache_key: str, style: Style) -> Generation | None:
        """A completed generation for a request drawn before, or None."""
        # The cache holds object names, so signed URLs are minted afresh and a pruned object is redrawn.
        cached_name = self._results.get(cache_key)
        if cached_name is None or not self._store.exists(cached_name):
            return None
        record = self._statuses.create(style.name)
        variants = tuple(stored_variants(self._store, cached_name, self._drawing.size))
        self._statuses.complete(record.id, self._store.url_for(cached_name), variants)
        self._count("cached", style)
        log.info("generation answered from cache", extra={"generation_id": record.id, "style": style.name})
        return self._statuses.get(record.id) or record

    def _join(self, cache_key: str, generation_id: str) -> Generation | None:
        """The identical generation already under way (or just finished) to share, else None."""
        existing_id = self._in_flight.claim(cache_key, generation_id)
        if existing_id is None:
            return None
        existing = self._statuses.share(existing_id)  # marked shared: its first shopper can no longer cancel it
        if existing is not None and existing.status != FAILED:
            return existing
        # It failed, expired or was interrupted: this request draws afresh (sharing a failure helps nobody).
        self._in_flight.replace(cache_key, existing_id, generation_id)
        return None

    def _count(self, outcome: str, style: Style) -> None:
        self._metrics.generations.labels(outcome=outcome, style=style.name, generator=self._drawing.generator).inc()


def validate_items(request: CartRequest) -> list[tuple[str, int]]:
    """The request's own items, merged; raises InvalidArgument for a request that names no cart."""
    if not request.user_id.strip() and not request.items:
        raise InvalidArgument("user_id", "give a user_id or cart_items; both are empty")
    for product_id, quantity in request.items:
        if not product_id.strip():
            raise InvalidArgument("cart_items", "every item needs a product_id")
        if not 1 <= quantity <= MAX_QUANTITY:
            raise InvalidArgument(
                "cart_items", f"quantity of {product_id!r} must be from 1 to {MAX_QUANTITY}, got {quantity}"
            )
    items = merge(list(request.items))
    if len(items) > MAX_CART_LINES:
        raise InvalidArgument("cart_items", f"{len(items)} distinct products; at most {MAX_CART_LINES} can be drawn")
    return items


def merge(items: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Adds up repeated products, keeping the order of first appearance."""
    merged: dict[str, int] = {}
    for product_id, quantity in items:
        merged[product_id] = min(MAX_QUANTITY, merged.get(product_id, 0) + quantity)
    return list(merged.items())


def request_key(drawing: Drawing, style: Style, background: str, lines: tuple[tuple[Product, int], ...]) -> str:
    """The key identical requests share (in-flight joining and the result cache)."""
    digest = hashlib.sha256(f"{drawing.generator}|{drawing.size}|{style.name}|{background}".encode())
    for product, quantity in lines:
        digest.update(f"|{product.id}:{quantity}:{product.name}:{product.picture}".encode())
    return digest.hexdigest()

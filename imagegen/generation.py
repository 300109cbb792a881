"""The use case: cart -> products -> pictures -> generator -> store, on a bounded worker pool."""

from __future__ import annotations

import concurrent.futures
import contextvars
import dataclasses
import hashlib
import collections
import logging
import secrets
import threading
import time
from typing import Protocol

from imagegen import jobs
from imagegen.domain import CartLine, GenerationInput, Generator, Picture, Product
from imagegen.errors import Busy, EmptyCart, GenerationFailed, ImageGenError, InvalidArgument, NotFound, StoreError
from imagegen.observability import Metrics, bound
from imagegen.shop import ProductPictures, Shop
from imagegen.stores import BACKGROUNDS_PREFIX, GENERATED_PREFIX, ImageStore
from imagegen.stores.local import content_type_for
from imagegen.styles import Style, resolve_style
from imagegen.uploads import UploadLimits, decode_background

log = logging.getLogger(__name__)

MAX_CART_LINES = 20
MAX_QUANTITY = 999
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


class RateLimit(Protocol):
    """The per-shopper limit (limits.UserRateLimit): raises errors.RateLimited past it."""

    def check(self, user_id: str) -> None: ...


@dataclasses.dataclass(frozen=True)
class CartRequest:
    """What GenerateCartImage asks for, in the shop's words."""

    user_id: str = ""
    style_preference: str = ""
    background_image_url: str = ""
    items: tuple[tuple[str, int], ...] = ()


@dataclasses.dataclass(frozen=True)
class _Job:
    generation_id: str
    style: Style
    lines: tuple[tuple[Product, int], ...]
    background_name: str
    cache_key: str
    accepted: float


class ImageGeneration:
    """Starts generations, tracks their status, stores backgrounds."""

    def __init__(
        self,
        *,
        shop: Shop,
        pictures: ProductPictures,
        generator: Generator,
        store: ImageStore,
        statuses: jobs.StatusStore,
        metrics: Metrics,
        workers: int = 2,
        queue_size: int = 16,
        image_size: int = 1024,
        upload_limits: UploadLimits = UploadLimits(),
        upload_concurrency: int = 2,
        picture_timeout: float = 10.0,
        results_cache_entries: int = 256,
        rate_limit: RateLimit | None = None,
    ) -> None:
        self._shop = shop
        self._pictures = pictures
        self._picture_timeout = picture_timeout
        self._generator = generator
        self._store = store
        self._statuses = statuses
        self._metrics = metrics
        self._image_size = image_size
        self._upload_limits = upload_limits
        # Decoding a background can take ~250 MiB at the pixel limit: bound how many run at once.
        self._upload_slots = threading.BoundedSemaphore(upload_concurrency)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="generation")
        # Running plus queued generations; a full pool refuses new work instead of growing.
        self._slots = threading.BoundedSemaphore(workers + queue_size)
        self._accepting = True
        self._lock = threading.Lock()
        self._pending: set[str] = set()
        self._results: collections.OrderedDict[str, str] = collections.OrderedDict()
        self._results_cache_entries = results_cache_entries
        self._rate_limit = rate_limit

    @property
    def accepting(self) -> bool:
        """False once shutdown has begun."""
        return self._accepting

    def start(self, request: CartRequest, metadata: tuple[tuple[str, str], ...] = ()) -> jobs.Generation:
        """Validates the request, reads the cart and products, and queues the generation."""
        if self._rate_limit is not None:  # first, before any peer is asked (raises RateLimited)
            self._rate_limit.check(request.user_id)
        style = resolve_style(request.style_preference)
        items = _validate_items(request)
        background_name = self._background_name(request.background_image_url)
        if not items:
            items = _merge(self._shop.get_cart(request.user_id, metadata))
            items = [(product_id, quantity) for product_id, quantity in items if quantity > 0]
            if not items:
                raise EmptyCart(f"the cart of user {request.user_id!r} is empty")
            if len(items) > MAX_CART_LINES:
                raise InvalidArgument("user_id", f"the cart holds {len(items)} products; at most {MAX_CART_LINES} can be drawn")
        products = self._shop.get_products([product_id for product_id, _ in items], metadata)
        lines = tuple((products[product_id], quantity) for product_id, quantity in items)
        cache_key = _cache_key(self._generator.name, self._image_size, style, background_name, lines)

        # The cache holds object names, so signed URLs are minted afresh and a pruned object is redrawn.
        with self._lock:
            cached_name = self._results.get(cache_key)
        if cached_name is not None and self._store.exists(cached_name):
            record = self._statuses.create(style.name)
            self._statuses.complete(record.id, self._store.url_for(cached_name))
            self._metrics.generations.labels(outcome="cached", style=style.name, generator=self._generator.name).inc()
            log.info("generation answered from cache", extra={"generation_id": record.id, "style": style.name})
            return self._statuses.get(record.id) or record

        if not self._accepting:
            raise Busy("the service is shutting down; try again shortly")
        if not self._slots.acquire(blocking=False):
            raise Busy("too many image generations are in progress; try again shortly")
        record = self._statuses.create(style.name)
        job = _Job(record.id, style, lines, background_name, cache_key, time.monotonic())
        with self._lock:
            self._pending.add(record.id)
        self._metrics.queue_depth.inc()
        try:
            self._pool.submit(contextvars.copy_context().run, self._run, job)
        except RuntimeError:  # the pool was shut down between the check above and now
            self._statuses.fail(record.id, "the service is shutting down; please try again")
            self._forget(record.id)
            raise Busy("the service is shutting down; try again shortly") from None
        log.info(
            "generation accepted",
            extra={"generation_id": record.id, "style": style.name, "products": len(lines),
                   "generator": self._generator.name},
        )
        return record

    def status(self, generation_id: str) -> jobs.Generation | None:
        """The generation's current status, or None when unknown or expired."""
        return self._statuses.get(generation_id)

    def upload_background(self, image_data: str) -> str:
        """Decodes, normalises and stores a background; returns its URL."""
        # Refused at once rather than queued: waiting uploads would hold the RPC threads health probes need.
        if not self._upload_slots.acquire(blocking=False):
            self._metrics.uploads.labels(outcome="busy").inc()
            raise Busy("too many backgrounds are being processed; try again shortly")
        try:
            background = decode_background(image_data, self._upload_limits)
            if not self._store.exists(background.name):
                self._store.put(background.name, background.picture.data, background.picture.mime_type)
            url = self._store.url_for(background.name)
        except InvalidArgument:
            self._metrics.uploads.labels(outcome="invalid").inc()
            raise
        except ImageGenError:
            self._metrics.uploads.labels(outcome="error").inc()
            raise
        finally:
            self._upload_slots.release()
        self._metrics.uploads.labels(outcome="success").inc()
        log.info("background stored", extra={"background": background.name, "width": background.width,
                                             "height": background.height})
        return url

    def shutdown(self, grace_seconds: float) -> int:
        """Stops accepting work, lets running generations finish within the grace period.

        Returns how many were still unfinished (and are now marked failed).
        """
        self._accepting = False
        waiter = threading.Thread(target=self._pool.shutdown, kwargs={"wait": True}, daemon=True)
        waiter.start()
        waiter.join(grace_seconds)
        with self._lock:
            unfinished = list(self._pending)
        for generation_id in unfinished:
            self._statuses.fail(generation_id, "the service shut down before the image was finished; please try again")
        if unfinished:
            log.warning("shutdown grace period ended with generations unfinished", extra={"count": len(unfinished)})
        self._pool.shutdown(wait=False, cancel_futures=True)
        return len(unfinished)

    def _background_name(self, url: str) -> str:
        url = url.strip()
        if not url:
            return ""
        name = self._store.name_from_url(url)
        if name is None or not name.startswith(BACKGROUNDS_PREFIX):
            raise InvalidArgument(
                "background_image_url",
                "not a background URL issued by this service; upload the picture with UploadBackground first",
            )
        if not self._store.exists(name):
            raise InvalidArgument("background_image_url", "no background is stored at this URL; upload it again")
        return name

    def _run(self, job: _Job) -> None:
        outcome = "failed"
        with bound(generation_id=job.generation_id):
            try:
                name, every_picture = self._generate(job)
                url = self._store.url_for(name)
                self._statuses.complete(job.generation_id, url)
                if every_picture:  # an image drawn without some product picture is not worth repeating
                    with self._lock:
                        self._results[job.cache_key] = name
                        while len(self._results) > self._results_cache_entries:
                            self._results.popitem(last=False)
                outcome = "completed"
                log.info("generation completed", extra={"image_url": url})
            except GenerationFailed as error:
                self._statuses.fail(job.generation_id, str(error))
                log.warning("generation failed", extra={"reason": str(error)})
            except NotFound:
                self._statuses.fail(job.generation_id, "the background picture is no longer available; upload it again")
                log.warning("generation failed: background vanished", extra={"background": job.background_name})
            except StoreError as error:
                self._statuses.fail(job.generation_id, "the image could not be saved; please try again in a moment")
                log.error("generation failed: store error", extra={"reason": str(error)})
            except Exception:  # noqa: BLE001 (a generation must end completed or failed, whatever happens)
                self._statuses.fail(job.generation_id, "an unexpected error stopped the image generation; please try again")
                log.exception("generation crashed")
            finally:
                elapsed = time.monotonic() - job.accepted
                self._metrics.generations.labels(outcome=outcome, style=job.style.name, generator=self._generator.name).inc()
                self._metrics.latency.labels(generator=self._generator.name, outcome=outcome).observe(elapsed)
                self._forget(job.generation_id)

    def _forget(self, generation_id: str) -> None:
        """Releases the pool slot of a generation that has ended."""
        self._metrics.queue_depth.dec()
        with self._lock:
            self._pending.discard(generation_id)
        self._slots.release()

    def _generate(self, job: _Job) -> tuple[str, bool]:
        """Draws and stores the image; returns its object name and whether every product picture was used."""
        progress = self._statuses.progress
        progress(job.generation_id, 5)
        lines = []
        # One deadline for all the pictures: a slow frontend delays a generation once, not per product.
        deadline = time.monotonic() + self._picture_timeout
        for index, (product, quantity) in enumerate(job.lines, start=1):
            picture = self._pictures.get(product.picture, deadline)
            lines.append(CartLine(product=product, quantity=quantity, picture=picture))
            progress(job.generation_id, 5 + 30 * index // len(job.lines))
        background = None
        if job.background_name:
            background = Picture(self._store.get(job.background_name), content_type_for(job.background_name))
        progress(job.generation_id, 40)
        request = GenerationInput(lines=tuple(lines), style=job.style, background=background, size=self._image_size)
        picture = self._generator.generate(
            request, lambda fraction: progress(job.generation_id, 40 + int(max(0.0, min(1.0, fraction)) * 50))
        )
        extension = _EXTENSIONS.get(picture.mime_type)
        if extension is None:
            raise GenerationFailed("the image generator returned a picture in a format we cannot store")
        name = f"{GENERATED_PREFIX}{secrets.token_urlsafe(24)}.{extension}"
        self._store.put(name, picture.data, picture.mime_type)
        progress(job.generation_id, 95)
        return name, all(line.picture is not None for line in lines)


def _validate_items(request: CartRequest) -> list[tuple[str, int]]:
    if not request.user_id.strip() and not request.items:
        raise InvalidArgument("user_id", "give a user_id or cart_items; both are empty")
    for product_id, quantity in request.items:
        if not product_id.strip():
            raise InvalidArgument("cart_items", "every item needs a product_id")
        if not 1 <= quantity <= MAX_QUANTITY:
            raise InvalidArgument(
                "cart_items", f"quantity of {product_id!r} must be from 1 to {MAX_QUANTITY}, got {quantity}"
            )
    items = _merge(list(request.items))
    if len(items) > MAX_CART_LINES:
        raise InvalidArgument("cart_items", f"{len(items)} distinct products; at most {MAX_CART_LINES} can be drawn")
    return items


def _merge(items: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Adds up repeated products, keeping the order of first appearance."""
    merged: dict[str, int] = {}
    for product_id, quantity in items:
        merged[product_id] = min(MAX_QUANTITY, merged.get(product_id, 0) + quantity)
    return list(merged.items())


def _cache_key(
    generator: str, size: int, style: Style, background: str, lines: tuple[tuple[Product, int], ...]
) -> str:
    digest = hashlib.sha256(f"{generator}|{size}|{style.name}|{background}".encode())
    for product, quantity in lines:
        digest.update(f"|{product.id}:{quantity}:{product.name}:{product.picture}".encode())
    return digest.hexdigest()

"""The use case: cart -> products -> pictures -> generator -> store, admitted to a bounded pool."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import Protocol

from imagegen import jobs
from imagegen.admission import Admission
from imagegen.domain import CartLine, GenerationInput, Generator, Picture, Product, Progress
from imagegen.errors import (
    Busy, EmptyCart, GenerationFailed, ImageGenError, InvalidArgument, NotFound, PeerUnavailable, ShuttingDown,
    StoreError, UploadBusy,
)
from imagegen.observability import Metrics, bound
from imagegen.shop import ProductPictures, Shop
from imagegen.stores import BACKGROUNDS_PREFIX, GENERATED_PREFIX, ImageStore
from imagegen.state import SharedState
from imagegen.stores.local import content_type_for
from imagegen.styles import Style, resolve_style
from imagegen.uploads import UploadLimits, decode_background

log = logging.getLogger(__name__)

SHUT_DOWN = "the service shut down before the image was finished; please try again"
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
    """Starts generations (identical ones share one), tracks their status, stores backgrounds.

    Generations run on the admission pool: MODEL_CONCURRENCY threads that mostly wait on the model,
    storage and pictures; a CPU-bound generator (the collage) also takes one of `cpu_slots`.
    """

    def __init__(
        self,
        *,
        shop: Shop,
        pictures: ProductPictures,
        generator: Generator,
        store: ImageStore,
        state: SharedState,
        admission: Admission,
        metrics: Metrics,
        cpu_slots: threading.BoundedSemaphore | None = None,
        cpu_bound_generator: bool = False,
        image_size: int = 1024,
        upload_limits: UploadLimits = UploadLimits(),
        upload_concurrency: int = 2,
        picture_timeout: float = 10.0,
        rate_limit: RateLimit | None = None,
    ) -> None:
        self._shop = shop
        self._pictures = pictures
        self._picture_timeout = picture_timeout
        self._generator = generator
        self._store = store
        self._statuses = state.statuses
        self._results = state.results
        self._in_flight = state.in_flight
        self._admission = admission
        self._metrics = metrics
        self._image_size = image_size
        self._upload_limits = upload_limits
        # Decoding a background can take ~250 MiB at the pixel limit: bound how many run at once.
        self._upload_slots = threading.BoundedSemaphore(upload_concurrency)
        # Drawing and encoding hold a core: more at once than cores only adds memory and latency.
        self._cpu_slots = cpu_slots or threading.BoundedSemaphore(2)
        self._cpu_bound_generator = cpu_bound_generator
        self._accepting = True
        self._state_lost = False  # a shared-state update failed during shutdown: skip the rest
        self._lock = threading.Lock()
        self._pending: dict[str, str] = {}  # generation id -> request key, for generations run here
        self._rate_limit = rate_limit

    @property
    def accepting(self) -> bool:
        """False once shutdown has begun."""
        return self._accepting

    def start(self, request: CartRequest, metadata: tuple[tuple[str, str], ...] = ()) -> jobs.Generation:
        """Validates the request, reads the cart and products, and queues the generation.

        An identical request already being drawn (by any replica) is joined: the caller gets its id.
        """
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

        cached = self._from_cache(cache_key, style)
        if cached is not None:
            return cached
        if not self._accepting:
            raise ShuttingDown()
        record = self._statuses.create(style.name)
        try:
            joined = self._join(cache_key, record.id)
        except PeerUnavailable:
            self._quietly(self._statuses.discard, record.id)
            raise
        if joined is not None:
            self._quietly(self._statuses.discard, record.id)
            self._count("joined", style)
            log.info("generation joined an identical one", extra={"generation_id": joined.id, "style": style.name})
            return joined
        job = _Job(record.id, style, lines, background_name, cache_key, time.monotonic())
        with self._lock:
            self._pending[record.id] = cache_key
        self._metrics.queue_depth.inc()
        try:
            self._admission.submit(
                lambda: self._run(job), lambda waited: self._expire(job, waited), lambda: self._drop(job)
            )
        except Busy:
            self._forget(job)
            self._quietly(self._statuses.discard, record.id)
            raise
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
            raise UploadBusy()
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
        self._admission.shutdown(grace_seconds)
        with self._lock:
            unfinished = list(self._pending.items())
        for generation_id, cache_key in unfinished:
            self._quietly(self._statuses.fail, generation_id, SHUT_DOWN)
            self._quietly(self._in_flight.release, cache_key, generation_id)
        if unfinished:
            log.warning("shutdown grace period ended with generations unfinished", extra={"count": len(unfinished)})
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

    def _from_cache(self, cache_key: str, style: Style) -> jobs.Generation | None:
        """A completed generation for a request drawn before, or None."""
        # The cache holds object names, so signed URLs are minted afresh and a pruned object is redrawn.
        cached_name = self._results.get(cache_key)
        if cached_name is None or not self._store.exists(cached_name):
            return None
        record = self._statuses.create(style.name)
        self._statuses.complete(record.id, self._store.url_for(cached_name))
        self._count("cached", style)
        log.info("generation answered from cache", extra={"generation_id": record.id, "style": style.name})
        return self._statuses.get(record.id) or record

    def _join(self, cache_key: str, generation_id: str) -> jobs.Generation | None:
        """The identical generation already under way (or just finished) to share, else None."""
        existing_id = self._in_flight.claim(cache_key, generation_id)
        if existing_id is None:
            return None
        existing = self._statuses.get(existing_id)
        if existing is not None and existing.status != jobs.FAILED:
            return existing
        # It failed, expired or was interrupted: this request draws afresh (sharing a failure helps nobody).
        self._in_flight.replace(cache_key, existing_id, generation_id)
        return None

    def _run(self, job: _Job) -> None:
        outcome = "failed"
        with bound(generation_id=job.generation_id):
            try:
                name, reusable = self._generate(job)
                url = self._store.url_for(name)
                self._statuses.complete(job.generation_id, url)
                if reusable:
                    self._quietly(self._results.put, job.cache_key, name)
                outcome = "completed"
                log.info("generation completed", extra={"image_url": url})
            except GenerationFailed as error:
                self._fail(job, str(error))
                log.warning("generation failed", extra={"reason": str(error)})
            except NotFound:
                self._fail(job, "the background picture is no longer available; upload it again")
                log.warning("generation failed: background vanished", extra={"background": job.background_name})
            except StoreError as error:
                self._fail(job, "the image could not be saved; please try again in a moment")
                log.error("generation failed: store error", extra={"reason": str(error)})
            except PeerUnavailable as error:  # the shared state went away mid-generation
                self._fail(job, "the image generation was interrupted; please try again")
                log.error("generation failed: a peer is unavailable", extra={"reason": str(error)})
            except Exception:  # noqa: BLE001 (a generation must end completed or failed, whatever happens)
                self._fail(job, "an unexpected error stopped the image generation; please try again")
                log.exception("generation crashed")
            finally:
                elapsed = time.monotonic() - job.accepted
                self._count(outcome, job.style)
                self._metrics.latency.labels(generator=self._generator.name, outcome=outcome).observe(elapsed)
                self._forget(job)

    def _expire(self, job: _Job, waited: float) -> None:
        """Ends a generation that waited in the queue past its budget, without drawing it."""
        with bound(generation_id=job.generation_id):
            self._fail(job, "the shop is very busy right now and your picture could not be started; please try again in a minute")
            log.warning("generation waited too long in the queue", extra={"waited_seconds": round(waited, 1)})
            self._count("expired", job.style)
            self._forget(job)

    def _drop(self, job: _Job) -> None:
        """Ends a generation still queued when shutdown began, without drawing it."""
        with bound(generation_id=job.generation_id):
            self._fail(job, SHUT_DOWN)
            self._count("failed", job.style)
            self._forget(job)

    def _fail(self, job: _Job, message: str) -> None:
        self._quietly(self._statuses.fail, job.generation_id, message)

    def _forget(self, job: _Job) -> None:
        """Lets identical requests draw again (or use the cache) once a generation has ended."""
        self._metrics.queue_depth.dec()
        with self._lock:
            self._pending.pop(job.generation_id, None)
        self._quietly(self._in_flight.release, job.cache_key, job.generation_id)

    def _count(self, outcome: str, style: Style) -> None:
        self._metrics.generations.labels(outcome=outcome, style=style.name, generator=self._generator.name).inc()

    def _progress(self, generation_id: str, percent: int) -> None:
        # Progress is advisory: losing an update (shared state briefly away) must not stop the drawing.
        self._quietly(self._statuses.progress, generation_id, percent)

    def _quietly(self, call: Callable[..., None], *args: object) -> None:
        """Runs a shared-state update whose loss (Redis briefly away) must not end the work at hand.

        Once one is lost during shutdown the rest are skipped: each would wait out the Redis timeout too,
        holding the exit past the grace period (the generations' leases end them for other replicas).
        """
        if self._state_lost:
            return
        try:
            call(*args)
        except PeerUnavailable as error:
            log.warning("shared state update lost", extra={"reason": str(error)})
            if not self._accepting:
                self._state_lost = True
                log.warning("shared state unavailable while shutting down: unfinished generations are left "
                            "to their leases")

    def _draw(self, request: GenerationInput, progress: Progress) -> Picture:
        """Calls the generator, holding a CPU slot when it is CPU-bound."""
        with self._cpu_slots if self._cpu_bound_generator else contextlib.nullcontext():
            self._metrics.model_calls_running.inc()
            try:
                return self._generator.generate(request, progress)
            finally:
                self._metrics.model_calls_running.dec()

    def _generate(self, job: _Job) -> tuple[str, bool]:
        """Draws and stores the image; returns its object name and whether it may answer identical requests."""
        progress = self._progress
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
        picture = self._draw(
            request, lambda fraction: progress(job.generation_id, 40 + int(max(0.0, min(1.0, fraction)) * 50))
        )
        extension = _EXTENSIONS.get(picture.mime_type)
        if extension is None:
            raise GenerationFailed("the image generator returned a picture in a format we cannot store")
        name = f"{GENERATED_PREFIX}{secrets.token_urlsafe(24)}.{extension}"
        self._store.put(name, picture.data, picture.mime_type)
        progress(job.generation_id, 95)
        # An image drawn without some product picture, or by a stand-in for the model, is not worth repeating.
        return name, not picture.stand_in and all(line.picture is not None for line in lines)


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

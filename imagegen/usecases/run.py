"""Running one generation: product pictures -> generator -> store, with progress, ending completed or failed."""

from __future__ import annotations

import dataclasses
import json
import logging
import secrets
import time

from imagegen.domain import CartLine, GenerationInput, Generator, Picture, Pictures, Product, Progress
from imagegen.errors import GenerationFailed, NotFound, PeerUnavailable, StoreError
from imagegen.observability import Metrics, bound
from imagegen.state import ResultCache, StatusStore
from imagegen.stores import GENERATED_PREFIX, ImageStore
from imagegen.stores.local import content_type_for
from imagegen.styles import Style, resolve_style
from imagegen.statuses import ImageVariant
from imagegen.usecases.pending import Pending
from imagegen.variants import store_variants

log = logging.getLogger(__name__)

_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
UNRECORDED = "unrecorded"  # the shared state missed the end: the job stays queued and is drawn again
QUEUE_EXPIRED = ("the shop is very busy right now and your picture could not be started; "
                 "please try again in a minute")


@dataclasses.dataclass(frozen=True)
class Job:
    """One accepted generation, as start hands it to run."""

    generation_id: str
    style: Style
    lines: tuple[tuple[Product, int], ...]
    background_name: str
    cache_key: str
    accepted: float
    size: int = 1024
    user_id: str = ""
    request_id: str = ""  # of the call that accepted it: the worker's log lines carry it too
    trace: tuple[tuple[str, str], ...] = ()  # the call's trace context (W3C headers): the work joins its trace

    def encode(self) -> bytes:
        """The job as the queue keeps it (compact JSON; the shopper's id travels as the queue's lane)."""
        return json.dumps({
            "style": self.style.name, "background": self.background_name, "key": self.cache_key, "size": self.size,
            "request": self.request_id, "trace": dict(self.trace),
            "lines": [[dataclasses.asdict(product), quantity] for product, quantity in self.lines],
        }, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, generation_id: str, payload: bytes, waited_seconds: float) -> Job:
        """A job read back from the queue, accepted waited_seconds ago."""
        data = json.loads(payload)
        lines = tuple(
            (Product(**{**product, "categories": tuple(product.get("categories", ()))}), int(quantity))
            for product, quantity in data["lines"]
        )
        return cls(generation_id, resolve_style(data["style"]), lines, data["background"], data["key"],
                   time.monotonic() - waited_seconds, int(data["size"]), request_id=data.get("request", ""),
                   trace=tuple(data.get("trace", {}).items()))


class RunGeneration:
    """Draws and stores one accepted generation on a worker thread; every end is recorded.

    The generator takes its own CPU slot when it needs one (capacity.py): this unit only waits on it.
    """

    def __init__(
        self,
        *,
        pictures: Pictures,
        generator: Generator,
        store: ImageStore,
        statuses: StatusStore,
        results: ResultCache,
        pending: Pending,
        metrics: Metrics,
        picture_timeout: float = 10.0,
    ) -> None:
        self._pictures = pictures
        self._generator = generator
        self._store = store
        self._statuses = statuses
        self._results = results
        self._pending = pending
        self._metrics = metrics
        self._picture_timeout = picture_timeout

    def __call__(self, job: Job) -> str:
        """Draws the job; its status ends completed or failed with a message a shopper understands.

        Returns the outcome: completed, failed, or UNRECORDED when the shared state missed the end (nothing
        is recorded instead: the job must stay in the queue, to be drawn again after its lease)."""
        outcome = "failed"
        with bound(generation_id=job.generation_id):
            try:
                name, reusable, variants = self._generate(job)
                url = self._store.url_for(name)
            except GenerationFailed as error:
                outcome = self._failed(job, str(error))
                log.warning("generation failed", extra={"reason": str(error)})
            except NotFound:
                outcome = self._failed(job, "the background picture is no longer available; upload it again")
                log.warning("generation failed: background vanished", extra={"background": job.background_name})
            except StoreError as error:
                outcome = self._failed(job, "the image could not be saved; please try again in a moment")
                log.error("generation failed: store error", extra={"reason": str(error)})
            except PeerUnavailable as error:  # the shared state went away mid-generation
                outcome = self._failed(job, "the image generation was interrupted; please try again")
                log.error("generation failed: a peer is unavailable", extra={"reason": str(error)})
            except Exception:  # noqa: BLE001 (a generation must end completed or failed, whatever happens)
                outcome = self._failed(job, "an unexpected error stopped the image generation; please try again")
                log.exception("generation crashed")
            else:
                outcome = self._completed(job, url, variants, name if reusable else None)
            finally:
                if outcome != UNRECORDED:  # else it has not ended: counted when it does
                    elapsed = time.monotonic() - job.accepted
                    self._count(outcome, job.style)
                    self._metrics.latency.labels(generator=self._generator.name, outcome=outcome).observe(elapsed)
                self._pending.forget(job.generation_id, job.cache_key)
        return outcome

    def _completed(self, job: Job, url: str, variants: tuple[ImageVariant, ...], reusable: str | None) -> str:
        try:
            self._statuses.complete(job.generation_id, url, variants)
        except PeerUnavailable as error:
            log.error("generation drawn but its end not recorded (a peer is unavailable): left in the queue "
                      "to be drawn again", extra={"reason": str(error)})
            return UNRECORDED
        if reusable is not None:
            self._pending.quietly(self._results.put, job.cache_key, reusable)
        log.info("generation completed", extra={"image_url": url})
        return "completed"

    def _failed(self, job: Job, message: str) -> str:
        return "failed" if self._pending.fail(job.generation_id, message) else UNRECORDED

    def expire(self, job: Job, waited: float) -> bool:
        """Ends a generation that waited in the queue past its budget, without drawing it; False when the
        shared state missed that end (the job must stay queued)."""
        with bound(generation_id=job.generation_id):
            ended = self._pending.fail(job.generation_id, QUEUE_EXPIRED)
            if ended:
                log.warning("generation waited too long in the queue", extra={"waited_seconds": round(waited, 1)})
                self._count("expired", job.style)
            self._pending.forget(job.generation_id, job.cache_key)
        return ended

    def _count(self, outcome: str, style: Style) -> None:
        self._metrics.generations.labels(outcome=outcome, style=style.name, generator=self._generator.name).inc()

    def _progress(self, generation_id: str, percent: int) -> None:
        # Progress is advisory: losing an update (shared state briefly away) must not stop the drawing.
        self._pending.quietly(self._statuses.progress, generation_id, percent)

    def _draw(self, request: GenerationInput, progress: Progress) -> Picture:
        self._metrics.model_calls_running.inc()
        try:
            return self._generator.generate(request, progress)
        finally:
            self._metrics.model_calls_running.dec()

    def _generate(self, job: Job) -> tuple[str, bool, tuple[ImageVariant, ...]]:
        """Draws and stores the image; returns its object name, whether it may answer identical requests,
        and the display variants stored beside it."""
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
        request = GenerationInput(lines=tuple(lines), style=job.style, background=background, size=job.size)
        picture = self._draw(
            request, lambda fraction: progress(job.generation_id, 40 + int(max(0.0, min(1.0, fraction)) * 50))
        )
        extension = _EXTENSIONS.get(picture.mime_type)
        if extension is None:
            raise GenerationFailed("the image generator returned a picture in a format we cannot store")
        name = f"{GENERATED_PREFIX}{secrets.token_urlsafe(24)}.{extension}"
        self._store.put(name, picture.data, picture.mime_type)
        progress(job.generation_id, 95)
        variants = self._variants(name, picture.data)
        # An image drawn without some product picture, or by a stand-in for the model, is not worth repeating.
        return name, not picture.stand_in and all(line.picture is not None for line in lines), variants

    def _variants(self, name: str, data: bytes) -> tuple[ImageVariant, ...]:
        # Best effort: the full picture is stored, so a variant that cannot be made only costs bytes on a phone.
        try:
            return tuple(store_variants(self._store, name, data))
        except Exception:  # noqa: BLE001 (never fail a drawn picture over its smaller copy)
            log.exception("display variants not made")
            return ()

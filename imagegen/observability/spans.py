"""Spans of the background work (model call, product pictures, store writes) in the trace of the call that asked."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from imagegen.domain import GenerationInput, Generator, Picture, Pictures, Progress
from imagegen.errors import GenerationFailed
from imagegen.stores import ImageStore

_tracer = trace.get_tracer("imagegen.generation")


class TracedGenerator:
    """Runs a generator inside a span with the style, product count, generator, model and outcome.

    The worker runs in a copy of the request's context, so the span is a child of the RPC's server span
    although the RPC has answered by then. Never the key or image bytes: only these attributes.
    """

    def __init__(self, inner: Generator) -> None:
        self.name = inner.name
        self._inner = inner

    def generate(self, request: GenerationInput, progress: Progress) -> Picture:
        """The inner generator's picture, recorded as one span."""
        attributes = {
            "imagegen.generator": self.name,
            "imagegen.style": request.style.name,
            "imagegen.product_count": len(request.lines),
            "imagegen.size": request.size,
            "imagegen.background": request.background is not None,
        }
        with _tracer.start_as_current_span(
            "generate cart image", attributes=attributes, record_exception=False, set_status_on_exception=False
        ) as span:
            try:
                picture = self._inner.generate(request, progress)
            except GenerationFailed as failure:
                span.set_attribute("imagegen.outcome", "failed")
                span.set_status(Status(StatusCode.ERROR, str(failure)))  # shopper text: no secrets
                raise
            except Exception as error:
                span.set_attribute("imagegen.outcome", "crashed")
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
                raise
            span.set_attribute("imagegen.outcome", "image")
            span.set_attribute("imagegen.mime_type", picture.mime_type)
            return picture


class TracedPictures:
    """Product picture fetches as spans (they run in the generation's worker, in the request's trace)."""

    def __init__(self, inner: Pictures) -> None:
        self._inner = inner

    def get(self, path: str, deadline: float | None = None) -> Picture | None:
        """The inner fetcher's picture (cached or fetched), recorded as one span."""
        with _tracer.start_as_current_span("product picture", attributes={"imagegen.picture": path[:200]}) as span:
            picture = self._inner.get(path, deadline)
            span.set_attribute("imagegen.found", picture is not None)
            return picture


class TracedStore:
    """The image store with its writes (the generated image, an upload) as spans; reads go straight through."""

    def __init__(self, inner: ImageStore) -> None:
        self._inner = inner

    def put(self, name: str, data: bytes, content_type: str) -> None:
        """Stores through the inner store, recorded as one span (the object's folder and size only)."""
        attributes = {"imagegen.object_prefix": name.split("/", 1)[0], "imagegen.bytes": len(data)}
        with _tracer.start_as_current_span("store image", attributes=attributes):
            self._inner.put(name, data, content_type)

    def get(self, name: str) -> bytes:
        """The inner store's bytes."""
        return self._inner.get(name)

    def exists(self, name: str) -> bool:
        """The inner store's answer."""
        return self._inner.exists(name)

    def url_for(self, name: str) -> str:
        """The inner store's URL."""
        return self._inner.url_for(name)

    def name_from_url(self, url: str) -> str | None:
        """The inner store's object name."""
        return self._inner.name_from_url(url)

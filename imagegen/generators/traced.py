"""The generation span: the background work of one generation, in the trace of the call that asked for it."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from imagegen.domain import GenerationInput, Generator, Picture, Progress
from imagegen.errors import GenerationFailed

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

    def close(self) -> None:
        """Closes the inner generator when it holds connections."""
        close = getattr(self._inner, "close", None)
        if close is not None:
            close()

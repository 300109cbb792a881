"""JSON logs in the shop's style with request and generation ids, and Prometheus metrics."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
import uuid
from collections.abc import Iterator

import prometheus_client
from pythonjsonlogger.json import JsonFormatter

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
generation_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("generation_id", default="")


class _ContextFilter(logging.Filter):
    """Adds the current request id and generation id to every record that has them."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = request_id_var.get()
        generation_id = generation_id_var.get()
        if request_id and not hasattr(record, "request_id"):
            record.request_id = request_id
        if generation_id and not hasattr(record, "generation_id"):
            record.generation_id = generation_id
        return True


def configure_logging(level: str = "INFO", stream=None) -> None:
    """Sends JSON lines (timestamp, severity, name, message, ids) to stdout, like the shop's services."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "timestamp", "levelname": "severity"},
            timestamp=False,
        )
    )
    handler.addFilter(_ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The SDKs' HTTP clients log request lines at INFO; keep them quiet unless debugging.
    for noisy in ("httpx", "httpx2", "httpcore", "urllib3", "google.auth"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def new_request_id() -> str:
    """A fresh request id for calls that did not bring one."""
    return uuid.uuid4().hex


@contextlib.contextmanager
def bound(request_id: str | None = None, generation_id: str | None = None) -> Iterator[None]:
    """Binds ids to every log line written inside the block (and in contexts copied from it)."""
    tokens = []
    if request_id is not None:
        tokens.append((request_id_var, request_id_var.set(request_id)))
    if generation_id is not None:
        tokens.append((generation_id_var, generation_id_var.set(generation_id)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


class Metrics:
    """The service's Prometheus metrics, on a registry of their own."""

    def __init__(self) -> None:
        self.registry = prometheus_client.CollectorRegistry()
        self.generations = prometheus_client.Counter(
            "imagegen_generations",
            "Finished generations by outcome, style and generator.",
            ["outcome", "style", "generator"],
            registry=self.registry,
        )
        self.uploads = prometheus_client.Counter(
            "imagegen_uploads", "Background uploads by outcome.", ["outcome"], registry=self.registry
        )
        self.latency = prometheus_client.Histogram(
            "imagegen_generation_duration_seconds",
            "Time from accepting a generation to its end, by generator and outcome.",
            ["generator", "outcome"],
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300),
            registry=self.registry,
        )
        self.queue_depth = prometheus_client.Gauge(
            "imagegen_generations_pending", "Generations accepted and not yet finished.", registry=self.registry
        )
        self.refused = prometheus_client.Counter(
            "imagegen_requests_refused", "Requests the gRPC gate refused before they reached the service, by method "
            "and code (in-flight limits, no turn to read, too large, malformed).", ["method", "code"],
            registry=self.registry,
        )
        self.gemini_calls = prometheus_client.Counter(
            "imagegen_gemini_calls", "Gemini generate_content calls by model and outcome.", ["model", "outcome"],
            registry=self.registry,
        )
        self.gemini_tokens = prometheus_client.Counter(
            "imagegen_gemini_tokens", "Gemini tokens used, by model and kind (prompt, candidates, total).",
            ["model", "kind"], registry=self.registry,
        )

    # The Gemini generator reports through these two methods (its GeminiMetrics protocol).
    def call(self, model: str, outcome: str) -> None:
        """Counts one Gemini call."""
        self.gemini_calls.labels(model=model, outcome=outcome).inc()

    def tokens(self, model: str, prompt: int, candidates: int, total: int) -> None:
        """Counts the tokens one Gemini call used."""
        for kind, count in (("prompt", prompt), ("candidates", candidates), ("total", total)):
            if count:
                self.gemini_tokens.labels(model=model, kind=kind).inc(count)

    def exposition(self) -> tuple[bytes, str]:
        """The metrics in Prometheus text format, with its content type."""
        return prometheus_client.generate_latest(self.registry), prometheus_client.CONTENT_TYPE_LATEST

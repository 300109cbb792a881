"""JSON logs in the shop's style with request, generation and trace ids; OpenTelemetry tracing; metrics."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grpc
import prometheus_client
from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

T = TypeVar("T")
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
generation_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("generation_id", default="")


class _ContextFilter(logging.Filter):
    """Adds the current request id, generation id and trace id to every record that has them."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = request_id_var.get()
        generation_id = generation_id_var.get()
        if request_id and not hasattr(record, "request_id"):
            record.request_id = request_id
        if generation_id and not hasattr(record, "generation_id"):
            record.generation_id = generation_id
        span = trace.get_current_span().get_span_context()
        if span.is_valid and not hasattr(record, "trace_id"):
            # The ids the trace backend shows, so a log line leads to its trace and back.
            record.trace_id = trace.format_trace_id(span.trace_id)
            record.span_id = trace.format_span_id(span.span_id)
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
    """A fresh request id for calls that did not bring one (32 random hex digits, as a uuid4's hex)."""
    return os.urandom(16).hex()  # a quarter of uuid4().hex's cost: it is paid on every status poll


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


def trace_carrier() -> dict[str, str]:
    """The current trace context as W3C headers, for work another thread or replica carries on."""
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


@contextlib.contextmanager
def continued(carrier: dict[str, str]) -> Iterator[None]:
    """Runs the block inside the trace a carrier (trace_carrier) names; no trace when it names none."""
    from opentelemetry import context, propagate

    token = context.attach(propagate.extract(carrier)) if carrier else None
    try:
        yield
    finally:
        if token is not None:
            context.detach(token)


class Tracing:
    """OpenTelemetry in the shop's convention: off unless ENABLE_TRACING=1, then OTLP/gRPC to the collector.

    The gRPC server and the clients to the shop's services are instrumented with the OpenTelemetry gRPC
    interceptors, so W3C trace context flows in from the caller and out to cart and catalog.
    """

    def __init__(self, provider: object | None = None, exporter: object | None = None) -> None:
        self._provider = provider
        self._exporter = exporter

    @classmethod
    def start(cls, enabled: bool, collector_addr: str, service_name: str) -> Tracing:
        """Sets up the global tracer provider exporting to collector_addr, or stays off."""
        if not enabled:
            return cls()
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        # No exit hook of the SDK's own: shutdown() below bounds the last export by the grace period.
        provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}), shutdown_on_exit=False)
        exporter = OTLPSpanExporter(endpoint=collector_addr, insecure=True)
        # Batched in the background: an unreachable collector never slows a request.
        provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        logging.getLogger(__name__).info(
            "tracing enabled", extra={"collector": collector_addr, "service_name": service_name}
        )
        return cls(provider, exporter)

    @property
    def enabled(self) -> bool:
        """True when spans are exported."""
        return self._provider is not None

    def server_interceptors(self) -> list:
        """Interceptors for grpc.server: one server span per call, continuing the caller's trace."""
        if not self.enabled:
            return []
        from opentelemetry.instrumentation.grpc import server_interceptor

        return [server_interceptor(tracer_provider=self._provider)]

    def traced_channel(self, channel: grpc.Channel) -> grpc.Channel:
        """The channel with a client span per call and the trace context sent along (as is when off)."""
        if not self.enabled:
            return channel
        from opentelemetry.instrumentation.grpc import client_interceptor, intercept_channel

        return intercept_channel(channel, client_interceptor(tracer_provider=self._provider))

    def wrap(self, adapter: T, wrapper: Callable[[T], T]) -> T:
        """wrapper(adapter), which records the adapter's calls as spans, when tracing is on; else adapter."""
        return wrapper(adapter) if self.enabled else adapter

    def shutdown(self, timeout_seconds: float = 5.0) -> None:
        """Exports the spans still buffered, giving up after timeout_seconds.

        The SDK's own shutdown waits out its export timeout and retries (10 s, up to 30 s) when the
        collector does not answer, which would hold the process past its grace period.
        """
        if self._provider is None:
            return
        # A daemon thread: if the collector keeps it waiting, the process exits without it.
        flushing = threading.Thread(target=self._provider.shutdown, name="tracing-shutdown", daemon=True)
        flushing.start()
        flushing.join(max(0.0, timeout_seconds))
        if flushing.is_alive():
            logging.getLogger(__name__).warning(
                "spans not exported: the collector did not answer in time", extra={"seconds": timeout_seconds}
            )
            self._exporter.shutdown()  # ends the exporter's retries


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
        # Admission and concurrency.
        self.queued = prometheus_client.Gauge(
            "imagegen_generations_queued", "Generations accepted and waiting for a generation thread.",
            registry=self.registry,
        )
        self.model_calls_running = prometheus_client.Gauge(
            "imagegen_model_calls_running", "Generator (model) calls in progress.", registry=self.registry
        )
        self.queue_wait = prometheus_client.Histogram(
            "imagegen_generation_queue_wait_seconds",
            "Time a generation waited in the admission queue before it started.",
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300),
            registry=self.registry,
        )
        self.repeated_runs = prometheus_client.Counter(
            "imagegen_generation_repeated_runs", "Generations taken again after the worker running them died "
            "(their model call may be repeated).", registry=self.registry,
        )
        self.quota_in_flight = prometheus_client.Gauge(
            "imagegen_gemini_quota_in_flight", "Gemini calls in flight, all replicas.", ["model"], registry=self.registry)
        self.quota_limit = prometheus_client.Gauge(
            "imagegen_gemini_quota_concurrency_limit", "The shop-wide concurrent-call limit now (cut after 429s; "
            "0: none).", ["model"], registry=self.registry)
        self.quota_pause = prometheus_client.Gauge(
            "imagegen_gemini_quota_pause_seconds", "Seconds left of the shop-wide pause after a 429.", ["model"],
            registry=self.registry)
        self.quota_rate_limited = prometheus_client.Gauge(
            "imagegen_gemini_quota_rate_limited", "429s from Gemini, all replicas.", ["model"], registry=self.registry)
        self.shared_state_up = prometheus_client.Gauge(
            "imagegen_shared_state_up", "1 when the shared state (Redis, or in-process) answers, else 0.",
            registry=self.registry,
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

        self.images_served = prometheus_client.Counter(
            "imagegen_images_served", "Images delivered, by the model that drew them (collage for the offline one).",
            ["model"], registry=self.registry,
        )
        self.fallbacks = prometheus_client.Counter(
            "imagegen_fallbacks", "Generations drawn by the offline collage instead of the model, by reason.",
            ["reason"], registry=self.registry,
        )
        self.rate_limited = prometheus_client.Counter(
            "imagegen_rate_limited", "GenerateCartImage calls refused by the per-shopper rate limit.",
            registry=self.registry,
        )
        self.gemini_spend = prometheus_client.Counter(
            "imagegen_gemini_spend_usd", "Dollars this replica spent on the image model, by model.", ["model"],
            registry=self.registry,
        )
        self.spend_today = prometheus_client.Gauge(
            "imagegen_gemini_spend_today_usd", "Dollars spent on the image model today (UTC), all replicas when shared.",
            registry=self.registry,
        )
        self.budget = prometheus_client.Gauge(
            "imagegen_gemini_daily_budget_usd", "GEMINI_DAILY_BUDGET_USD (0: no cap).", registry=self.registry
        )
        self.budget_reached = prometheus_client.Gauge(
            "imagegen_gemini_budget_reached", "1 while today's spend has reached the daily budget.",
            registry=self.registry,
        )

    def watch_quota(self, model: str, state: Callable[[], Any]) -> None:
        """Reads the model's shop-wide quota state (a QuotaState) at each scrape."""

        def read(field: str) -> Callable[[], float]:
            def value() -> float:
                try:
                    return float(getattr(state(), field))
                except Exception:  # noqa: BLE001 (Redis away: a scrape shows NaN rather than failing)
                    return float("nan")
            return value

        for gauge, field in ((self.quota_in_flight, "in_flight"), (self.quota_limit, "limit"),
                             (self.quota_pause, "pause_remaining_seconds"),
                             (self.quota_rate_limited, "rate_limited_total")):
            gauge.labels(model=model).set_function(read(field))

    # The Gemini generator reports through these methods (its GeminiMetrics protocol).
    def call(self, model: str, outcome: str) -> None:
        """Counts one Gemini call."""
        self.gemini_calls.labels(model=model, outcome=outcome).inc()

    def tokens(self, model: str, prompt: int, candidates: int, total: int) -> None:
        """Counts the tokens one Gemini call used."""
        for kind, count in (("prompt", prompt), ("candidates", candidates), ("total", total)):
            if count:
                self.gemini_tokens.labels(model=model, kind=kind).inc(count)

    def served(self, model: str) -> None:
        """Counts one image delivered by `model`."""
        self.images_served.labels(model=model).inc()

    def fallback(self, reason: str) -> None:
        """Counts one generation drawn by the collage instead of the model."""
        self.fallbacks.labels(reason=reason).inc()

    # The daily budget reports through these two (limits.BudgetMetrics).
    def spent(self, model: str, usd: float) -> None:
        """Adds one call's cost."""
        self.gemini_spend.labels(model=model).inc(usd)

    def budget_state(self, today_usd: float, cap_usd: float, reached: bool) -> None:
        """Today's spend against the cap."""
        self.spend_today.set(today_usd)
        self.budget.set(cap_usd)
        self.budget_reached.set(1 if reached else 0)

    def exposition(self) -> tuple[bytes, str]:
        """The metrics in Prometheus text format, with its content type."""
        return prometheus_client.generate_latest(self.registry), prometheus_client.CONTENT_TYPE_LATEST

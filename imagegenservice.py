#!/usr/bin/env python
"""Online Boutique image generation service: the composition root.

settings -> capacity -> adapters (shop, pictures, generator, store, state) -> use cases -> gRPC + HTTP
servers; signals. Each step is one short function below.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from genproto import imagegeneration_pb2_grpc as pb_grpc
from imagegen import queue as shared_queue
from imagegen.api import SERVICE_NAME, ImageGenerationServicer, gate_limits
from imagegen.capacity import Capacity
from imagegen.domain import Generator, Pictures
from imagegen.edge import Gate, return_large_bodies_to_the_system
from imagegen.estimate import Estimator, MemoryRunLog, RedisRunLog
from imagegen.health import HealthServicer
from imagegen.side_port import SidePort
from imagegen.limits import (
    DailyBudget,
    InProcessSpendLedger,
    InProcessWindowCounter,
    RedisSpendLedger,
    RedisWindowCounter,
    UserRateLimit,
)
from imagegen.observability import Metrics, Tracing, configure_logging
from imagegen.observability.spans import TracedGenerator, TracedPictures, TracedStore
from imagegen.queue.memory import MemoryQueue
from imagegen.quota import FirstCallGate, GeminiQuota, QuotaPolicy
from imagegen.quota.memory import MemoryQuotaStore
from imagegen.redis_connect import connect as connect_redis
from imagegen.settings import Settings, SettingsError, StateSettings
from imagegen.shop import ProductPictures, Shop
from imagegen.state import SharedState
from imagegen.state.memory import memory_state
from imagegen.state.recovery import RememberingQueue
from imagegen.stores import ImageStore
from imagegen.stores.local import LocalImageStore
from imagegen.uploads import UploadLimits
from imagegen.usecases.backgrounds import StoreBackground
from imagegen.usecases.pending import Pending
from imagegen.usecases.queue import GenerationQueue, Workers
from imagegen.usecases.run import RunGeneration
from imagegen.usecases.start import Drawing, StartGeneration
from imagegen.usecases.status import CancelGeneration, ReadStatus

if TYPE_CHECKING:
    import redis

log = logging.getLogger("imagegenservice")


@dataclasses.dataclass
class App:
    """The running service: its servers and the generation queue behind them."""

    settings: Settings
    server: grpc.Server
    health: health.HealthServicer
    side_port: SidePort
    queue: GenerationQueue
    shop: Shop
    state: SharedState
    tracing: Tracing = dataclasses.field(default_factory=Tracing)
    pending: Pending | None = None

    def start(self) -> None:
        """Starts both servers and reports SERVING (the service: only while its shared state answers)."""
        self.queue.start()
        self.server.start()
        self.side_port.start()
        serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
        self.health.set("", serving)
        self.health.set(SERVICE_NAME, serving if self.state.available() else not_serving)

    def stop(self) -> int:
        """Stops taking new work, lets running generations finish within the grace period.

        The gRPC server keeps answering status calls meanwhile, and for SHUTDOWN_STATUS_SECONDS (taken
        out of the grace period) after the last generation ended, completed, failed or cut off (with Redis,
        unfinished ones are handed back to the shop's queue), so that shoppers polling them read how it
        ended before the server goes. Returns how many were unfinished.
        """
        grace = self.settings.shutdown_grace_seconds
        deadline = time.monotonic() + grace
        status_seconds = min(self.settings.shutdown_status_seconds, grace)
        self.health.enter_graceful_shutdown()
        unfinished = self.queue.shutdown(grace - status_seconds)
        last_ended = time.monotonic() if unfinished else self.pending and self.pending.last_ended
        answering = 0.0 if last_ended is None else last_ended + status_seconds - time.monotonic()
        if answering > 0:
            log.info("answering status calls before stopping", extra={"seconds": round(answering, 2)})
            threading.Event().wait(answering)
        self.server.stop(grace=1.0).wait(2.0)
        self.side_port.stop()
        self.shop.close()
        self.state.close()
        # The spans still buffered get what is left of the grace period, so that an unreachable collector
        # does not hold the exit past it; at least a second, which a reachable one needs a fraction of.
        self.tracing.shutdown(max(1.0, deadline - time.monotonic()))
        return unfinished


def build_generator(
    settings: Settings, metrics: Metrics, cpu_slots: threading.BoundedSemaphore, budget: DailyBudget | None = None,
    quota: GeminiQuota | None = None,
) -> Generator:
    """The generator IMAGE_GENERATOR asks for (auto: gemini when credentials are configured).

    Gemini comes wrapped: past the daily budget (or, with GEMINI_FALLBACK=collage, when the model stays
    unavailable) the offline collage draws the picture. Each takes its CPU slots itself.
    """
    from imagegen.generators.collage import CollageGenerator

    collage = CollageGenerator(settings.collage_format, cpu_slots=cpu_slots)
    if settings.generator != "gemini":
        return collage
    from imagegen.generators.fallback import FallbackGenerator
    from imagegen.generators.gemini import build_gemini_generator

    guard = settings.cost_guard
    return FallbackGenerator(
        build_gemini_generator(settings.gemini, metrics=metrics, spend=budget, cpu_slots=cpu_slots, quota=quota),
        collage,
        budget=budget,
        budget_action=guard.budget_exceeded_action,
        when_unavailable=guard.gemini_fallback,
        metrics=metrics,
    )


def build_store(settings: Settings) -> tuple[ImageStore, LocalImageStore | None]:
    """The Cloud Storage store when GCS_BUCKET is set, else the local directory store, which also offers
    its images on the side port (the second value: the store whose image route the side port serves)."""
    if settings.gcs_bucket:
        from imagegen.stores.gcs import build_gcs_store

        return build_gcs_store(settings.gcs), None
    own = settings.local_store
    local = LocalImageStore(own.image_store_dir, own.public_base_url, own.image_store_max_bytes)
    return local, local


def build_quota(settings: Settings, metrics: Metrics, client: redis.Redis | None) -> GeminiQuota:
    """Gemini's limits, counted for the whole shop in Redis (else in this process), shown in metrics."""
    gemini = settings.gemini
    policy = QuotaPolicy(
        max_concurrent=gemini.gemini_max_concurrent_calls, per_minute=gemini.gemini_max_calls_per_minute,
        slot_lease_seconds=max(120.0, gemini.gemini_timeout_seconds + 30),
    )
    if client is not None:
        from imagegen.quota.redis import RedisQuotaStore

        store = RedisQuotaStore(client, settings.redis_addr)
    else:
        store = MemoryQuotaStore()
    quota = GeminiQuota(store, policy)
    for model in gemini.gemini_models:
        metrics.watch_quota(model, lambda model=model: quota.state(model))
    return quota


def build_queue(settings: StateSettings, client: redis.Redis | None) -> shared_queue.GenerationQueue:
    """The shop's queue in Redis Streams when REDIS_ADDR is set, else this process's queue."""
    if client is None:
        return MemoryQueue(settings.generation_lease_seconds, settings.generation_max_attempts)
    from imagegen.queue.redis import RedisQueue

    return RedisQueue(client, settings.generation_lease_seconds, settings.generation_max_attempts,
                      max_block_seconds=min(0.5, settings.redis_timeout_seconds / 2), addr=settings.redis_addr)


def build_state(
    settings: StateSettings, on_change: Callable[[bool], None], client: redis.Redis | None = None,
    still_queued: Callable[[str], bool] = lambda generation_id: False,
) -> SharedState:
    """Redis when REDIS_ADDR is set (several replicas), else in-process state."""
    if settings.redis_addr:
        from imagegen.state.redis import redis_state

        return redis_state(
            settings.redis_addr,
            status_max_entries=settings.status_max_entries,
            status_ttl_seconds=settings.status_ttl_seconds,
            lease_seconds=settings.generation_lease_seconds,
            timeout_seconds=settings.redis_timeout_seconds,
            on_change=on_change,
            client=client,
            still_queued=still_queued,
        )
    return memory_state(settings.status_max_entries, settings.status_ttl_seconds)


@dataclasses.dataclass
class Adapters:
    """Everything the use cases speak to, built from settings."""

    shop: Shop
    pictures: Pictures
    generator: Generator
    store: ImageStore
    served_images: LocalImageStore | None
    state: SharedState
    budget: DailyBudget
    rate_limit: UserRateLimit
    queue: shared_queue.GenerationQueue
    estimator: Estimator
    quota: GeminiQuota | None = None  # Gemini's shop-wide limits, when the generator is Gemini


def build_adapters(
    settings: Settings, capacity: Capacity, metrics: Metrics, tracing: Tracing, health_servicer: health.HealthServicer
) -> Adapters:
    """The shop, pictures, generator, store, shared state, queue and cost guard, traced when tracing is on."""
    shared_settings, guard, peers = settings.state, settings.cost_guard, settings.shop
    # One Redis connection pool for everything replicas share: statuses, results, queue, quota, cost guard.
    shared = (connect_redis(shared_settings.redis_addr, shared_settings.redis_timeout_seconds)
              if shared_settings.redis_addr else None)
    budget = DailyBudget(
        RedisSpendLedger(shared) if shared else InProcessSpendLedger(), guard.gemini_daily_budget_usd, metrics
    )
    metrics.budget.set(guard.gemini_daily_budget_usd)
    rate_limit = UserRateLimit(
        RedisWindowCounter(shared) if shared else InProcessWindowCounter(),
        guard.rate_limit_per_user,
        guard.rate_limit_window_seconds,
        on_refused=metrics.rate_limited.inc,
    )
    store, served_images = build_store(settings)
    quota = build_quota(settings, metrics, shared) if settings.generator == "gemini" else None
    generator = build_generator(settings, metrics, capacity.cpu_slots(), budget, quota)
    queue = build_queue(shared_settings, shared)
    state = build_state(shared_settings, lambda up: _shared_state_changed(up, metrics, health_servicer), shared,
                        still_queued=queue.holds)
    queue = RememberingQueue(queue, state.queued)  # entries accepted here are put back if Redis restarts empty
    metrics.queued.set_function(lambda: _waiting(queue))
    metrics.shared_state_up.set(1 if state.available() else 0)
    shop = Shop(
        peers.cart_service_addr, peers.product_catalog_service_addr, peers.peer_timeout_seconds,
        wrap_channel=tracing.traced_channel,
    )
    pictures = ProductPictures(peers.product_image_base_url, peers.peer_timeout_seconds)
    return Adapters(
        shop=shop,
        pictures=tracing.wrap(pictures, TracedPictures),
        generator=TracedGenerator(generator),
        store=tracing.wrap(store, TracedStore),
        served_images=served_images,
        state=state,
        budget=budget,
        rate_limit=rate_limit,
        queue=queue,
        estimator=Estimator(RedisRunLog(shared, shared_settings.redis_addr) if shared else MemoryRunLog()),
        quota=quota,
    )


def _waiting(queue: shared_queue.GenerationQueue) -> float:
    try:
        return float(queue.depth().waiting)
    except Exception:  # noqa: BLE001 (Redis away: the scrape shows NaN rather than failing)
        return float("nan")


@dataclasses.dataclass
class UseCases:
    """The use cases the servicer calls, and the queue shutdown drains."""

    start: StartGeneration
    status: ReadStatus
    cancel: CancelGeneration
    store_background: StoreBackground
    queue: GenerationQueue
    pending: Pending


def build_use_cases(settings: Settings, capacity: Capacity, adapters: Adapters, metrics: Metrics) -> UseCases:
    """Start, run, queue, status and backgrounds, each given only the ports it uses."""
    state = adapters.state
    pending = Pending(state.statuses, state.in_flight, metrics)
    run = RunGeneration(
        pictures=adapters.pictures, generator=adapters.generator, store=adapters.store, statuses=state.statuses,
        results=state.results, pending=pending, metrics=metrics, picture_timeout=2 * settings.peer_timeout_seconds,
    )
    workers = Workers(
        count=capacity.model_concurrency, queue_limit=capacity.queue_limit,
        max_wait_seconds=capacity.queue_max_wait_seconds, lease_seconds=settings.generation_lease_seconds,
        consumer=f"{socket.gethostname()}:{os.getpid()}", shop_wide=bool(settings.redis_addr),
    )
    queue = GenerationQueue(
        adapters.queue, run, pending, state.statuses, metrics, workers, estimator=adapters.estimator,
        gate=FirstCallGate(adapters.quota, settings.gemini.gemini_models[0]) if adapters.quota else None,
    )
    start = StartGeneration(
        cart=adapters.shop, catalog=adapters.shop, store=adapters.store, state=state, queue=queue, pending=pending,
        metrics=metrics, drawing=Drawing(adapters.generator.name, settings.image_size), rate_limit=adapters.rate_limit,
    )
    uploads = settings.uploads
    limits = UploadLimits(uploads.max_upload_bytes, uploads.max_image_pixels, uploads.background_max_side,
                          uploads.upload_decode_max_bytes)
    status = ReadStatus(state.statuses, adapters.queue, adapters.estimator)
    cancel = CancelGeneration(state.statuses, status, queue.withdrawn)
    return UseCases(start, status, cancel, StoreBackground(adapters.store, metrics, limits), queue, pending)


def build_server(
    settings: Settings, capacity: Capacity, use_cases: UseCases, metrics: Metrics, tracing: Tracing,
    health_servicer: health.HealthServicer,
) -> grpc.Server:
    """The gRPC server: tracing, then the gate, in front of the servicer, health and reflection."""
    return_large_bodies_to_the_system()  # uploads read in turn on many threads would stay resident otherwise
    gate = Gate(gate_limits(capacity), counter=lambda method, code: metrics.refused.labels(method=method, code=code).inc())
    server = grpc.server(
        gate.threads(capacity.rpc_threads),  # a pool per class of method (imagegen/edge.py BUDGETS)
        # Tracing first, so that calls the gate refuses are traced too.
        interceptors=[*tracing.server_interceptors(), gate],
        options=[
            ("grpc.max_receive_message_length", capacity.max_message_bytes),
            ("grpc.max_send_message_length", 4 * 1024 * 1024),
            # Clients reconnect every few minutes, so behind a ClusterIP Service (balanced per connection)
            # a frontend's calls spread over the replicas as time goes by, new ones included.
            ("grpc.max_connection_age_ms", 5 * 60 * 1000),
            ("grpc.max_connection_age_grace_ms", 30 * 1000),
            # Without BDP probing a stream's window stays at 64 KiB until its message is asked for:
            # refused uploads then cost no buffered body (with it, 30 refused ones still cost up to 125 MiB).
            ("grpc.http2.bdp_probe", 0),
        ],
        maximum_concurrent_rpcs=gate.max_concurrent_rpcs,
    )
    servicer = ImageGenerationServicer(use_cases.start, use_cases.status, use_cases.store_background,
                                       use_cases.cancel)
    pb_grpc.add_ImageGenerationServiceServicer_to_server(servicer, server)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server
    )
    server.add_insecure_port(f"[::]:{settings.port}")  # raises RuntimeError("Failed to bind ...") when taken
    return server


def build(settings: Settings) -> App:
    """Wires the whole service from settings: adapters, use cases, servers."""
    metrics = Metrics()
    for name in settings.deprecated:
        log.warning("%s is deprecated; see CPU_CONCURRENCY, MODEL_CONCURRENCY and GENERATION_QUEUE_LIMIT", name)
    capacity = Capacity.from_settings(settings)
    tracing = Tracing.start(settings.enable_tracing, settings.collector_service_addr, settings.otel_service_name)
    health_servicer = HealthServicer(experimental_non_blocking=True)
    adapters = build_adapters(settings, capacity, metrics, tracing, health_servicer)
    use_cases = build_use_cases(settings, capacity, adapters, metrics)
    server = build_server(settings, capacity, use_cases, metrics, tracing, health_servicer)
    side_port = SidePort(
        settings.http_port, metrics, healthy=lambda: use_cases.pending.accepting, store=adapters.served_images,
        idle_timeout_seconds=settings.http_idle_timeout_seconds, max_connections=settings.http_max_connections,
    )
    _log_configuration(settings, capacity, adapters, tracing)
    return App(settings, server, health_servicer, side_port, use_cases.queue, adapters.shop, adapters.state, tracing,
               use_cases.pending)


def _log_configuration(settings: Settings, capacity: Capacity, adapters: Adapters, tracing: Tracing) -> None:
    generator = adapters.generator.name
    log.info(
        "service configured",
        extra={
            "generator": generator,
            "models": ",".join(settings.gemini_models) if generator == "gemini" else "",
            "store": "GcsImageStore" if adapters.served_images is None else "LocalImageStore",
            "state": adapters.state.description,
            "model_concurrency": capacity.model_concurrency,
            "cpu_concurrency": capacity.cpu,
            "grpc_port": settings.port,
            "http_port": settings.http_port,
            "tracing": tracing.enabled,
            "rate_limit": f"{settings.rate_limit_per_user}/{settings.rate_limit_window_seconds}s",
            "daily_budget_usd": settings.gemini_daily_budget_usd,
        },
    )


def _shared_state_changed(up: bool, metrics: Metrics, health_servicer: health.HealthServicer) -> None:
    """The service's health follows the shared state: NOT_SERVING while Redis cannot be reached."""
    metrics.shared_state_up.set(1 if up else 0)
    status = health_pb2.HealthCheckResponse.SERVING if up else health_pb2.HealthCheckResponse.NOT_SERVING
    health_servicer.set(SERVICE_NAME, status)


def main() -> int:
    """Runs the service until SIGTERM or SIGINT."""
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        configure_logging()
        log.error(str(error))
        return 2
    configure_logging(settings.log_level)
    # Blocked before any thread starts (threads inherit the mask), then taken with sigwait below: no
    # Python signal handler runs at an arbitrary point of the main thread.
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    try:
        app = build(settings)
        app.start()
    except Exception as error:  # noqa: BLE001 (any start-up failure ends the process with a clear line)
        log.error("service could not start: %s", error)
        return 1
    log.info("service started", extra={"grpc_port": settings.port, "http_port": app.side_port.port})
    received = signal.sigwait(stop_signals)
    log.info("shutting down", extra={"signal": signal.Signals(received).name,
                                     "grace_seconds": settings.shutdown_grace_seconds})
    unfinished = app.stop()
    log.info("stopped", extra={"unfinished_generations": unfinished})
    if unfinished:
        # Worker threads still inside a generator would hold interpreter exit past the grace period.
        logging.shutdown()
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Online Boutique image generation service: the composition root.

settings -> adapters (shop, pictures, generator, store) -> use case -> gRPC + HTTP servers; signals.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from genproto import imagegeneration_pb2 as pb
from genproto import imagegeneration_pb2_grpc as pb_grpc
from imagegen.admission import Admission
from imagegen.api import ImageGenerationServicer
from imagegen.domain import Generator
from imagegen.edge import Gate, Limits
from imagegen.generation import ImageGeneration
from imagegen.health import HealthServicer
from imagegen.generators.traced import TracedGenerator, TracedPictures, TracedStore
from imagegen.http import SidePort
from imagegen.limits import (
    DailyBudget,
    InProcessSpendLedger,
    InProcessWindowCounter,
    RedisSpendLedger,
    RedisWindowCounter,
    UserRateLimit,
)
from imagegen.observability import Metrics, Tracing, configure_logging
from imagegen.redis_client import connect as connect_redis
from imagegen.settings import Settings, SettingsError
from imagegen.shop import ProductPictures, Shop
from imagegen.state import SharedState
from imagegen.state.memory import memory_state
from imagegen.stores import ImageStore
from imagegen.stores.local import LocalImageStore
from imagegen.uploads import UploadLimits

if TYPE_CHECKING:
    import redis

log = logging.getLogger("imagegenservice")
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ImageGenerationService"].full_name


@dataclasses.dataclass
class App:
    """The running service: its servers and the use case behind them."""

    settings: Settings
    server: grpc.Server
    health: health.HealthServicer
    side_port: SidePort
    generation: ImageGeneration
    shop: Shop
    state: SharedState
    tracing: Tracing = dataclasses.field(default_factory=Tracing)

    def start(self) -> None:
        """Starts both servers and reports SERVING (the service: only while its shared state answers)."""
        self.server.start()
        self.side_port.start()
        serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
        self.health.set("", serving)
        self.health.set(SERVICE_NAME, serving if self.state.available() else not_serving)

    def stop(self) -> int:
        """Stops taking new work, lets running generations finish within the grace period.

        The gRPC server keeps answering status calls meanwhile, and for SHUTDOWN_STATUS_SECONDS (taken
        out of the grace period) after unfinished generations are marked failed, so that shoppers
        polling them read `failed` before the server goes. Returns how many were unfinished.
        """
        grace = self.settings.shutdown_grace_seconds
        deadline = time.monotonic() + grace
        status_seconds = min(self.settings.shutdown_status_seconds, grace)
        self.health.enter_graceful_shutdown()
        unfinished = self.generation.shutdown(grace - status_seconds)
        if unfinished and status_seconds > 0:
            log.info("answering status calls before stopping", extra={"seconds": status_seconds})
            threading.Event().wait(status_seconds)
        self.server.stop(grace=1.0).wait(2.0)
        self.side_port.stop()
        self.shop.close()
        self.state.close()
        # The spans still buffered get what is left of the grace period, so that an unreachable collector
        # does not hold the exit past it; at least a second, which a reachable one needs a fraction of.
        self.tracing.shutdown(max(1.0, deadline - time.monotonic()))
        return unfinished


def build_generator(
    settings: Settings, metrics: Metrics, cpu_slots: threading.BoundedSemaphore, budget: DailyBudget | None = None
) -> Generator:
    """The generator IMAGE_GENERATOR asks for (auto: gemini when credentials are configured).

    Gemini comes wrapped: past the daily budget (or, with GEMINI_FALLBACK=collage, when the model stays
    unavailable) the offline collage draws the picture.
    """
    from imagegen.generators.collage import CollageGenerator

    if settings.generator == "gemini":
        from imagegen.generators.fallback import FallbackGenerator
        from imagegen.generators.gemini import build_gemini_generator

        return FallbackGenerator(
            build_gemini_generator(settings, metrics=metrics, spend=budget, cpu_slots=cpu_slots),
            CollageGenerator(settings.collage_format),
            budget=budget,
            budget_action=settings.budget_exceeded_action,
            when_unavailable=settings.gemini_fallback,
            metrics=metrics,
            cpu_slots=cpu_slots,
        )

    return CollageGenerator(settings.collage_format)


def build_store(settings: Settings) -> ImageStore:
    """The Cloud Storage store when GCS_BUCKET is set, else the local directory store."""
    if settings.gcs_bucket:
        from imagegen.stores.gcs import build_gcs_store

        return build_gcs_store(settings)
    return LocalImageStore(settings.image_store_dir, settings.public_base_url, settings.image_store_max_bytes)


def build_state(
    settings: Settings, on_change: Callable[[bool], None], client: redis.Redis | None = None
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
        )
    return memory_state(settings.status_max_entries, settings.status_ttl_seconds)


def build(settings: Settings, *, generator: Generator | None = None, store: ImageStore | None = None) -> App:
    """Wires the whole service from settings; generator and store can be handed in."""
    metrics = Metrics()
    for name in settings.deprecated:
        log.warning("%s is deprecated; see CPU_CONCURRENCY, MODEL_CONCURRENCY and GENERATION_QUEUE_LIMIT", name)
    tracing = Tracing.start(settings.enable_tracing, settings.collector_service_addr, settings.otel_service_name)
    health_servicer = HealthServicer(experimental_non_blocking=True)
    # One Redis connection pool for everything replicas share: statuses, results, the cost guard.
    shared = connect_redis(settings.redis_addr, settings.redis_timeout_seconds) if settings.redis_addr else None
    budget = DailyBudget(
        RedisSpendLedger(shared) if shared else InProcessSpendLedger(), settings.gemini_daily_budget_usd, metrics
    )
    metrics.budget.set(settings.gemini_daily_budget_usd)
    rate_limit = UserRateLimit(
        RedisWindowCounter(shared) if shared else InProcessWindowCounter(),
        settings.rate_limit_per_user,
        settings.rate_limit_window_seconds,
        on_refused=metrics.rate_limited.inc,
    )
    store = store or build_store(settings)
    # One set of CPU slots for every CPU-heavy step of a generation, whichever generator runs.
    cpu_slots = threading.BoundedSemaphore(settings.cpu_slots)
    generator = TracedGenerator(generator or build_generator(settings, metrics, cpu_slots, budget))
    state = build_state(settings, lambda up: _shared_state_changed(up, metrics, health_servicer), shared)
    metrics.shared_state_up.set(1 if state.available() else 0)
    shop = Shop(
        settings.cart_service_addr, settings.product_catalog_service_addr, settings.peer_timeout_seconds,
        wrap_channel=tracing.traced_channel,
    )
    generation = ImageGeneration(
        shop=shop,
        pictures=tracing.wrap(ProductPictures(settings.product_image_base_url, settings.peer_timeout_seconds),
                              TracedPictures),
        generator=generator,
        store=tracing.wrap(store, TracedStore),
        state=state,
        admission=Admission(settings.model_concurrency, settings.generation_queue_limit,
                            settings.generation_max_wait_seconds, metrics),
        metrics=metrics,
        cpu_slots=cpu_slots,
        cpu_bound_generator=generator.name == "collage",  # Gemini mostly waits on the network
        image_size=settings.image_size,
        upload_limits=UploadLimits(settings.max_upload_bytes, settings.max_image_pixels, settings.background_max_side,
                                   settings.upload_decode_max_bytes),
        upload_concurrency=settings.upload_concurrency,
        picture_timeout=2 * settings.peer_timeout_seconds,
        rate_limit=rate_limit,
    )
    # Generations and uploads each have an in-flight limit checked before their request is read; the
    # pool has a thread for every admitted one plus a reserve, so health and status always find one.
    # The small requests the frontend forwards shopper input in are read a few at a time and capped
    # in size, so a flood of 13 MB ones holds a few bodies, not one per thread.
    gate = Gate({
        f"/{SERVICE_NAME}/GenerateCartImage": Limits(
            in_flight=settings.generate_max_inflight, reads=4, max_bytes=1024 * 1024,
            busy_message="too many image generations are in progress; try again shortly"),
        f"/{SERVICE_NAME}/UploadBackground": Limits(
            in_flight=settings.upload_concurrency,
            busy_message="too many backgrounds are being processed; try again shortly"),
        f"/{SERVICE_NAME}/GetImageGenerationStatus": Limits(reads=4, max_bytes=64 * 1024),
    }, counter=lambda method, code: metrics.refused.labels(method=method, code=code).inc())
    server = grpc.server(
        gate.threads(settings.rpc_threads),  # a pool per class of method (imagegen/edge.py BUDGETS)
        # Tracing first, so that calls the gate refuses are traced too.
        interceptors=[*tracing.server_interceptors(), gate],
        options=[
            ("grpc.max_receive_message_length", settings.max_message_bytes),
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
    pb_grpc.add_ImageGenerationServiceServicer_to_server(ImageGenerationServicer(generation), server)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server
    )
    server.add_insecure_port(f"[::]:{settings.port}")  # raises RuntimeError("Failed to bind ...") when taken
    side_port = SidePort(
        settings.http_port,
        metrics,
        healthy=lambda: generation.accepting,
        store=store if isinstance(store, LocalImageStore) else None,
        idle_timeout_seconds=settings.http_idle_timeout_seconds,
        max_connections=settings.http_max_connections,
    )
    log.info(
        "service configured",
        extra={
            "generator": generator.name,
            "models": ",".join(settings.gemini_models) if generator.name == "gemini" else "",
            "store": type(store).__name__,
            "state": state.description,
            "model_concurrency": settings.model_concurrency,
            "cpu_concurrency": settings.cpu_slots,
            "grpc_port": settings.port,
            "http_port": settings.http_port,
            "tracing": tracing.enabled,
            "rate_limit": f"{settings.rate_limit_per_user}/{settings.rate_limit_window_seconds}s",
            "daily_budget_usd": settings.gemini_daily_budget_usd,
        },
    )
    return App(settings, server, health_servicer, side_port, generation, shop, state, tracing)


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

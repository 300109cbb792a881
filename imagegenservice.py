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
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from genproto import imagegeneration_pb2 as pb
from genproto import imagegeneration_pb2_grpc as pb_grpc
from imagegen.api import ImageGenerationServicer
from imagegen.domain import Generator
from imagegen.generation import ImageGeneration
from imagegen.http import SidePort
from imagegen.jobs import StatusStore
from imagegen.observability import Metrics, configure_logging
from imagegen.settings import Settings, SettingsError
from imagegen.shop import ProductPictures, Shop
from imagegen.stores import ImageStore
from imagegen.stores.local import LocalImageStore
from imagegen.uploads import UploadLimits

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

    def start(self) -> None:
        """Starts both servers and reports SERVING."""
        self.server.start()
        self.side_port.start()
        for service in ("", SERVICE_NAME):
            self.health.set(service, health_pb2.HealthCheckResponse.SERVING)

    def stop(self) -> int:
        """Stops taking new work, lets running generations finish within the grace period.

        The gRPC server keeps answering status calls meanwhile. Returns how many generations were
        still unfinished when the grace period ended.
        """
        grace = self.settings.shutdown_grace_seconds
        self.health.enter_graceful_shutdown()
        unfinished = self.generation.shutdown(grace)
        self.server.stop(grace=1.0).wait(2.0)
        self.side_port.stop()
        self.shop.close()
        return unfinished


def build_generator(settings: Settings, metrics: Metrics) -> Generator:
    """The generator IMAGE_GENERATOR asks for (auto: gemini when credentials are configured)."""
    if settings.generator == "gemini":
        from imagegen.generators.gemini import build_gemini_generator

        return build_gemini_generator(settings, metrics=metrics)
    from imagegen.generators.collage import CollageGenerator

    return CollageGenerator(settings.collage_format)


def build_store(settings: Settings) -> ImageStore:
    """The Cloud Storage store when GCS_BUCKET is set, else the local directory store."""
    if settings.gcs_bucket:
        from imagegen.stores.gcs import build_gcs_store

        return build_gcs_store(settings)
    return LocalImageStore(settings.image_store_dir, settings.public_base_url, settings.image_store_max_bytes)


def build(settings: Settings, *, generator: Generator | None = None, store: ImageStore | None = None) -> App:
    """Wires the whole service from settings; generator and store can be handed in."""
    metrics = Metrics()
    store = store or build_store(settings)
    generator = generator or build_generator(settings, metrics)
    shop = Shop(settings.cart_service_addr, settings.product_catalog_service_addr, settings.peer_timeout_seconds)
    generation = ImageGeneration(
        shop=shop,
        pictures=ProductPictures(settings.product_image_base_url, settings.peer_timeout_seconds),
        generator=generator,
        store=store,
        statuses=StatusStore(settings.status_max_entries, settings.status_ttl_seconds),
        metrics=metrics,
        workers=settings.generation_workers,
        queue_size=settings.generation_queue_size,
        image_size=settings.image_size,
        upload_limits=UploadLimits(settings.max_upload_bytes, settings.max_image_pixels, settings.background_max_side),
        upload_concurrency=settings.upload_concurrency,
        picture_timeout=2 * settings.peer_timeout_seconds,
    )
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=10, thread_name_prefix="grpc"),
        options=[
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", 4 * 1024 * 1024),
        ],
        maximum_concurrent_rpcs=100,
    )
    pb_grpc.add_ImageGenerationServiceServicer_to_server(ImageGenerationServicer(generation), server)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
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
    )
    log.info(
        "service configured",
        extra={
            "generator": generator.name,
            "models": ",".join(settings.gemini_models) if generator.name == "gemini" else "",
            "store": type(store).__name__,
            "grpc_port": settings.port,
            "http_port": settings.http_port,
        },
    )
    return App(settings, server, health_servicer, side_port, generation, shop)


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

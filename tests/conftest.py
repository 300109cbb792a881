"""Shared fixtures: the dev stack peers on loopback and the real service in a subprocess."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fakes.picture_server import MissingPictures
from tests.service import ServiceProcess

# Carts seeded in the dev stack for the end-to-end tests.
SEED_CARTS = {
    "shopper-1": {"OLJCESPC7Z": 1, "6E92ZMYYFZ": 2, "0PUK6V6EV0": 1},
    "shopper-empty": {},
}


@pytest.fixture(scope="session")
def devstack():
    """Cart, catalog and product pictures on loopback for the whole session."""
    from devstack.servers import start_devstack

    with start_devstack(seed_carts=SEED_CARTS) as stack:
        yield stack


def peer_env(stack) -> dict[str, str]:
    """Environment pointing the service at the dev stack."""
    return {
        "CART_SERVICE_ADDR": stack.cart_addr,
        "PRODUCT_CATALOG_SERVICE_ADDR": stack.catalog_addr,
        "PRODUCT_IMAGE_BASE_URL": stack.picture_base_url,
        "IMAGE_GENERATOR": "collage",
        "IMAGE_SIZE": "512",
        # Test modules send many carts without a user_id (one shared count): the limit has tests of its own.
        "RATE_LIMIT_PER_USER": "0",
        # The status window after SIGTERM has tests of its own (test_shutdown_status.py); elsewhere its 3 s
        # would only lengthen every stop.
        "SHUTDOWN_STATUS_SECONDS": "0",
    }


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A real redis-server on loopback for the whole session (see tests/redis_server.py)."""
    from tests.redis_server import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_addr(redis_server) -> str:
    """REDIS_ADDR of the session's redis-server, emptied before the test."""
    if redis_server.process is None:  # a test stopped it and did not restart it
        redis_server.start()
    redis_server.client().flushall()
    return redis_server.addr


@pytest.fixture(scope="session")
def gcs_emulator():
    """The Cloud Storage emulator with a bucket, for services that share images (replicas need a bucket)."""
    from tests.fakes.gcs_emulator import GcsEmulator

    emulator = GcsEmulator(bucket="replica-images")
    yield emulator
    emulator.stop()


def replica_env(redis_addr: str, emulator) -> dict[str, str]:
    """What several replicas share: Redis and a bucket (the service refuses Redis with the local store)."""
    return {**emulator.env(), "PROJECT_ID": "test-project", "REDIS_ADDR": redis_addr}


def started_together(
    make_service: Callable[..., ServiceProcess], env: dict[str, str], count: int
) -> list[ServiceProcess]:
    """Starts `count` services with one environment side by side (their start-ups overlap), each serving."""
    services = [make_service(env, wait=False) for _ in range(count)]
    for service in services:
        service.wait_serving()
    return services


@pytest.fixture
def make_service(tmp_path, devstack):
    """Starts a service with extra environment; every one started is stopped after the test."""
    started: list[ServiceProcess] = []

    def make(env: dict[str, str] | None = None, wait: bool = True) -> ServiceProcess:
        service = ServiceProcess({**peer_env(devstack), **(env or {})}, tmp_path / f"svc{len(started)}")
        started.append(service)
        if wait:
            service.wait_serving()
        return service

    yield make
    for service in started:
        service.close()


@contextlib.contextmanager
def serving(env: dict[str, str], tmp_path: Path) -> Iterator[ServiceProcess]:
    """A service with the given environment, serving, stopped on leaving (for fixtures a module shares)."""
    process = ServiceProcess(env, tmp_path)
    try:
        process.wait_serving()
        yield process
    finally:
        process.close()


@pytest.fixture(scope="module")
def service(tmp_path_factory, devstack):
    """One service with default settings (collage, local store) shared by a module's tests."""
    with serving(peer_env(devstack), tmp_path_factory.mktemp("service")) as process:
        yield process


@pytest.fixture
def held_pictures():
    """A picture server with no pictures that holds each request until `release` is set (a generation stays busy)."""
    held = MissingPictures(hold=True)
    yield held
    held.close()

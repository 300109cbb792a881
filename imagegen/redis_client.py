"""The one Redis connection pool that every shared-state adapter uses (REDIS_ADDR)."""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


def connect(addr: str, timeout_seconds: float = 1.0) -> redis.Redis:
    """A client for host:port whose calls fail within about timeout_seconds when Redis is away."""
    host, _, port = addr.rpartition(":")
    return redis.Redis(
        host=host.strip("[]"),
        port=int(port),
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        # One quick retry covers a connection the server closed; more would turn an outage into a hang.
        retry=Retry(NoBackoff(), 1),
        health_check_interval=15,
        decode_responses=False,
    )

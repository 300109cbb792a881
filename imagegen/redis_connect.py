"""A Redis client for REDIS_ADDR that works on one Redis or on any node of a Redis Cluster, told by the server."""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry


def is_cluster(addr: str, timeout_seconds: float = 1.0) -> bool:
    """True when the server at host:port runs with cluster mode on (INFO cluster)."""
    host, port = _split(addr)
    # One quick retry, as the client below: redis-py's default policy (ten with backoff) held a start ~4 s.
    probe = redis.Redis(host=host, port=port, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds,
                        retry=Retry(NoBackoff(), 1))
    try:
        return bool(probe.info("cluster").get("cluster_enabled"))
    finally:
        probe.close()


def connect(addr: str, timeout_seconds: float = 1.0) -> redis.Redis | RedisCluster:
    """A client for host:port (a RedisCluster when the server is a cluster node), failing fast when away.

    A server that cannot be asked at start is taken for a single Redis, so that a replica starts (and
    reports NOT_SERVING) while Redis is away; a cluster is detected on the next start.
    """
    host, port = _split(addr)
    options = dict(
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        health_check_interval=15,
        decode_responses=False,
    )
    try:
        cluster = is_cluster(addr, timeout_seconds)
    except redis.RedisError:
        cluster = False
    if cluster:
        # The cluster client follows MOVED/ASK itself; a few attempts cover a failover, not an outage.
        return RedisCluster(host=host, port=port, retry=Retry(NoBackoff(), 2), **options)
    # One quick retry covers a connection the server closed; more would turn an outage into a hang.
    return redis.Redis(host=host, port=port, retry=Retry(NoBackoff(), 1), **options)


def _split(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)

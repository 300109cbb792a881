"""A Redis client for REDIS_ADDR that works on one Redis or on any node of a Redis Cluster, told by the server;
and HotScript, the status poll's script on connections of its own."""

from __future__ import annotations

from collections.abc import Sequence

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


class HotScript:
    """A registered script called on connections of its own, kept between calls: for the status poll.

    redis-py's command path (a pool checkout that polls the socket, argument filtering, the Script layer)
    held the GIL for about a quarter of a status call; this sends the same EVALSHA on a kept connection
    and reads its answer, with the same errors and the connection's own retry policy (connect()'s one
    quick retry on a broken connection). At most `keep` connections wait idle: more threads than that
    calling at once make and close one each. A Redis that lost its scripts (a restart) is sent the script
    once more. A cluster client keeps redis-py's own path, which follows MOVED and ASK.
    """

    def __init__(self, client: redis.Redis | RedisCluster, script: str, keep: int = 16) -> None:
        self._script = client.register_script(script)
        self._pool = None if isinstance(client, RedisCluster) else client.connection_pool
        self._idle: list[redis.Connection] = []  # list.pop and append are atomic: no lock on the hot path
        self._keep = keep
        self._closed = False

    def __call__(self, keys: Sequence[str], args: Sequence[object] = ()) -> object:
        if self._pool is None:
            return self._script(keys=keys, args=args)
        try:
            connection = self._idle.pop()
        except IndexError:
            connection = self._pool.make_connection()
        try:
            return self._run(connection, ("EVALSHA", self._script.sha, len(keys), *keys, *args))
        finally:
            if self._closed or len(self._idle) >= self._keep:
                connection.disconnect()
            else:
                self._idle.append(connection)

    def _run(self, connection: redis.Connection, command: tuple) -> object:
        # The connection's own retry policy (connect()'s: one quick retry), disconnecting before the retry.
        return connection.retry.call_with_retry(lambda: self._send(connection, command),
                                                lambda error: connection.disconnect())

    def _send(self, connection: redis.Connection, command: tuple) -> object:
        try:
            connection.send_command(*command)
            return connection.read_response()
        except redis.exceptions.NoScriptError:
            connection.send_command("SCRIPT", "LOAD", self._script.script)
            connection.read_response()
            connection.send_command(*command)
            return connection.read_response()

    def close(self) -> None:
        """Closes the kept connections (and those in use, as their calls end)."""
        self._closed = True
        while self._idle:
            self._idle.pop().disconnect()

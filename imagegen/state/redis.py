"""Shared state in Redis (REDIS_ADDR): every replica sees the same statuses, results and in-flight work.

Keys (hash tags keep each script's keys in one Redis Cluster slot):
  imagegen:{status}:gen:<id>     hash: status, progress, image_url, image_variants (JSON), error_message, style,
                                 created, started,
                                 shared; expires with STATUS_TTL_SECONDS; imagegen:{status}:gens (sorted by
                                 creation) bounds their count
  imagegen:{status}:lease:<id>   exists while the worker drawing <id> is alive; refreshed every third of
                                 GENERATION_LEASE_SECONDS. A `processing` generation without a lease that the
                                 queue no longer holds was interrupted: the next read marks it failed.
  imagegen:{results}:result:<key>  object name drawn for a request key; imagegen:{results}:results bounds them
  imagegen:inflight:<key>        id of the generation drawing a request key right now (one key per script)
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator

import redis

from imagegen import statuses as records
from imagegen.errors import PeerUnavailable
from imagegen.redis_connect import connect
from imagegen.state import INTERRUPTED, SharedState

log = logging.getLogger(__name__)

PREFIX = "imagegen:"
STATUS = PREFIX + "{status}:"
RESULTS = PREFIX + "{results}:"
RESULT_TTL_SECONDS = 7 * 86400  # a result outlives its count bound only if the shop is very quiet


def _trim(index: str, limit: str, prefix: str) -> str:
    """Lua that evicts the oldest members of a sorted index, and the keys they name, beyond a count."""
    return f"""
local excess = redis.call('ZCARD', {index}) - tonumber({limit})
if excess > 0 then
  local old = redis.call('ZPOPMIN', {index}, excess)
  for i = 1, #old, 2 do redis.call('DEL', {prefix} .. old[i]) end
end
"""


_CREATE = """
redis.call('HSET', KEYS[1], 'status', 'processing', 'progress', 0, 'style', ARGV[2], 'created', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[5])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[3] - ARGV[4])
""" + _trim("KEYS[3]", "ARGV[6]", "ARGV[7]")

# Answers {orphaned, fields}: orphaned = processing with no live lease (the caller asks the queue).
_GET = """
local orphaned = 0
if redis.call('HGET', KEYS[1], 'status') == 'processing' and redis.call('EXISTS', KEYS[2]) == 0 then
  orphaned = 1
end
return {orphaned, redis.call('HGETALL', KEYS[1])}
"""

_SHARE = """
if redis.call('HGET', KEYS[1], 'status') == 'processing' then redis.call('HSET', KEYS[1], 'shared', '1') end
return redis.call('HGETALL', KEYS[1])
"""

_WITHDRAW = """
local g = redis.call('HMGET', KEYS[1], 'status', 'shared', 'started')
if g[1] ~= 'processing' or g[2] or g[3] then return 0 end
redis.call('HSET', KEYS[1], 'status', 'failed', 'error_message', ARGV[1])
redis.call('DEL', KEYS[2])
return 1
"""

_OWN = """
if redis.call('HGET', KEYS[1], 'status') ~= 'processing' then return 0 end
redis.call('HSET', KEYS[1], 'started', ARGV[1])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
return 1
"""

_PROGRESS = """
if redis.call('HGET', KEYS[1], 'status') == 'processing'
   and tonumber(redis.call('HGET', KEYS[1], 'progress')) < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'progress', ARGV[1])
end
"""

_FINISH = """
redis.call('DEL', KEYS[2])
if redis.call('HGET', KEYS[1], 'status') == 'processing' then
  redis.call('HSET', KEYS[1], unpack(ARGV))
end
"""

_PUT_RESULT = """
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[5])
""" + _trim("KEYS[2]", "ARGV[4]", "ARGV[6]")

_REPLACE = """
local current = redis.call('GET', KEYS[1])
if current == false or current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
"""


class _Redis:
    """The connection, with every Redis error turned into PeerUnavailable naming the address."""

    def __init__(self, client: redis.Redis, addr: str) -> None:
        self.client = client
        self.addr = addr

    @contextlib.contextmanager
    def calling(self) -> Iterator[None]:
        try:
            yield
        except redis.RedisError as error:
            raise PeerUnavailable(f"shared state (Redis at {self.addr})", _reason(error)) from None


def _reason(error: redis.RedisError) -> str:
    if isinstance(error, redis.TimeoutError):
        return "no answer in time"
    if isinstance(error, redis.ConnectionError):
        return "cannot connect"
    return type(error).__name__


class RedisStatusStore:
    """Generation statuses in Redis; generations created here are kept alive by a heartbeat."""

    def __init__(
        self, connection: _Redis, max_entries: int, ttl_seconds: int, lease_seconds: float,
        clock: Callable[[], float] = time.time, still_queued: Callable[[str], bool] = lambda generation_id: False,
    ) -> None:
        self._redis = connection
        self._still_queued = still_queued
        self._max_entries = max_entries
        self._ttl = int(ttl_seconds)
        self._lease_ms = int(lease_seconds * 1000)
        self._clock = clock
        client = connection.client
        self._create = client.register_script(_CREATE)
        self._get = client.register_script(_GET)
        self._progress = client.register_script(_PROGRESS)
        self._finish = client.register_script(_FINISH)
        self._share = client.register_script(_SHARE)
        self._withdraw = client.register_script(_WITHDRAW)
        self._own = client.register_script(_OWN)
        self._lock = threading.Lock()
        self._owned: set[str] = set()

    def create(self, style: str) -> records.Generation:
        record = records.Generation(id=records.new_generation_id(), status=records.PROCESSING, style=style, created=self._clock())
        with self._redis.calling():
            self._create(
                keys=[_gen(record.id), _lease(record.id), STATUS + "gens"],
                args=[record.id, style, repr(record.created), self._ttl, self._lease_ms, self._max_entries, STATUS + "gen:"],
            )
        return record

    def get(self, generation_id: str) -> records.Generation | None:
        if not generation_id or len(generation_id) > 64:
            return None
        orphaned, record = self._read(generation_id)
        # No worker keeps it alive: waiting in the queue (or about to be taken again) is not interrupted.
        if orphaned and not self._still_queued(generation_id):
            self.fail(generation_id, INTERRUPTED)
            _, record = self._read(generation_id)
        return record

    def _read(self, generation_id: str) -> tuple[bool, records.Generation | None]:
        with self._redis.calling():
            orphaned, flat = self._get(keys=[_gen(generation_id), _lease(generation_id)])
        return bool(orphaned), _record(generation_id, flat)

    def share(self, generation_id: str) -> records.Generation | None:
        with self._redis.calling():
            flat = self._share(keys=[_gen(generation_id)])
        return _record(generation_id, flat)

    def withdraw(self, generation_id: str, message: str) -> bool:
        with self._redis.calling():
            return bool(self._withdraw(keys=[_gen(generation_id), _lease(generation_id)], args=[message]))

    def own(self, generation_id: str) -> bool:
        with self._redis.calling():
            owned = bool(self._own(keys=[_gen(generation_id), _lease(generation_id)],
                                   args=[repr(self._clock()), self._lease_ms]))
        if owned:
            with self._lock:
                self._owned.add(generation_id)
        return owned

    def disown(self, generation_id: str) -> None:
        with self._lock:
            self._owned.discard(generation_id)

    def progress(self, generation_id: str, percent: int) -> None:
        percent = max(0, min(99, int(percent)))
        with self._redis.calling():
            self._progress(keys=[_gen(generation_id)], args=[percent])

    def complete(self, generation_id: str, image_url: str, variants: tuple[records.ImageVariant, ...] = ()) -> None:
        encoded = json.dumps([dataclasses.asdict(variant) for variant in variants])
        self._end(generation_id, "status", records.COMPLETED, "progress", 100, "image_url", image_url,
                  "image_variants", encoded)

    def fail(self, generation_id: str, message: str) -> None:
        self._end(generation_id, "status", records.FAILED, "error_message", message)

    def discard(self, generation_id: str) -> None:
        with self._lock:
            self._owned.discard(generation_id)
        with self._redis.calling():
            self._redis.client.delete(_gen(generation_id), _lease(generation_id))

    def heartbeat(self) -> None:
        """Renews the lease of every generation this replica still owns."""
        with self._lock:
            owned = list(self._owned)
        if not owned:
            return
        with self._redis.calling(), self._redis.client.pipeline(transaction=False) as pipe:
            for generation_id in owned:
                pipe.set(_lease(generation_id), b"1", px=self._lease_ms)
            pipe.execute()

    def _end(self, generation_id: str, *fields: object) -> None:
        with self._lock:
            self._owned.discard(generation_id)
        with self._redis.calling():
            self._finish(keys=[_gen(generation_id), _lease(generation_id)], args=list(fields))


class RedisResultCache:
    """Request key -> object name in Redis, the oldest going first beyond max_entries."""

    def __init__(self, connection: _Redis, max_entries: int = 256) -> None:
        self._redis = connection
        self._max_entries = max_entries
        self._put = connection.client.register_script(_PUT_RESULT)

    def get(self, key: str) -> str | None:
        with self._redis.calling():
            name = self._redis.client.get(RESULTS + "result:" + key)
        return name.decode() if name is not None else None

    def put(self, key: str, name: str) -> None:
        with self._redis.calling():
            self._put(
                keys=[RESULTS + "result:" + key, RESULTS + "results"],
                args=[name, RESULT_TTL_SECONDS, repr(time.time()), self._max_entries, key, RESULTS + "result:"],
            )


class RedisInFlight:
    """Request key -> id of the generation drawing it, in Redis, so replicas share identical work."""

    def __init__(self, connection: _Redis, ttl_seconds: int) -> None:
        self._redis = connection
        self._ttl = int(ttl_seconds)  # a safety net: entries are released when generations end
        self._replace = connection.client.register_script(_REPLACE)
        self._release = connection.client.register_script(_RELEASE)

    def claim(self, key: str, generation_id: str) -> str | None:
        with self._redis.calling():
            for _ in range(3):  # the holder may release between SET NX and GET
                if self._redis.client.set(_inflight(key), generation_id, nx=True, ex=self._ttl):
                    return None
                existing = self._redis.client.get(_inflight(key))
                if existing is not None:
                    return existing.decode()
        return None

    def replace(self, key: str, old_id: str, new_id: str) -> bool:
        with self._redis.calling():
            return bool(self._replace(keys=[_inflight(key)], args=[old_id, new_id, self._ttl]))

    def release(self, key: str, generation_id: str) -> None:
        with self._redis.calling():
            self._release(keys=[_inflight(key)], args=[generation_id])


class _Watch:
    """A daemon thread that renews leases and checks Redis every `interval` seconds."""

    def __init__(self, connection: _Redis, statuses: RedisStatusStore, interval: float,
                 on_change: Callable[[bool], None]) -> None:
        self._redis = connection
        self._statuses = statuses
        self._interval = interval
        self._on_change = on_change
        self._stop = threading.Event()
        self.up = True
        self._thread = threading.Thread(target=self._loop, name="redis-watch", daemon=True)

    def start(self) -> None:
        self._check()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._check()

    def _check(self) -> None:
        try:
            with self._redis.calling():
                self._redis.client.ping()
            self._statuses.heartbeat()
            up = True
        except PeerUnavailable as error:
            up = False
            if self.up:
                log.error("shared state unavailable", extra={"reason": str(error)})
        if up != self.up:
            if up:
                log.info("shared state available again", extra={"redis": self._redis.addr})
            self.up = up
        self._on_change(up)


def redis_state(
    addr: str,
    *,
    status_max_entries: int,
    status_ttl_seconds: int,
    lease_seconds: float,
    timeout_seconds: float = 1.0,
    results_max_entries: int = 256,
    on_change: Callable[[bool], None] = lambda up: None,
    client: redis.Redis | None = None,
    still_queued: Callable[[str], bool] = lambda generation_id: False,
) -> SharedState:
    """Statuses, results and in-flight generations in the Redis at addr; starts the lease heartbeat.

    client: a connection pool to share with other Redis users (else one is made for addr);
    still_queued: whether the generation queue still holds an id (then a lapsed lease is no interruption).
    """
    connection = _Redis(client or connect(addr, timeout_seconds), addr)
    statuses = RedisStatusStore(connection, status_max_entries, status_ttl_seconds, lease_seconds,
                                still_queued=still_queued)
    watch = _Watch(connection, statuses, lease_seconds / 3, on_change)
    watch.start()

    def close() -> None:
        watch.stop()
        connection.client.close()

    return SharedState(
        statuses=statuses,
        results=RedisResultCache(connection, results_max_entries),
        in_flight=RedisInFlight(connection, status_ttl_seconds),
        available=lambda: watch.up,
        close=close,
        description=f"redis {addr}",
    )


def _record(generation_id: str, flat: list) -> records.Generation | None:
    if not flat:
        return None
    fields = {flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat), 2)}
    return records.Generation(
        id=generation_id,
        status=fields.get("status", records.FAILED),
        progress=int(fields.get("progress", "0")),
        image_url=fields.get("image_url", ""),
        image_variants=_variants_from(fields.get("image_variants", "")),
        error_message=fields.get("error_message", ""),
        style=fields.get("style", ""),
        created=float(fields.get("created", "0")),
        started=float(fields.get("started", "0")),
        shared=fields.get("shared") == "1",
    )


def _gen(generation_id: str) -> str:
    return STATUS + "gen:" + generation_id


def _lease(generation_id: str) -> str:
    return STATUS + "lease:" + generation_id


def _inflight(key: str) -> str:
    return PREFIX + "inflight:" + key


def _variants_from(encoded: str) -> tuple[records.ImageVariant, ...]:
    """The variants a record holds; none for a record written before variants existed or mangled."""
    try:
        return tuple(records.ImageVariant(int(item["width"]), str(item["url"]), str(item["mime_type"]))
                     for item in json.loads(encoded or "[]"))
    except (ValueError, TypeError, KeyError):
        return ()

"""Shared state in Redis (REDIS_ADDR): every replica sees the same statuses, results and in-flight work.

Keys (one Redis, not Redis Cluster: the scripts below touch keys they build themselves):
  imagegen:gen:<id>         hash: status, progress, image_url, error_message, style, created; expires with
                            STATUS_TTL_SECONDS; imagegen:gens (sorted by creation) bounds their count
  imagegen:lease:<id>       exists while the replica drawing <id> is alive; refreshed every third of
                            GENERATION_LEASE_SECONDS. A `processing` generation without a lease was
                            interrupted (its replica died): the next read marks it failed.
  imagegen:result:<key>     object name drawn for a request key; imagegen:results bounds their count
  imagegen:inflight:<key>   id of the generation drawing a request key right now
  imagegen:replica:<token>  exists while Redis holds what one replica wrote; gone after a restart
                            without persistence (or a flush), which tells that replica to write back
                            the generations it is running or finished within STATUS_TTL_SECONDS
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator

import redis

from imagegen import statuses as records
from imagegen.errors import PeerUnavailable
from imagegen.redis_client import connect
from imagegen.state import INTERRUPTED, SharedState

log = logging.getLogger(__name__)

PREFIX = "imagegen:"
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

_GET = """
if redis.call('HGET', KEYS[1], 'status') == 'processing' and redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('HSET', KEYS[1], 'status', 'failed', 'error_message', ARGV[1])
end
return redis.call('HGETALL', KEYS[1])
"""

_PROGRESS = """
if redis.call('HGET', KEYS[1], 'status') == 'processing'
   and tonumber(redis.call('HGET', KEYS[1], 'progress')) < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'progress', ARGV[1])
end
"""

_FINISH = """
redis.call('DEL', KEYS[2])
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'processing' then
  redis.call('HSET', KEYS[1], unpack(ARGV, 5))
elseif status == false and ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], 'style', ARGV[4], 'created', ARGV[3], unpack(ARGV, 5))
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
end
"""

_RESTORE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
""" + _trim("KEYS[2]", "ARGV[4]", "'" + PREFIX + "gen:'") + """
return 1
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
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = connection
        self._max_entries = max_entries
        self._ttl = int(ttl_seconds)
        self._lease_ms = int(lease_seconds * 1000)
        self._clock = clock
        client = connection.client
        self._create = client.register_script(_CREATE)
        self._get = client.register_script(_GET)
        self._progress = client.register_script(_PROGRESS)
        self._finish = client.register_script(_FINISH)
        self._restore = client.register_script(_RESTORE)
        self._lock = threading.Lock()
        # What this replica wrote and could write back if Redis loses it: generations it runs (with their
        # last progress), and those it finished, until their records would expire (at most max_entries).
        self._owned: dict[str, records.Generation] = {}
        self._ended: collections.OrderedDict[str, records.Generation] = collections.OrderedDict()
        self._marker = PREFIX + "replica:" + secrets.token_urlsafe(12)
        self._marked = False  # the marker was written once: its absence now means Redis lost data
        self._lost_at: float | None = None  # when (monotonic) this replica found Redis had lost data

    def create(self, style: str) -> records.Generation:
        record = records.Generation(id=records.new_generation_id(), status=records.PROCESSING, style=style, created=self._clock())
        with self._redis.calling():
            self._create(
                keys=[_gen(record.id), _lease(record.id), PREFIX + "gens"],
                args=[record.id, style, repr(record.created), self._ttl, self._lease_ms, self._max_entries, PREFIX + "gen:"],
            )
        with self._lock:
            self._owned[record.id] = record
        return record

    def get(self, generation_id: str) -> records.Generation | None:
        if not generation_id or len(generation_id) > 64:
            return None
        with self._redis.calling():
            flat = self._get(keys=[_gen(generation_id), _lease(generation_id)], args=[INTERRUPTED])
            if not flat and self._recovering():
                flat = self._get(keys=[_gen(generation_id), _lease(generation_id)], args=[INTERRUPTED])
        if not flat:
            if self._lost_at is not None and time.monotonic() - self._lost_at < self._lease_ms / 1000:
                # Redis lost its data moments ago: the replica running or holding this one writes it back
                # within a heartbeat, so the caller keeps polling rather than being told it is unknown.
                return records.Generation(id=generation_id, status=records.PROCESSING)
            return None
        fields = {flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat), 2)}
        return records.Generation(
            id=generation_id,
            status=fields.get("status", records.FAILED),
            progress=int(fields.get("progress", "0")),
            image_url=fields.get("image_url", ""),
            error_message=fields.get("error_message", ""),
            style=fields.get("style", ""),
            created=float(fields.get("created", "0")),
        )

    def progress(self, generation_id: str, percent: int) -> None:
        percent = max(0, min(99, int(percent)))
        with self._lock:
            owned = self._owned.get(generation_id)
            if owned is not None and percent > owned.progress:
                self._owned[generation_id] = dataclasses.replace(owned, progress=percent)
        with self._redis.calling():
            self._progress(keys=[_gen(generation_id)], args=[percent])

    def complete(self, generation_id: str, image_url: str) -> None:
        self._end(generation_id, status=records.COMPLETED, progress=100, image_url=image_url)

    def fail(self, generation_id: str, message: str) -> None:
        self._end(generation_id, status=records.FAILED, error_message=message)

    def discard(self, generation_id: str) -> None:
        with self._lock:
            self._owned.pop(generation_id, None)
        with self._redis.calling():
            self._redis.client.delete(_gen(generation_id), _lease(generation_id))

    def heartbeat(self) -> None:
        """Renews the lease of every generation this replica still owns, writing back what Redis lost."""
        with self._redis.calling():
            self._recovering()
            with self._lock:
                owned = list(self._owned.values())
            if not owned:
                return
            pipe = self._redis.client.pipeline(transaction=False)
            for record in owned:
                self._restore_into(pipe, record)
                pipe.set(_lease(record.id), b"1", px=self._lease_ms)
            pipe.execute()

    def _recovering(self) -> bool:
        """Renews this replica's marker; if Redis had lost it, writes back the generations finished here
        that are still within their time to live, and returns True."""
        if self._redis.client.set(self._marker, b"1", px=self._lease_ms, get=True) is not None or not self._marked:
            self._marked = True
            return False
        self._lost_at = time.monotonic()
        horizon = self._clock() - self._ttl
        with self._lock:
            while self._ended and next(iter(self._ended.values())).created < horizon:
                self._ended.popitem(last=False)
            ended = list(self._ended.values())
        log.warning("shared state lost its data; writing back the generations held here",
                    extra={"running": len(self._owned), "finished": len(ended)})
        pipe = self._redis.client.pipeline(transaction=False)
        for record in ended:
            self._restore_into(pipe, record)
        pipe.execute()
        return True

    def _restore_into(self, pipe: redis.client.Pipeline, record: records.Generation) -> None:
        """Queues the write of a record that Redis lost (a no-op when Redis has it)."""
        ttl = int(record.created + self._ttl - self._clock())
        if ttl < 1:
            return
        fields = _fields(record)
        self._restore(keys=[_gen(record.id), PREFIX + "gens"],
                      args=[record.id, ttl, repr(record.created), self._max_entries, *fields], client=pipe)

    def _end(self, generation_id: str, **changes: object) -> None:
        with self._lock:
            owned = self._owned.pop(generation_id, None)
            ended = None if owned is None else dataclasses.replace(owned, **changes)
            if ended is not None:
                self._ended[generation_id] = ended
                while len(self._ended) > self._max_entries:
                    self._ended.popitem(last=False)
        ttl = 0 if ended is None else int(ended.created + self._ttl - self._clock())
        lost = [ttl, repr(ended.created), ended.style] if ended is not None and ttl >= 1 else ["", "", ""]
        fields = [item for name, value in changes.items() for item in (name, value)]
        with self._redis.calling():
            self._finish(keys=[_gen(generation_id), _lease(generation_id), PREFIX + "gens"],
                         args=[generation_id, *lost, *fields])


class RedisResultCache:
    """Request key -> object name in Redis, the oldest going first beyond max_entries."""

    def __init__(self, connection: _Redis, max_entries: int = 256) -> None:
        self._redis = connection
        self._max_entries = max_entries
        self._put = connection.client.register_script(_PUT_RESULT)

    def get(self, key: str) -> str | None:
        with self._redis.calling():
            name = self._redis.client.get(PREFIX + "result:" + key)
        return name.decode() if name is not None else None

    def put(self, key: str, name: str) -> None:
        with self._redis.calling():
            self._put(
                keys=[PREFIX + "result:" + key, PREFIX + "results"],
                args=[name, RESULT_TTL_SECONDS, repr(time.time()), self._max_entries, key, PREFIX + "result:"],
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
) -> SharedState:
    """Statuses, results and in-flight generations in the Redis at addr; starts the lease heartbeat.

    client: a connection pool to share with other Redis users (else one is made for addr).
    """
    connection = _Redis(client or connect(addr, timeout_seconds), addr)
    statuses = RedisStatusStore(connection, status_max_entries, status_ttl_seconds, lease_seconds)
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


def _fields(record: records.Generation) -> list[object]:
    """A record as the hash fields of imagegen:gen:<id>."""
    fields: list[object] = ["status", record.status, "progress", record.progress, "style", record.style,
                            "created", repr(record.created)]
    if record.image_url:
        fields += ["image_url", record.image_url]
    if record.error_message:
        fields += ["error_message", record.error_message]
    return fields


def _gen(generation_id: str) -> str:
    return PREFIX + "gen:" + generation_id


def _lease(generation_id: str) -> str:
    return PREFIX + "lease:" + generation_id


def _inflight(key: str) -> str:
    return PREFIX + "inflight:" + key

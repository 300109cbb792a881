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
  imagegen:{status}:epoch        a random token, set once by the first replica to find it missing; a replica
                                 that finds another token (or none) than it saw knows Redis lost its data
                                 and writes back what it holds (state/recovery.py)
  imagegen:{status}:recovering   exists for GENERATION_LEASE_SECONDS after a loss was found: an unknown id
                                 reads `processing` meanwhile, as the replica holding it may not have
                                 written it back yet
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator

import redis

from imagegen import statuses as records
from imagegen.errors import PeerUnavailable
from imagegen.redis_connect import HotScript, connect
from imagegen.state import INTERRUPTED, SharedState
from imagegen.state.recovery import Held, Recollection

log = logging.getLogger(__name__)

PREFIX = "imagegen:"
STATUS = PREFIX + "{status}:"
RESULTS = PREFIX + "{results}:"
RESULT_TTL_SECONDS = 7 * 86400  # a result outlives its count bound only if the shop is very quiet
EPOCH = STATUS + "epoch"
RECOVERING = STATUS + "recovering"
REQUEUE_FAILED = ("the service lost this picture's place in the queue while its shared state restarted; "
                  "please try again")
_TAKEN_PER_BEAT = 1000  # waiting generations checked per heartbeat, the oldest first
_ID = re.compile(r"[A-Za-z0-9_-]{22}")  # what records.new_generation_id() makes


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

# Answers {orphaned, fields}: orphaned = processing with no live lease (the caller asks the queue); for an
# unknown id also the epoch and whether a recovery is under way, so a restart is noticed at no extra call.
# ARGV[1]: the ended status the caller holds decoded for this id ('' for none): an ended record never
# changes, so while Redis has it with that status the answer is {0, 1} and the hash is not sent again.
_GET = """
local status = redis.call('HGET', KEYS[1], 'status')
if status and status == ARGV[1] then return {0, 1} end
local fields = redis.call('HGETALL', KEYS[1])
if #fields == 0 then return {0, fields, redis.call('GET', KEYS[3]) or '', redis.call('EXISTS', KEYS[4])} end
local orphaned = 0
if status == 'processing' and redis.call('EXISTS', KEYS[2]) == 0 then
  orphaned = 1
end
return {orphaned, fields}
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
if redis.call('HGET', KEYS[1], 'status') ~= 'processing' then return {0} end
redis.call('HSET', KEYS[1], 'started', ARGV[1])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
return {1, redis.call('HMGET', KEYS[1], 'style', 'created', 'progress')}
"""

_PROGRESS = """
if redis.call('HGET', KEYS[1], 'status') == 'processing'
   and tonumber(redis.call('HGET', KEYS[1], 'progress')) < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'progress', ARGV[1])
end
"""

# Writes a record this replica holds, moving it forward only: an ended record never changes, a processing
# one gains progress and its start, a missing one (Redis lost it) is written whole when ARGV[2] (its time
# to live) is given. ARGV: id, ttl, created, max_entries, prefix, lease_ms (0: delete the lease), status,
# progress, started, then the hash fields.
_WRITE = """
local current = redis.call('HMGET', KEYS[1], 'status', 'progress', 'started')
if ARGV[6] == '0' then redis.call('DEL', KEYS[3]) else redis.call('SET', KEYS[3], '1', 'PX', ARGV[6]) end
if current[1] and current[1] ~= 'processing' then return 0 end
if not current[1] then
  if ARGV[2] == '' then return 0 end
  redis.call('HSET', KEYS[1], unpack(ARGV, 10))
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
""" + _trim("KEYS[2]", "ARGV[4]", "ARGV[5]") + """
  return 1
end
if ARGV[7] ~= 'processing' then
  redis.call('HSET', KEYS[1], unpack(ARGV, 10))
  return 1
end
if tonumber(current[2] or '0') < tonumber(ARGV[8]) then redis.call('HSET', KEYS[1], 'progress', ARGV[8]) end
if not current[3] and ARGV[9] ~= '' then redis.call('HSET', KEYS[1], 'started', ARGV[9]) end
return 1
"""

# Which of the given generations a worker has taken or that have ended (their replica holds them now).
_TAKEN = """
local taken = {}
for i, key in ipairs(KEYS) do
  local g = redis.call('HMGET', key, 'status', 'started')
  if g[1] and (g[1] ~= 'processing' or g[2]) then taken[#taken + 1] = i end
end
return taken
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
    """Generation statuses in Redis; generations created here are kept alive by a heartbeat, and what this
    replica holds is written back if Redis restarts empty."""

    def __init__(
        self, connection: _Redis, max_entries: int, ttl_seconds: int, lease_seconds: float,
        clock: Callable[[], float] = time.time, still_queued: Callable[[str], bool] = lambda generation_id: False,
    ) -> None:
        self._redis = connection
        self._still_queued = still_queued
        self._ended: dict[str, records.Generation] = {}  # ended records read here, handed out again while unchanged
        self._max_entries = max_entries
        self._ttl = int(ttl_seconds)
        self._lease_ms = int(lease_seconds * 1000)
        self._clock = clock
        client = connection.client
        self._create = client.register_script(_CREATE)
        self._get = HotScript(client, _GET)  # every status poll
        self._progress = client.register_script(_PROGRESS)
        self._write = client.register_script(_WRITE)
        self._taken = client.register_script(_TAKEN)
        self._share = client.register_script(_SHARE)
        self._withdraw = client.register_script(_WITHDRAW)
        self._own = client.register_script(_OWN)
        self._held = Recollection(max_entries, ttl_seconds, clock)
        self._epoch: bytes | None = None  # the epoch seen last; None until Redis first answered
        self._recovery = threading.Lock()

    def create(self, style: str) -> records.Generation:
        record = records.Generation(id=records.new_generation_id(), status=records.PROCESSING, style=style, created=self._clock())
        with self._redis.calling():
            self._create(
                keys=[_gen(record.id), _lease(record.id), STATUS + "gens"],
                args=[record.id, style, repr(record.created), self._ttl, self._lease_ms, self._max_entries, STATUS + "gen:"],
            )
        self._held.accepted(record)
        return record

    def queued(self, generation_id: str, requeue: Callable[[], object]) -> None:
        """The queue entry of a generation created here was added: requeue adds it again after a restart."""
        self._held.queued(generation_id, requeue)

    def get(self, generation_id: str) -> records.Generation | None:
        if not generation_id or len(generation_id) > 64:
            return None
        orphaned, record, epoch, recovering = self._read(generation_id)
        if record is None and self._epoch is not None and epoch != self._epoch:
            self.recover()  # Redis lost its data since this replica last looked: write back first
            orphaned, record, epoch, recovering = self._read(generation_id)
        if record is None:
            # Just after a restart another replica may still have to write it back: not "unknown" yet.
            return records.Generation(generation_id, records.PROCESSING) if recovering and _ID.fullmatch(generation_id) else None
        # No worker keeps it alive: waiting in the queue (or about to be taken again) is not interrupted.
        if orphaned and not self._still_queued(generation_id):
            self.fail(generation_id, INTERRUPTED)
            _, record, _, _ = self._read(generation_id)
        return record

    def _read(self, generation_id: str) -> tuple[bool, records.Generation | None, bytes, bool]:
        kept = self._ended.get(generation_id)
        with self._redis.calling():
            answer = self._get(keys=[_gen(generation_id), _lease(generation_id), EPOCH, RECOVERING],
                               args=[kept.status if kept is not None else ""])
        if answer[1] == 1:  # still there, and ended as this replica read it: the same record
            return False, kept, b"", False
        record = _record(generation_id, answer[1])
        if record is None:
            return False, None, answer[2], bool(answer[3])
        if record.status != records.PROCESSING:
            if len(self._ended) >= _ENDED_KEPT:
                self._ended.clear()  # bounded; refilled by the next reads
            self._ended[generation_id] = record
        return bool(answer[0]), record, b"", False

    def close(self) -> None:
        """Closes the connections status reads keep."""
        self._get.close()

    def share(self, generation_id: str) -> records.Generation | None:
        with self._redis.calling():
            flat = self._share(keys=[_gen(generation_id)])
        return _record(generation_id, flat)

    def withdraw(self, generation_id: str, message: str) -> bool:
        with self._redis.calling():
            withdrawn = bool(self._withdraw(keys=[_gen(generation_id), _lease(generation_id)], args=[message]))
        if withdrawn:
            self._held.ended(generation_id, status=records.FAILED, error_message=message)
        return withdrawn

    def own(self, generation_id: str) -> bool:
        started = self._clock()
        with self._redis.calling():
            answer = self._own(keys=[_gen(generation_id), _lease(generation_id)], args=[repr(started), self._lease_ms])
        if not answer[0]:
            return False
        style, created, progress = (value.decode() if value is not None else "" for value in answer[1])
        self._held.running(records.Generation(generation_id, records.PROCESSING, int(progress or 0), style=style,
                                              created=float(created or started), started=started))
        return True

    def disown(self, generation_id: str) -> None:
        self._held.forget(generation_id)

    def progress(self, generation_id: str, percent: int) -> None:
        percent = max(0, min(99, int(percent)))
        self._held.progressed(generation_id, percent)
        with self._redis.calling():
            self._progress(keys=[_gen(generation_id)], args=[percent])

    def complete(self, generation_id: str, image_url: str, variants: tuple[records.ImageVariant, ...] = ()) -> None:
        self._end(generation_id, status=records.COMPLETED, progress=100, image_url=image_url, image_variants=variants)

    def fail(self, generation_id: str, message: str) -> None:
        self._end(generation_id, status=records.FAILED, error_message=message)

    def discard(self, generation_id: str) -> None:
        self._held.forget(generation_id)
        with self._redis.calling():
            self._redis.client.delete(_gen(generation_id), _lease(generation_id))

    def heartbeat(self) -> None:
        """Renews the leases of the generations this replica runs, forgets the waiting ones a worker took,
        and writes back what it holds if Redis lost its data."""
        running = self._held.running_ids()
        with self._redis.calling(), self._redis.client.pipeline(transaction=False) as pipe:
            for generation_id in running:
                pipe.set(_lease(generation_id), b"1", px=self._lease_ms)
            pipe.get(EPOCH)
            epoch = pipe.execute()[-1]
        if epoch is None or epoch != self._epoch:
            self.recover()
            return
        for record in self._held.to_write():
            with self._redis.calling():
                self._write_back(record)
            self._held.written(record.id)
        waiting = self._held.waiting_ids(_TAKEN_PER_BEAT)
        if waiting:
            with self._redis.calling():
                taken = self._taken(keys=[_gen(generation_id) for generation_id in waiting])
            self._held.taken([waiting[index - 1] for index in taken])

    def recover(self) -> None:
        """Adopts the current epoch; if Redis lost the one seen before, writes back every generation held here
        (running, ended within the time to live, waiting) and queues the waiting ones again shortly."""
        with self._recovery, self._redis.calling():
            client = self._redis.client
            seen = self._epoch
            if seen is not None and client.get(EPOCH) == seen:
                return  # another thread here has just written back
            if seen is not None:  # before the new epoch is seen anywhere, so no reader between calls an id unknown
                client.set(RECOVERING, b"1", px=self._lease_ms, nx=True)
            client.set(EPOCH, secrets.token_hex(8), nx=True)  # a new one each time: never the one lost
            self._epoch = client.get(EPOCH)
            if seen is None:
                return  # first contact: nothing was lost
            running, ended, waiting = self._held.snapshot()
            # Running and waiting ones get a lease, so that no reader calls them interrupted meanwhile.
            writes = [*((record, True) for record in running), *((record, False) for record in ended),
                      *((held.record, True) for held in waiting)]
            if writes:
                self._write_back(writes[0][0], lease=writes[0][1])  # loads the script (a cluster pipeline cannot)
                with client.pipeline(transaction=False) as pipe:
                    for record, lease in writes[1:]:
                        self._write_back(record, lease=lease, client=pipe)
                    pipe.execute()
        log.warning("shared state lost its data; wrote back the generations held here",
                    extra={"running": len(running), "finished": len(ended), "waiting": len(waiting)})
        if waiting:
            # After the replicas running some of them have written back their start (each within a third of
            # the lease), so that none is queued twice.
            timer = threading.Timer(self._lease_ms / 2000, self._requeue, [waiting])
            timer.daemon = True
            timer.start()

    def _requeue(self, waiting: list[Held]) -> None:
        """Queues again the waiting generations that no worker has taken since the loss."""
        requeued = 0
        for held in waiting:
            try:
                with self._redis.calling():
                    status, started = self._redis.client.hmget(_gen(held.record.id), "status", "started")
                if status != records.PROCESSING.encode() or started is not None:
                    continue
                if held.requeue is None:
                    self.fail(held.record.id, REQUEUE_FAILED)
                    continue
                held.requeue()
                requeued += 1
            except PeerUnavailable as error:
                log.warning("a waiting generation could not be queued again", extra={"reason": str(error)})
            except Exception:  # noqa: BLE001 (one bad entry must not keep the others from their queue)
                log.exception("a waiting generation could not be queued again")
                self._quietly_fail(held.record.id)
        log.info("waiting generations queued again after the shared state lost its data", extra={"count": requeued})

    def _quietly_fail(self, generation_id: str) -> None:
        try:
            self.fail(generation_id, REQUEUE_FAILED)
        except PeerUnavailable:
            pass

    def _end(self, generation_id: str, **changes: object) -> None:
        ended = self._held.ended(generation_id, **changes)
        with self._redis.calling():
            if ended is not None:
                try:
                    self._write_back(ended)
                except redis.RedisError:
                    self._held.unwritten(ended)  # written by the next heartbeat that reaches Redis
                    raise
            else:  # not held here: only a record Redis still has is ended, its other fields kept
                unheld = records.Generation(generation_id, records.PROCESSING, created=self._clock() - self._ttl)
                self._write_back(dataclasses.replace(unheld, **changes), fields=_changed(changes))

    def _write_back(self, record: records.Generation, *, lease: bool = False, client: object = None,
                    fields: list[object] | None = None) -> None:
        """Writes a record forward (see _WRITE); a missing one only while within its time to live."""
        ttl = int(record.created + self._ttl - self._clock())
        started = repr(record.started) if record.started else ""
        self._write(keys=[_gen(record.id), STATUS + "gens", _lease(record.id)],
                    args=[record.id, ttl if ttl >= 1 else "", repr(record.created), self._max_entries, STATUS + "gen:",
                          self._lease_ms if lease else 0, record.status, record.progress, started,
                          *(fields if fields is not None else _fields(record))],
                    client=client)


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
        statuses.close()
        connection.client.close()

    return SharedState(
        statuses=statuses,
        results=RedisResultCache(connection, results_max_entries),
        in_flight=RedisInFlight(connection, status_ttl_seconds),
        available=lambda: watch.up,
        close=close,
        description=f"redis {addr}",
        queued=statuses.queued,
    )


_ENDED_KEPT = 4096  # ended records kept decoded, per replica


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


def _fields(record: records.Generation) -> list[object]:
    """A record as the hash fields of imagegen:{status}:gen:<id>."""
    fields: list[object] = ["style", record.style, "created", repr(record.created)]
    if record.started:
        fields += ["started", repr(record.started)]
    if record.shared:
        fields += ["shared", "1"]
    return [*fields, *_changed({"status": record.status, "progress": record.progress, "image_url": record.image_url,
                                "image_variants": record.image_variants, "error_message": record.error_message})]


def _changed(changes: dict[str, object]) -> list[object]:
    """What an update sets, as hash fields (empty text left out, variants as JSON)."""
    fields: list[object] = []
    for name, value in changes.items():
        if name == "image_variants":
            value = json.dumps([dataclasses.asdict(variant) for variant in value])  # type: ignore[attr-defined]
        elif value == "":
            continue
        fields += [name, value]
    return fields


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

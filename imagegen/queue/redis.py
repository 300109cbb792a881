"""The generation queue in Redis Streams (REDIS_ADDR): every replica takes from it; nothing accepted is lost.

Keys, all under one hash tag so every script touches one Redis Cluster slot (P = imagegen:{queue}:):
  P lane:<lane>   stream per lane (a shopper's hashed user_id; "-" for calls without one), consumer group
                  "workers"; an entry is XDELeted when acked or cancelled, the stream deleted when empty
  P order         sorted set of waiting entries: score = fair tag, member = <16-digit arrival>:<generation id>
  P returned      sorted set of handed-back entries (still pending in their stream), taken before `order`
  P lanes         hash lane -> last tag given in it (lanes whose stream exists)
  P busy          set of lanes with delivered (pending) entries, scanned for abandoned leases
  P job:<id>      hash: lane, sid (stream id), m (member), tag, enq (ms), n (attempts), low (lowest position)
  P v / seq       the tag of the last entry started / the arrival counter
  P running       how many entries are taken and not acked
  P wake          a short stream every enqueue and hand-back appends to, so idle takers block on XREAD
Times are Redis TIME, so leases and waits agree across replicas. A lease is the pending entry's idle time:
renew resets it (XCLAIM JUSTID), and an entry idle past the lease is taken again by XCLAIM (XPENDING IDLE
finds it with its delivery count, which XAUTOCLAIM does not return and poisoning needs).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import redis

from imagegen.errors import PeerUnavailable
from imagegen.queue import DEFAULT_MAX_ATTEMPTS, Claimed, Depth, Job

PREFIX = "imagegen:{queue}:"
GROUP = "workers"
SHARED_LANE = "-"

_LIB = """
local P = ARGV[1]
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function field(entry, name)
  for i = 1, #entry, 2 do if entry[i] == name then return entry[i + 1] end end
  return false
end
local function tidy_lane(lane)
  local stream = P .. 'lane:' .. lane
  if redis.call('XPENDING', stream, 'workers')[1] == 0 then redis.call('SREM', P .. 'busy', lane) end
  if redis.call('XLEN', stream) == 0 then
    redis.call('DEL', stream)
    redis.call('HDEL', P .. 'lanes', lane)
  end
end
local function drop(lane, sid, job)
  redis.call('XDEL', P .. 'lane:' .. lane, sid)
  redis.call('DEL', job)
  tidy_lane(lane)
end
"""

_ENQUEUE = _LIB + """
local gid, lane, payload = ARGV[2], ARGV[3], ARGV[4]
local job = P .. 'job:' .. gid
if redis.call('EXISTS', job) == 1 then return 0 end
local stream = P .. 'lane:' .. lane
local last = redis.call('HGET', P .. 'lanes', lane)
if not last then
  redis.pcall('XGROUP', 'CREATE', stream, 'workers', '0', 'MKSTREAM')
  last = 0
end
local tag = math.max(tonumber(redis.call('GET', P .. 'v') or '0'), tonumber(last)) + 1
local now = now_ms()
local sid = redis.call('XADD', stream, '*', 'g', gid, 'p', payload, 'e', now)
local member = string.format('%016d', redis.call('INCR', P .. 'seq')) .. ':' .. gid
redis.call('ZADD', P .. 'order', tag, member)
redis.call('HSET', P .. 'lanes', lane, tag)
redis.call('HSET', job, 'lane', lane, 'sid', sid, 'm', member, 'tag', tag, 'enq', now, 'n', 0)
redis.call('XADD', P .. 'wake', 'MAXLEN', '~', 64, '*', 'w', '1')
return 1
"""

# Handed-back entries first (they had started), then abandoned ones past their lease, then the fair order.
# Answers {0, wake id} (nothing), {1, ...} taken, {2, ...} poisoned, {3, ...} taken again after a lease.
_TAKE = _LIB + """
local consumer, lease_ms, max_attempts, scan = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local now = now_ms()
local function started(gid, lane, entry, attempts, code)
  local job = P .. 'job:' .. gid
  local enq = redis.call('HGET', job, 'enq')
  redis.call('HSET', job, 'n', attempts, 'c', consumer)
  redis.call('SADD', P .. 'busy', lane)
  return {code, gid, lane, field(entry, 'p'), enq, now, attempts}
end
local top = redis.call('ZRANGE', P .. 'returned', 0, 0)
if #top > 0 then
  local gid = string.sub(top[1], 18)
  local job = redis.call('HMGET', P .. 'job:' .. gid, 'lane', 'sid', 'n')
  redis.call('ZREM', P .. 'returned', top[1])
  local attempts = tonumber(job[3]) + 1
  local got = redis.call('XCLAIM', P .. 'lane:' .. job[1], 'workers', consumer, 0, job[2], 'RETRYCOUNT', attempts)
  redis.call('INCR', P .. 'running')
  return started(gid, job[1], got[1][2], attempts, 1)
end
if scan == '1' then
  for _, lane in ipairs(redis.call('SMEMBERS', P .. 'busy')) do
    local stream = P .. 'lane:' .. lane
    for _, p in ipairs(redis.call('XPENDING', stream, 'workers', 'IDLE', lease_ms, '-', '+', 16)) do
      local entry = redis.call('XRANGE', stream, p[1], p[1])[1]
      local gid = field(entry[2], 'g')
      local job = P .. 'job:' .. gid
      if not redis.call('ZSCORE', P .. 'returned', redis.call('HGET', job, 'm')) then
        local attempts = tonumber(p[4])
        if attempts >= max_attempts then
          local enq = redis.call('HGET', job, 'enq')
          redis.call('XACK', stream, 'workers', p[1])
          redis.call('DECR', P .. 'running')
          drop(lane, p[1], job)
          return {2, gid, lane, field(entry[2], 'p'), enq, now, attempts}
        end
        local got = redis.call('XCLAIM', stream, 'workers', consumer, lease_ms, p[1], 'RETRYCOUNT', attempts + 1)
        if #got > 0 then return started(gid, lane, got[1][2], attempts + 1, 3) end
      end
    end
    tidy_lane(lane)
  end
end
top = redis.call('ZRANGE', P .. 'order', 0, 0)
if #top == 0 then
  local last = redis.call('XREVRANGE', P .. 'wake', '+', '-', 'COUNT', 1)
  return {0, last[1] and last[1][1] or '0-0'}
end
local gid = string.sub(top[1], 18)
local job = redis.call('HMGET', P .. 'job:' .. gid, 'lane', 'sid', 'tag')
redis.call('ZREM', P .. 'order', top[1])
local read = redis.call('XREADGROUP', 'GROUP', 'workers', consumer, 'COUNT', 1, 'STREAMS', P .. 'lane:' .. job[1], '>')
local entry = read[1][2][1]
if entry[1] ~= job[2] then return redis.error_reply('queue out of order in lane ' .. job[1]) end
if tonumber(job[3]) > tonumber(redis.call('GET', P .. 'v') or '0') then redis.call('SET', P .. 'v', job[3]) end
redis.call('INCR', P .. 'running')
return started(gid, job[1], entry[2], 1, 1)
"""

_RENEW = _LIB + """
local job = redis.call('HMGET', P .. 'job:' .. ARGV[3], 'lane', 'sid', 'm')
if not job[1] or redis.call('ZSCORE', P .. 'returned', job[3]) then return 0 end
local stream = P .. 'lane:' .. job[1]
local p = redis.call('XPENDING', stream, 'workers', job[2], job[2], 1)
if #p == 0 or p[1][2] ~= ARGV[2] then return 0 end
redis.call('XCLAIM', stream, 'workers', ARGV[2], 0, job[2], 'JUSTID')
return 1
"""

_ACK = _LIB + """
local job = P .. 'job:' .. ARGV[2]
local fields = redis.call('HMGET', job, 'lane', 'sid', 'm')
if not fields[1] or redis.call('ZSCORE', P .. 'order', fields[3]) or redis.call('ZSCORE', P .. 'returned', fields[3]) then
  return 0
end
local stream = P .. 'lane:' .. fields[1]
if redis.call('XACK', stream, 'workers', fields[2]) == 0 then return 0 end
redis.call('DECR', P .. 'running')
drop(fields[1], fields[2], job)
return 1
"""

_HAND_BACK = _LIB + """
local job = P .. 'job:' .. ARGV[3]
local fields = redis.call('HMGET', job, 'lane', 'sid', 'm', 'tag', 'n')
if not fields[1] or redis.call('ZSCORE', P .. 'returned', fields[3]) then return 0 end
local p = redis.call('XPENDING', P .. 'lane:' .. fields[1], 'workers', fields[2], fields[2], 1)
if #p == 0 or p[1][2] ~= ARGV[2] then return 0 end
redis.call('HSET', job, 'n', tonumber(fields[5]) - 1)
redis.call('ZADD', P .. 'returned', fields[4], fields[3])
redis.call('DECR', P .. 'running')
redis.call('XADD', P .. 'wake', 'MAXLEN', '~', 64, '*', 'w', '1')
return 1
"""

_CANCEL = _LIB + """
local job = P .. 'job:' .. ARGV[2]
local fields = redis.call('HMGET', job, 'lane', 'sid', 'm')
if not fields[1] then return 0 end
local stream = P .. 'lane:' .. fields[1]
if redis.call('ZREM', P .. 'order', fields[3]) == 0 then
  if redis.call('ZREM', P .. 'returned', fields[3]) == 0 then return 0 end
  redis.call('XACK', stream, 'workers', fields[2])
end
drop(fields[1], fields[2], job)
return 1
"""

_POSITION = _LIB + """
local job = P .. 'job:' .. ARGV[2]
local fields = redis.call('HMGET', job, 'm', 'low')
if not fields[1] then return -1 end
local rank = redis.call('ZRANK', P .. 'returned', fields[1])
if not rank then
  rank = redis.call('ZRANK', P .. 'order', fields[1])
  if not rank then return 0 end
  rank = rank + redis.call('ZCARD', P .. 'returned')
end
if fields[2] and tonumber(fields[2]) <= rank then return tonumber(fields[2]) end
redis.call('HSET', job, 'low', rank)  -- written only when it falls: a status read is mostly read-only
return rank
"""


class RedisQueue:
    """The queue in Redis: one stream per lane read by one consumer group, ordered by the scripts above."""

    def __init__(self, client: redis.Redis, lease_seconds: float, max_attempts: int = DEFAULT_MAX_ATTEMPTS,
                 max_block_seconds: float = 0.5, addr: str = "") -> None:
        self._client = client
        self._lease_ms = int(lease_seconds * 1000)
        self._max_attempts = max_attempts
        self._max_block = max_block_seconds  # below the client's socket timeout
        self._addr = addr
        self._next_scan = 0.0
        # Every script names its first key, so a cluster client sends it to the slot of the tag.
        self._scripts = {name: client.register_script(source) for name, source in (
            ("enqueue", _ENQUEUE), ("take", _TAKE), ("renew", _RENEW), ("ack", _ACK),
            ("hand_back", _HAND_BACK), ("cancel", _CANCEL), ("position", _POSITION))}

    def enqueue(self, job: Job) -> bool:
        return bool(self._run("enqueue", job.generation_id, job.lane or SHARED_LANE, job.payload))

    def take(self, consumer: str, block_seconds: float = 0.0) -> Claimed | None:
        deadline = time.monotonic() + block_seconds
        look = True
        while True:
            scan = time.monotonic() >= self._next_scan
            if look or scan:
                answer = self._run("take", consumer, self._lease_ms, self._max_attempts, "1" if scan else "0")
                if scan and answer[0] not in (2, 3):  # nothing abandoned: look again in a quarter lease
                    self._next_scan = time.monotonic() + self._lease_ms / 4000
                if answer[0] != 0:
                    return _claimed(answer)
                woken_after = answer[1]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            wait = min(remaining, self._max_block, max(0.0, self._next_scan - time.monotonic()) + 0.001)
            with self._calling():
                # Nothing was enqueued or handed back since the script looked: no need to look again.
                look = bool(self._client.xread({PREFIX + "wake": woken_after}, count=1,
                                               block=max(1, int(wait * 1000))))

    def wait_for_work(self, block_seconds: float) -> bool:
        deadline = time.monotonic() + block_seconds
        with self._calling(), self._client.pipeline(transaction=False) as pipe:
            pipe.xrevrange(PREFIX + "wake", count=1)  # first: an enqueue after it wakes the read below
            pipe.zcard(PREFIX + "order")
            pipe.zcard(PREFIX + "returned")
            last, waiting, returned = pipe.execute()
        if waiting or returned:
            return True
        while (remaining := deadline - time.monotonic()) > 0:
            scan_in = self._next_scan - time.monotonic()
            if scan_in <= 0:
                return True  # a take must look for abandoned leases
            with self._calling():
                if self._client.xread({PREFIX + "wake": last[0][0] if last else "0-0"}, count=1,
                                      block=max(1, int(min(remaining, self._max_block, scan_in + 0.001) * 1000))):
                    return True
        return False

    def renew(self, consumer: str, generation_id: str) -> bool:
        return bool(self._run("renew", consumer, generation_id))

    def ack(self, generation_id: str) -> bool:
        return bool(self._run("ack", generation_id))

    def hand_back(self, consumer: str, generation_id: str) -> bool:
        return bool(self._run("hand_back", consumer, generation_id))

    def cancel(self, generation_id: str) -> bool:
        return bool(self._run("cancel", generation_id))

    def position(self, generation_id: str) -> int | None:
        rank = int(self._run("position", generation_id))
        return None if rank < 0 else rank

    def holds(self, generation_id: str) -> bool:
        with self._calling():
            return bool(self._client.exists(PREFIX + "job:" + generation_id))

    def depth(self) -> Depth:
        with self._calling(), self._client.pipeline(transaction=False) as pipe:
            pipe.zcard(PREFIX + "order")
            pipe.zcard(PREFIX + "returned")
            pipe.get(PREFIX + "running")
            waiting, returned, running = pipe.execute()
        return Depth(waiting=int(waiting) + int(returned), running=max(0, int(running or 0)))

    def _run(self, name: str, *args: object) -> object:
        with self._calling():
            return self._scripts[name](keys=[PREFIX + "order"], args=[PREFIX, *args])

    def _calling(self) -> contextlib.AbstractContextManager[None]:
        return _calling(self._addr)


@contextlib.contextmanager
def _calling(addr: str) -> Iterator[None]:
    """Turns a Redis error into PeerUnavailable naming the address, as the shared state does."""
    try:
        yield
    except redis.RedisError as error:
        detail = "no answer in time" if isinstance(error, redis.TimeoutError) else type(error).__name__
        raise PeerUnavailable(f"the generation queue (Redis at {addr or '?'})", detail) from None


def _claimed(answer: list) -> Claimed:
    _, gid, lane, payload, enqueued, now, attempts = answer
    lane = lane.decode()
    job = Job(gid.decode(), "" if lane == SHARED_LANE else lane, bytes(payload))
    enqueued_ms, now_ms = int(enqueued), int(now)
    return Claimed(job, int(attempts), enqueued_ms / 1000, (now_ms - enqueued_ms) / 1000, poisoned=answer[0] == 2)

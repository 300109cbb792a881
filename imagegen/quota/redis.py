"""Gemini's quota in Redis (REDIS_ADDR): every replica counts against the same limits.

Keys per model, under one hash tag so each script touches one Redis Cluster slot (Q = imagegen:{quota:<model>}:):
  Q slots    sorted set of held slot tokens, score = lease end (ms); expired ones are dropped, so a crashed
             replica's slots come back after slot_lease_seconds
  Q calls    sorted set of tokens sent in the last minute, score = send time (ms)
  Q pause    exists (with a PX expiry) while the model is paused after a 429
  Q cut      hash: limit (the adaptive concurrency, a float), expiring forget_cut_seconds after the last 429
  Q streak   429s in a row (reset by a success), for the exponential pause
  Q r429     429s seen, all replicas
Times are Redis TIME, so every replica agrees on leases, the minute and the pause.
"""

from __future__ import annotations

import redis

from imagegen.errors import PeerUnavailable
from imagegen.quota import Grant, QuotaPolicy, QuotaState

_LIB = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function limit(max)
  local cut = tonumber(redis.call('HGET', KEYS[4], 'limit') or '0')
  if cut > 0 and (max == 0 or cut < max) then return math.floor(cut) end
  return max
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 60000)
"""

_ACQUIRE = _LIB + """
local token, max, per, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local pause = redis.call('PTTL', KEYS[3])
if pause > 0 then return {0, pause} end
local l = limit(max)
if l > 0 and redis.call('ZCARD', KEYS[1]) >= l then return {0, 50} end
if per > 0 then
  if redis.call('ZCARD', KEYS[2]) >= per then
    local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    return {0, tonumber(oldest[2]) + 60000 - now}
  end
  redis.call('ZADD', KEYS[2], now, token)
  redis.call('PEXPIRE', KEYS[2], 61000)
end
redis.call('ZADD', KEYS[1], now + lease, token)
redis.call('PEXPIRE', KEYS[1], lease + 1000)
return {1, 0}
"""

_RELEASE = _LIB + """
local token, outcome, retry_after, max = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local base, top, forget = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local held = redis.call('ZREM', KEYS[1], token)
if outcome == 'unused' then
  redis.call('ZREM', KEYS[2], token)
elseif outcome == 'ok' then
  redis.call('DEL', KEYS[5])
  local cut = tonumber(redis.call('HGET', KEYS[4], 'limit') or '0')
  if cut > 0 then
    cut = cut + 1 / cut
    if max > 0 and cut >= max then redis.call('HDEL', KEYS[4], 'limit') else redis.call('HSET', KEYS[4], 'limit', cut) end
  end
elseif outcome == 'rate_limited' then
  redis.call('INCR', KEYS[6])
  local streak = redis.call('INCR', KEYS[5])
  redis.call('PEXPIRE', KEYS[5], forget)
  local pause = retry_after
  if pause <= 0 then pause = math.min(top, base * 2 ^ (streak - 1)) end
  pause = math.min(pause, top)
  local left = redis.call('PTTL', KEYS[3])
  if left <= 0 then
    local current = limit(max)
    if current == 0 then current = redis.call('ZCARD', KEYS[1]) + held end
    redis.call('HSET', KEYS[4], 'limit', math.max(1, math.floor(current / 2)))
  end
  if pause > left then redis.call('SET', KEYS[3], '1', 'PX', math.floor(pause)) end
  redis.call('PEXPIRE', KEYS[4], forget)
end
return held
"""

_RENEW = _LIB + """
return redis.call('ZADD', KEYS[1], 'XX', 'CH', now + tonumber(ARGV[2]), ARGV[1])
"""

_STATE = _LIB + """
return {redis.call('ZCARD', KEYS[1]), limit(tonumber(ARGV[1])), math.max(0, redis.call('PTTL', KEYS[3])),
        tonumber(redis.call('GET', KEYS[6]) or '0'), redis.call('ZCARD', KEYS[2])}
"""


class RedisQuotaStore:
    """The quota's counts in Redis, each step one Lua script on the model's slot."""

    def __init__(self, client: redis.Redis, addr: str = "") -> None:
        self._client = client
        self._addr = addr
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)
        self._renew = client.register_script(_RENEW)
        self._state = client.register_script(_STATE)

    def try_acquire(self, model: str, token: str, policy: QuotaPolicy) -> Grant:
        granted, wait_ms = self._run(self._acquire, model, token, policy.max_concurrent, policy.per_minute,
                                     int(policy.slot_lease_seconds * 1000))
        return Grant(bool(granted), int(wait_ms) / 1000)

    def release(self, model: str, token: str, outcome: str, retry_after: float | None, policy: QuotaPolicy) -> None:
        self._run(self._release, model, token, outcome, int((retry_after or 0) * 1000), policy.max_concurrent,
                  int(policy.base_pause_seconds * 1000), int(policy.max_pause_seconds * 1000),
                  int(policy.forget_cut_seconds * 1000))

    def renew(self, model: str, token: str, policy: QuotaPolicy) -> bool:
        return bool(self._run(self._renew, model, token, int(policy.slot_lease_seconds * 1000)))

    def state(self, model: str, policy: QuotaPolicy) -> QuotaState:
        in_flight, limit, pause_ms, rate_limited, calls = self._run(self._state, model, policy.max_concurrent)
        return QuotaState(int(in_flight), int(limit), int(pause_ms) / 1000, int(rate_limited), int(calls))

    def _run(self, script, model: str, *args: object):
        tag = "imagegen:{quota:" + model.replace("}", "_") + "}:"
        keys = [tag + name for name in ("slots", "calls", "pause", "cut", "streak", "r429")]
        try:
            return script(keys=keys, args=list(args))
        except redis.RedisError as error:
            detail = "no answer in time" if isinstance(error, redis.TimeoutError) else type(error).__name__
            raise PeerUnavailable(f"the Gemini quota (Redis at {self._addr or '?'})", detail) from None

"""The pace's Lua scripts, each one atomic step on one credential's keys, registered once per Redis client.

Every script reads the clock with Redis ``TIME``, so every worker on every host agrees on "now" (expiries given
by the caller, as in a rebuild, are epoch seconds). Numbers go back to Python as strings: Redis would truncate
a Lua float to an integer. Replies of the granting scripts: ``{code, wait_s, reason}`` with code 1 granted,
0 refused, -1 the state is missing (the caller rebuilds it, then asks again).
"""

from __future__ import annotations

import threading
import weakref

import redis
from redis.commands.core import Script

_PRELUDE = """
local function now_s()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function num(v, d)
  if v then return tonumber(v) end
  return d
end
local function clamp(v, lo, hi)
  if v > hi then return hi end
  if v < lo then return lo end
  return v
end
local function cur_rate(aimd, cls, max_rps, min_rps)
  return clamp(num(redis.call('HGET', aimd, 'rate:' .. cls), max_rps), min_rps, max_rps)
end
local function cur_cap(aimd, cls, max_cap)
  return clamp(math.floor(num(redis.call('HGET', aimd, 'cap:' .. cls), max_cap)), 1, max_cap)
end
local function fmt(x)
  return string.format('%.6f', x)
end
local function paused_until(aimd, cls)
  return num(redis.call('HGET', aimd, 'pause:' .. cls), 0)
end
"""

# KEYS: epoch, slots, aimd, stats, line.  ARGV: holder, ttl_s, max_cap, class, busy_retry_s, behind_line
# With behind_line '1', a newcomer is refused ('full') while the line key says jobs wait for the scheduler's
# grants, even if a slot is free this instant: freed slots go through the scheduler's round robin.
# A holder that asks again is checked like a newcomer that does not count itself: normally it keeps its slot
# ('held'); if its class is paused, or the set is over the cap (a rebuild restored more than the cap, or a 429
# cut it), it loses the slot: asking means "about to use it", and it may not.
ACQUIRE = """
local now = now_s()
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, '0', 'rebuilding'} end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local held = redis.call('ZSCORE', KEYS[2], ARGV[1])
local others = redis.call('ZCARD', KEYS[2])
if held then others = others - 1 end
local pause = paused_until(KEYS[3], ARGV[4])
local refusal, hint = nil, 0
if pause > now then
  refusal, hint = 'paused', pause - now
elseif others >= cur_cap(KEYS[3], ARGV[4], tonumber(ARGV[3])) then
  refusal, hint = 'full', tonumber(ARGV[5])
  local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  if first[2] and tonumber(first[2]) - now < hint then hint = tonumber(first[2]) - now end
elseif not held and ARGV[6] == '1' and redis.call('EXISTS', KEYS[5]) == 1 then
  refusal, hint = 'full', tonumber(ARGV[5])  -- others wait in the scheduler's line: join it, no overtaking
end
if refusal then
  if held then redis.call('ZREM', KEYS[2], ARGV[1]) end
  redis.call('HINCRBY', KEYS[4], 'throttled:' .. ARGV[4], 1)
  return {0, fmt(hint), refusal}
end
redis.call('ZADD', KEYS[2], 'GT', now + tonumber(ARGV[2]), ARGV[1])
if held then return {1, '0', 'held'} end
return {1, '0', 'ok'}
"""

# KEYS: epoch, slots.  ARGV: ttl_s, holder...   Reply: {1, lost holder...} or {-1}
RENEW = """
local now = now_s()
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local expiry = now + tonumber(ARGV[1])
local reply = {1}
for i = 2, #ARGV do
  if redis.call('ZSCORE', KEYS[2], ARGV[i]) then
    redis.call('ZADD', KEYS[2], 'XX', 'GT', expiry, ARGV[i])
  else
    table.insert(reply, ARGV[i])
  end
end
return reply
"""

# KEYS: epoch, slots, released.  ARGV: resource, tombstone_ms, holder...   Reply: how many were held
RELEASE = """
local n = 0
local missing = redis.call('EXISTS', KEYS[1]) == 0
for i = 3, #ARGV do
  n = n + redis.call('ZREM', KEYS[2], ARGV[i])
  if missing then redis.call('SADD', KEYS[3], ARGV[1] .. ':' .. ARGV[i]) end
end
if missing then redis.call('PEXPIRE', KEYS[3], ARGV[2]) end
return n
"""

# KEYS: aimd, gcra, stats.  ARGV: class, max_rps, min_rps
TAKE = """
local now = now_s()
local cls = ARGV[1]
local pause = paused_until(KEYS[1], cls)
if pause > now then
  redis.call('HINCRBY', KEYS[3], 'throttled:' .. cls, 1)
  return {0, fmt(pause - now), 'paused'}
end
local max_rps = tonumber(ARGV[2])
local rate = cur_rate(KEYS[1], cls, max_rps, tonumber(ARGV[3]))
local wait = math.max(num(redis.call('HGET', KEYS[2], 'tat:*'), 0) - now,
                      num(redis.call('HGET', KEYS[2], 'tat:' .. cls), 0) - now)
if wait > 0 then
  redis.call('HINCRBY', KEYS[3], 'throttled:' .. cls, 1)
  return {0, fmt(wait), 'rate'}
end
redis.call('HSET', KEYS[2], 'tat:*', fmt(now + 1 / max_rps), 'tat:' .. cls, fmt(now + 1 / rate))
local degraded = 0
if rate < max_rps or (ARGV[4] ~= '' and cur_cap(KEYS[1], cls, tonumber(ARGV[4])) < tonumber(ARGV[4])) then
  degraded = 1
end
return {1, '0', 'ok', degraded}
"""

# KEYS: aimd, stats.  ARGV: class, pause_s, max_rps, min_rps, max_cap ('' for a class without a resource)
# Reply: {cut, pause_remaining, rate_before, rate_after, cap_before, cap_after}; caps are -1 without a resource.
PENALIZE = """
local now = now_s()
local cls = ARGV[1]
redis.call('HINCRBY', KEYS[2], '429:' .. cls, 1)
local pause = paused_until(KEYS[1], cls)
local rate = cur_rate(KEYS[1], cls, tonumber(ARGV[3]), tonumber(ARGV[4]))
local new_rate, cap, new_cap, cut = rate, -1, -1, 0
if ARGV[5] ~= '' then cap = cur_cap(KEYS[1], cls, tonumber(ARGV[5])) end
new_cap = cap
if pause <= now then
  cut = 1
  new_rate = math.max(tonumber(ARGV[4]), rate / 2)
  redis.call('HSET', KEYS[1], 'rate:' .. cls, fmt(new_rate), 'rok:' .. cls, 0, 'cok:' .. cls, 0)
  if cap > 0 then
    new_cap = math.max(1, math.floor(cap / 2))
    redis.call('HSET', KEYS[1], 'cap:' .. cls, new_cap)
  end
end
local until_ = math.max(pause, now + tonumber(ARGV[2]))
redis.call('HSET', KEYS[1], 'pause:' .. cls, fmt(until_))
return {cut, fmt(until_ - now), fmt(rate), fmt(new_rate), cap, new_cap}
"""

# KEYS: aimd.  ARGV: class, max_rps, min_rps, rps_step, recover_s, max_cap ('' without a resource)
# Reply: {changed, rate, cap}; no change while the class is paused.
REWARD = """
local now = now_s()
local cls = ARGV[1]
local max_rps = tonumber(ARGV[2])
local rate = cur_rate(KEYS[1], cls, max_rps, tonumber(ARGV[3]))
local cap = -1
if ARGV[6] ~= '' then cap = cur_cap(KEYS[1], cls, tonumber(ARGV[6])) end
if paused_until(KEYS[1], cls) > now then return {0, fmt(rate), cap} end
local changed = 0
if rate < max_rps then
  local ok = redis.call('HINCRBY', KEYS[1], 'rok:' .. cls, 1)
  if ok >= math.max(1, math.ceil(rate * tonumber(ARGV[5]))) then
    rate = math.min(max_rps, rate + tonumber(ARGV[4]))
    redis.call('HSET', KEYS[1], 'rate:' .. cls, fmt(rate), 'rok:' .. cls, 0)
    changed = 1
  end
end
if cap > 0 and cap < tonumber(ARGV[6]) then
  local ok = redis.call('HINCRBY', KEYS[1], 'cok:' .. cls, 1)
  if ok >= cap then
    cap = cap + 1
    redis.call('HSET', KEYS[1], 'cap:' .. cls, cap, 'cok:' .. cls, 0)
    changed = 1
  end
end
return {changed, fmt(rate), cap}
"""

# KEYS: epoch, released, registry, slots...   ARGV: credential, then per slots key: resource, count,
# holder, expiry, holder, expiry...   Expired holders and tombstoned releases are skipped.
RESTORE = """
local now = now_s()
local i = 2
for k = 4, #KEYS do
  local resource, n = ARGV[i], tonumber(ARGV[i + 1])
  i = i + 2
  for _ = 1, n do
    local holder, expiry = ARGV[i], tonumber(ARGV[i + 1])
    i = i + 2
    if expiry > now and redis.call('SISMEMBER', KEYS[2], resource .. ':' .. holder) == 0 then
      redis.call('ZADD', KEYS[k], 'GT', expiry, holder)
    end
  end
end
redis.call('DEL', KEYS[2])
redis.call('SET', KEYS[1], fmt(now))
redis.call('SADD', KEYS[3], ARGV[1])
return 1
"""

# KEYS: lock.  ARGV: token.
UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: epoch, aimd, stats, slots...   Reply: {now, epoch exists, aimd pairs, stats pairs, live count per slots key}
SNAPSHOT = """
local now = now_s()
local reply = {fmt(now), redis.call('EXISTS', KEYS[1]), redis.call('HGETALL', KEYS[2]),
               redis.call('HGETALL', KEYS[3])}
for k = 4, #KEYS do table.insert(reply, redis.call('ZCOUNT', KEYS[k], '(' .. fmt(now), '+inf')) end
return reply
"""

# KEYS: slots.  Reply: {now, holder, expiry, holder, expiry...} of the live holders.
HOLDERS = """
local now = now_s()
local reply = {fmt(now)}
for _, v in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. fmt(now), '+inf', 'WITHSCORES')) do
  table.insert(reply, v)
end
return reply
"""

_SOURCES = {
    "acquire": ACQUIRE,
    "renew": RENEW,
    "release": RELEASE,
    "take": TAKE,
    "penalize": PENALIZE,
    "reward": REWARD,
    "restore": RESTORE,
    "unlock": UNLOCK,
    "snapshot": SNAPSHOT,
    "holders": HOLDERS,
}


class Scripts:
    """The scripts registered on one client (redis-py loads each once, then calls it by its SHA)."""

    def __init__(self, client: redis.Redis) -> None:
        for name, body in _SOURCES.items():
            prelude = _PRELUDE if name not in ("unlock", "release") else ""
            setattr(self, name, client.register_script(prelude + body))

    acquire: Script
    renew: Script
    release: Script
    take: Script
    penalize: Script
    reward: Script
    restore: Script
    unlock: Script
    snapshot: Script
    holders: Script


_lock = threading.Lock()
_registered: weakref.WeakKeyDictionary[redis.Redis, Scripts] = weakref.WeakKeyDictionary()


def scripts_for(client: redis.Redis) -> Scripts:
    """The scripts of ``client``, registered on first use and shared by every limiter on that client."""
    with _lock:
        found = _registered.get(client)
        if found is None:
            found = _registered[client] = Scripts(client)
        return found

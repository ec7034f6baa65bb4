"""The Redis store's Lua scripts: every write, and the reads that must see one moment.

A script runs atomically in Redis (nothing else runs meanwhile) but cannot roll back: each one
finds every reason to refuse *before* its first write, as ``memory.py`` does. Each script takes
no KEYS; ``ARGV[1]`` is the key prefix, ``ARGV[2]`` a JSON array of strings: its arguments,
read in order with ``arg()`` (a list travels as its length, then its items). One argument
rather than thirty, because redis-py's encoding of each argument cost more than the script.
Scripts answer a table whose first item says how it went (``ok``, or the refusal:
``conflict``, ``lease``, ``notfound``...); ``redis.py`` turns refusals into the store's
exceptions.

Times (``now``, deadlines, expiries) arrive as Python's ``repr`` of a float and are stored as
given: Lua would print a number with 14 digits and lose the microseconds. Expiries compare the
stored time with the caller's ``now`` (the store's clock, as for every other time the store
records); Redis's own expiry (``PX``, the same TTL) only frees the memory afterwards.

The key layout is in docs/store.md. Keys are built in the scripts, so the store needs one Redis
(a primary, with replicas or Sentinel), not Redis Cluster.
"""

from __future__ import annotations

PRELUDE = r"""
local P = ARGV[1]
local A = cjson.decode(ARGV[2])
local at = 0
local function arg()
  at = at + 1
  return A[at]
end
local function list_of(n)
  local out = {}
  for i = 1, tonumber(n) do out[i] = arg() end
  return out
end
local function pairs_of(n)
  local out = {}
  for i = 1, tonumber(n) do out[i] = {arg(), arg()} end
  return out
end
local function key(kind, id)
  return P .. ':' .. kind .. ':' .. id
end
local FINAL = {done = true, failed = true}

-- A write carrying a fencing token goes through only while that token holds a live lease.
local function fence_refused(cid, fence, now)
  if fence == '' then return nil end
  local held = redis.call('HMGET', key('lease', cid), 'token', 'until')
  local live = held[1] and tonumber(held[2]) > tonumber(now)
  if live and held[1] == fence then return nil end
  return {'lease', live and held[1] or false}
end

local function push_journal(cid, now, entries)
  if #entries == 0 then return end
  local items = {}
  for i, e in ipairs(entries) do items[i] = e[1] .. ' ' .. now .. ' ' .. e[2] end
  redis.call('RPUSH', key('journal', cid), unpack(items))
end

-- A key already in the outbox keeps its state: re-journaling must never resend a command.
local function add_commands(cid, now, new)
  for _, c in ipairs(new) do
    local ck = key('cmd', c[1])
    if redis.call('EXISTS', ck) == 0 then
      local n = redis.call('INCR', P .. ':cmd-seq')
      redis.call('HSET', ck, 'call_id', cid, 'command', c[2], 'state', 'pending',
        'attempts', '0', 'updated_at', now, 'n', n)
      redis.call('ZADD', P .. ':open', n, c[1])
      redis.call('ZADD', key('cmds', cid), n, c[1])
    end
  end
end

local function set_timers(cid, timers)
  for _, t in ipairs(timers) do
    redis.call('HSET', key('timers', cid), t[1], t[2])
    redis.call('ZADD', P .. ':due', t[2], cid .. '\0' .. t[1])
  end
end

local function clear_timers(cid, ids)
  for _, tid in ipairs(ids) do
    redis.call('HDEL', key('timers', cid), tid)
    redis.call('ZREM', P .. ':due', cid .. '\0' .. tid)
  end
end

local function end_timers(cid)
  clear_timers(cid, redis.call('HKEYS', key('timers', cid)))
  redis.call('DEL', key('timers', cid))
end

-- Ended calls are ordered by their last write: purge_ended drops the old ones.
local function mark_ended(cid, now)
  redis.call('ZREM', P .. ':live', cid)
  redis.call('ZADD', P .. ':ended', now, cid)
end

local function claim_hook(id, now, untl, ms)
  local hk = key('hook', id)
  local held = redis.call('GET', hk)
  if held and tonumber(held) > tonumber(now) then return false end
  redis.call('SET', hk, untl, 'PX', ms)
  return true
end

-- The list outlives the lease by a minute, then goes: a dead owner's wake-ups are not kept.
local function wake(cid, now, by)
  local lk = key('lease', cid)
  local held = redis.call('HMGET', lk, 'owner', 'until')
  if held[1] and tonumber(held[2]) > tonumber(now) and held[1] ~= by then
    local wk = key('wake', held[1])
    redis.call('RPUSH', wk, cid)
    redis.call('PEXPIRE', wk, math.max(redis.call('PTTL', lk), 0) + 60000)
  end
end
"""

CREATE = r"""
local cid, now, fence = arg(), arg(), arg()
local refused = fence_refused(cid, fence, now)
if refused then return refused end
local ck = key('call', cid)
local version = redis.call('HGET', ck, 'version')
if version then return {'conflict', tonumber(version)} end
local flow, flow_hash, snapshot = arg(), arg(), arg()
local entries = pairs_of(arg())
local new = pairs_of(arg())
local timers = pairs_of(arg())
redis.call('HSET', ck, 'flow', flow, 'flow_hash', flow_hash, 'snapshot', snapshot,
  'version', '1', 'status', 'live', 'created_at', now, 'updated_at', now)
push_journal(cid, now, entries)
add_commands(cid, now, new)
set_timers(cid, timers)
redis.call('ZADD', P .. ':live', now, cid)
return {'ok'}
"""

APPEND = r"""
local cid, now, fence, expected = arg(), arg(), arg(), arg()
local refused = fence_refused(cid, fence, now)
if refused then return refused end
local ck = key('call', cid)
local cur = redis.call('HMGET', ck, 'version', 'status')
if not cur[1] then return {'notfound'} end
if cur[1] ~= expected then return {'conflict', tonumber(cur[1])} end
local has_snapshot, snapshot, ending = arg() == '1', arg(), arg() == '1'
local entries = pairs_of(arg())
local new = pairs_of(arg())
local settle = pairs_of(arg())
local timers = pairs_of(arg())
local cleared = list_of(arg())
local applied = list_of(arg())

-- Every refusal before the first write.
local is_new = {}
for _, c in ipairs(new) do is_new[c[1]] = true end
for _, s in ipairs(settle) do
  local held = redis.call('HMGET', key('cmd', s[1]), 'call_id', 'state')
  if not held[1] then
    if not is_new[s[1]] then return {'nocommand', s[1]} end
  elseif held[1] ~= cid then
    return {'nocommand', s[1]}
  elseif FINAL[held[2]] and held[2] ~= s[2] then
    return {'final', s[1], held[2], s[2]}
  end
end
local inbox = key('inbox', cid)
local seen = {}
for _, seq in ipairs(applied) do
  if seen[seq] or not redis.call('ZSCORE', inbox, seq) then return {'noevent', seq} end
  seen[seq] = true
end

push_journal(cid, now, entries)
add_commands(cid, now, new)
for _, s in ipairs(settle) do
  local sk = key('cmd', s[1])
  if redis.call('HGET', sk, 'state') ~= s[2] then  -- open (checked above): it moves
    redis.call('HSET', sk, 'state', s[2], 'updated_at', now)
    redis.call('ZREM', P .. ':open', s[1])
  end
end
if #applied > 0 then
  redis.call('ZREM', inbox, unpack(applied))
  if redis.call('ZCARD', inbox) == 0 then redis.call('SREM', P .. ':inboxes', cid) end
end
-- An ended call's timers never come due: an append to it keeps none.
local live = cur[2] == 'live'
if live and ending then
  end_timers(cid)
elseif live then
  set_timers(cid, timers)
  clear_timers(cid, cleared)
end
local version = tonumber(expected) + 1
local fields = {'version', version, 'updated_at', now}
if has_snapshot then
  fields[#fields + 1] = 'snapshot'
  fields[#fields + 1] = snapshot
end
if ending then
  fields[#fields + 1] = 'status'
  fields[#fields + 1] = 'ended'
end
redis.call('HSET', ck, unpack(fields))
if ending or not live then mark_ended(cid, now) end
return {'ok', version}
"""

ACCEPT = r"""
local cid, now, event, has_hook, hook = arg(), arg(), arg(), arg() == '1', arg()
local untl, ms, by = arg(), arg(), arg()
if redis.call('EXISTS', key('call', cid)) == 0 then return {'notfound'} end
if has_hook and not claim_hook(hook, now, untl, ms) then return {'duplicate'} end
local seq = redis.call('RPUSH', key('journal', cid), 'event ' .. now .. ' ' .. event)
local member = string.format('%d', seq)
redis.call('ZADD', key('inbox', cid), seq, member)
redis.call('SADD', P .. ':inboxes', cid)
wake(cid, now, by)
return {'ok', seq}
"""

END_CALL = r"""
local cid, now, fence, expected = arg(), arg(), arg(), arg()
local refused = fence_refused(cid, fence, now)
if refused then return refused end
local ck = key('call', cid)
local version = redis.call('HGET', ck, 'version')
if not version then return {'notfound'} end
if expected ~= '' and version ~= expected then return {'conflict', tonumber(version)} end
end_timers(cid)
version = tonumber(version) + 1
redis.call('HSET', ck, 'version', version, 'status', 'ended', 'updated_at', now)
mark_ended(cid, now)
return {'ok', version}
"""

BEGIN_COMMAND = r"""
local ckey, now, fence = arg(), arg(), arg()
local ck = key('cmd', ckey)
local e = redis.call('HMGET', ck, 'call_id', 'command', 'state', 'attempts')
if not e[1] then return {'nocommand'} end
local refused = fence_refused(e[1], fence, now)
if refused then return {'lease', refused[2], e[1]} end
if e[3] ~= 'pending' then return {'none'} end
local attempts = tonumber(e[4]) + 1
redis.call('HSET', ck, 'state', 'unknown', 'attempts', attempts, 'updated_at', now)
return {'ok', e[1], e[2], attempts}
"""

MARK_COMMAND = r"""
local ckey, now, state = arg(), arg(), arg()
local ck = key('cmd', ckey)
local e = redis.call('HMGET', ck, 'call_id', 'command', 'state', 'attempts', 'updated_at')
if not e[1] then return {'nocommand'} end
if FINAL[e[3]] and e[3] ~= state then return {'final', e[3]} end
if e[3] ~= state then
  redis.call('HSET', ck, 'state', state, 'updated_at', now)
  if FINAL[state] then redis.call('ZREM', P .. ':open', ckey) end
  e[3], e[5] = state, now
end
return {'ok', e[1], e[2], e[3], e[4], e[5]}
"""

CLAIM_WEBHOOK = r"""
local id, now, untl, ms = arg(), arg(), arg(), arg()
if claim_hook(id, now, untl, ms) then return 1 end
return 0
"""

PURGE = r"""
local before, limit = arg(), arg()
local gone = redis.call('ZRANGE', P .. ':ended', '-inf', '(' .. before, 'BYSCORE',
  'LIMIT', 0, limit)
for _, cid in ipairs(gone) do
  local keys = redis.call('ZRANGE', key('cmds', cid), 0, -1)
  for _, k in ipairs(keys) do redis.call('DEL', key('cmd', k)) end
  if #keys > 0 then redis.call('ZREM', P .. ':open', unpack(keys)) end
  redis.call('DEL', key('call', cid), key('journal', cid), key('inbox', cid),
    key('timers', cid), key('cmds', cid))
  redis.call('SREM', P .. ':inboxes', cid)
  redis.call('ZREM', P .. ':ended', cid)
end
return #gone
"""

SAVE_FLOW = r"""
local h, name, source, now = arg(), arg(), arg(), arg()
local fk = key('flow', h)
if redis.call('EXISTS', fk) == 1 then return 0 end
redis.call('HSET', fk, 'name', name, 'source', source, 'saved_at', now)
return 1
"""

ACQUIRE = r"""
local cid, owner, now, untl, ms = arg(), arg(), arg(), arg(), arg()
local lk = key('lease', cid)
local held = redis.call('HMGET', lk, 'owner', 'token', 'until')
local live = held[1] and tonumber(held[3]) > tonumber(now)
if live and held[1] ~= owner then return false end
local token = live and held[2] or redis.call('INCR', P .. ':lease-token')
redis.call('HSET', lk, 'owner', owner, 'token', token, 'until', untl)
redis.call('PEXPIRE', lk, ms)
return tonumber(token)
"""

RENEW = r"""
local cid, owner, token, now, untl, ms = arg(), arg(), arg(), arg(), arg(), arg()
local lk = key('lease', cid)
local held = redis.call('HMGET', lk, 'owner', 'token', 'until')
if held[1] == owner and held[2] == token and tonumber(held[3]) > tonumber(now) then
  redis.call('HSET', lk, 'until', untl)
  redis.call('PEXPIRE', lk, ms)
  return 1
end
return 0
"""

RELEASE = r"""
local cid, owner, token, now = arg(), arg(), arg(), arg()
local lk = key('lease', cid)
local held = redis.call('HMGET', lk, 'owner', 'token', 'until')
if held[1] == owner and held[2] == token then
  redis.call('DEL', lk)  -- ours, even lapsed: nobody took it since
  if tonumber(held[3]) > tonumber(now) then return 1 end
end
return 0
"""

# A claim is a member "<call>\0<timer>\0<deadline>" scored by when it lapses: a timer set to
# another deadline is a new member, so it is claimable at once.
CLAIM_TIMERS = r"""
local now, untl, limit = arg(), arg(), tonumber(arg())
local claims = P .. ':claims'
redis.call('ZREMRANGEBYSCORE', claims, '-inf', now)
local out = {}
local offset = 0
while true do
  local due = redis.call('ZRANGE', P .. ':due', '-inf', now, 'BYSCORE', 'LIMIT', offset, 256,
    'WITHSCORES')
  if #due == 0 then return out end
  for i = 1, #due, 2 do
    local claim = due[i] .. '\0' .. due[i + 1]
    if not redis.call('ZSCORE', claims, claim) then
      redis.call('ZADD', claims, untl, claim)
      out[#out + 1] = due[i]
      out[#out + 1] = due[i + 1]
      if limit > 0 and #out >= 2 * limit then return out end
    end
  end
  offset = offset + 256
end
"""

INBOX = r"""
local only = arg()
local cids = {only}
if only == '' then cids = redis.call('SMEMBERS', P .. ':inboxes') end
local out = {}
for _, cid in ipairs(cids) do
  local jk = key('journal', cid)
  for _, seq in ipairs(redis.call('ZRANGE', key('inbox', cid), 0, -1)) do
    out[#out + 1] = cid
    out[#out + 1] = seq
    out[#out + 1] = redis.call('LINDEX', jk, tonumber(seq) - 1)
  end
end
return out
"""

PENDING = r"""
local only = arg()
local keys
if only == '' then
  keys = redis.call('ZRANGE', P .. ':open', 0, -1)
else
  keys = redis.call('ZRANGE', key('cmds', only), 0, -1)
end
local out = {}
for _, k in ipairs(keys) do
  local e = redis.call('HMGET', key('cmd', k), 'call_id', 'command', 'state', 'attempts',
    'updated_at')
  if e[3] == 'pending' or e[3] == 'unknown' then
    out[#out + 1] = {k, e[1], e[2], e[3], e[4], e[5]}
  end
end
return out
"""

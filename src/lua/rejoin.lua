-- rejoin.lua: a node puts back a member it hosts after it lost Redis and
-- got it back (possibly empty: restarted, or the node was reaped meanwhile),
-- atomically: when the room holds the id with this sid, nothing changes
-- ("kept", no event); when it holds the id with another sid, the id was
-- taken meanwhile ("taken", the node must drop its member); otherwise the
-- member is added as join.lua adds it (no room limit: it was admitted
-- before), the membership sequence is incremented, and a J event goes once
-- to each other node that has a member in the room ("added").
-- The keys and forms are in docs/cluster-data.md; ARGV only (no KEYS):
-- standalone Redis, not Redis Cluster.
--
-- ARGV: P (channel prefix), node (16 lowercase hex), room, id, sid, nick
-- Reply: {"kept"} | {"taken"} | {"added"}
-- Errors: a node that is not 16 lowercase hex, a sid not of the node.
--
-- The helpers below (field, unfield, epoch, nodes_in, event) are repeated
-- in the scripts that use them: each script is sent alone with EVAL.

local P, node, room, id, sid, nick =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]

-- "<length>:<bytes>" (include/sb_bpmsg.h)
local function field(s) return #s .. ':' .. s end

-- "<len>:<a><b>" -> a, b
local function unfield(v)
  local c = string.find(v, ':', 1, true)
  local n = tonumber(string.sub(v, 1, c - 1))
  return string.sub(v, c + 1, c + n), string.sub(v, c + n + 1)
end

-- The dataset's identity, made on first use.
local function epoch()
  local e = redis.call('GET', 'sb:epoch')
  if not e then
    local t = redis.call('TIME')
    e = t[1] .. '.' .. t[2] .. '.' .. redis.call('INCR', 'sb:epochs')
    redis.call('SET', 'sb:epoch', e, 'NX')
  end
  return e
end

-- The distinct nodes (first 16 bytes of a sid) with a member in the room,
-- but `except`, in the order first met.
local function nodes_in(rkey, except)
  local list, seen = {}, {}
  for _, v in ipairs(redis.call('HVALS', rkey)) do
    local n = string.sub(unfield(v), 1, 16)
    if n ~= except and not seen[n] then
      seen[n] = true
      list[#list + 1] = n
    end
  end
  return list
end

-- A J or L event (include/sb_bpmsg.h).
local function event(kind, seq, e, r, i, s, k)
  return kind .. string.format('%d', seq) .. ' ' ..
    field(e) .. field(r) .. field(i) .. field(s) .. field(k)
end

if not string.find(node, '^[0-9a-f]+$') or #node ~= 16 then
  return redis.error_reply('ERR rejoin.lua: node is not 16 lowercase hex')
end
if string.sub(sid, 1, 17) ~= node .. ':' then
  return redis.error_reply('ERR rejoin.lua: sid is not of the node')
end

local rkey = 'sb:r:' .. room
local v = redis.call('HGET', rkey, id)
if v then
  if unfield(v) == sid then return {'kept'} end
  return {'taken'}
end

local e = epoch()
local seq = redis.call('INCR', 'sb:seq')
local to = nodes_in(rkey, node)
redis.call('HSET', rkey, id, field(sid) .. nick)
redis.call('SADD', 'sb:m:' .. node, field(room) .. id)
-- As in join.lua: a node that hosts members is in sb:nodes.
local t = redis.call('TIME')
redis.call('ZADD', 'sb:nodes', 'NX',
  string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)), node)

local msg = event('J', seq, e, room, id, sid, nick)
for _, n in ipairs(to) do redis.call('PUBLISH', P .. n, msg) end
return {'added'}

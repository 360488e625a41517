-- join.lua: a member joins a room, atomically: refused when its id is
-- already in the room ("taken") or the room is full; otherwise it is added
-- to the room's hash and to its node's set, the membership sequence is
-- incremented, and a J event goes once to each other node that has a member
-- in the room.  Being one script, it is the single point where a join race
-- is decided: of two joins with one id, exactly one gets "ok".
-- The keys and forms are in docs/cluster-data.md; ARGV only (no KEYS): the
-- script computes its keys, which standalone Redis allows and Redis Cluster
-- does not (not supported).
--
-- ARGV: P (channel prefix, a node's channel is P..node), node (16 lowercase
--   hex), room, id, sid ("<node>:<n>"), nick, max (decimal; 0 = unlimited)
-- Reply: {"taken"} | {"full"} |
--   {"ok", epoch, seq, id1, sid1, nick1, id2, sid2, nick2, ...}: seq an
--   integer, then the room's other members (on any node, this one too).
-- Errors: a node that is not 16 lowercase hex, a sid not of the node, a max
--   that is not a decimal.
--
-- The helpers below (field, unfield, epoch, nodes_in, event) are repeated
-- in the scripts that use them: each script is sent alone with EVAL.

local P, node, room, id, sid, nick, max =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]

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
  return redis.error_reply('ERR join.lua: node is not 16 lowercase hex')
end
if string.sub(sid, 1, 17) ~= node .. ':' then
  return redis.error_reply('ERR join.lua: sid is not of the node')
end
if not string.find(max, '^[0-9]+$') then
  return redis.error_reply('ERR join.lua: max is not a decimal')
end

local rkey = 'sb:r:' .. room
if redis.call('HEXISTS', rkey, id) == 1 then return {'taken'} end
local limit = tonumber(max)
if limit > 0 and redis.call('HLEN', rkey) >= limit then return {'full'} end

local e = epoch()
local seq = redis.call('INCR', 'sb:seq')
local reply = {'ok', e, seq}
local all = redis.call('HGETALL', rkey)
for i = 1, #all, 2 do
  local s, k = unfield(all[i + 1])
  reply[#reply + 1] = all[i]
  reply[#reply + 1] = s
  reply[#reply + 1] = k
end
local to = nodes_in(rkey, node)

redis.call('HSET', rkey, id, field(sid) .. nick)
redis.call('SADD', 'sb:m:' .. node, field(room) .. id)
-- A node that hosts members is in sb:nodes, so that it can be reaped even
-- if it dies before its first beat (beat.lua refreshes the score).
local t = redis.call('TIME')
redis.call('ZADD', 'sb:nodes', 'NX',
  string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)), node)

local msg = event('J', seq, e, room, id, sid, nick)
for _, n in ipairs(to) do redis.call('PUBLISH', P .. n, msg) end
return reply

-- leave.lua: a member leaves a room, atomically, only if the room holds its
-- id with exactly this sid (a stale leave of an id that another session
-- took meanwhile changes nothing): it is removed from the room's hash and
-- its node's set, the membership sequence is incremented, and an L event
-- (with the nick it had) goes once to each other node that still has a
-- member in the room.  An emptied room's hash and node's set disappear
-- (Redis deletes empty hashes and sets).
-- The keys and forms are in docs/cluster-data.md; ARGV only (no KEYS):
-- standalone Redis, not Redis Cluster.
--
-- ARGV: P (channel prefix), node (16 lowercase hex), room, id, sid
-- Reply: 1 when it left, 0 when the room did not hold id with this sid.
-- Errors: a node that is not 16 lowercase hex, a sid not of the node.
--
-- The helpers below (field, unfield, epoch, nodes_in, event) are repeated
-- in the scripts that use them: each script is sent alone with EVAL.

local P, node, room, id, sid = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]

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
  return redis.error_reply('ERR leave.lua: node is not 16 lowercase hex')
end
if string.sub(sid, 1, 17) ~= node .. ':' then
  return redis.error_reply('ERR leave.lua: sid is not of the node')
end

local rkey = 'sb:r:' .. room
local v = redis.call('HGET', rkey, id)
if not v then return 0 end
local s, nick = unfield(v)
if s ~= sid then return 0 end

redis.call('HDEL', rkey, id)
redis.call('SREM', 'sb:m:' .. node, field(room) .. id)
local seq = redis.call('INCR', 'sb:seq')
local msg = event('L', seq, epoch(), room, id, sid, nick)
for _, n in ipairs(nodes_in(rkey, node)) do redis.call('PUBLISH', P .. n, msg) end
return 1

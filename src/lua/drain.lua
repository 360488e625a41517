-- drain.lua: a node leaves the cluster at once (on SIGTERM), atomically:
-- each member it still holds (the room's hash has the id with a sid of this
-- node) is removed from its room, the membership sequence is incremented,
-- and an L event goes once to each other node that still has a member in
-- that room; then the node's set and its entry in sb:nodes are deleted.
-- The same removal as beat.lua's for a dead node, without waiting for the
-- timeout.
-- The keys and forms are in docs/cluster-data.md; ARGV only (no KEYS):
-- standalone Redis, not Redis Cluster.
--
-- ARGV: P (channel prefix), node (16 lowercase hex)
-- Reply: the number of members removed.
-- Errors: a node that is not 16 lowercase hex.
--
-- The helpers below (field, unfield, epoch, nodes_in, event) and the
-- removal loop are repeated in the scripts that use them (beat.lua has the
-- same loop): each script is sent alone with EVAL.

local P, node = ARGV[1], ARGV[2]

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
  return redis.error_reply('ERR drain.lua: node is not 16 lowercase hex')
end

local mkey = 'sb:m:' .. node
local removed = 0
for _, el in ipairs(redis.call('SMEMBERS', mkey)) do
  local room, id = unfield(el)
  local rkey = 'sb:r:' .. room
  local v = redis.call('HGET', rkey, id)
  if v then
    local sid, nick = unfield(v)
    if string.sub(sid, 1, 16) == node then
      redis.call('HDEL', rkey, id)
      removed = removed + 1
      local seq = redis.call('INCR', 'sb:seq')
      local msg = event('L', seq, epoch(), room, id, sid, nick)
      for _, n in ipairs(nodes_in(rkey, node)) do
        redis.call('PUBLISH', P .. n, msg)
      end
    end
  end
end
redis.call('DEL', mkey)
redis.call('ZREM', 'sb:nodes', node)
redis.call('SREM', 'sb:synced', node)
return removed

-- prune.lua: a node that got Redis back removes, atomically, the members
-- Redis holds for it that it no longer has: a Redis that reloaded an older
-- snapshot, or a replica promoted before it caught up, may hold members
-- that left meanwhile.  Each is removed as leave.lua removes one (its
-- room's hash, the node's set, the sequence incremented, an L event once
-- to each other node with a member in the room); an entry of the node's set
-- whose member is gone or is another node's now is dropped quietly.
-- The keys and forms are in docs/cluster-data.md; ARGV only (no KEYS):
-- standalone Redis, not Redis Cluster.
--
-- ARGV: P (channel prefix), node (16 lowercase hex), then the sids the
--   node holds now, any number
-- Reply: the number of members removed.
-- Errors: a node that is not 16 lowercase hex.
-- field, unfield, epoch, nodes_in and event come from lib.lua, put in
-- front of this script by the build.

local P, node = ARGV[1], ARGV[2]

if not string.find(node, '^[0-9a-f]+$') or #node ~= 16 then
  return redis.error_reply('ERR prune.lua: node is not 16 lowercase hex')
end

local keep = {}
for i = 3, #ARGV do keep[ARGV[i]] = true end

local mkey = 'sb:m:' .. node
local removed, e = 0, nil
for _, m in ipairs(redis.call('SMEMBERS', mkey)) do
  local room, id = unfield(m)
  local rkey = 'sb:r:' .. room
  local v = redis.call('HGET', rkey, id)
  if not v then
    redis.call('SREM', mkey, m)
  else
    local s, nick = unfield(v)
    if string.sub(s, 1, 17) ~= node .. ':' then
      redis.call('SREM', mkey, m)
    elseif not keep[s] then
      redis.call('HDEL', rkey, id)
      redis.call('SREM', mkey, m)
      local seq = redis.call('INCR', 'sb:seq')
      e = e or epoch()
      local msg = event('L', seq, e, room, id, s, nick)
      for _, n in ipairs(nodes_in(rkey, node)) do redis.call('PUBLISH', P .. n, msg) end
      removed = removed + 1
    end
  end
end
return removed

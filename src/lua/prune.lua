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
-- field, unfield, epoch, nodes_in, event, remove_member and remove_node
-- come from lib.lua, put in front of this script by the build.

local P, node = ARGV[1], ARGV[2]

if not string.find(node, '^[0-9a-f]+$') or #node ~= 16 then
  return redis.error_reply('ERR prune.lua: node is not 16 lowercase hex')
end

local keep = {}
for i = 3, #ARGV do keep[ARGV[i]] = true end

local mkey = 'sb:m:' .. node
local removed = 0
for _, m in ipairs(redis.call('SMEMBERS', mkey)) do
  local room, id = unfield(m)
  local v = redis.call('HGET', 'sb:r:' .. room, id)
  if not v then
    redis.call('SREM', mkey, m)
  else
    local s, nick = unfield(v)
    if string.sub(s, 1, 17) ~= node .. ':' then
      redis.call('SREM', mkey, m)
    elseif not keep[s] then
      redis.call('SREM', mkey, m)
      remove_member(P, room, id, s, nick, node)
      removed = removed + 1
    end
  end
end
return removed

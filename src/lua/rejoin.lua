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
-- field, unfield, epoch, nodes_in, event, remove_member and remove_node
-- come from lib.lua, put in front of this script by the build.

local P, node, room, id, sid, nick =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]

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
add_member(P, room, id, sid, nick, node, seq, e)
return {'added'}

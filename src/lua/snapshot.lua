-- snapshot.lua: a room's members as of a membership sequence number, read
-- atomically: every change numbered up to seq is in the members returned
-- and none after it, so a node that reads a snapshot and then applies the
-- J and L events with a higher seq (of the same epoch) ends with the room
-- as it is.
-- The keys and forms are in docs/cluster-data.md; ARGV only (no KEYS):
-- standalone Redis, not Redis Cluster.
--
-- ARGV: room
-- Reply: {epoch, seq, id1, sid1, nick1, id2, sid2, nick2, ...}: seq an
--   integer (0 before the first change).
-- field, unfield, epoch, nodes_in, event, remove_member and remove_node
-- come from lib.lua, put in front of this script by the build.

local room = ARGV[1]

local reply = {epoch(), tonumber(redis.call('GET', 'sb:seq') or '0')}
local all = redis.call('HGETALL', 'sb:r:' .. room)
for i = 1, #all, 2 do
  local s, k = unfield(all[i + 1])
  reply[#reply + 1] = all[i]
  reply[#reply + 1] = s
  reply[#reply + 1] = k
end
return reply

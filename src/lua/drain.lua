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
-- field, unfield, epoch, nodes_in, event, remove_member and remove_node
-- come from lib.lua, put in front of this script by the build.

local P, node = ARGV[1], ARGV[2]

if not string.find(node, '^[0-9a-f]+$') or #node ~= 16 then
  return redis.error_reply('ERR drain.lua: node is not 16 lowercase hex')
end

return remove_node(P, node, node)

-- beat.lua: a node's sign of life, and the reaping of the dead, atomically.
-- The node's score in sb:nodes becomes now (Redis's clock, ms); every node
-- whose score is older than now - timeout_ms is dead: each member it still
-- holds (the room's hash has the id with a sid of that node) is removed
-- from its room, the membership sequence is incremented, and an L event
-- goes once to each node that still has a member in that room (never to a
-- node found dead in this run); then the dead node's set and its entry in
-- sb:nodes are deleted.  Being one script, when several nodes run it at
-- once the first reaps and the others find nothing: each departure is
-- published exactly once.
-- The keys and forms are in docs/cluster-data.md; ARGV only (no KEYS):
-- standalone Redis, not Redis Cluster.
--
-- ARGV: P (channel prefix), node (16 lowercase hex), timeout_ms (decimal)
-- Reply: {live, reaped, known}: the nodes in sb:nodes after reaping, the
--   members removed, and 1 when this node was in sb:nodes before this beat
--   (0: it is new, or was taken for gone and reaped: its members are no
--   longer in Redis, and it must register them again).
-- Errors: a node that is not 16 lowercase hex, a timeout that is not a
--   decimal.
-- field, unfield, epoch, nodes_in, event, remove_member and remove_node
-- come from lib.lua, put in front of this script by the build.

local P, node, timeout = ARGV[1], ARGV[2], ARGV[3]

if not string.find(node, '^[0-9a-f]+$') or #node ~= 16 then
  return redis.error_reply('ERR beat.lua: node is not 16 lowercase hex')
end
if not string.find(timeout, '^[0-9]+$') then
  return redis.error_reply('ERR beat.lua: timeout_ms is not a decimal')
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local known = redis.call('ZSCORE', 'sb:nodes', node) and 1 or 0
redis.call('ZADD', 'sb:nodes', string.format('%d', now), node)
local dead = redis.call('ZRANGEBYSCORE', 'sb:nodes', '-inf',
  '(' .. string.format('%d', now - tonumber(timeout)))
local gone = {}
for _, d in ipairs(dead) do gone[d] = true end

local reaped = 0
for _, d in ipairs(dead) do reaped = reaped + remove_node(P, d, gone) end
return {redis.call('ZCARD', 'sb:nodes'), reaped, known}

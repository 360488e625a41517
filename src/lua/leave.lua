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
-- field, unfield, epoch, nodes_in, event, remove_member and remove_node
-- come from lib.lua, put in front of this script by the build.

local P, node, room, id, sid = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]

if not string.find(node, '^[0-9a-f]+$') or #node ~= 16 then
  return redis.error_reply('ERR leave.lua: node is not 16 lowercase hex')
end
if string.sub(sid, 1, 17) ~= node .. ':' then
  return redis.error_reply('ERR leave.lua: sid is not of the node')
end

local v = redis.call('HGET', 'sb:r:' .. room, id)
if not v then return 0 end
local s, nick = unfield(v)
if s ~= sid then return 0 end

redis.call('SREM', 'sb:m:' .. node, field(room) .. id)
remove_member(P, room, id, sid, nick, node)
return 1

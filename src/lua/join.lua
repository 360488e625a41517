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
-- field, unfield, epoch, nodes_in, event, remove_member and remove_node
-- come from lib.lua, put in front of this script by the build.

local P, node, room, id, sid, nick, max =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]

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
add_member(P, room, id, sid, nick, node, seq, e)
return reply

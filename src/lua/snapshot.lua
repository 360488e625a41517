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
--
-- The helpers below (unfield, epoch) are repeated in the scripts that use
-- them: each script is sent alone with EVAL.

local room = ARGV[1]

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

local reply = {epoch(), tonumber(redis.call('GET', 'sb:seq') or '0')}
local all = redis.call('HGETALL', 'sb:r:' .. room)
for i = 1, #all, 2 do
  local s, k = unfield(all[i + 1])
  reply[#reply + 1] = all[i]
  reply[#reply + 1] = s
  reply[#reply + 1] = k
end
return reply

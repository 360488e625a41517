-- lib.lua: what the backplane's scripts share, put in front of each of
-- them when the build writes them into sb_lua.h (cmake/lua-header.cmake),
-- and by the tests that run them (tests/blackbox/scripts.test.mjs): each
-- script is sent alone with EVAL, so it must carry these itself.  Not a
-- script of its own.

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
-- but `except` (a node, or a set of nodes as a table's keys), in the order
-- first met.
local function nodes_in(rkey, except)
  local list, seen = {}, {}
  local skip = type(except) == 'table' and except or { [except] = true }
  for _, v in ipairs(redis.call('HVALS', rkey)) do
    local n = string.sub(unfield(v), 1, 16)
    if not skip[n] and not seen[n] then
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

-- Adds member id (session sid, nick) of node to its room as change number
-- seq of dataset e: in the room's hash and the node's set, the node in
-- sb:nodes (a node that hosts members can then be reaped even if it dies
-- before its first beat; beat.lua refreshes the score), and a J event to
-- each other node with a member there.
local function add_member(P, room, id, sid, nick, node, seq, e)
  local rkey = 'sb:r:' .. room
  local to = nodes_in(rkey, node)
  redis.call('HSET', rkey, id, field(sid) .. nick)
  redis.call('SADD', 'sb:m:' .. node, field(room) .. id)
  local t = redis.call('TIME')
  redis.call('ZADD', 'sb:nodes', 'NX',
    string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)), node)
  local msg = event('J', seq, e, room, id, sid, nick)
  for _, n in ipairs(to) do redis.call('PUBLISH', P .. n, msg) end
end

-- Removes member id (session sid, nick) from its room and tells, with an
-- L event, each node that still has a member there but `skip` (as nodes_in
-- takes it).  The node's set (sb:m:<node>) is the caller's to update.
local function remove_member(P, room, id, sid, nick, skip)
  local rkey = 'sb:r:' .. room
  redis.call('HDEL', rkey, id)
  local seq = redis.call('INCR', 'sb:seq')
  local msg = event('L', seq, epoch(), room, id, sid, nick)
  for _, n in ipairs(nodes_in(rkey, skip)) do redis.call('PUBLISH', P .. n, msg) end
end

-- Removes node from the cluster: each member it still holds (its set names
-- it and the room holds it under a sid of the node) as remove_member does,
-- telling all but `skip`; then its set, its entry in sb:nodes and its mark
-- in sb:synced.  Returns how many members it removed.
local function remove_node(P, node, skip)
  local mkey = 'sb:m:' .. node
  local removed = 0
  for _, el in ipairs(redis.call('SMEMBERS', mkey)) do
    local room, id = unfield(el)
    local v = redis.call('HGET', 'sb:r:' .. room, id)
    if v then
      local sid, nick = unfield(v)
      if string.sub(sid, 1, 16) == node then
        remove_member(P, room, id, sid, nick, skip)
        removed = removed + 1
      end
    end
  end
  redis.call('DEL', mkey)
  redis.call('ZREM', 'sb:nodes', node)
  redis.call('HDEL', 'sb:synced', node)
  return removed
end

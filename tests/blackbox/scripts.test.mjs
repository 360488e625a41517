// The backplane's Redis scripts (src/lua/*.lua, docs/cluster-data.md) run
// with EVAL against a real redis-server: the replies, the keys they leave,
// and the J and L events they publish to the nodes' channels, read back
// byte for byte in the form of include/sb_bpmsg.h.  Races (two joins of one
// id, two nodes reaping at once) are run many times: exactly one winner,
// exactly one event per departure.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { T, sleep } from './lib/harness.mjs';
import { redisCommands, startRedis, subscribe } from './lib/redis.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const LUA_DIR = path.resolve(here, '../../src/lua');
// Each script as the server sends it: lib.lua, then the script.
const LIB = readFileSync(path.join(LUA_DIR, 'lib.lua'), 'utf8');
const LUA = Object.fromEntries(['join', 'leave', 'beat', 'drain', 'prune', 'rejoin', 'snapshot']
  .map((name) => [name, LIB + readFileSync(path.join(LUA_DIR, `${name}.lua`), 'utf8')]));

// The database the scripts run in, and the channel prefix of its nodes.
const DB = 2;
const P = `sb:${DB}:n:`;

// Node ids: 16 lowercase hex.
const A = 'a'.repeat(16);
const B = 'b'.repeat(16);
const C = 'c'.repeat(16);
const D = 'd'.repeat(16);
const E = 'e'.repeat(16);

// ------------------------------------------------------------ the event form

// A J or L event as include/sb_bpmsg.h defines it, strictly: the letter, the
// seq in decimal (no leading zero, at most 2^53) and a space, then exactly
// five fields "<len>:<bytes>" (len in bytes, no leading zero), nothing
// after.  Fields are returned as UTF-8 text; throws on anything else.
function parseEvent(buf) {
  let i = 0;
  const fail = (why) => { throw new Error(`not a J/L event (${why}): ${JSON.stringify(buf.toString('latin1'))}`); };
  const number = (stop, max) => {
    const start = i;
    while (i < buf.length && buf[i] >= 0x30 && buf[i] <= 0x39) i++;
    if (i === start) fail('no digits');
    if (i >= buf.length || buf[i] !== stop) fail(`no ${JSON.stringify(String.fromCharCode(stop))} after a number`);
    if (buf[start] === 0x30 && i - start > 1) fail('a leading zero');
    const n = Number(buf.toString('latin1', start, i));
    if (n > max) fail('a number too large');
    i++;
    return n;
  };
  if (buf.length < 1) fail('empty');
  const kind = String.fromCharCode(buf[0]);
  if (kind !== 'J' && kind !== 'L') fail('the letter');
  i = 1;
  const seq = number(0x20, 2 ** 53);
  const out = { kind, seq };
  for (const name of ['epoch', 'room', 'id', 'sid', 'nick']) {
    const len = number(0x3a, buf.length);
    if (len > buf.length - i) fail(`${name} runs past the end`);
    out[name] = buf.toString('utf8', i, i + len);
    i += len;
  }
  if (i !== buf.length) fail('bytes after the nick');
  return out;
}

// Published messages as [node, event]: the node the channel names.
function events(messages) {
  return messages.map(({ channel, data }) => {
    assert.ok(channel.startsWith(P), `a node's channel: ${channel}`);
    return [channel.slice(P.length), parseEvent(data)];
  });
}

// ------------------------------------------------------------ helpers

// A Redis of the test's own, the scripts as functions, and a subscriber to
// every node's channel whose news() returns what was published since its
// last call.
async function setup(t) {
  const redis = await startRedis({ t });
  const run = (name, ...args) => redis.eval(DB, LUA[name], ...args);
  const sub = await subscribe(redis.port, { patterns: [`${P}*`] });
  t.after(() => sub.close());
  let seen = 0;
  return {
    redis,
    join: (node, room, id, n, nick, max = 0) => run('join', P, node, room, id, `${node}:${n}`, nick, max),
    leave: (node, room, id, sid) => run('leave', P, node, room, id, sid),
    beat: (node, timeoutMs) => run('beat', P, node, timeoutMs),
    drain: (node) => run('drain', P, node),
    prune: (node, ...sids) => run('prune', P, node, ...sids),
    rejoin: (node, room, id, n, nick) => run('rejoin', P, node, room, id, `${node}:${n}`, nick),
    snapshot: (room) => run('snapshot', room),
    cmd: (...args) => redis.command(DB, ...args),
    async news() {
      const all = await sub.sync();
      const out = all.slice(seen);
      seen = all.length;
      return events(out);
    },
    async seq() {
      return Number(await redis.command(DB, 'GET', 'sb:seq'));
    },
  };
}

// A roster (id, sid, nick triples flat) as sorted "id sid nick" strings.
function roster(flat) {
  assert.equal(flat.length % 3, 0, `triples: ${JSON.stringify(flat)}`);
  const out = [];
  for (let i = 0; i < flat.length; i += 3) out.push(`${flat[i]} ${flat[i + 1]} ${flat[i + 2]}`);
  return out.sort();
}

// The receivers of each event, sorted, keyed "kind seq id".
function receivers(evs) {
  const by = new Map();
  for (const [node, e] of evs) {
    const k = `${e.kind}${e.seq} ${e.id}`;
    by.set(k, [...(by.get(k) || []), node].sort());
  }
  return Object.fromEntries(by);
}

// Redis's clock in ms.
async function redisNow(s) {
  const [sec, usec] = await s.cmd('TIME');
  return Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
}

// ------------------------------------------------------------ tests

describe('the test\'s reading of the event form', () => {
  test('accepts the form exactly and refuses anything else', () => {
    const ok = Buffer.from('J42 4:ep-14:room3:bob18:bbbbbbbbbbbbbbbb:74:Zoë');
    assert.deepEqual(parseEvent(ok), {
      kind: 'J', seq: 42, epoch: 'ep-1', room: 'room', id: 'bob', sid: 'bbbbbbbbbbbbbbbb:7', nick: 'Zoë',
    });
    assert.equal(parseEvent(Buffer.from('L0 0:0:0:0:0:')).kind, 'L');
    for (const bad of ['', 'X1 0:0:0:0:0:', 'J 0:0:0:0:0:', 'J01 0:0:0:0:0:', 'J1 0:0:0:0:00:',
      'J1 0:0:0:0:', 'J1 0:0:0:0:0:x', 'J1 0:0:0:0:2:x', 'J1x0:0:0:0:0:', `J${2 ** 53 + 2} 0:0:0:0:0:`]) {
      assert.throws(() => parseEvent(Buffer.from(bad)), /not a J\/L event/, JSON.stringify(bad));
    }
  });
});

describe('join.lua', () => {
  test('ok with the roster of the room\'s other members; J once to each other node, never to the joiner\'s', async (t) => {
    const s = await setup(t);
    const first = await s.join(A, 'r1', 'alice', 1, 'Alice');
    assert.equal(first.length, 3);
    assert.equal(first[0], 'ok');
    const epoch = first[1];
    assert.match(epoch, /\S/);
    assert.equal(first[2], 1);
    assert.deepEqual(await s.news(), [], 'no one else in the room: no event');

    // another member on the same node: the roster has alice, no event
    const ann = await s.join(A, 'r1', 'ann', 2, 'Ann');
    assert.deepEqual(ann.slice(0, 3), ['ok', epoch, 2]);
    assert.deepEqual(roster(ann.slice(3)), [`alice ${A}:1 Alice`]);
    assert.deepEqual(await s.news(), []);

    const bob = await s.join(B, 'r1', 'bob', 1, 'Bob');
    assert.deepEqual(bob.slice(0, 3), ['ok', epoch, 3]);
    assert.deepEqual(roster(bob.slice(3)), [`alice ${A}:1 Alice`, `ann ${A}:2 Ann`]);
    assert.deepEqual(await s.news(), [[A, {
      kind: 'J', seq: 3, epoch, room: 'r1', id: 'bob', sid: `${B}:1`, nick: 'Bob',
    }]]);

    // a nick and a room beyond ASCII: the lengths are in bytes
    const zoe = await s.join(C, 'r1', 'zoë', 17, 'Zoë ✓');
    assert.deepEqual(zoe.slice(0, 3), ['ok', epoch, 4]);
    assert.equal(roster(zoe.slice(3)).length, 3);
    const evs = await s.news();
    assert.deepEqual(evs.map(([n]) => n).sort(), [A, B], 'once to A and once to B, not to C');
    for (const [, e] of evs) {
      assert.deepEqual(e, { kind: 'J', seq: 4, epoch, room: 'r1', id: 'zoë', sid: `${C}:17`, nick: 'Zoë ✓' });
    }

    // B's second member: to A and C, not to B although bob is there
    await s.join(B, 'r1', 'bea', 2, '');
    assert.deepEqual(receivers(await s.news()), { 'J5 bea': [A, C] });

    // another room: its own members only
    const solo = await s.join(B, 'r2', 'alice', 3, 'Other Alice');
    assert.deepEqual(solo, ['ok', epoch, 6]);
    assert.deepEqual(await s.news(), []);

    assert.equal(await s.seq(), 6);
    assert.equal(await s.cmd('HGET', 'sb:r:r1', 'zoë'), `${C.length + 3}:${C}:17Zoë ✓`);
    assert.deepEqual((await s.cmd('SMEMBERS', `sb:m:${B}`)).sort(), ['2:r1bea', '2:r1bob', '2:r2alice']);
  });

  test('taken and full change nothing and publish nothing; max 0 is unlimited', async (t) => {
    const s = await setup(t);
    assert.equal((await s.join(A, 'r', 'x', 1, 'X', 2))[0], 'ok');
    assert.deepEqual(await s.join(A, 'r', 'x', 2, 'X again', 2), ['taken']);
    assert.deepEqual(await s.join(B, 'r', 'x', 1, 'X from B', 0), ['taken']);
    assert.equal((await s.join(B, 'r', 'y', 1, 'Y', 2))[0], 'ok');
    await s.news();
    const before = await s.cmd('HGETALL', 'sb:r:r');

    assert.deepEqual(await s.join(C, 'r', 'z', 1, 'Z', 2), ['full']);
    assert.deepEqual(await s.join(C, 'r', 'z', 1, 'Z', 1), ['full']);
    assert.deepEqual(await s.join(C, 'r', 'x', 1, 'Z', 1), ['taken'], 'taken before full');
    assert.equal(await s.seq(), 2);
    assert.deepEqual(await s.cmd('HGETALL', 'sb:r:r'), before);
    assert.equal(await s.cmd('EXISTS', `sb:m:${C}`), 0);
    assert.deepEqual(await s.news(), []);

    assert.equal((await s.join(C, 'r', 'z', 1, 'Z', 3))[0], 'ok');
    for (let i = 0; i < 20; i++) assert.equal((await s.join(C, 'r', `m${i}`, i + 2, '', 0))[0], 'ok');
    assert.equal(await s.cmd('HLEN', 'sb:r:r'), 23);
  });

  test('two joins of one id at once, from two connections: exactly one ok, many times', async (t) => {
    const s = await setup(t);
    const ROUNDS = 5;
    const IDS = 100;
    for (let round = 0; round < ROUNDS; round++) {
      const room = `race${round}`;
      const pipeline = (node) => [['SELECT', DB], ...Array.from({ length: IDS }, (_, i) => (
        ['EVAL', LUA.join, 0, P, node, room, `id${i}`, `${node}:${i}`, `n${i}`, 0]))];
      const [fromA, fromB] = await Promise.all([
        redisCommands(s.redis.port, pipeline(A), { timeout: T(10000) }),
        redisCommands(s.redis.port, pipeline(B), { timeout: T(10000) }),
      ]);
      for (let i = 0; i < IDS; i++) {
        const a = fromA[i + 1][0];
        const b = fromB[i + 1][0];
        assert.deepEqual([a, b].sort(), ['ok', 'taken'], `round ${round}, id${i}: ${a} and ${b}`);
        const winner = a === 'ok' ? A : B;
        assert.equal(await s.cmd('HGET', `sb:r:${room}`, `id${i}`), `${winner.length + 1 + String(i).length}:${winner}:${i}n${i}`);
      }
    }
    assert.equal(await s.seq(), ROUNDS * IDS, 'one change per winner');
  });

  test('refuses a node that is not 16 lowercase hex and a sid of another node', async (t) => {
    const s = await setup(t);
    const run = (...args) => s.redis.eval(DB, LUA.join, P, ...args);
    assert.match((await run('A'.repeat(16), 'r', 'x', `${'A'.repeat(16)}:1`, '', 0)).error, /node/);
    assert.match((await run('abc', 'r', 'x', 'abc:1', '', 0)).error, /node/);
    assert.match((await run(A, 'r', 'x', `${B}:1`, '', 0)).error, /sid/);
    assert.match((await run(A, 'r', 'x', `${A}:1`, '', 'many')).error, /max/);
    assert.equal(await s.cmd('EXISTS', 'sb:r:r', 'sb:seq'), 0);
  });
});

describe('leave.lua', () => {
  test('with the right sid: removed, L with its nick to the other nodes still in the room', async (t) => {
    const s = await setup(t);
    const epoch = (await s.join(A, 'r', 'alice', 1, 'Alice'))[1];
    await s.join(A, 'r', 'ann', 2, 'Ann');
    await s.join(B, 'r', 'bob', 1, 'Bob');
    await s.join(C, 'r', 'carl', 1, 'Carl');
    await s.news();

    assert.equal(await s.leave(A, 'r', 'alice', `${A}:1`), 1);
    const evs = await s.news();
    assert.deepEqual(evs.map(([n]) => n).sort(), [B, C], 'not to A, though ann is there');
    for (const [, e] of evs) {
      assert.deepEqual(e, { kind: 'L', seq: 5, epoch, room: 'r', id: 'alice', sid: `${A}:1`, nick: 'Alice' });
    }
    assert.equal(await s.cmd('HEXISTS', 'sb:r:r', 'alice'), 0);
    assert.deepEqual(await s.cmd('SMEMBERS', `sb:m:${A}`), ['1:rann']);

    // C's last member: to A and B only, C's set gone
    assert.equal(await s.leave(C, 'r', 'carl', `${C}:1`), 1);
    assert.deepEqual(receivers(await s.news()), { 'L6 carl': [A, B] });
    assert.equal(await s.cmd('EXISTS', `sb:m:${C}`), 0);
  });

  test('with a wrong sid, an unknown id or room: 0 and nothing changes', async (t) => {
    const s = await setup(t);
    await s.join(A, 'r', 'x', 1, 'X');
    await s.join(B, 'r', 'y', 1, 'Y');
    await s.news();
    const keys = async () => [await s.cmd('HGETALL', 'sb:r:r'), await s.cmd('SMEMBERS', `sb:m:${A}`), await s.seq()];
    const before = await keys();
    assert.equal(await s.leave(A, 'r', 'x', `${A}:2`), 0, 'another session of the same node');
    assert.equal(await s.leave(A, 'r', 'y', `${A}:1`), 0, 'an id of another node');
    assert.equal(await s.leave(A, 'r', 'nobody', `${A}:1`), 0);
    assert.equal(await s.leave(A, 'elsewhere', 'x', `${A}:1`), 0);
    assert.deepEqual(await keys(), before);
    assert.deepEqual(await s.news(), []);
    assert.match((await s.leave(A, 'r', 'y', `${B}:1`)).error, /sid/, 'a sid of another node is refused');
  });

  test('the room\'s hash and the node\'s set are gone when empty', async (t) => {
    const s = await setup(t);
    await s.join(A, 'r', 'x', 1, 'X');
    await s.join(B, 'r', 'y', 1, 'Y');
    assert.equal(await s.leave(A, 'r', 'x', `${A}:1`), 1);
    assert.equal(await s.cmd('EXISTS', `sb:m:${A}`), 0);
    assert.equal(await s.cmd('EXISTS', 'sb:r:r'), 1);
    assert.equal(await s.leave(B, 'r', 'y', `${B}:1`), 1);
    assert.equal(await s.cmd('EXISTS', 'sb:r:r', `sb:m:${B}`), 0);
    assert.deepEqual(receivers(await s.news()), { 'J2 y': [A], 'L3 x': [B] });
    assert.equal(await s.seq(), 4);
  });
});

describe('beat.lua', () => {
  test('says when its node had been taken for gone', async (t) => {
    const s = await setup(t);
    const timeout = T(300);
    assert.deepEqual(await s.beat(A, 60000), [1, 0, 0]);
    assert.deepEqual(await s.beat(B, timeout), [2, 0, 0]);
    await sleep(timeout + 50);
    // B reaps A, which comes back: it is told it was gone
    assert.deepEqual(await s.beat(B, timeout), [1, 0, 1]);
    assert.deepEqual(await s.beat(A, timeout), [2, 0, 0]);
    assert.deepEqual(await s.beat(A, timeout), [2, 0, 1]);
  });

  test('counts the live nodes', async (t) => {
    const s = await setup(t);
    // the third: whether the node was there before (0: new, or reaped)
    assert.deepEqual(await s.beat(A, 60000), [1, 0, 0]);
    assert.deepEqual(await s.beat(B, 60000), [2, 0, 0]);
    assert.deepEqual(await s.beat(A, 60000), [2, 0, 1]);
    const score = Number(await s.cmd('ZSCORE', 'sb:nodes', A));
    const now = await redisNow(s);
    assert.ok(score <= now && score > now - T(2000), `A's score ${score} is Redis's now (${now}) in ms`);
    assert.deepEqual(await s.news(), []);
  });

  test('a node silent past the timeout is reaped: L once to each node still in the room, its keys gone', async (t) => {
    const s = await setup(t);
    const timeout = T(300);
    const epoch = (await s.join(A, 'r1', 'a1', 1, 'A1'))[1];
    await s.join(D, 'r1', 'd1', 1, 'D1');
    await s.join(A, 'r2', 'a2', 2, 'A2');
    await s.join(B, 'r2', 'b2', 1, 'B2');
    await s.join(D, 'r2', 'd2', 2, 'D2');
    await s.join(D, 'r2', 'd3', 3, 'D3');
    await s.join(D, 'r3', 'd4', 4, 'D4');
    // a member D's set still names but that another node holds now
    await s.join(E, 'r4', 'x', 1, 'X');
    await s.cmd('SADD', `sb:m:${D}`, '2:r4x');
    await s.news();
    await s.beat(D, timeout);

    await sleep(timeout + 100);
    // A, B and E beat again just before A reaps; D does not
    const [, b, e, reap] = await redisCommands(s.redis.port, [['SELECT', DB],
      ['EVAL', LUA.beat, 0, P, B, 60000], ['EVAL', LUA.beat, 0, P, E, 60000], ['EVAL', LUA.beat, 0, P, A, timeout]]);
    assert.deepEqual(b, [4, 0, 1]);
    assert.deepEqual(e, [4, 0, 1]);
    assert.deepEqual(reap, [3, 4, 1], 'A, B, E live; d1..d4 reaped');

    const evs = await s.news();
    const byId = receivers(evs);
    // changes 9..12, one each; the one of d4 (alone in r3) was told no one
    const seqs = [...new Set(evs.map(([, ev]) => ev.seq))];
    assert.equal(seqs.length, 3, `three events told: ${seqs}`);
    for (const q of seqs) assert.ok(q >= 9 && q <= 12, `seq ${q}`);
    const who = Object.fromEntries(Object.entries(byId).map(([k, v]) => [k.split(' ')[1], v]));
    assert.deepEqual(who, { d1: [A], d2: [A, B], d3: [A, B] }, 'd4 was alone: no one to tell');
    for (const [, ev] of evs) {
      assert.equal(ev.kind, 'L');
      assert.equal(ev.epoch, epoch);
      assert.equal(ev.sid.slice(0, 16), D);
      assert.equal(ev.nick, ev.id.toUpperCase());
    }

    assert.equal(await s.cmd('EXISTS', `sb:m:${D}`, 'sb:r:r3'), 0);
    assert.equal(await s.cmd('ZSCORE', 'sb:nodes', D), null);
    assert.deepEqual((await s.cmd('HKEYS', 'sb:r:r2')).sort(), ['a2', 'b2']);
    assert.deepEqual(await s.cmd('HGETALL', 'sb:r:r4'), ['x', `${E.length + 2}:${E}:1X`], 'left alone');
    assert.deepEqual(await s.cmd('SMEMBERS', `sb:m:${E}`), ['2:r4x']);
    assert.equal(await s.seq(), 12);
    assert.deepEqual(await s.beat(B, timeout), [3, 0, 1], 'nothing left to reap');
    assert.deepEqual(await s.news(), []);
  });

  test('two dead nodes in one room: neither is told of the other\'s departure', async (t) => {
    const s = await setup(t);
    await s.join(A, 'r', 'a', 1, 'A');
    await s.join(C, 'r', 'c', 1, 'C');
    await s.join(D, 'r', 'd', 1, 'D');
    await s.news();
    const old = (await redisNow(s)) - 60000;
    await s.cmd('ZADD', 'sb:nodes', 'XX', old, C, old, D);
    assert.deepEqual(await s.beat(A, 5000), [1, 2, 1]);
    assert.deepEqual(receivers(await s.news()), { 'L4 c': [A], 'L5 d': [A] });
  });

  test('two nodes reaping at once: each departure published exactly once, many times', async (t) => {
    const s = await setup(t);
    const ROUNDS = 30;
    const MEMBERS = 4;
    const timeout = 5000;
    for (let round = 0; round < ROUNDS; round++) {
      const dead = round.toString(16).padStart(16, 'f');
      await s.beat(A, timeout);
      await s.beat(B, timeout);
      for (let i = 0; i < MEMBERS; i++) {
        const room = `k${round}-${i}`;
        await s.join(A, room, `a${round}-${i}`, round * 10 + i, '');
        await s.join(B, room, `b${round}-${i}`, round * 10 + i, '');
        await s.join(dead, room, `d${round}-${i}`, i, `dead ${i}`);
      }
      // its last sign of life a minute ago
      await s.cmd('ZADD', 'sb:nodes', 'XX', (await redisNow(s)) - 60000, dead);
      const [[, fromA], [, fromB]] = await Promise.all([
        redisCommands(s.redis.port, [['SELECT', DB], ['EVAL', LUA.beat, 0, P, A, timeout]]),
        redisCommands(s.redis.port, [['SELECT', DB], ['EVAL', LUA.beat, 0, P, B, timeout]]),
      ]);
      assert.deepEqual([fromA[1], fromB[1]].sort(), [0, MEMBERS], `round ${round}: one of them reaps all`);
      assert.equal(fromA[0], 2);
      assert.equal(fromB[0], 2);
      assert.equal(await s.cmd('EXISTS', `sb:m:${dead}`), 0);
      for (let i = 0; i < MEMBERS; i++) {
        assert.deepEqual((await s.cmd('HKEYS', `sb:r:k${round}-${i}`)).sort(), [`a${round}-${i}`, `b${round}-${i}`]);
      }
    }
    const evs = (await s.news()).filter(([, e]) => e.kind === 'L');
    const byId = receivers(evs);
    assert.equal(Object.keys(byId).length, ROUNDS * MEMBERS);
    for (const [k, nodes] of Object.entries(byId)) assert.deepEqual(nodes, [A, B], k);
    assert.equal(await s.cmd('ZCARD', 'sb:nodes'), 2);
  });
});

describe('prune.lua', () => {
  test('removes the members the node no longer has, with L to the others; keeps those listed', async (t) => {
    const s = await setup(t);
    await s.join(A, 'r1', 'a1', 1, 'A1');
    await s.join(B, 'r1', 'b1', 1, 'B1');
    await s.join(B, 'r1', 'b2', 2, 'B2');
    await s.join(B, 'r2', 'b3', 3, 'B3');
    // an entry of B's set whose member is another node's now
    await s.cmd('SADD', `sb:m:${B}`, '2:r1a1');
    await s.news();
    assert.equal(await s.prune(B, `${B}:2`), 2, 'b1 and b3 go, b2 stays');
    // (b1 and b3 go in the set's order: b1's number is 5 or 6)
    const told = Object.entries(receivers(await s.news()));
    assert.equal(told.length, 1, 'b3 was alone');
    assert.match(told[0][0], /^L[56] b1$/);
    assert.deepEqual(told[0][1], [A]);
    assert.deepEqual((await s.cmd('HKEYS', 'sb:r:r1')).sort(), ['a1', 'b2']);
    assert.equal(await s.cmd('EXISTS', 'sb:r:r2'), 0);
    assert.deepEqual(await s.cmd('SMEMBERS', `sb:m:${B}`), ['2:r1b2']);
    assert.equal(await s.seq(), 6);
    // nothing left to prune; a node holding nothing keeps nothing
    assert.equal(await s.prune(B, `${B}:2`), 0);
    assert.equal(await s.prune(A), 1);
    assert.deepEqual(receivers(await s.news()), { 'L7 a1': [B] });
    assert.deepEqual(await s.prune('not-a-node'), { error: 'ERR prune.lua: node is not 16 lowercase hex' });
  });
});

describe('drain.lua', () => {
  test('the node\'s members leave at once, with L to the other nodes; it leaves sb:nodes', async (t) => {
    const s = await setup(t);
    const epoch = (await s.join(A, 'r1', 'a1', 1, 'A1'))[1];
    await s.join(B, 'r1', 'b1', 1, 'B1');
    await s.join(B, 'r1', 'b2', 2, 'B2');
    await s.join(B, 'r2', 'b3', 3, 'B3');
    await s.join(C, 'r3', 'c1', 1, 'C1');
    await s.join(B, 'r3', 'b4', 4, 'B4');
    await s.beat(A, 60000);
    await s.beat(B, 60000);
    await s.news();

    assert.equal(await s.drain(B), 4);
    const evs = await s.news();
    const who = Object.fromEntries(Object.entries(receivers(evs)).map(([k, v]) => [k.split(' ')[1], v]));
    assert.deepEqual(who, { b1: [A], b2: [A], b4: [C] }, 'b3 was alone');
    for (const [, ev] of evs) {
      assert.equal(ev.kind, 'L');
      assert.equal(ev.epoch, epoch);
      assert.equal(ev.sid, `${B}:${ev.id.slice(1)}`);
      assert.equal(ev.nick, ev.id.toUpperCase());
    }
    assert.equal(await s.seq(), 10);
    assert.equal(await s.cmd('EXISTS', `sb:m:${B}`, 'sb:r:r2'), 0);
    assert.equal(await s.cmd('ZSCORE', 'sb:nodes', B), null);
    assert.deepEqual(await s.cmd('HKEYS', 'sb:r:r1'), ['a1']);
    assert.deepEqual(await s.cmd('HKEYS', 'sb:r:r3'), ['c1']);
    assert.ok(await s.cmd('ZSCORE', 'sb:nodes', A));

    assert.equal(await s.drain(B), 0, 'again: nothing');
    assert.equal(await s.drain(E), 0, 'a node never seen');
    assert.deepEqual(await s.news(), []);
    assert.equal(await s.seq(), 10);
  });
});

describe('rejoin.lua', () => {
  test('kept with no event; taken; added with J to the other nodes', async (t) => {
    const s = await setup(t);
    const epoch = (await s.join(A, 'r', 'alice', 1, 'Alice'))[1];
    await s.join(B, 'r', 'bob', 1, 'Bob');
    await s.news();

    assert.deepEqual(await s.rejoin(A, 'r', 'alice', 1, 'Alice'), ['kept']);
    assert.deepEqual(await s.rejoin(A, 'r', 'alice', 2, 'Alice'), ['taken']);
    assert.deepEqual(await s.rejoin(C, 'r', 'alice', 1, 'Alice'), ['taken']);
    assert.deepEqual(await s.news(), []);
    assert.equal(await s.seq(), 2);
    assert.equal(await s.cmd('EXISTS', `sb:m:${C}`), 0);

    assert.deepEqual(await s.rejoin(C, 'r', 'carl', 1, 'Carl'), ['added']);
    const evs = await s.news();
    assert.deepEqual(evs.map(([n]) => n).sort(), [A, B]);
    for (const [, e] of evs) {
      assert.deepEqual(e, { kind: 'J', seq: 3, epoch, room: 'r', id: 'carl', sid: `${C}:1`, nick: 'Carl' });
    }
    assert.deepEqual(await s.cmd('SMEMBERS', `sb:m:${C}`), ['1:rcarl']);
    assert.deepEqual(await s.rejoin(C, 'r', 'carl', 1, 'Carl'), ['kept']);

    // no room limit: it was admitted before
    assert.deepEqual(await s.join(C, 'r', 'dan', 2, 'Dan', 3), ['full']);
    assert.deepEqual(await s.rejoin(C, 'r', 'dan', 2, 'Dan'), ['added']);
  });

  test('after Redis restarted empty: a new epoch, and rejoins add the members back', async (t) => {
    const s = await setup(t);
    const old = (await s.join(A, 'r', 'alice', 1, 'Alice'))[1];
    await s.join(B, 'r', 'bob', 1, 'Bob');
    assert.equal((await s.snapshot('r'))[0], old);
    assert.equal(await s.cmd('GET', 'sb:epoch'), old);

    await s.redis.restart();
    const sub = await subscribe(s.redis.port, { patterns: [`${P}*`] });
    t.after(() => sub.close());

    assert.deepEqual(await s.rejoin(A, 'r', 'alice', 1, 'Alice'), ['added']);
    assert.deepEqual(await s.rejoin(B, 'r', 'bob', 1, 'Bob'), ['added']);
    assert.deepEqual(await s.rejoin(B, 'r', 'bob', 1, 'Bob'), ['kept']);
    const epoch = await s.cmd('GET', 'sb:epoch');
    assert.ok(epoch && epoch !== old, `a new epoch: ${epoch} after ${old}`);
    assert.deepEqual(events(await sub.sync()), [[A, {
      kind: 'J', seq: 2, epoch, room: 'r', id: 'bob', sid: `${B}:1`, nick: 'Bob',
    }]]);
    const snap = await s.snapshot('r');
    assert.deepEqual(snap.slice(0, 2), [epoch, 2]);
    assert.deepEqual(roster(snap.slice(2)), [`alice ${A}:1 Alice`, `bob ${B}:1 Bob`]);
  });
});

describe('snapshot.lua', () => {
  test('the room as in its hash, with the current seq', async (t) => {
    const s = await setup(t);
    const empty = await s.snapshot('r');
    assert.equal(empty.length, 2);
    assert.equal(empty[1], 0, 'seq 0 before any change');
    assert.equal(await s.cmd('GET', 'sb:epoch'), empty[0], 'the epoch is made on first use');

    await s.join(A, 'r', 'alice', 1, 'Alice');
    await s.join(B, 'r', 'bob', 7, 'Bob ✓');
    await s.join(B, 'other', 'x', 8, 'X');
    await s.join(C, 'r', 'carl', 1, '');
    await s.leave(A, 'r', 'alice', `${A}:1`);
    const snap = await s.snapshot('r');
    assert.deepEqual(snap.slice(0, 2), [empty[0], 5]);
    assert.equal(await s.seq(), 5);
    assert.deepEqual(roster(snap.slice(2)), [`bob ${B}:7 Bob ✓`, `carl ${C}:1 `]);
    const hash = await s.cmd('HGETALL', 'sb:r:r');
    const fromHash = [];
    for (let i = 0; i < hash.length; i += 2) {
      const m = /^(\d+):/.exec(hash[i + 1]);
      const sid = hash[i + 1].slice(m[0].length, m[0].length + Number(m[1]));
      fromHash.push(hash[i], sid, hash[i + 1].slice(m[0].length + Number(m[1])));
    }
    assert.deepEqual(roster(snap.slice(2)), roster(fromHash));
    assert.deepEqual(await s.snapshot('nowhere'), [empty[0], 5]);
  });

  test('the epoch is one across scripts and events, and changes when Redis restarts empty', async (t) => {
    const s = await setup(t);
    const e1 = (await s.snapshot('r'))[0];
    assert.equal((await s.join(A, 'r', 'x', 1, 'X'))[1], e1);
    await s.join(B, 'r', 'y', 1, 'Y');
    await s.leave(A, 'r', 'x', `${A}:1`);
    await s.drain(B);
    await s.join(C, 'r', 'z', 1, 'Z');
    await s.join(D, 'r', 'w', 1, 'W');
    await s.cmd('ZADD', 'sb:nodes', 'XX', (await redisNow(s)) - 60000, C);
    await s.beat(E, 5000);
    const evs = await s.news();
    assert.deepEqual(evs.map(([, e]) => e.kind).sort(), ['J', 'J', 'L', 'L'], 'one of each script but snapshot');
    for (const [, e] of evs) assert.equal(e.epoch, e1);
    assert.equal((await s.snapshot('r'))[0], e1);

    await s.redis.restart();
    const e2 = (await s.snapshot('r'))[0];
    assert.notEqual(e2, e1);
    assert.deepEqual(await s.join(A, 'r', 'x', 1, 'X'), ['ok', e2, 1]);
  });

  test('each script that returns or publishes an epoch makes it when the dataset has none', async (t) => {
    const s = await setup(t);
    const seen = new Set();
    // An emptied dataset holding, without any script's help, x of A and y
    // of B in room r, both nodes' sets, and A's last sign of life long ago.
    const emptied = async () => {
      await s.cmd('FLUSHDB');
      await s.cmd('HSET', 'sb:r:r', 'x', `18:${A}:1X`, 'y', `18:${B}:1Y`);
      await s.cmd('SADD', `sb:m:${A}`, '1:rx');
      await s.cmd('SADD', `sb:m:${B}`, '1:ry');
      const old = (await redisNow(s)) - 60000;
      await s.cmd('ZADD', 'sb:nodes', old, A, old, B);
      await s.news();
    };
    const fresh = async (epoch, name) => {
      assert.ok(epoch, `${name}: an epoch`);
      assert.equal(await s.cmd('GET', 'sb:epoch'), epoch, `${name}: the one kept in sb:epoch`);
      assert.ok(!seen.has(epoch), `${name}: a new epoch (${epoch})`);
      seen.add(epoch);
    };
    const told = async (name) => {
      const evs = await s.news();
      assert.equal(evs.length > 0 && new Set(evs.map(([, e]) => e.epoch)).size, 1, `${name}: events of one epoch`);
      return evs[0][1].epoch;
    };

    // twice each: a script that kept one epoch for every dataset would repeat it
    for (let round = 0; round < 2; round++) {
      await emptied();
      await fresh((await s.join(C, 'r', 'z', 1, 'Z'))[1], 'join.lua');
      await emptied();
      await fresh((await s.snapshot('r'))[0], 'snapshot.lua');
      await emptied();
      assert.deepEqual(await s.rejoin(C, 'r', 'z', 1, 'Z'), ['added']);
      await fresh(await told('rejoin.lua'), 'rejoin.lua');
      await emptied();
      assert.equal(await s.leave(A, 'r', 'x', `${A}:1`), 1);
      await fresh(await told('leave.lua'), 'leave.lua');
      await emptied();
      assert.equal(await s.drain(A), 1);
      await fresh(await told('drain.lua'), 'drain.lua');
      await emptied();
      await s.cmd('ZADD', 'sb:nodes', await redisNow(s), B);
      assert.deepEqual(await s.beat(B, 5000), [1, 1, 1]);
      await fresh(await told('beat.lua'), 'beat.lua');
    }
  });
});

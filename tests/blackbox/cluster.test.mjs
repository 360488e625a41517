// Cluster nodes and their backplane (--redis): each node registers with a
// real Redis started by the test, counts the live nodes, says at /healthz
// and in /metrics whether it reaches Redis and why not, rides out Redis
// paused, stopped and restarted empty, leaves the cluster at once on
// SIGTERM and after --node-timeout when killed, and never shows the
// Redis password.  Rooms span nodes: rosters, join and leave events,
// targeted and broadcast relays, id_taken and room_full for the whole
// cluster (a join race has one winner), the order and exactly-once
// guarantees between peers on different nodes, relays in packs (with and
// without CLIENT REPLY SKIP), the departures of a node
// that drains or dies, and unavailable while Redis is away.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { T, httpGet, sleep, startServer, waitFor, withTimeout } from './lib/harness.mjs';
import { assertError, connect, isJoinOf, isLeaveOf, joined } from './lib/client.mjs';
import { getMetrics } from './lib/metrics.mjs';
import { startRedis } from './lib/redis.mjs';

function isReference() {
  return (process.env.SWITCHBOARD_BIN || '').includes('server.js');
}

async function health(srv) {
  const r = await httpGet(srv, '/healthz');
  return `${r.status} ${r.body.trim()}`;
}

const nodesSeen = async (srv) => (await getMetrics(srv)).get('switchboard_cluster_nodes');

// Waits until every node sees n live nodes.
async function allSee(nodes, n, what) {
  for (const srv of nodes) {
    await waitFor(async () => (await nodesSeen(srv)) === n, T(10000), `${what}: ${n} nodes seen`);
  }
}

describe('the backplane', () => {
  test('nodes register, count each other, and never show the password', async (t) => {
    if (isReference()) return t.skip('the reference has no cluster mode');
    const redis = await startRedis({ t, password: 'hunter2-secret' });
    const args = ['--redis', redis.url(3), '--node-timeout', '3'];
    const a = await startServer(args, { t });
    const b = await startServer(args, { t, env: { SWITCHBOARD_REDIS: redis.url(3) } });
    await allSee([a, b], 2, 'two nodes');
    assert.equal(await health(a), '200 ok');
    const m = await getMetrics(a);
    assert.equal(m.get('switchboard_backplane_up'), 1);
    assert.equal(m.get('switchboard_backplane_connects_total'), 1);
    // in the database of the URL
    assert.equal(await redis.command(3, 'ZCARD', 'sb:nodes'), 2);
    assert.equal(await redis.command(0, 'ZCARD', 'sb:nodes'), 0);
    await waitFor(() => /ready at .*, cluster redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\/3, node timeout 3 s;/
      .test(a.stderr()), T(5000), 'the ready line');
    for (const srv of [a, b]) {
      assert.doesNotMatch(srv.stderr(), /hunter2/);
      assert.doesNotMatch(m.text, /hunter2/);
    }
  });

  test('a wrong password: /healthz 503 saying so, and the password nowhere', async (t) => {
    if (isReference()) return t.skip('the reference has no cluster mode');
    const redis = await startRedis({ t, password: 'right-one' });
    const a = await startServer(['--redis', `redis://:wrong-one@127.0.0.1:${redis.port}`], { t });
    await waitFor(async () => /^503 backplane unreachable: AUTH refused: WRONGPASS/.test(await health(a)),
      T(5000), 'the refusal at /healthz');
    assert.equal((await getMetrics(a)).get('switchboard_backplane_up'), 0);
    assert.match(a.stderr(), /warn \[backplane\] backplane unreachable: AUTH refused/);
    assert.doesNotMatch(a.stderr(), /wrong-one|right-one/);
  });

  test('no Redis at all: the node serves, /healthz says why it is 503', async (t) => {
    if (isReference()) return t.skip('the reference has no cluster mode');
    const redis = await startRedis({ t });
    const port = redis.port;
    await redis.stop();
    const a = await startServer(['--redis', `redis://127.0.0.1:${port}`], { t });
    await waitFor(async () => /^503 backplane unreachable: cannot connect to 127\.0\.0\.1:\d+: Connection refused$/
      .test(await health(a)), T(5000), 'the reason at /healthz');
    // one warning, not one per attempt
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(a.stderr().match(/backplane unreachable/g).length, 1);
  });

  test('Redis paused, stopped, restarted empty: 503 while away, registered again after', async (t) => {
    if (isReference()) return t.skip('the reference has no cluster mode');
    const redis = await startRedis({ t });
    const args = ['--redis', redis.url(), '--node-timeout', '2'];
    const a = await startServer(args, { t });
    const b = await startServer(args, { t });
    await allSee([a, b], 2, 'at first');

    redis.pause();
    await waitFor(async () => /^503 backplane unreachable: 127\.0\.0\.1:\d+ did not answer for 1\.0 s$/
      .test(await health(a)), T(5000), 'a paused Redis noticed');
    redis.resume();
    await waitFor(async () => (await health(a)) === '200 ok', T(5000), 'back after the pause');
    await allSee([a, b], 2, 'after the pause');

    await redis.restart();	// empty: no persistence
    await allSee([a, b], 2, 'after the restart');
    assert.equal(await redis.command(0, 'ZCARD', 'sb:nodes'), 2);
    assert.equal(await health(b), '200 ok');
    assert.ok((await getMetrics(a)).get('switchboard_backplane_connects_total') >= 3);
  });

  test('SIGTERM leaves the cluster at once; kill -9 after the node timeout', async (t) => {
    if (isReference()) return t.skip('the reference has no cluster mode');
    const redis = await startRedis({ t });
    const args = ['--redis', redis.url(), '--node-timeout', '2'];
    const a = await startServer(args, { t });
    const b = await startServer(args, { t });
    const c = await startServer(args, { t });
    await allSee([a, b, c], 3, 'three nodes');

    await b.stop('SIGTERM');
    assert.equal(await redis.command(0, 'ZCARD', 'sb:nodes'), 2, 'b removed itself');
    await allSee([a, c], 2, 'after the drain');

    const killed = Date.now();
    await c.kill();
    await allSee([a], 1, 'after kill -9');
    const after = Date.now() - killed;
    assert.ok(after >= 1000, `a saw c gone after ${after} ms, before its timeout could pass`);
  });

  test('without --redis: no backplane series, /healthz ok', async (t) => {
    const a = await startServer([], { t });
    assert.equal(await health(a), '200 ok');
    assert.equal((await getMetrics(a)).has('switchboard_backplane_up'), false);
  });
});

// A Redis and n nodes on it.
async function cluster(t, n, args = []) {
  const redis = await startRedis({ t });
  const nodes = [];
  for (let i = 0; i < n; i++) {
    nodes.push(await startServer(['--redis', redis.url(), '--node-timeout', '2', ...args], { t }));
  }
  // every node registered in Redis and up (what each node counts of the
  // others waits for its next heartbeat: a third of the node timeout)
  await waitFor(async () => (await redis.command(0, 'ZCARD', 'sb:nodes')) === n, T(10000),
    `the ${n} nodes registered`);
  for (const node of nodes) {
    await waitFor(async () => (await health(node)) === '200 ok', T(10000), 'a node up');
  }
  return { redis, nodes };
}

describe('rooms across nodes', () => {
  test('rosters, events and relays cross nodes; id_taken for the whole cluster', async (t) => {
    if (isReference()) return t.skip('the reference has no cluster mode');
    const { nodes: [n1, n2] } = await cluster(t, 2);
    const a = await joined(n1.url, 'a', { t, room: 'r', nick: 'A' });
    const b = await joined(n2.url, 'b', { t, room: 'r' });
    assert.deepEqual(b.joined.peers, [{ id: 'a', nick: 'A' }]);
    assert.deepEqual((await a.next()).payload, { id: 'b', nick: '' });
    const c = await joined(n1.url, 'c', { t, room: 'r' });
    assert.deepEqual(c.joined.peers.map((p) => p.id).sort(), ['a', 'b']);
    await a.next(isJoinOf('c'));
    await b.next(isJoinOf('c'));
    // targeted both ways, and on the same node
    a.send({ type: 'offer', receiverId: 'b', payload: { sdp: 'x' } });
    assert.deepEqual(await b.next(), { type: 'offer', payload: { sdp: 'x', id: 'a', nick: 'A' } });
    b.send({ type: 'answer', receiverId: 'c', payload: { sdp: 'y' } });
    assert.deepEqual(await c.next(), { type: 'answer', payload: { sdp: 'y', id: 'b', nick: '' } });
    // a broadcast reaches each other member once
    b.send({ type: 'message', payload: { n: 1 } });
    assert.deepEqual(await a.next(), { type: 'message', payload: { n: 1, id: 'b', nick: '' } });
    assert.deepEqual(await c.next(), { type: 'message', payload: { n: 1, id: 'b', nick: '' } });
    await a.expectSilence(T(200));
    await b.expectSilence(0);
    // counted: what n1 published and n2 received, and the hop between them
    const [m1, m2] = [await getMetrics(n1), await getMetrics(n2)];
    assert.ok(m1.get('switchboard_backplane_published_total') >= 1);
    assert.ok(m2.get('switchboard_backplane_received_total') >= 2);	// a J and the offer
    assert.ok(m2.get('switchboard_backplane_hop_seconds_count') >= 1);
    assert.equal(m2.get('switchboard_backplane_hop_seconds_bucket', { le: '+Inf' }),
      m2.get('switchboard_backplane_hop_seconds_count'));
    // id_taken, whichever node is asked; an unknown receiver
    const d = await connect(n2.url, { t });
    d.send({ type: 'join', id: 'a', room: 'r' });
    assertError(await d.next(), 'id_taken', 'join');
    d.send({ type: 'message', receiverId: 'zed', payload: {} });
    assertError(await d.next(), 'not_joined', 'message');
    b.send({ type: 'message', receiverId: 'zed', payload: {} });
    assertError(await b.next(), 'peer_not_found', 'message');
    // a leave reaches the other node's members once
    b.send({ type: 'leave' });
    assert.deepEqual((await a.next()).payload, { id: 'b', nick: '' });
    assert.deepEqual((await c.next()).payload, { id: 'b', nick: '' });
    // and the id is free again, on the other node
    const b2 = await joined(n1.url, 'b', { t, room: 'r' });
    assert.equal(b2.joined.peers.length, 2);
    await a.expectSilence(T(100), isLeaveOf('b'));
  });

  test('room_full for the whole cluster', async (t) => {
    if (isReference()) return t.skip('the reference has no cluster mode');
    const { nodes: [n1, n2] } = await cluster(t, 2, ['--max-room-peers', '2']);
    await joined(n1.url, 'a', { t, room: 'f' });
    await joined(n2.url, 'b', { t, room: 'f' });
    const c = await connect(n1.url, { t });
    c.send({ type: 'join', id: 'c', room: 'f' });
    assertError(await c.next(), 'room_full', 'join');
  });

  test('two nodes racing joins with one id: exactly one wins, every time', async (t) => {
    if (isReference()) return t.skip('the reference has no cluster mode');
    const { nodes: [n1, n2] } = await cluster(t, 2);
    const x = await connect(n1.url, { t });
    const y = await connect(n2.url, { t });
    for (let round = 0; round < 40; round++) {
      const join = { type: 'join', id: `id${round}`, room: 'race' };
      x.send(join);
      y.send(join);
      // (a joiner may first hear of the last round's winner, whose leave
      // is still on its way: a roster entry and its leave, both fine)
      const answer = (m) => m.type === 'joined' || m.type === 'error';
      const [rx, ry] = await Promise.all([x.next(answer), y.next(answer)]);
      const won = [rx, ry].filter((m) => m.type === 'joined');
      const lost = [rx, ry].filter((m) => m.type === 'error');
      assert.equal(won.length, 1, `round ${round}: ${JSON.stringify([rx, ry])}`);
      assert.equal(lost.length, 1, `round ${round}: ${JSON.stringify([rx, ry])}`);
      assert.equal(lost[0].payload.code, 'id_taken');
      const winner = rx.type === 'joined' ? x : y;
      winner.send({ type: 'leave' });
      await winner.ping();
    }
  });

  test('per-pair order and exactly once across nodes, joins before messages, leaves after', async (t) => {
    if (isReference()) return t.skip('the reference has no cluster mode');
    const { nodes: [n1, n2] } = await cluster(t, 2);
    const a = await joined(n1.url, 'a', { t, room: 'o' });
    const N = 1000;
    for (let round = 0; round < 5; round++) {
      // b joins and sends at once, pipelined: a hears the join first
      const b = await connect(n2.url, { t });
      b.send({ type: 'join', id: `b${round}`, room: 'o' });
      for (let i = 0; i < N; i++) {
        b.send(i % 2 ? { type: 'message', payload: { i } } : { type: 'icecandidate', receiverId: 'a', payload: { i } });
      }
      b.close();
      assert.deepEqual(await a.next(), { type: 'join', payload: { id: `b${round}`, nick: '' } });
      for (let i = 0; i < N; i++) {
        const m = await a.next();
        assert.equal(m.payload.i, i, `round ${round}: ${JSON.stringify(m)}`);
      }
      assert.deepEqual(await a.next(), { type: 'leave', payload: { id: `b${round}`, nick: '' } });
    }
    await a.expectSilence(T(200));
  });
});

// Redis's count of calls of each command since CONFIG RESETSTAT.
async function calls(redis) {
  const info = await redis.command(0, 'INFO', 'commandstats');
  const out = {};
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out[m[1]] = Number(m[2]);
  return out;
}

describe('relays between nodes in packs', () => {
  test('relays to one node in one pass go as one PUBLISH, without a reply, and scripts run by their SHA1; a Redis user without CLIENT and SCRIPT gets one reply each and EVAL', async (t) => {
    if (isReference()) return t.skip('the reference has no cluster mode');
    const redis = await startRedis({ t });
    assert.equal(await redis.command(0, 'ACL', 'SETUSER', 'noclient', 'on', '>pw', '~*', '&*', '+@all', '-client', '-script'), 'OK');
    const N = 1000;
    for (const [k, user] of [[0, ''], [1, 'noclient:pw@']]) {
      const url = redis.url().replace('redis://', `redis://${user}`);
      const args = ['--redis', url, '--node-timeout', '2'];
      const [n1, n2] = [await startServer(args, { t }), await startServer(args, { t })];
      for (const node of [n1, n2]) {
        await waitFor(async () => (await health(node)) === '200 ok', T(10000), 'a node up');
      }
      assert.equal(await redis.command(0, 'CONFIG', 'RESETSTAT'), 'OK');
      const a = await joined(n1.url, `a${k}`, { t, room: `p${k}` });
      const b = await joined(n2.url, `b${k}`, { t, room: `p${k}` });
      await a.next(isJoinOf(`b${k}`));
      const scripts = await calls(redis);
      if (k === 0) assert.ok(scripts.evalsha >= 2 && !scripts.eval, JSON.stringify(scripts));
      else assert.ok(scripts.eval >= 2 && !scripts.evalsha, JSON.stringify(scripts));
      const before = await getMetrics(n2);
      assert.equal(await redis.command(0, 'CONFIG', 'RESETSTAT'), 'OK');
      for (let i = 0; i < N; i++) b.send({ type: 'icecandidate', receiverId: `a${k}`, payload: { i } });
      for (let i = 0; i < N; i++) assert.equal((await a.next()).payload.i, i);
      const c = await calls(redis);
      // the client's pipelined messages reach the backplane in bursts: far
      // fewer PUBLISHes than relays (each pass sends one per node)
      assert.ok(c.publish >= 1 && c.publish <= N / 2, `${c.publish} PUBLISHes for ${N} relays`);
      if (k === 0) assert.equal(c['client|reply'], c.publish, 'each PUBLISH without a reply');
      else assert.equal(c['client|reply'] ?? 0, 0, 'no CLIENT REPLY for a user without it');
      const after = await getMetrics(n2);
      assert.equal(after.get('switchboard_backplane_published_total') -
        before.get('switchboard_backplane_published_total'), N, 'relays counted one by one');
      // and the connection to Redis keeps its answers in step: a join
      // after all that is answered
      const d = await joined(n2.url, `d${k}`, { t, room: `p${k}` });
      assert.deepEqual(d.joined.peers.map((p) => p.id).sort(), [`a${k}`, `b${k}`]);
      await a.next(isJoinOf(`d${k}`));
      for (const x of [a, b, d]) x.close();
      await n1.stop();
      await n2.stop();
    }
  });
});

describe('scripts flushed', () => {
  test('SCRIPT FLUSH: the node connects again and loads them, members stay, one leave each after', async (t) => {
    if (isReference()) return t.skip('the reference has no cluster mode');
    const { redis, nodes: [n1, n2] } = await cluster(t, 2);
    const a = await joined(n1.url, 'a', { t, room: 's' });
    const b = await joined(n2.url, 'b', { t, room: 's' });
    await a.next(isJoinOf('b'));
    assert.equal(await redis.command(0, 'SCRIPT', 'FLUSH'), 'OK');
    // a join finds the scripts gone: unavailable, and the node connects
    // again; a later one goes through
    let c;
    let peers;
    await waitFor(async () => {
      const x = await connect(n1.url, { t });
      x.send({ type: 'join', id: 'c', room: 's' });
      const m = await x.next();
      if (m.type === 'joined') {
        c = x;
        peers = m.payload.peers.map((p) => p.id).sort();
        return true;
      }
      assertError(m, 'unavailable', 'join');
      x.close();
      return false;
    }, T(15000), 'a join after SCRIPT FLUSH');
    assert.deepEqual(peers, ['a', 'b']);
    // a node noticed (a join or its heartbeat) and connected again, which
    // loaded the scripts for all (the other may then never miss them)
    const connects = async () => (await getMetrics(n1)).get('switchboard_backplane_connects_total') +
      (await getMetrics(n2)).get('switchboard_backplane_connects_total');
    await waitFor(async () => (await connects()) >= 3, T(10000), 'a node connected again');
    await a.next(isJoinOf('c'));
    await b.next(isJoinOf('c'));
    // nobody heard of a or b leaving or joining again meanwhile
    await a.expectSilence(T(300));
    await b.expectSilence(0);
    // and a departure on the other node reaches them once
    b.close();
    await a.next(isLeaveOf('b'));
    await c.next(isLeaveOf('b'));
    await a.expectSilence(T(300));
  });
});

describe('nodes that go away', () => {
  test('SIGTERM: the others hear one leave per member of the node, from the node itself', async (t) => {
    if (isReference()) return t.skip('the reference has no cluster mode');
    // no node is taken for gone within this test: the leaves can only come
    // from the draining node's own removal
    const { nodes: [n1, n2] } = await cluster(t, 2, ['--node-timeout', '3600']);
    const a = await joined(n1.url, 'a', { t, room: 'g' });
    await joined(n2.url, 'b', { t, room: 'g' });
    await joined(n2.url, 'c', { t, room: 'g' });
    for (const id of ['b', 'c']) await a.next(isJoinOf(id));
    await n2.stop('SIGTERM');
    const gone = [await a.next(), await a.next()];
    assert.deepEqual(gone.map((m) => m.type), ['leave', 'leave']);
    assert.deepEqual(gone.map((m) => m.payload.id).sort(), ['b', 'c']);
    await a.expectSilence(T(500));
    const b2 = await joined(n1.url, 'b', { t, room: 'g' });
    assert.deepEqual(b2.joined.peers, [{ id: 'a', nick: '' }]);
  });

  test('kill -9: the others hear one leave per member of the node, after the node timeout', async (t) => {
    if (isReference()) return t.skip('the reference has no cluster mode');
    const { nodes: [n1, n2, n3] } = await cluster(t, 3);
    const a = await joined(n1.url, 'a', { t, room: 'g' });
    await joined(n3.url, 'd', { t, room: 'g' });
    await joined(n3.url, 'e', { t, room: 'g' });
    await joined(n2.url, 'f', { t, room: 'g' });
    for (const id of ['d', 'e', 'f']) await a.next(isJoinOf(id));
    const killed = Date.now();
    await n3.kill();
    const dead = [(await a.next(undefined, T(10000))), (await a.next(undefined, T(10000)))];
    assert.deepEqual(dead.map((m) => m.type), ['leave', 'leave']);
    assert.deepEqual(dead.map((m) => m.payload.id).sort(), ['d', 'e']);
    // (a lower bound only: the node timeout is 2 s, and the dead node's
    // last beat may have been up to a third of it before the kill)
    assert.ok(Date.now() - killed >= 1000, 'not before the node timeout could pass');
    await a.expectSilence(T(2500));	// no second leave from the other reaper
    // their ids are free again
    const d2 = await joined(n1.url, 'd', { t, room: 'g' });
    assert.deepEqual(d2.joined.peers.map((p) => p.id).sort(), ['a', 'f']);
  });

  test('Redis away: own members still talk, joins and remote messages are unavailable', async (t) => {
    if (isReference()) return t.skip('the reference has no cluster mode');
    const { redis, nodes: [n1, n2] } = await cluster(t, 2);
    const a = await joined(n1.url, 'a', { t, room: 'u' });
    const a2 = await joined(n1.url, 'a2', { t, room: 'u' });
    await joined(n2.url, 'b', { t, room: 'u' });
    await a.next(isJoinOf('a2'));
    await a.next(isJoinOf('b'));
    await a2.next(isJoinOf('b'));
    const v1 = await joined(n1.url, 'v1', { t, room: 'v' });
    const v2 = await joined(n1.url, 'v2', { t, room: 'v' });
    await v1.next(isJoinOf('v2'));
    redis.pause();
    await waitFor(async () => (await health(n1)).startsWith('503'), T(5000), 'n1 to notice');
    a.send({ type: 'offer', receiverId: 'a2', payload: {} });
    assert.equal((await a2.next((m) => m.type === 'offer')).payload.id, 'a');
    a.send({ type: 'offer', receiverId: 'b', payload: {} });
    assertError(await a.next(), 'unavailable', 'offer');
    // a broadcast that another node must carry reaches no one, not even
    // the members here (a refused message reaches no one)
    a.send({ type: 'message', payload: { all: 1 } });
    assertError(await a.next(), 'unavailable', 'message');
    await a2.expectSilence(T(200));
    // in a room of this node's members alone it goes as ever
    v1.send({ type: 'message', payload: { all: 2 } });
    assert.deepEqual(await v2.next(), { type: 'message', payload: { all: 2, id: 'v1', nick: '' } });
    await v1.expectSilence(0);
    const c = await connect(n1.url, { t });
    c.send({ type: 'join', id: 'c', room: 'u' });
    assertError(await c.next(), 'unavailable', 'join');
    redis.resume();
    await waitFor(async () => (await health(n1)) === '200 ok', T(5000), 'n1 back');
    a.send({ type: 'offer', receiverId: 'b', payload: { after: 1 } });
    c.send({ type: 'join', id: 'c', room: 'u' });
    assert.equal((await c.next()).type, 'joined');
  });

  test('Redis restarted empty: members registered again, no event for anyone, ids still taken', async (t) => {
    if (isReference()) return t.skip('the reference has no cluster mode');
    const { redis, nodes: [n1, n2] } = await cluster(t, 2);
    const a = await joined(n1.url, 'a', { t, room: 'e' });
    const b = await joined(n2.url, 'b', { t, room: 'e' });
    await a.next(isJoinOf('b'));
    await redis.restart();
    await allSee([n1, n2], 2, 'after the restart');
    await waitFor(async () => (await redis.command(0, 'HLEN', 'sb:r:e')) === 2, T(5000),
      'both members registered again');
    // taken still, on either node
    const c = await connect(n1.url, { t });
    c.send({ type: 'join', id: 'b', room: 'e' });
    assertError(await c.next(), 'id_taken', 'join');
    c.send({ type: 'join', id: 'c', room: 'e' });
    assert.deepEqual((await c.next()).payload.peers.map((p) => p.id).sort(), ['a', 'b']);
    // a and b hear of c only, and still reach each other
    assert.deepEqual(await a.next(), { type: 'join', payload: { id: 'c', nick: '' } });
    assert.deepEqual(await b.next(), { type: 'join', payload: { id: 'c', nick: '' } });
    a.send({ type: 'offer', receiverId: 'b', payload: { n: 1 } });
    assert.equal((await b.next()).payload.n, 1);
    await a.expectSilence(T(300));
    await b.expectSilence(0);
  });

  test('a node frozen past the node timeout: its members leave for the others, and come back with it', async (t) => {
    if (isReference()) return t.skip('the reference has no cluster mode');
    const { nodes: [n1, n2] } = await cluster(t, 2);
    const a = await joined(n1.url, 'a', { t, room: 'z' });
    const b = await joined(n2.url, 'b', { t, room: 'z' });
    await a.next(isJoinOf('b'));
    process.kill(n2.pid, 'SIGSTOP');
    try {
      assert.deepEqual(await a.next(undefined, T(10000)), { type: 'leave', payload: { id: 'b', nick: '' } });
      // meanwhile one joins next to a, another leaves
      const c = await joined(n1.url, 'c', { t, room: 'z' });
      assert.deepEqual(c.joined.peers, [{ id: 'a', nick: '' }]);
      await a.next(isJoinOf('c'));
    } finally {
      process.kill(n2.pid, 'SIGCONT');
    }
    // back: the others hear b join again; b hears of c, once
    assert.deepEqual(await a.next(undefined, T(10000)), { type: 'join', payload: { id: 'b', nick: '' } });
    assert.deepEqual(await b.next(undefined, T(10000)), { type: 'join', payload: { id: 'c', nick: '' } });
    b.send({ type: 'message', payload: { back: 1 } });
    assert.equal((await a.next()).payload.back, 1);
    await a.expectSilence(T(500));
    await b.expectSilence(0);
  });

  test('departures while Redis is away reach the others once it is back, one leave each', async (t) => {
    if (isReference()) return t.skip('the reference has no cluster mode');
    const { redis, nodes: [n1, n2] } = await cluster(t, 2);
    const a = await joined(n1.url, 'a', { t, room: 'gap' });
    const a2 = await joined(n1.url, 'a2', { t, room: 'gap' });
    const b = await joined(n2.url, 'b', { t, room: 'gap' });
    const b2 = await joined(n2.url, 'b2', { t, room: 'gap' });
    for (const id of ['a2', 'b', 'b2']) await a.next(isJoinOf(id));
    for (const id of ['b2']) await b.next(isJoinOf(id));
    redis.pause();
    await waitFor(async () => (await health(n1)).startsWith('503') && (await health(n2)).startsWith('503'),
      T(5000), 'both nodes to notice');
    // one leaves on each side: its own node's members hear it at once
    a2.send({ type: 'leave' });
    b2.close();
    assert.deepEqual(await a.next(), { type: 'leave', payload: { id: 'a2', nick: '' } });
    assert.deepEqual(await b.next(), { type: 'leave', payload: { id: 'b2', nick: '' } });
    redis.resume();
    // and the other side when Redis is back, once
    assert.deepEqual(await a.next(undefined, T(10000)), { type: 'leave', payload: { id: 'b2', nick: '' } });
    assert.deepEqual(await b.next(undefined, T(10000)), { type: 'leave', payload: { id: 'a2', nick: '' } });
    await a.expectSilence(T(3000));	// past the second read of the rooms too
    await b.expectSilence(0);
    a.send({ type: 'offer', receiverId: 'b', payload: {} });
    assert.equal((await b.next()).type, 'offer');
  });

  test('a node frozen while another let its member\'s id in: that member is closed with 1012', async (t) => {
    if (isReference()) return t.skip('the reference has no cluster mode');
    const { nodes: [n1, n2] } = await cluster(t, 2);
    const a = await joined(n1.url, 'a', { t, room: 'y' });
    const b = await joined(n2.url, 'b', { t, room: 'y' });
    await a.next(isJoinOf('b'));
    process.kill(n2.pid, 'SIGSTOP');
    let b2;
    try {
      await a.next(isLeaveOf('b'), T(10000));
      b2 = await joined(n1.url, 'b', { t, room: 'y' });	// the id is free: taken here
      await a.next(isJoinOf('b'));
    } finally {
      process.kill(n2.pid, 'SIGCONT');
    }
    const info = await withTimeout(b.closed, T(10000), 'the old b to be closed');
    assert.equal(info.code, 1012, JSON.stringify(info));
    // the new b was never disturbed; no second join or leave for a
    a.send({ type: 'offer', receiverId: 'b', payload: { n: 1 } });
    assert.equal((await b2.next()).payload.n, 1);
    await a.expectSilence(T(1000), (m) => m.type === 'join' || m.type === 'leave');
  });

  test('Redis back with an older snapshot: members that left meanwhile do not come back', async (t) => {
    if (isReference()) return t.skip('the reference has no cluster mode');
    const { redis, nodes: [n1, n2] } = await cluster(t, 2);
    const a = await joined(n1.url, 'a', { t, room: 's' });
    const b = await joined(n2.url, 'b', { t, room: 's' });
    await a.next(isJoinOf('b'));
    assert.equal(await redis.command(0, 'SAVE'), 'OK');	// b is in this snapshot
    b.send({ type: 'leave' });
    assert.deepEqual(await a.next(), { type: 'leave', payload: { id: 'b', nick: '' } });
    await redis.restart();	// and comes back with it
    await allSee([n1, n2], 2, 'after the restart');
    await waitFor(async () => (await redis.command(0, 'HEXISTS', 'sb:r:s', 'b')) === 0, T(5000),
      'the ghost of b to be removed');
    // nobody heard of b again, and the id is free
    await a.expectSilence(T(3000));
    const b2 = await joined(n1.url, 'b', { t, room: 's' });
    assert.deepEqual(b2.joined.peers, [{ id: 'a', nick: '' }]);
  });
});

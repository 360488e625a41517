// A cluster behind nginx: Debian's nginx configured from the shipped
// deploy/nginx/switchboard-cluster.conf (see lib/nginx.mjs) in front of
// three nodes on one Redis of the test's own (lib/redis.mjs). Peers that
// connect through nginx are spread over the nodes by plain round robin and
// still share one room: rosters, join events, targeted and broadcast
// relays in order, the client address passed on by X-Forwarded-For. A node
// stopped with SIGTERM: its peers' leaves reach the others at once, nginx
// sends what comes next to the nodes left, /healthz stays 200 through it.
// A node killed: its peers' leaves within --node-timeout.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isJoinOf, joined } from './lib/client.mjs';
import { T, startServer, waitFor, withTimeout } from './lib/harness.mjs';
import { getMetrics } from './lib/metrics.mjs';
import { CLUSTER_EXAMPLE, startNginx } from './lib/nginx.mjs';
import { startRedis } from './lib/redis.mjs';

function isReference() {
  return (process.env.SWITCHBOARD_BIN || '').includes('server.js');
}

// Three nodes on one Redis, nginx in front of them; all ended with the test.
async function clusterBehindNginx(t, nodeTimeout) {
  const redis = await startRedis({ t });
  const args = ['--redis', redis.url(), '--node-timeout', String(nodeTimeout),
    '--trusted-proxy', '127.0.0.1', '--log-format', 'json', '--drain-timeout', '2'];
  const nodes = [];
  for (let i = 0; i < 3; i++) nodes.push(await startServer(args, { t, single: true }));
  for (const node of nodes) {
    await waitFor(async () => (await getMetrics(node)).get('switchboard_cluster_nodes') === 3, T(10000),
      `node ${node.port} to see three nodes`);
  }
  const ngx = await startNginx(nodes, { t, example: CLUSTER_EXAMPLE });
  return { redis, nodes, ngx };
}

// `ws` options for a client through nginx, from its own loopback address.
function via(ngx, localAddress) {
  return { ...ngx.tlsOptions, localAddress };
}

// The figure `name` of each node, in order.
async function perNode(nodes, name) {
  return Promise.all(nodes.map(async (n) => (await getMetrics(n)).get(name)));
}

// Six peers join one room through nginx, one after another; each hears the
// later ones join. Resolves with the peers, their ids, nicks and addresses.
async function sixPeers(t, ngx, room) {
  const peers = [];
  for (let k = 0; k < 6; k++) {
    const id = `p${k}`;
    const address = `127.0.0.${20 + k}`;
    const p = await joined(ngx.url, id, { t, room, nick: `P${k}`, options: via(ngx, address) });
    p.address = address;
    assert.deepEqual(p.joined.peers.map((x) => x.id).sort(), peers.map((x) => x.id).sort(), `${id}'s roster`);
    for (const x of p.joined.peers) assert.equal(x.nick, `P${x.id.slice(1)}`, JSON.stringify(p.joined.peers));
    peers.push(p);
  }
  for (const [k, p] of peers.entries()) {
    for (const later of peers.slice(k + 1)) {
      assert.deepEqual(await p.next(isJoinOf(later.id), T(5000)),
        { type: 'join', payload: { id: later.id, nick: `P${later.id.slice(1)}` } });
    }
    p.assertNone('join', 'extra join event');
  }
  return peers;
}

describe('a cluster behind nginx, round robin', () => {
  test('peers spread over three nodes share a room; a node drained with SIGTERM: leaves at once, /healthz stays 200',
    async (t) => {
      if (isReference()) return t.skip('the reference has no cluster mode');
      // A node timeout long enough that a leave arriving before it cannot
      // come from the reaper, only from the drain.
      const NODE_TIMEOUT = 10;
      const { nodes, ngx } = await clusterBehindNginx(t, NODE_TIMEOUT);
      const peers = await sixPeers(t, ngx, 'call');

      // Round robin without stickiness: two connections on each node,
      // though every client comes from the same /24.
      assert.deepEqual(await perNode(nodes, 'switchboard_connections'), [2, 2, 2]);
      assert.deepEqual(await perNode(nodes, 'switchboard_peers'), [2, 2, 2]);

      // Each peer sends, interleaved, N candidates to the next peer and N
      // broadcasts: every receiver gets each sender's in the order sent,
      // each once.
      const N = 50;
      for (let i = 0; i < N; i++) {
        for (const [k, p] of peers.entries()) {
          p.send({ type: 'icecandidate', receiverId: peers[(k + 1) % 6].id, payload: { candidate: `c${i}`, i } });
          p.send({ type: 'message', payload: { text: `m${i}`, i } });
        }
      }
      for (const [k, rx] of peers.entries()) {
        const seen = new Map();
        for (let n = 0; n < 6 * N; n++) {
          const m = await rx.next(undefined, T(10000));
          const from = m.payload && m.payload.id;
          const key = `${m.type} from ${from}`;
          const i = seen.get(key) || 0;
          const want = m.type === 'icecandidate'
            ? { type: 'icecandidate', payload: { candidate: `c${i}`, i, id: from, nick: `P${String(from).slice(1)}` } }
            : { type: 'message', payload: { text: `m${i}`, i, id: from, nick: `P${String(from).slice(1)}` } };
          assert.deepEqual(m, want, `${rx.id}: ${key}, number ${i}`);
          seen.set(key, i + 1);
        }
        const prev = peers[(k + 5) % 6].id;
        const expected = new Map(peers.filter((p) => p !== rx).map((p) => [`message from ${p.id}`, N]));
        expected.set(`icecandidate from ${prev}`, N);
        assert.deepEqual(new Map([...seen].sort()), new Map([...expected].sort()), `${rx.id}: what arrived`);
      }
      for (const p of peers) await p.expectSilence(T(100), undefined, 'message beyond the relays');

      // SIGTERM to the middle node: its two peers are closed with 1001
      // through nginx, and the four others hear both leave, once each.
      const stopped = nodes[1];
      const started = Date.now();
      const exit = withTimeout(stopped.stop('SIGTERM'), T(10000), 'the node to exit after SIGTERM');
      await waitFor(() => peers.filter((p) => p.closeInfo).length >= 2, T(5000), 'the node\'s peers to be closed');
      const gone = peers.filter((p) => p.closeInfo);
      const left = peers.filter((p) => !p.closeInfo);
      assert.equal(gone.length, 2, `closed: ${gone.map((p) => p.id)}`);
      for (const p of gone) assert.equal(p.closeInfo.code, 1001, `${p.id}: ${JSON.stringify(p.closeInfo)}`);
      for (const p of left) {
        const leaves = [await p.next('leave', T(5000)), await p.next('leave', T(5000))];
        assert.deepEqual(leaves.map((m) => m.payload).sort((a, b) => a.id.localeCompare(b.id)),
          gone.map((g) => ({ id: g.id, nick: `P${g.id.slice(1)}` })), `${p.id}'s leaves`);
      }
      const elapsed = Date.now() - started;
      // The node's last beat is at most a third of the timeout old: the
      // reaper could not have removed it this early.
      assert.ok(elapsed < (NODE_TIMEOUT * 1000 * 2) / 3,
        `the leaves took ${elapsed} ms: the drain did not remove the node's members`);
      assert.deepEqual(await exit, { code: 0, signal: null }, `stderr: ${stopped.stderr().slice(-2000)}`);
      for (const p of left) await p.expectSilence(T(300), 'leave', 'second leave');

      // The client address behind nginx, from X-Forwarded-For
      // (--trusted-proxy): in the stopped node's access lines.
      const access = stopped.stderr().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))
        .filter((o) => o.msg === 'connection closed');
      assert.deepEqual(access.map((o) => [o.id, o.client, o.cause]).sort(),
        gone.map((p) => [p.id, p.address, 'shutdown']).sort());

      // Through nginx: /healthz answers 200 from the nodes left, however
      // often asked; the stopped node is tried once, refuses, and the
      // request goes to the next one.
      for (let i = 0; i < 6; i++) {
        const r = await ngx.get('/healthz');
        assert.deepEqual([r.status, r.body.trim()], [200, 'ok'], `GET /healthz number ${i}`);
      }
      assert.match(ngx.errorLog(), /connect\(\) failed \(111: Connection refused\) while connecting to upstream/);
      // /metrics is per node, not through the proxy.
      assert.equal((await ngx.get('/metrics')).status, 403);

      // The departed ids are free at once; their new connections land on
      // the nodes left and see the room as it is.
      const back = [];
      for (const g of gone) {
        const p = await joined(ngx.url, g.id, { t, room: 'call', nick: `P${g.id.slice(1)}`, options: via(ngx, g.address) });
        assert.deepEqual(p.joined.peers.map((x) => x.id).sort(), [...left, ...back].map((x) => x.id).sort());
        back.push(p);
      }
      for (const p of left) {
        for (const g of gone) await p.next(isJoinOf(g.id), T(5000));
      }
      back[1].send({ type: 'message', payload: { text: 'back' } });
      for (const p of [...left, back[0]]) {
        assert.deepEqual(await p.next('message', T(5000)),
          { type: 'message', payload: { text: 'back', id: back[1].id, nick: `P${back[1].id.slice(1)}` } });
      }
      const remaining = [nodes[0], nodes[2]];
      // (the count is refreshed at each node's beat, a third of the timeout)
      await waitFor(async () => (await perNode(remaining, 'switchboard_cluster_nodes')).every((n) => n === 2),
        T(NODE_TIMEOUT * 1000), 'the nodes left to count two nodes');
      const conns = await perNode(remaining, 'switchboard_connections');
      assert.equal(conns[0] + conns[1], 6, `connections on the nodes left: ${conns}`);
    });
});

describe('a node that dies behind nginx', () => {
  test('kill -9: its peers\' leaves reach the others within the node timeout; nginx skips it', async (t) => {
    if (isReference()) return t.skip('the reference has no cluster mode');
    const NODE_TIMEOUT = 2;
    const { nodes, ngx } = await clusterBehindNginx(t, NODE_TIMEOUT);
    const peers = await sixPeers(t, ngx, 'crash');
    assert.deepEqual(await perNode(nodes, 'switchboard_connections'), [2, 2, 2]);

    const killed = Date.now();
    await nodes[2].kill();
    // nginx ends the client side of the connections it proxied there.
    await waitFor(() => peers.filter((p) => p.closeInfo).length >= 2, T(5000), 'the dead node\'s peers to be cut off');
    const gone = peers.filter((p) => p.closeInfo);
    const left = peers.filter((p) => !p.closeInfo);
    assert.equal(gone.length, 2, `cut off: ${gone.map((p) => p.id)}`);
    for (const p of left) {
      const leaves = [await p.next('leave', T(10000)), await p.next('leave', T(10000))];
      assert.deepEqual(leaves.map((m) => m.payload.id).sort(), gone.map((g) => g.id), `${p.id}'s leaves`);
    }
    const after = Date.now() - killed;
    assert.ok(after >= 1000, `the leaves came after ${after} ms, before the node timeout could pass`);
    for (const p of left) await p.expectSilence(T(300), 'leave', 'second leave');

    // Everything through nginx goes to the nodes left.
    for (let i = 0; i < 6; i++) {
      const r = await ngx.get('/healthz');
      assert.deepEqual([r.status, r.body.trim()], [200, 'ok'], `GET /healthz number ${i}`);
    }
    const g = gone[0];
    const p = await joined(ngx.url, g.id, { t, room: 'crash', options: via(ngx, g.address) });
    assert.deepEqual(p.joined.peers.map((x) => x.id).sort(), left.map((x) => x.id).sort());
    for (const x of left) await x.next(isJoinOf(g.id), T(5000));
  });
});

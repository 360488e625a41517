// Cluster nodes and their backplane (--redis): each node registers with a
// real Redis started by the test, counts the live nodes, says at /healthz
// and in /metrics whether it reaches Redis and why not, rides out Redis
// paused, stopped and restarted empty, leaves the cluster at once on
// SIGTERM and after --node-timeout when killed, and never shows the
// Redis password.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { T, httpGet, startServer, waitFor } from './lib/harness.mjs';
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

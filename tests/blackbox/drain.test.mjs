// Shutdown on SIGTERM / SIGINT: every connection is closed with 1001 and no
// leave events, /healthz turns 503 on connections already open, new
// connections are refused, and the process exits 0 by the drain timeout.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect, joined } from './lib/client.mjs';
import { T, httpGet, sleep, startServer, waitFor, withTimeout } from './lib/harness.mjs';
import { parsePrometheus } from './lib/metrics.mjs';
import { HttpConn, rawConnect } from './lib/rawws.mjs';

async function exitsCleanly(srv, signal, within) {
  const result = await withTimeout(srv.stop(signal), within, `the server to exit after ${signal}`);
  assert.deepEqual(result, { code: 0, signal: null }, `exit after ${signal}; stderr: ${srv.stderr().slice(-2000)}`);
}

async function refused(srv) {
  let error = null;
  try {
    const c = await rawConnect(srv, { timeout: T(5000) });
    c.destroy();
  } catch (err) {
    error = err;
  }
  assert.ok(error, 'a new connection was accepted after shutdown');
}

for (const signal of ['SIGTERM', 'SIGINT']) {
  test(`${signal}: every connection gets 1001 and no leave; exit 0`, async (t) => {
    const srv = await startServer(['--drain-timeout', '2'], { t });
    const a = await joined(srv.url, 'a', { t, room: 'r' });
    const b = await joined(srv.url, 'b', { t, room: 'r' });
    const c = await joined(srv.url, 'c', { t, room: 'r' });
    const d = await joined(srv.url, 'd', { t, room: 'other' });
    const idle = await connect(srv.url, { t, name: 'idle' });
    await a.next('join');
    await a.next('join');
    await b.next('join');
    await idle.ping();
    const exit = exitsCleanly(srv, signal, T(2000 + 5000));
    for (const client of [a, b, c, d, idle]) {
      const info = await withTimeout(client.closed, T(5000), `${client.name} to be closed`);
      assert.equal(info.code, 1001, `${client.name}: ${JSON.stringify(info)}`);
      client.assertNone('leave', 'leave during shutdown');
    }
    await exit;
    await refused(srv);
  });
}

test('SIGTERM with no connections: exit 0', async (t) => {
  const srv = await startServer([], { t });
  await exitsCleanly(srv, 'SIGTERM', T(5000));
  await refused(srv);
});

test('SIGTERM while a peer that never reads keeps the server draining', async (t) => {
  const DRAIN = 3;
  const srv = await startServer(['--drain-timeout', String(DRAIN), '--max-backlog', String(512 * 1024 * 1024)], { t });
  const a = await joined(srv.url, 'a', { t, room: 'r' });
  const r = await rawConnect(srv, { t, name: 'r' });
  await r.join('r', { room: 'r' });
  await a.next('join');
  r.pause();
  // Far more than the kernel buffers on both sides can take: the server
  // holds the rest, and cannot flush it while r does not read.
  const chunk = 'x'.repeat(4000);
  for (let i = 0; i < 8000; i++) {
    a.send({ type: 'message', receiverId: 'r', payload: { i, chunk } });
    if (i % 64 === 63) {
      await a.sendAsync({ type: 'ping' });
      while (a.ws.bufferedAmount > 512 * 1024) await sleep(5);
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  await a.ping(T(30000));
  for (const m of a.queue.take('pong')) assert.deepEqual(m, { type: 'pong', payload: {} });
  a.assertNone('error');

  const health = await HttpConn.open(srv, { t });
  const upgrade = await HttpConn.open(srv, { t });
  const metrics = await HttpConn.open(srv, { t });
  for (const conn of [health, upgrade, metrics]) {
    const res = await conn.get('/healthz');
    assert.equal(res.status, 200);
    assert.equal(res.body.trim(), 'ok');
  }

  const signalled = Date.now();
  const exit = withTimeout(srv.stop('SIGTERM'), T((DRAIN + 5) * 1000), 'the server to exit by the drain timeout');

  // Every check below runs; failures are reported together at the end.
  const failures = [];
  const check = async (what, fn) => {
    try {
      await fn();
    } catch (err) {
      failures.push(`${what}: ${err.message}`);
    }
  };

  await check('the reading peer is closed with 1001 and no leave', async () => {
    const info = await withTimeout(a.closed, T(5000), 'a to be closed');
    assert.equal(info.code, 1001, JSON.stringify(info));
    a.assertNone('leave', 'leave during shutdown');
  });
  await check('GET /healthz on a connection opened before the signal answers 503', async () => {
    const res = await health.get('/healthz');
    assert.equal(res.status, 503);
  });
  await check('a WebSocket upgrade on a connection opened before the signal answers 503', async () => {
    const res = await upgrade.upgrade('/');
    assert.equal(res.status, 503);
    assert.equal(res.body, 'the server is shutting down\n');
    assert.match(res.headers['content-type'] || '', /^text\/plain/);
  });
  await check('the refused upgrade is counted and logged', async () => {
    const res = await metrics.get('/metrics');
    assert.equal(parsePrometheus(res.body).get('switchboard_http_refused_total', { reason: 'draining' }), 1);
    await waitFor(() => /refused: client=127\.0\.0\.1 status=503 reason=draining\n/.test(srv.stderr()),
      T(3000), 'the refusal line');
  });
  await check('/metrics still answers while draining and counts the shutdown close', async () => {
    let m;
    for (let i = 0; i < 20; i++) {
      const res = await metrics.get('/metrics');
      assert.equal(res.status, 200);
      m = parsePrometheus(res.body);
      if (m.get('switchboard_closes_total', { cause: 'shutdown' }) >= 1) return;
      if (Date.now() - signalled > (DRAIN - 1) * 1000) break;
      await sleep(50);
    }
    assert.fail(`closes_total{cause="shutdown"} is ${m.get('switchboard_closes_total', { cause: 'shutdown' })}`);
  });
  await check('a new connection is refused while draining', async () => {
    assert.equal(srv.alive(), true, 'the server had already exited; the peer that never reads did not keep it draining');
    await refused(srv);
  });
  await check('the process exits 0 by the drain timeout', async () => {
    const result = await exit;
    assert.deepEqual(result, { code: 0, signal: null });
  });
  r.resume();
  assert.equal(failures.length, 0, `${failures.length} check(s) failed:\n${failures.join('\n')}`);
});

test('a plain GET /healthz says ok before the signal', async (t) => {
  const srv = await startServer([], { t });
  const res = await httpGet(srv, '/healthz');
  assert.equal(res.status, 200);
  await exitsCleanly(srv, 'SIGTERM', T(5000));
});

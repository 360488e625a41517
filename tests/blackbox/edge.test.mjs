// Limits at the edge: --allowed-origin (403 for an Origin not listed) and
// --max-connections / --max-connections-per-ip (503 over the limit); a
// refused upgrade changes nothing else, and leaves a short plain-text
// answer, a log line with the client and the reason (rate-limited) and a
// counter by reason.  --trusted-proxy: whose X-Forwarded-For and X-Real-IP
// name the client, in the access log, the refusal lines and for the
// per-address limit.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { connect, joined, upgradeStatus } from './lib/client.mjs';
import { T, sleep, startServer, waitFor } from './lib/harness.mjs';
import { getMetrics } from './lib/metrics.mjs';
import { HttpConn } from './lib/rawws.mjs';

function isReference() {
  return (process.env.SWITCHBOARD_BIN || '').includes('server.js');
}

describe('--allowed-origin', () => {
  test('listed origins are let in, others get 403, and nothing changes', async (t) => {
    if (isReference()) return t.skip('the reference has no --allowed-origin');
    const srv = await startServer(['--allowed-origin', 'https://app.example',
      '--allowed-origin', 'https://other.example'], { t });
    const a = await connect(srv.url, { t, headers: { Origin: 'https://app.example' } });
    await a.join('a', { room: 'o' });
    assert.equal(await upgradeStatus(srv.url, { Origin: 'https://OTHER.example' }), 101);
    assert.equal(await upgradeStatus(srv.url, { Origin: 'https://evil.example' }), 403);
    assert.equal(await upgradeStatus(srv.url, {}), 403);	// no Origin at all
    await a.ping();
    await a.expectSilence(T(200));
    const m = await getMetrics(srv);
    assert.equal(m.get('switchboard_peers'), 1);
  });

  test('without the option any Origin is let in', async (t) => {
    const srv = await startServer([], { t });
    assert.equal(await upgradeStatus(srv.url, { Origin: 'https://evil.example' }), 101);
  });
});

describe('--max-connections and --max-connections-per-ip', () => {
  test('over --max-connections an upgrade gets 503; a freed place is reused', async (t) => {
    if (isReference()) return t.skip('the reference has no --max-connections');
    const srv = await startServer(['--max-connections', '2', '--workers', '2'], { t });
    const a = await joined(srv.url, 'a', { t, room: 'm' });
    const b = await joined(srv.url, 'b', { t, room: 'm' });
    assert.equal(await upgradeStatus(srv.url), 503);
    // plain HTTP is not a WebSocket connection: still served
    const m = await getMetrics(srv);
    assert.equal(m.get('switchboard_connections'), 2);
    await a.ping();
    await b.close();
    await a.next((x) => x.type === 'leave');
    await waitFor(async () => (await upgradeStatus(srv.url)) === 101, T(5000), 'a place to free up');
  });

  test('over --max-connections-per-ip an upgrade from that address gets 503', async (t) => {
    if (isReference()) return t.skip('the reference has no --max-connections-per-ip');
    const srv = await startServer(['--max-connections-per-ip', '2'], { t, bind: null });
    // 127.0.0.1 and ::1 are two client addresses
    const v4 = `ws://127.0.0.1:${srv.port}/`;
    const v6 = `ws://[::1]:${srv.port}/`;
    await connect(v4, { t });
    await connect(v4, { t });
    assert.equal(await upgradeStatus(v4), 503);
    assert.equal(await upgradeStatus(v6), 101);
  });
});

// The access lines (--log-format json) of the connections closed so far.
function accessLines(srv) {
  return srv.stderr().split('\n').filter(Boolean).map((l) => JSON.parse(l))
    .filter((o) => o.msg === 'connection closed');
}

// Connects with these headers (and ws options), joins as id, closes, and
// resolves with the client address of its access line.
async function loggedClient(srv, t, id, headers, options = {}) {
  const c = await connect(srv.url, { t, headers, options });
  await c.join(id, { room: 'xff' });
  await c.close();
  const line = await waitFor(() => accessLines(srv).find((o) => o.id === id),
    T(5000), `the access line of ${id}`);
  return line.client;
}

describe('--trusted-proxy', () => {
  test('without it, X-Forwarded-For and X-Real-IP are ignored', async (t) => {
    if (isReference()) return t.skip('the reference has no access log');
    const srv = await startServer(['--log-format', 'json', '--max-connections-per-ip', '1'], { t });
    assert.equal(await loggedClient(srv, t, 'a',
      { 'X-Forwarded-For': '198.51.100.1', 'X-Real-IP': '198.51.100.2' }), '127.0.0.1');
    // both claim other addresses, but they are one client address
    await connect(srv.url, { t, headers: { 'X-Forwarded-For': '198.51.100.1' } });
    assert.equal(await upgradeStatus(srv.url, { 'X-Forwarded-For': '198.51.100.9' }), 503);
  });

  test('from a trusted proxy, the right-most untrusted X-Forwarded-For entry is the client', async (t) => {
    if (isReference()) return t.skip('the reference has no --trusted-proxy');
    const srv = await startServer(['--log-format', 'json', '--trusted-proxy', '127.0.0.0/8',
      '--trusted-proxy', '10.0.0.0/8'], { t });
    assert.equal(await loggedClient(srv, t, 'one', { 'X-Forwarded-For': '198.51.100.1' }), '198.51.100.1');
    // what the client wrote itself is left of what the proxy appended
    assert.equal(await loggedClient(srv, t, 'spoof',
      { 'X-Forwarded-For': '203.0.113.66, 198.51.100.2' }), '198.51.100.2');
    // a chain of trusted proxies is walked through
    assert.equal(await loggedClient(srv, t, 'chain',
      { 'X-Forwarded-For': '198.51.100.3, 10.1.1.1, 127.0.0.9' }), '198.51.100.3');
    // a header repeated counts as one list
    assert.equal(await loggedClient(srv, t, 'repeat',
      { 'X-Forwarded-For': ['198.51.100.4', '10.2.2.2'] }), '198.51.100.4');
    // IPv6, with a port as some proxies write it
    assert.equal(await loggedClient(srv, t, 'v6', { 'X-Forwarded-For': '[2001:db8::7]:4711' }), '2001:db8::7');
    // X-Real-IP when there is no X-Forwarded-For
    assert.equal(await loggedClient(srv, t, 'real', { 'X-Real-IP': '198.51.100.5' }), '198.51.100.5');
    // garbage is not an address: the proxy itself is the client
    assert.equal(await loggedClient(srv, t, 'junk', { 'X-Forwarded-For': 'unknown' }), '127.0.0.1');
    // no headers: the proxy
    assert.equal(await loggedClient(srv, t, 'none', {}), '127.0.0.1');
  });

  test('a peer outside the trusted ranges cannot name another client', async (t) => {
    if (isReference()) return t.skip('the reference has no --trusted-proxy');
    const srv = await startServer(['--log-format', 'json', '--trusted-proxy', '127.0.0.1/32'], { t });
    assert.equal(await loggedClient(srv, t, 'other', { 'X-Forwarded-For': '198.51.100.1' },
      { localAddress: '127.0.0.2' }), '127.0.0.2');
  });

  test('--max-connections-per-ip counts the clients behind a trusted proxy', async (t) => {
    if (isReference()) return t.skip('the reference has no --trusted-proxy');
    const srv = await startServer(['--trusted-proxy', '127.0.0.1', '--max-connections-per-ip', '1',
      '--workers', '2'], { t });
    const a = await connect(srv.url, { t, headers: { 'X-Forwarded-For': '198.51.100.1' } });
    await connect(srv.url, { t, headers: { 'X-Real-IP': '198.51.100.2' } });
    assert.equal(await upgradeStatus(srv.url, { 'X-Forwarded-For': '198.51.100.1' }), 503);
    assert.equal(await upgradeStatus(srv.url, { 'X-Forwarded-For': '198.51.100.3' }), 101);
    // the proxy's own address is one more client
    assert.equal(await upgradeStatus(srv.url), 101);
    await a.close();
    await waitFor(async () => (await upgradeStatus(srv.url, { 'X-Forwarded-For': '198.51.100.1' })) === 101,
      T(5000), 'the place of 198.51.100.1 to free up');
    // IPv6 clients count by their /64
    await connect(srv.url, { t, headers: { 'X-Forwarded-For': '2001:db8:1:2::1' } });
    assert.equal(await upgradeStatus(srv.url, { 'X-Forwarded-For': '2001:db8:1:2:ffff::7' }), 503);
    assert.equal(await upgradeStatus(srv.url, { 'X-Forwarded-For': '2001:db8:1:3::1' }), 101);
  });
});

// The log lines (--log-format json) that say a request was refused.
function refusedLines(srv) {
  return srv.stderr().split('\n').filter(Boolean).map((l) => JSON.parse(l))
    .filter((o) => o.msg === 'refused');
}

// An upgrade on a fresh connection with these headers: the answer, once
// the server has closed the connection after it.
async function refuse(srv, { t, path = '/', headers = {} } = {}) {
  const conn = await HttpConn.open(srv, { t, host: '127.0.0.1' });
  try {
    const res = await conn.upgrade(path, undefined, headers);
    await conn.waitClosed();
    return res;
  } finally {
    conn.destroy();
  }
}

// What every refused upgrade answers: status, a plain-text body of ours
// with its exact length, and Connection: close.
function checkAnswer(res, status, body) {
  assert.equal(res.status, status);
  assert.equal(res.body, body);
  assert.match(res.headers['content-type'] || '', /^text\/plain/);
  assert.equal(Number(res.headers['content-length']), Buffer.byteLength(body));
  assert.match(res.headers.connection || '', /\bclose\b/i);
}

const refusedCount = (m, reason) => m.get('switchboard_http_refused_total', { reason });

describe('what a refused upgrade leaves', () => {
  test('Origin: 403 with our body, a line naming the client and the Origin, a counter', async (t) => {
    if (isReference()) return t.skip('the reference has no --allowed-origin');
    const srv = await startServer(['--log-format', 'json', '--allowed-origin', 'https://app.example'], { t });
    checkAnswer(await refuse(srv, { t, headers: { Origin: 'https://evil.example' } }), 403, 'origin not allowed\n');
    checkAnswer(await refuse(srv, { t }), 403, 'origin not allowed\n');
    const lines = await waitFor(() => { const l = refusedLines(srv); return l.length >= 2 && l; },
      T(5000), 'two refusal lines');
    assert.deepEqual(lines.map(({ client, status, reason, origin }) => ({ client, status, reason, origin })), [
      { client: '127.0.0.1', status: 403, reason: 'origin', origin: 'https://evil.example' },
      { client: '127.0.0.1', status: 403, reason: 'origin', origin: undefined },	// none sent
    ]);
    assert.equal(lines[0].level, 'info');
    const m = await getMetrics(srv);
    assert.equal(refusedCount(m, 'origin'), 2);
    assert.equal(refusedCount(m, 'max_connections'), 0);
    // an allowed one is not counted
    assert.equal(await upgradeStatus(srv.url, { Origin: 'https://app.example' }), 101);
    assert.equal(refusedCount(await getMetrics(srv), 'origin'), 2);
  });

  test('the text log line', async (t) => {
    if (isReference()) return t.skip('the reference has no --allowed-origin');
    const srv = await startServer(['--allowed-origin', 'https://app.example'], { t });
    await refuse(srv, { t, headers: { Origin: 'https://evil.example' } });
    await waitFor(() => /refused: client=127\.0\.0\.1 status=403 reason=origin origin="https:\/\/evil\.example"\n/
      .test(srv.stderr()), T(5000), 'the text refusal line');
  });

  test('the caps: 503 with a body that says which, a line and a counter each', async (t) => {
    if (isReference()) return t.skip('the reference has no --max-connections');
    const srv = await startServer(['--log-format', 'json', '--max-connections', '2',
      '--max-connections-per-ip', '1', '--trusted-proxy', '127.0.0.1'], { t });
    await connect(srv.url, { t, headers: { 'X-Forwarded-For': '198.51.100.1' } });
    checkAnswer(await refuse(srv, { t, headers: { 'X-Forwarded-For': '198.51.100.1' } }), 503,
      'too many connections from this address\n');
    await connect(srv.url, { t, headers: { 'X-Forwarded-For': '198.51.100.2' } });
    checkAnswer(await refuse(srv, { t, headers: { 'X-Forwarded-For': '198.51.100.3' } }), 503,
      'too many connections\n');
    const lines = await waitFor(() => { const l = refusedLines(srv); return l.length >= 2 && l; },
      T(5000), 'two refusal lines');
    // the client behind the trusted proxy is named
    assert.deepEqual(lines.map(({ client, status, reason }) => ({ client, status, reason })), [
      { client: '198.51.100.1', status: 503, reason: 'max_connections_per_ip' },
      { client: '198.51.100.3', status: 503, reason: 'max_connections' },
    ]);
    const m = await getMetrics(srv);
    assert.equal(refusedCount(m, 'max_connections_per_ip'), 1);
    assert.equal(refusedCount(m, 'max_connections'), 1);
    assert.equal(m.get('switchboard_connections'), 2);
  });

  test('an upgrade on /healthz: 404 with our body, a line and a counter', async (t) => {
    if (isReference()) return t.skip('the reference serves its own 404');
    const srv = await startServer(['--log-format', 'json'], { t });
    checkAnswer(await refuse(srv, { t, path: '/healthz' }), 404, 'no WebSocket at this path\n');
    const [line] = await waitFor(() => { const l = refusedLines(srv); return l.length >= 1 && l; },
      T(5000), 'a refusal line');
    assert.equal(line.reason, 'ws_path');
    assert.equal(line.status, 404);
    assert.equal(refusedCount(await getMetrics(srv), 'ws_path'), 1);
  });

  test('a flood of refusals is counted whole and logged within the limit', async (t) => {
    if (isReference()) return t.skip('the reference has no --allowed-origin');
    const srv = await startServer(['--log-format', 'json', '--allowed-origin', 'https://app.example'], { t });
    const N = 60;
    const started = Date.now();
    await Promise.all(Array.from({ length: N }, () =>
      refuse(srv, { t, headers: { Origin: 'https://evil.example' } })));
    const took = (Date.now() - started) / 1000;
    assert.equal(refusedCount(await getMetrics(srv), 'origin'), N);
    // 20 at once, then one a second
    await waitFor(() => refusedLines(srv).length >= 20, T(5000), '20 refusal lines');
    const logged = refusedLines(srv).length;
    assert.ok(logged >= 20 && logged <= 20 + Math.ceil(took) + 1, `${logged} lines in ${took} s`);
    // once the bucket has a token again, the next line comes after the count
    // of those suppressed: together, every refusal
    await sleep(1100);
    await refuse(srv, { t, headers: { Origin: 'https://evil.example' } });
    const all = await waitFor(() => {
      const objs = srv.stderr().split('\n').filter(Boolean).map((l) => JSON.parse(l));
      return objs.filter((o) => o.msg === 'refused').length > logged && objs;
    }, T(5000), 'the line after the pause');
    const suppressed = all.map((o) => /^(\d+) log lines that clients caused were suppressed/.exec(o.msg))
      .filter(Boolean).reduce((n, m) => n + Number(m[1]), 0);
    const lines = all.filter((o) => o.msg === 'refused').length;
    assert.ok(suppressed > 0);
    assert.equal(lines + suppressed, N + 1);
  });
});

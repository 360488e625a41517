// Limits at the edge: --allowed-origin (403 for an Origin not listed) and
// --max-connections / --max-connections-per-ip (503 over the limit); a
// refused upgrade changes nothing else.  --trusted-proxy: whose
// X-Forwarded-For and X-Real-IP name the client, in the access log and for
// the per-address limit.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { connect, joined, upgradeStatus } from './lib/client.mjs';
import { T, startServer, waitFor } from './lib/harness.mjs';
import { getMetrics } from './lib/metrics.mjs';

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

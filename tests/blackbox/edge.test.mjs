// Limits at the edge: --allowed-origin (403 for an Origin not listed) and
// --max-connections / --max-connections-per-ip (503 over the limit); a
// refused upgrade changes nothing else.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import WebSocket from 'ws';
import { connect, joined } from './lib/client.mjs';
import { T, startServer, waitFor, withTimeout } from './lib/harness.mjs';
import { getMetrics } from './lib/metrics.mjs';

function isReference() {
  return (process.env.SWITCHBOARD_BIN || '').includes('server.js');
}

// Tries an upgrade; resolves with the HTTP status of a refusal, or 101 (and
// closes the connection again) when it was let in.
function upgradeStatus(url, headers = {}) {
  return withTimeout(new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, perMessageDeflate: false });
    ws.on('unexpected-response', (req, res) => {
      resolve(res.statusCode);
      req.destroy();
    });
    ws.on('open', () => {
      ws.terminate();
      resolve(101);
    });
    ws.on('error', (err) => { if (!err.message.includes('Unexpected server response')) reject(err); });
  }), T(5000), `an upgrade to ${url}`);
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

// Heartbeat (--heartbeat 1): a WebSocket ping after 1 s without a frame from
// the client; nothing received within 1 s more and the connection is dropped.
// The tests run concurrently, each with its own server, to keep the file short.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isJoinOf, isLeaveOf, joined } from './lib/client.mjs';
import { T, sleep, startServer } from './lib/harness.mjs';
import { waitForMetrics } from './lib/metrics.mjs';
import { OP, rawConnect } from './lib/rawws.mjs';

const HB = 1; // seconds
// How long a live client must stay connected, ms: over two heartbeat
// intervals, which the server stretches by SB_TEST_SCALE as T() does.
const STAY = T(4500);

describe('heartbeat', { concurrency: true }, () => {
  test('a client that never answers pings is dropped; the others get one leave', async (t) => {
    const srv = await startServer(['--heartbeat', String(HB)], { t });
    const b = await joined(srv.url, 'b', { t, room: 'hb' });
    const a = await rawConnect(srv, { t, name: 'silent', autoPong: false });
    await a.join('silent', { room: 'hb', nick: 'S' });
    const start = Date.now();
    await b.next(isJoinOf('silent'));
    // Any close is fine: the server may just drop the TCP connection.
    await a.waitClosed(T((2 * HB + 3) * 1000));
    const elapsed = Date.now() - start;
    assert.ok(elapsed >= T(1000), `closed after ${elapsed} ms, before a heartbeat could have run out`);
    assert.ok(a.pings.length >= 1, 'the server pinged before giving up');
    assert.deepEqual(await b.next(isLeaveOf('silent')), { type: 'leave', payload: { id: 'silent', nick: 'S' } });
    await b.expectSilence(T(500), isLeaveOf('silent'), 'second leave');
    // b answers pings (ws does it by itself) and is still there.
    assert.equal(b.isOpen, true);
    await b.ping();
  });

  test('a heartbeat close is counted as cause "heartbeat"', async (t) => {
    const srv = await startServer(['--heartbeat', String(HB)], { t });
    const a = await rawConnect(srv, { t, autoPong: false });
    await a.join('silent', { room: 'hb' });
    await a.waitClosed(T((2 * HB + 3) * 1000));
    const m = await waitForMetrics(srv, (x) => x.get('switchboard_closes_total', { cause: 'heartbeat' }) >= 1,
      'closes_total{cause="heartbeat"} 1');
    assert.equal(m.get('switchboard_closes_total', { cause: 'heartbeat' }), 1);
    assert.equal(m.get('switchboard_closes_total', { cause: 'client' }), 0);
    assert.equal(m.get('switchboard_peers'), 0);
  });

  test('a client that never joined and never answers is dropped too', async (t) => {
    const srv = await startServer(['--heartbeat', String(HB)], { t });
    const a = await rawConnect(srv, { t, autoPong: false });
    await a.waitClosed(T((2 * HB + 3) * 1000));
  });

  test('a ws client (which answers pings) stays connected', async (t) => {
    const srv = await startServer(['--heartbeat', String(HB)], { t });
    const a = await joined(srv.url, 'a', { t, room: 'hb' });
    const b = await joined(srv.url, 'b', { t, room: 'hb' });
    await a.next(isJoinOf('b'));
    let pings = 0;
    a.ws.on('ping', () => { pings += 1; });
    await sleep(STAY);
    assert.equal(a.isOpen, true);
    assert.equal(b.isOpen, true);
    assert.ok(pings >= 1, 'the idle client was pinged');
    a.assertNone(isLeaveOf('b'));
    b.assertNone(isLeaveOf('a'));
    await a.ping();
    b.send({ type: 'message', receiverId: 'a', payload: { still: 'here' } });
    await a.next('message');
  });

  test('a raw client answering pings stays connected', async (t) => {
    const srv = await startServer(['--heartbeat', String(HB)], { t });
    const a = await rawConnect(srv, { t, autoPong: true });
    await a.join('a', { room: 'hb' });
    await sleep(STAY);
    assert.equal(a.isOpen, true);
    assert.ok(a.pings.length >= 1, 'the idle client was pinged');
    await a.ping();
  });

  test('text messages count as life for a client that never answers pings', async (t) => {
    const srv = await startServer(['--heartbeat', String(HB)], { t });
    const b = await joined(srv.url, 'b', { t, room: 'hb' });
    const a = await rawConnect(srv, { t, autoPong: false });
    await a.join('a', { room: 'hb' });
    const end = Date.now() + STAY;
    while (Date.now() < end) {
      a.send({ type: 'ping' });
      await a.next('pong', T(2000));
      await sleep(250);
    }
    assert.equal(a.isOpen, true);
    b.assertNone(isLeaveOf('a'));
  });

  test('WebSocket ping frames count as life for a client that never answers pings', async (t) => {
    const srv = await startServer(['--heartbeat', String(HB)], { t });
    const a = await rawConnect(srv, { t, autoPong: false });
    await a.join('a', { room: 'hb' });
    const end = Date.now() + STAY;
    while (Date.now() < end) {
      a.sendFrame({ opcode: OP.PING, payload: 'alive' });
      await sleep(250);
    }
    assert.equal(a.isOpen, true);
    await a.ping();
    assert.ok(a.pongs.length >= 1);
  });
});

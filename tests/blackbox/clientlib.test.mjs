// web/switchboard-client.js's SignalingClient outside a browser (Node.js,
// with the `ws` package as its WebSocket), against the real server: events,
// sending, the backoff, reconnecting and rejoining with the same id,
// waiting out an old connection that still holds that id, a refused join
// and a refused upgrade.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import WebSocket from 'ws';
import { backoffDelay, SignalingClient } from '../../web/switchboard-client.js';
import { isLeaveOf, joined } from './lib/client.mjs';
import { T, sleep, startServer, waitFor } from './lib/harness.mjs';

function isReference() {
  return (process.env.SWITCHBOARD_BIN || '').includes('server.js');
}

// A client whose events are recorded in order: [type, detail].
function recorded(url, options) {
  const c = new SignalingClient(url, { WebSocket, ...options });
  c.log = [];
  for (const type of ['state', 'joined', 'peerjoined', 'peerleft', 'signal', 'message', 'error', 'refused',
    'disconnected']) {
    c.addEventListener(type, (e) => c.log.push([type, e.detail]));
  }
  c.seen = (type, pred = () => true) => c.log.filter(([t, d]) => t === type && pred(d));
  return c;
}

function until(c, type, pred, what) {
  return waitFor(() => c.seen(type, pred).at(-1)?.[1], T(10000), what || `${type} on ${c.id}`);
}

describe('backoffDelay', () => {
  test('grows by the factor up to the cap, spread by the jitter', () => {
    const opts = { minDelay: 100, maxDelay: 1000, factor: 2, jitter: 0.5 };
    assert.equal(backoffDelay(0, opts, () => 0.5), 100);
    assert.equal(backoffDelay(1, opts, () => 0.5), 200);
    assert.equal(backoffDelay(3, opts, () => 0.5), 800);
    assert.equal(backoffDelay(4, opts, () => 0.5), 1000);
    assert.equal(backoffDelay(50, opts, () => 0.5), 1000);
    assert.equal(backoffDelay(0, opts, () => 0), 50);
    assert.equal(backoffDelay(0, opts, () => 0.999999), 150);
    for (let i = 0; i < 1000; i++) {
      const d = backoffDelay(2, opts);
      assert.ok(d >= 200 && d <= 600, String(d));
    }
    assert.equal(backoffDelay(0, { minDelay: 100, jitter: 0 }, Math.random), 100);
  });
});

describe('SignalingClient', () => {
  test('joins, sees peers come and go, signals and messages in both directions', async (t) => {
    if (isReference()) return t.skip('one file is enough against the reference');
    const srv = await startServer([], { t });
    const other = await joined(srv.url, 'other', { t, room: 'lib', nick: 'O' });
    const c = recorded(srv.url, { room: 'lib', id: 'me', nick: 'Me' });
    t.after(() => c.close());
    c.connect();
    const j = await until(c, 'joined');
    assert.deepEqual(j, { id: 'me', nick: 'Me', room: 'lib', peers: [{ id: 'other', nick: 'O' }] });
    assert.deepEqual(c.seen('state').map(([, d]) => d.state), ['connecting', 'joining', 'joined']);
    assert.deepEqual([...c.peers.keys()], ['other']);

    assert.equal(c.signal('offer', { sdp: 'x' }, 'other'), true);
    assert.deepEqual((await other.next('offer')).payload, { sdp: 'x', id: 'me', nick: 'Me' });
    assert.equal(c.send({ text: 'hi' }), true);
    assert.deepEqual((await other.next('message')).payload, { text: 'hi', id: 'me', nick: 'Me' });
    other.send({ type: 'icecandidate', receiverId: 'me', payload: { candidate: 'c' } });
    assert.deepEqual(await until(c, 'signal'), { type: 'icecandidate', from: 'other', nick: 'O', payload: { candidate: 'c' } });
    other.send({ type: 'message', payload: { n: 1 } });
    assert.deepEqual(await until(c, 'message'), { from: 'other', nick: 'O', payload: { n: 1 } });
    assert.throws(() => c.signal('message', {}), TypeError);

    // a refusal is an error event; the connection goes on
    c.signal('answer', { sdp: 'y' }, 'nobody');
    assert.deepEqual(await until(c, 'error'), {
      code: 'peer_not_found', message: 'no other peer with that id in this room', ref: 'answer' });

    const third = await joined(srv.url, 'third', { t, room: 'lib' });
    await until(c, 'peerjoined', (d) => d.id === 'third');
    await third.close();
    assert.deepEqual(await until(c, 'peerleft', (d) => d.id === 'third'), { id: 'third', nick: '' });
    assert.deepEqual([...c.peers.keys()], ['other']);

    c.close();
    assert.equal(c.state, 'closed');
    assert.equal(c.send({ late: true }), false);
    assert.equal((await other.next(isLeaveOf('me'))).payload.id, 'me');
  });

  test('after the server restarts: reconnects with backoff and rejoins with the same id', async (t) => {
    if (isReference()) return t.skip('one file is enough against the reference');
    let srv = await startServer([], { t });
    const port = srv.port;
    const c = recorded(srv.url, { room: 'r', id: 'me', backoff: { minDelay: 50, maxDelay: 400 } });
    t.after(() => c.close());
    c.connect();
    await until(c, 'joined');
    const other = await joined(srv.url, 'other', { t, room: 'r' });
    await until(c, 'peerjoined', (d) => d.id === 'other');

    await srv.finish();
    await until(c, 'disconnected');
    const d = c.seen('disconnected')[0][1]; // later attempts are refused: 1006
    assert.equal(d.code, 1001);
    assert.equal(d.willReconnect, true);
    assert.equal(d.opened, true);
    // nobody will say who left meanwhile: the client forgets its peers
    assert.deepEqual(await until(c, 'peerleft', (x) => x.id === 'other'), { id: 'other', nick: '', disconnected: true });
    await waitFor(() => c.seen('disconnected').length >= 3, T(5000), 'a few refused attempts');
    assert.equal(c.state, 'reconnecting');
    assert.equal(c.peers.size, 0);
    await other.closed;

    srv = await startServer(['--port', String(port)], { t });
    const back = await joined(srv.url, 'other', { t, room: 'r' });
    const j = await waitFor(() => c.seen('joined').length === 2 && c.seen('joined')[1][1], T(10000), 'the rejoin');
    assert.equal(j.id, 'me');
    assert.equal(j.room, 'r');
    // other is in the roster when it joined first; else its join event is
    // on its way to c (sent when other joined, which may be after the
    // rejoin that is already seen here)
    if (!j.peers.some((p) => p.id === 'other')) {
      await waitFor(() => c.seen('peerjoined', (x) => x.id === 'other').length === 2, T(5000),
        'the join event of other after the rejoin');
    }
    assert.equal(c.state, 'joined');
    c.send({ again: true }, 'other');
    assert.deepEqual((await back.next('message')).payload, { again: true, id: 'me', nick: '' });
  });

  test('an old connection still holding the id: the rejoin waits until the server lets it go', async (t) => {
    if (isReference()) return t.skip('one file is enough against the reference');
    const srv = await startServer([], { t });
    const old = await joined(srv.url, 'me', { t, room: 'held' });
    const c = recorded(srv.url, { room: 'held', id: 'me', backoff: { minDelay: 50, maxDelay: 200 } });
    t.after(() => c.close());
    c.connect();
    await waitFor(() => c.idTakenRetries >= 2, T(5000), 'a couple of retries');
    assert.equal(c.state, 'joining');
    assert.equal(c.seen('error').length, 0, 'id_taken while retrying is not an error event');
    await old.close();
    const j = await until(c, 'joined');
    assert.equal(j.id, 'me');
  });

  test('a refused join: a refused event, no error event, and the client is closed', async (t) => {
    if (isReference()) return t.skip('one file is enough against the reference');
    const srv = await startServer(['--max-room-peers', '1'], { t });
    const first = await joined(srv.url, 'first', { t, room: 'small' });
    const c = recorded(srv.url, { room: 'small', id: 'me', backoff: { minDelay: 10, maxDelay: 20 } });
    t.after(() => c.close());
    c.connect();
    assert.deepEqual(await until(c, 'refused'), { code: 'room_full', message: 'the room is full' });
    assert.equal(c.state, 'closed');
    assert.deepEqual(c.seen('state').map(([, d]) => d.state), ['connecting', 'joining', 'closed']);
    assert.equal(c.seen('error').length, 0);
    // closed for good: no reconnecting, however short the backoff
    await sleep(200);
    assert.deepEqual(c.seen('state').map(([, d]) => d.state), ['connecting', 'joining', 'closed']);

    // connect() again once there is room: it joins
    await first.close();
    c.connect();
    assert.equal((await until(c, 'joined')).id, 'me');
  });

  test('id_taken that outlasts the retries: refused, and connect() retries afresh', async (t) => {
    if (isReference()) return t.skip('one file is enough against the reference');
    const srv = await startServer([], { t });
    const holder = await joined(srv.url, 'me', { t, room: 'held' });
    const c = recorded(srv.url, { room: 'held', id: 'me', joinRetries: 2, backoff: { minDelay: 10, maxDelay: 40 } });
    t.after(() => c.close());
    c.connect();
    const r = await until(c, 'refused');
    assert.equal(r.code, 'id_taken');
    assert.equal(c.idTakenRetries, 2);
    assert.equal(c.state, 'closed');
    assert.equal(c.seen('error').length, 0);

    c.connect();
    await waitFor(() => c.idTakenRetries >= 1 && c.state === 'joining', T(5000), 'retrying again');
    await holder.close();
    assert.equal((await until(c, 'joined')).id, 'me');
  });

  test('a refused upgrade (403, Origin not allowed): disconnected before it opened, and retried', async (t) => {
    if (isReference()) return t.skip('one file is enough against the reference');
    // the ws package sends no Origin: with an allow-list, that is a 403
    const srv = await startServer(['--allowed-origin', 'http://example.org'], { t });
    const c = recorded(srv.url, { backoff: { minDelay: 10, maxDelay: 40 } });
    t.after(() => c.close());
    c.connect();
    const d = await until(c, 'disconnected');
    assert.equal(d.opened, false);
    assert.equal(d.willReconnect, true);
    await waitFor(() => c.seen('disconnected').length >= 2, T(5000), 'a retry');
    assert.equal(c.seen('state', (x) => x.state === 'joining').length, 0);
    assert.equal(c.state, 'reconnecting');
  });

  test('without reconnect, a drop is final', async (t) => {
    if (isReference()) return t.skip('one file is enough against the reference');
    const srv = await startServer([], { t });
    const c = recorded(srv.url, { reconnect: false });
    c.connect();
    await until(c, 'joined');
    await srv.finish();
    assert.equal((await until(c, 'disconnected')).willReconnect, false);
    await waitFor(() => c.state === 'closed', T(2000), 'closed');
  });
});

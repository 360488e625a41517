// Slow and half-open connections: a connection has --handshake-timeout to
// send its request, however slowly it drips it in, and one cut off is
// logged and counted; upgraded connections and answered requests are not
// affected; and a flood of such connections does not stop the server from
// serving everyone else meanwhile.

import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { joined } from './lib/client.mjs';
import { T, httpGet, sleep, startServer, track, untrack, waitFor, withTimeout } from './lib/harness.mjs';
import { getMetrics, waitForMetrics } from './lib/metrics.mjs';

function isReference() {
  return (process.env.SWITCHBOARD_BIN || '').includes('server.js');
}

// A TCP connection to srv that sends what `drip` says when told to; `ended`
// resolves with the time (ms since open) the server closed it, and
// whether it answered anything first.
function openRaw(srv) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port: srv.port });
    const holder = { destroy: () => sock.destroy() };
    track(holder);
    let opened = 0;
    let answered = '';
    sock.setEncoding('latin1');
    sock.on('data', (d) => { answered += d; });
    sock.on('error', () => {});
    const ended = new Promise((res) => {
      sock.on('close', () => {
        untrack(holder);
        res({ after: Date.now() - opened, answered });
      });
    });
    sock.once('connect', () => {
      opened = Date.now();
      resolve({ sock, ended, get open() { return !sock.destroyed; } });
    });
    sock.once('error', reject);
  });
}

// Sends `text` one byte every `ms` until done or the socket closes.
function drip(conn, text, ms) {
  let i = 0;
  const timer = setInterval(() => {
    if (!conn.open || i >= text.length) {
      clearInterval(timer);
      return;
    }
    conn.sock.write(text[i++]);
  }, ms);
  conn.ended.then(() => clearInterval(timer));
  return timer;
}

const SLOW_REQUEST = 'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
  `X-Padding: ${'p'.repeat(400)}\r\n\r\n`;

const timeouts = (m) => m.get('switchboard_http_refused_total', { reason: 'handshake_timeout' });

test('a silent connection is closed after --handshake-timeout, logged and counted', async (t) => {
  if (isReference()) return t.skip('the reference has no --handshake-timeout');
  const srv = await startServer(['--handshake-timeout', '1'], { t });
  const c = await openRaw(srv);
  const { after, answered } = await withTimeout(c.ended, T(5000), 'the server to close a silent connection');
  assert.ok(after >= 900, `closed after ${after} ms, before the timeout`);
  assert.equal(answered, '', 'nothing is answered to a request never sent');
  await waitFor(() => /refused: client=127\.0\.0\.1 status=0 reason=handshake_timeout\n/.test(srv.stderr()),
    T(5000), 'the refusal line');
  assert.equal(timeouts(await getMetrics(srv)), 1);
});

test('a request dripped in byte by byte is cut off at the same deadline', async (t) => {
  if (isReference()) return t.skip('the reference has no --handshake-timeout');
  const srv = await startServer(['--handshake-timeout', '1'], { t });
  const c = await openRaw(srv);
  drip(c, SLOW_REQUEST, 20);	// would take about 10 s
  const { after, answered } = await withTimeout(c.ended, T(5000), 'the server to close a slow sender');
  assert.ok(after >= 900, `closed after ${after} ms`);
  assert.doesNotMatch(answered, /101 Switching Protocols/);
  assert.equal(timeouts(await getMetrics(srv)), 1);
});

test('upgraded connections and quick requests are not affected by the timeout', async (t) => {
  if (isReference()) return t.skip('the reference has no --handshake-timeout');
  const srv = await startServer(['--handshake-timeout', '1', '--heartbeat', '0'], { t });
  const a = await joined(srv.url, 'a', { t, room: 'h' });
  const b = await joined(srv.url, 'b', { t, room: 'h' });
  assert.equal((await httpGet(srv, '/healthz')).status, 200);
  await sleep(2500);	// idle for longer than the timeout
  a.send({ type: 'message', payload: { still: 'here' } });
  assert.deepEqual((await b.next('message')).payload, { id: 'a', nick: '', still: 'here' });
  assert.equal((await httpGet(srv, '/healthz')).status, 200);
  // none of those was cut off by the timer
  assert.equal(timeouts(await getMetrics(srv)), 0);
  assert.doesNotMatch(srv.stderr(), /reason=handshake_timeout/);
});

test('a flood of half-open and slow connections: others are served meanwhile, then the flood is closed', async (t) => {
  if (isReference()) return t.skip('the reference has no --handshake-timeout');
  const srv = await startServer(['--handshake-timeout', '3', '--workers', '2'], { t });
  const base = (await getMetrics(srv)).get('process_open_fds');
  const SILENT = 400;
  const SLOW = 50;
  const flood = [];
  for (let i = 0; i < SILENT; i++) flood.push(await openRaw(srv));
  for (let i = 0; i < SLOW; i++) {
    const c = await openRaw(srv);
    drip(c, SLOW_REQUEST, 50);
    flood.push(c);
  }
  const openedAt = Date.now();
  await waitForMetrics(srv, (m) => m.get('process_open_fds') >= base + SILENT + SLOW,
    'the flood to be accepted', T(5000));

  // everyone else is served as usual while the flood holds its sockets
  const a = await joined(srv.url, 'a', { t, room: 'f' });
  const b = await joined(srv.url, 'b', { t, room: 'f' });
  for (let i = 0; i < 20; i++) a.send({ type: 'message', payload: { i } });
  for (let i = 0; i < 20; i++) assert.equal((await b.next('message')).payload.i, i);
  assert.equal((await httpGet(srv, '/healthz')).status, 200);
  const stillOpen = flood.filter((c) => c.open).length;
  if (Date.now() - openedAt < 2500) {
    assert.equal(stillOpen, flood.length, 'the flood was still there while others were served');
  } else {
    t.diagnostic(`slow machine: served after ${Date.now() - openedAt} ms, ${stillOpen} flood sockets open`);
  }

  // then the server closes every one of them by itself
  const ends = await withTimeout(Promise.all(flood.map((c) => c.ended)), T(10000),
    'the server to close the whole flood');
  for (const e of ends) assert.ok(!/HTTP\/1\.1 101/.test(e.answered), 'no slow upgrade got through');
  assert.equal(timeouts(await getMetrics(srv)), SILENT + SLOW, 'each was cut off by the timer');
  await waitForMetrics(srv, (m) => m.get('process_open_fds') <= base + 2 + 2,
    'the flood\'s descriptors back', T(5000));
  // and the connections made meanwhile are untouched
  b.send({ type: 'message', payload: { after: true } });
  assert.equal((await a.next('message')).payload.after, true);
  await waitFor(async () => (await getMetrics(srv)).get('switchboard_connections') === 2, T(2000), 'two connections');
});

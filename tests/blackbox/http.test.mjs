// The HTTP endpoints: /healthz, /metrics (and how its series move), 404 for
// other paths, and WebSocket upgrades on any other path.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connect, isJoinOf, joined } from './lib/client.mjs';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { T, httpGet, runServer, startServer, withTimeout } from './lib/harness.mjs';
import { getMetrics, parsePrometheus, waitForMetrics } from './lib/metrics.mjs';
import { rawConnect } from './lib/rawws.mjs';

let srv;
before(async () => { srv = await startServer(); });
after(() => srv && srv.finish());

describe('endpoints', () => {
  test('/healthz answers 200 ok', async () => {
    const res = await httpGet(srv, '/healthz');
    assert.equal(res.status, 200);
    assert.equal(res.body.trim(), 'ok');
  });

  test('/metrics answers 200 in the Prometheus text format', async () => {
    const res = await httpGet(srv, '/metrics');
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type'] || '', /^text\/plain/);
    const m = parsePrometheus(res.body);
    for (const name of ['switchboard_connections', 'switchboard_peers', 'switchboard_rooms']) {
      assert.ok(m.has(name), `${name} is missing`);
      assert.equal(m.types.get(name), 'gauge', `# TYPE of ${name}`);
    }
    for (const name of ['switchboard_messages_received_total', 'switchboard_messages_delivered_total']) {
      assert.ok(m.has(name), `${name} is missing`);
      assert.equal(m.types.get(name), 'counter', `# TYPE of ${name}`);
    }
    for (const name of ['switchboard_errors_total', 'switchboard_closes_total']) {
      assert.equal(m.types.get(name), 'counter', `# TYPE of ${name}`);
    }
  });

  test('/metrics labels errors by code and closes by cause', async (t) => {
    // Make sure at least one close and one error have been counted.
    const c = await connect(srv.url, { t });
    c.sendText('nope');
    await c.next('error');
    await c.close();
    const m = await waitForMetrics(srv, (x) => x.series('switchboard_closes_total').length > 0 && x.series('switchboard_errors_total').length > 0,
      'a closes_total and an errors_total series');
    const causes = ['backlog', 'client', 'heartbeat', 'limit', 'protocol', 'shutdown'];
    for (const s of m.series('switchboard_closes_total')) {
      assert.deepEqual(Object.keys(s.labels), ['cause']);
      assert.ok(causes.includes(s.labels.cause), `unexpected cause ${s.labels.cause}`);
    }
    const codes = ['bad_json', 'bad_message', 'unknown_type', 'not_joined', 'already_joined', 'id_taken', 'room_full',
      'peer_not_found', 'unauthorized', 'rate_limited', 'unavailable'];
    for (const s of m.series('switchboard_errors_total')) {
      assert.deepEqual(Object.keys(s.labels), ['code']);
      assert.ok(codes.includes(s.labels.code), `unexpected code ${s.labels.code}`);
    }
  });

  for (const path of ['/nope', '/healthz/x', '/metricsx', '/ws', '/.env', '/../CMakeLists.txt', '/index.html/']) {
    test(`a plain GET ${path} answers 404`, async () => {
      const res = await httpGet(srv, path);
      assert.equal(res.status, 404);
    });
  }

  for (const path of ['/', '/ws', '/room/abc?x=1', '/a/b/c/d', '/?token=t']) {
    test(`a WebSocket upgrade on ${path} works`, async (t) => {
      const url = new URL(srv.url);
      const c = await connect(`ws://${url.host}${path}`, { t });
      await c.ping();
      const r = await rawConnect(srv, { t, path });
      await r.ping();
    });
  }
});

// The gauges and counters as they move. Each test starts its own server so
// that the values are exact.
describe('metrics values', () => {
  const gauges = (m) => ({
    connections: m.get('switchboard_connections', {}, NaN),
    peers: m.get('switchboard_peers', {}, NaN),
    rooms: m.get('switchboard_rooms', {}, NaN),
  });
  const sameAs = (want) => (m) => JSON.stringify(gauges(m)) === JSON.stringify(want);

  test('connections, peers and rooms', async (t) => {
    const s = await startServer([], { t });
    assert.deepEqual(gauges(await getMetrics(s)), { connections: 0, peers: 0, rooms: 0 });
    const a = await joined(s.url, 'a', { t, room: 'one' });
    const b = await joined(s.url, 'b', { t, room: 'one' });
    await waitForMetrics(s, sameAs({ connections: 2, peers: 2, rooms: 1 }), '2 connections, 2 peers, 1 room');
    const c = await joined(s.url, 'c', { t, room: 'two' });
    const idle = await connect(s.url, { t });
    await waitForMetrics(s, sameAs({ connections: 4, peers: 3, rooms: 2 }), '4 connections, 3 peers, 2 rooms');
    c.send({ type: 'leave' });
    await c.ping();
    await waitForMetrics(s, sameAs({ connections: 4, peers: 2, rooms: 1 }), 'the empty room gone');
    a.send({ type: 'leave' });
    await b.next('leave');
    await waitForMetrics(s, sameAs({ connections: 4, peers: 1, rooms: 1 }), 'one peer left');
    await idle.close();
    await c.terminate();
    await waitForMetrics(s, sameAs({ connections: 2, peers: 1, rooms: 1 }), 'two connections gone');
    await b.close();
    await a.close();
    await waitForMetrics(s, sameAs({ connections: 0, peers: 0, rooms: 0 }), 'all gone');
  });

  test('a refused join changes no gauge', async (t) => {
    const s = await startServer(['--max-room-peers', '1'], { t });
    await joined(s.url, 'a', { t, room: 'one' });
    const c = await connect(s.url, { t });
    for (const msg of [{ type: 'join', id: 'a', room: 'one' }, { type: 'join', id: 'b', room: 'one' }, { type: 'join', id: 'c', room: 'new', nick: 5 }]) {
      c.send(msg);
      assert.equal((await c.next()).type, 'error');
    }
    assert.deepEqual(gauges(await getMetrics(s)), { connections: 2, peers: 1, rooms: 1 });
  });

  test('messages received and delivered', async (t) => {
    const s = await startServer([], { t });
    const a = await joined(s.url, 'a', { t, room: 'r' });
    const b = await joined(s.url, 'b', { t, room: 'r' });
    const c = await joined(s.url, 'c', { t, room: 'r' });
    await a.next(isJoinOf('c'));
    await b.next(isJoinOf('c'));
    const before = await getMetrics(s);
    for (let i = 0; i < 5; i++) a.send({ type: 'message', payload: { i } });
    for (let i = 0; i < 5; i++) {
      await b.next('message');
      await c.next('message');
    }
    const m = await waitForMetrics(s, (x) => x.get('switchboard_messages_delivered_total') - before.get('switchboard_messages_delivered_total') >= 10,
      '10 more delivered');
    const received = m.get('switchboard_messages_received_total') - before.get('switchboard_messages_received_total');
    const delivered = m.get('switchboard_messages_delivered_total') - before.get('switchboard_messages_delivered_total');
    assert.ok(received >= 5, `received went up by ${received}`);
    assert.ok(delivered >= 10, `delivered went up by ${delivered}`);
  });

  test('errors by code', async (t) => {
    const s = await startServer([], { t });
    const a = await joined(s.url, 'a', { t, room: 'r' });
    const c = await connect(s.url, { t });
    const sends = [
      [c, 'not json', 'bad_json'],
      [c, '{"type":"join"}', 'bad_message'],
      [c, '{"type":"what"}', 'unknown_type'],
      [c, '{"type":"leave"}', 'not_joined'],
      [a, '{"type":"join","id":"x"}', 'already_joined'],
      [c, '{"type":"join","id":"a","room":"r"}', 'id_taken'],
      [a, '{"type":"answer","receiverId":"nobody","payload":{}}', 'peer_not_found'],
    ];
    const before = await getMetrics(s);
    for (const [client, text, code] of sends) {
      client.sendText(text);
      const e = await client.next('error');
      assert.equal(e.payload.code, code);
      const m = await waitForMetrics(s, (x) => x.get('switchboard_errors_total', { code }) - before.get('switchboard_errors_total', { code }) >= 1,
        `errors_total{code="${code}"} up by 1`);
      assert.equal(m.get('switchboard_errors_total', { code }) - before.get('switchboard_errors_total', { code }), 1, code);
    }
  });

  test('closes by cause: client, limit, protocol', async (t) => {
    const s = await startServer(['--max-message', '1000'], { t });
    const cause = async (what, want, act) => {
      const before = await getMetrics(s);
      await act();
      const m = await waitForMetrics(s, (x) => x.get('switchboard_closes_total', { cause: want }) - before.get('switchboard_closes_total', { cause: want }) >= 1
        && x.get('switchboard_connections') === 0, `closes_total{cause="${want}"} up by 1 after ${what}, no connection left`);
      assert.equal(m.get('switchboard_closes_total', { cause: want }) - before.get('switchboard_closes_total', { cause: want }), 1, what);
      assert.equal(m.get('switchboard_connections'), 0, `connections after ${what}`);
    };
    await cause('a client close', 'client', async () => {
      const c = await joined(s.url, 'a', { t, room: 'r' });
      await c.close();
    });
    await cause('a lost TCP connection', 'client', async () => {
      const c = await joined(s.url, 'a', { t, room: 'r' });
      await c.terminate();
    });
    await cause('a message over the limit (1009)', 'limit', async () => {
      const c = await joined(s.url, 'a', { t, room: 'r' });
      c.sendText(JSON.stringify({ type: 'ping', pad: 'x'.repeat(2000) }));
      assert.equal((await withTimeout(c.closed, T(5000), 'close')).code, 1009);
    });
    await cause('a binary frame (1003)', 'limit', async () => {
      const c = await joined(s.url, 'a', { t, room: 'r' });
      c.ws.send(Buffer.from('x'), { binary: true });
      assert.equal((await withTimeout(c.closed, T(5000), 'close')).code, 1003);
    });
    await cause('invalid UTF-8 (1007)', 'protocol', async () => {
      const r = await rawConnect(s, { t });
      r.sendFrame({ payload: Buffer.from([0x22, 0xff, 0x22]) });
      assert.equal((await r.waitCloseFrame()).code, 1007);
      await r.waitClosed(T(15000));
    });
    await cause('an unmasked frame (1002)', 'protocol', async () => {
      const r = await rawConnect(s, { t });
      r.sendFrame({ mask: false, payload: '{"type":"ping"}' });
      assert.equal((await r.waitCloseFrame()).code, 1002);
      await r.waitClosed(T(15000));
    });
    await cause('a reserved opcode (1002)', 'protocol', async () => {
      const r = await rawConnect(s, { t });
      r.sendFrame({ opcode: 0x5, payload: '' });
      assert.equal((await r.waitCloseFrame()).code, 1002);
      await r.waitClosed(T(15000));
    });
  });
});

describe('operational metrics', () => {
  function isReference() {
    return (process.env.SWITCHBOARD_BIN || '').includes('server.js');
  }

  test('relay latency: one observation per delivered relay, in a cumulative histogram', async (t) => {
    if (isReference()) return t.skip('the reference has no latency histogram');
    const own = await startServer(['--workers', '2'], { t });
    const a = await joined(own.url, 'a', { t, room: 'lat' });
    const b = await joined(own.url, 'b', { t, room: 'lat' });
    const c = await joined(own.url, 'c', { t, room: 'lat' });
    await a.next(isJoinOf('c'));
    await b.next(isJoinOf('c'));
    // 3 broadcasts to two peers each, 2 targeted: 8 deliveries of relays
    for (let i = 0; i < 3; i++) a.send({ type: 'message', payload: { i } });
    a.send({ type: 'offer', receiverId: 'b', payload: { sdp: 'x' } });
    c.send({ type: 'icecandidate', receiverId: 'a', payload: { candidate: 'y' } });
    for (let i = 0; i < 3; i++) { await b.next('message'); await c.next('message'); }
    await b.next('offer');
    await a.next('icecandidate');
    const m = await waitForMetrics(own, (x) => x.get('switchboard_relay_latency_seconds_count') === 8,
      '8 latency observations');
    assert.equal(m.types.get('switchboard_relay_latency_seconds'), 'histogram');
    const buckets = m.series('switchboard_relay_latency_seconds_bucket')
      .map((s) => [s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), s.value])
      .sort((x, y) => x[0] - y[0]);
    assert.ok(buckets.length >= 10, 'buckets from microseconds to a second');
    for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i][1] >= buckets[i - 1][1], 'cumulative');
    assert.deepEqual(buckets.at(-1), [Infinity, 8]);
    const sum = m.get('switchboard_relay_latency_seconds_sum');
    assert.ok(sum > 0 && sum < 8 * T(1), `sum ${sum} s`);
    // joined, join, leave and error events are not relays
    c.sendText('nope');
    await c.next('error');
    await c.close();
    await a.next('leave');
    const after = await getMetrics(own);
    assert.equal(after.get('switchboard_relay_latency_seconds_count'), 8);
  });

  test('queued messages and bytes: up while a receiver does not read, back to zero after', async (t) => {
    if (isReference()) return t.skip('the reference has no queue gauges');
    const own = await startServer(['--workers', '2', '--max-backlog', String(64 << 20)], { t });
    const a = await joined(own.url, 'a', { t, room: 'q' });
    const r = await rawConnect(own, { t });
    await r.join('slow', { room: 'q' });
    await a.next(isJoinOf('slow'));
    r.pause();
    // more than the socket buffers on both sides hold, under the backlog bound
    const payload = { blob: 'z'.repeat(60000) };
    for (let i = 0; i < 300; i++) a.send({ type: 'message', payload });
    await waitForMetrics(own, (x) => x.get('switchboard_queued_messages') > 0 &&
      x.get('switchboard_queued_bytes') > 60000, 'messages queued for the reader that does not read', T(10000));
    r.resume();
    for (let i = 0; i < 300; i++) await r.next('message', T(10000));
    await waitForMetrics(own, (x) => x.get('switchboard_queued_messages') === 0 &&
      x.get('switchboard_queued_bytes') === 0, 'empty queues');
  });

  test('file descriptors: open and the limit, moving with connections', async (t) => {
    if (isReference()) return t.skip('the reference has no process metrics');
    const own = await startServer([], { t });
    const before = await getMetrics(own);
    assert.equal(before.types.get('process_open_fds'), 'gauge');
    const max = before.get('process_max_fds', {}, -1);
    assert.ok(max > before.get('process_open_fds'), `max ${max}`);
    assert.ok(before.get('process_resident_memory_bytes') > 0);
    const clients = [];
    for (let i = 0; i < 20; i++) clients.push(await connect(own.url, { t }));
    // the process figures are read at most once a second
    await waitForMetrics(own, (m) => m.get('process_open_fds') >= before.get('process_open_fds') + 20,
      '20 more descriptors open', T(5000));
    await Promise.all(clients.map((c) => c.close()));
    await waitForMetrics(own, (x) => x.get('process_open_fds') <= before.get('process_open_fds') + 1,
      'the descriptors of the closed connections back', T(8000));
  });
});

describe('static files (--web-root)', () => {
  function isReference() {
    return (process.env.SWITCHBOARD_BIN || '').includes('server.js');
  }

  test('by default the demo page and the client library are served at /', async (t) => {
    if (isReference()) return t.skip('the reference serves no files');
    const own = await startServer([], { t });
    const page = await httpGet(own, '/');
    assert.equal(page.status, 200);
    assert.match(page.headers['content-type'], /^text\/html; charset=utf-8/);
    assert.match(page.body, /<script type="module" src="app.js">/);
    assert.equal(page.headers['x-content-type-options'], 'nosniff');
    assert.equal((await httpGet(own, '/index.html')).body, page.body);
    const lib = await httpGet(own, '/switchboard-client.js');
    assert.equal(lib.status, 200);
    assert.match(lib.headers['content-type'], /^text\/javascript/);
    assert.match(lib.body, /export class SignalingClient/);
    assert.equal(Number(lib.headers['content-length']), Buffer.byteLength(lib.body));
    // the endpoints still win, and WebSocket upgrades on / still work
    assert.equal((await httpGet(own, '/healthz')).body.trim(), 'ok');
    const c = await connect(own.url, { t });
    await c.ping();
  });

  test('--web-root DIR serves that directory; none serves nothing', async (t) => {
    if (isReference()) return t.skip('the reference serves no files');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-web-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(path.join(dir, 'index.html'), '<p>mine</p>');
    mkdirSync(path.join(dir, 'css'));
    writeFileSync(path.join(dir, 'css', 'a.css'), 'p{}');
    writeFileSync(path.join(dir, '.secret'), 'no');
    const own = await startServer(['--web-root', dir], { t });
    assert.equal((await httpGet(own, '/')).body, '<p>mine</p>');
    const css = await httpGet(own, '/css/a.css');
    assert.equal(css.body, 'p{}');
    assert.match(css.headers['content-type'], /^text\/css/);
    assert.equal((await httpGet(own, '/.secret')).status, 404);
    assert.equal((await httpGet(own, '/app.js')).status, 404);
    const none = await startServer(['--web-root', 'none'], { t });
    assert.equal((await httpGet(none, '/')).status, 404);
  });

  test('a --web-root that cannot be read: exit 1 naming it', async (t) => {
    if (isReference()) return t.skip('the reference serves no files');
    const r = await runServer(['--port', '0', '--bind', '127.0.0.1', '--web-root', '/nonexistent/sb-web']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--web-root \/nonexistent\/sb-web: No such file/);
  });
});

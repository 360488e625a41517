// Through nginx: Debian's nginx, configured from the shipped example
// deploy/nginx/switchboard.conf (see lib/nginx.mjs), terminates TLS on a
// loopback port and proxies to the server under test; the clients speak
// wss:// to nginx. Relaying, departures, heartbeat, backlog overflow, drain,
// the HTTP endpoints, the client address behind a trusted proxy, and the
// upgrade check of docs/operations.md run as it is written there.
// Each test starts its own server and its own nginx in front of it.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connect, isJoinOf, isLeaveOf, joined, upgradeStatus } from './lib/client.mjs';
import { T, sleep, startServer, waitFor, withTimeout } from './lib/harness.mjs';
import { getMetrics, parsePrometheus, waitForMetrics } from './lib/metrics.mjs';
import { EXAMPLE, serverNames, startNginx } from './lib/nginx.mjs';
import { rawConnect } from './lib/rawws.mjs';

// The server, then nginx in front of it; both ended when the test ends.
async function behindNginx(t, args = []) {
  const srv = await startServer(args, { t });
  const ngx = await startNginx(srv, { t });
  return { srv, ngx };
}

// A `ws` client through nginx, trusting the test's certificate.
function via(ngx, { localAddress, autoPong } = {}) {
  const options = { ...ngx.tlsOptions };
  if (localAddress) options.localAddress = localAddress;
  if (autoPong !== undefined) options.autoPong = autoPong;
  return options;
}

// The access line (--log-format json) of the connection that joined as `id`.
function accessLine(srv, id) {
  return waitFor(() => srv.stderr().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))
    .find((o) => o.msg === 'connection closed' && o.id === id), T(5000), `the access line of ${id}`);
}

test('join and relay through nginx: events, offer/answer/candidates in order, sender stamped', async (t) => {
  const { ngx } = await behindNginx(t);
  const a = await joined(ngx.url, 'alice', { t, room: 'call', nick: 'Alice', options: via(ngx) });
  assert.deepEqual(a.joined, { id: 'alice', nick: 'Alice', room: 'call', peers: [] });
  const b = await joined(ngx.url, 'bob', { t, room: 'call', nick: 'Bob', options: via(ngx) });
  assert.deepEqual(b.joined, { id: 'bob', nick: 'Bob', room: 'call', peers: [{ id: 'alice', nick: 'Alice' }] });
  assert.deepEqual(await a.next('join'), { type: 'join', payload: { id: 'bob', nick: 'Bob' } });

  // A spoofed sender id is replaced by the server.
  a.send({ type: 'offer', receiverId: 'bob', payload: { sdp: 'v=0 offer', id: 'mallory' } });
  assert.deepEqual(await b.next('offer'), { type: 'offer', payload: { sdp: 'v=0 offer', id: 'alice', nick: 'Alice' } });
  b.send({ type: 'answer', receiverId: 'alice', payload: { sdp: 'v=0 answer' } });
  assert.deepEqual(await a.next('answer'), { type: 'answer', payload: { sdp: 'v=0 answer', id: 'bob', nick: 'Bob' } });

  // Many candidates both ways, each side's in the order sent.
  const N = 200;
  for (let i = 0; i < N; i++) {
    a.send({ type: 'icecandidate', receiverId: 'bob', payload: { candidate: `a${i}`, i } });
    b.send({ type: 'icecandidate', payload: { candidate: `b${i}`, i } });
  }
  for (const [rx, from, nick] of [[b, 'alice', 'Alice'], [a, 'bob', 'Bob']]) {
    for (let i = 0; i < N; i++) {
      const m = await rx.next('icecandidate', T(5000));
      assert.deepEqual(m, { type: 'icecandidate', payload: { candidate: `${from[0]}${i}`, i, id: from, nick } });
    }
  }
  a.send({ type: 'message', payload: { text: 'hi' } });
  assert.deepEqual(await b.next('message'), { type: 'message', payload: { text: 'hi', id: 'alice', nick: 'Alice' } });
  await a.ping();
  await b.ping();
  a.assertNone('error');
  b.assertNone('error');
});

test('a client whose TCP connection to nginx drops without a close frame: one leave', async (t) => {
  const { srv, ngx } = await behindNginx(t);
  const a = await joined(ngx.url, 'a', { t, room: 'drop', nick: 'A', options: via(ngx) });
  const b = await joined(ngx.url, 'b', { t, room: 'drop', options: via(ngx) });
  await a.next(isJoinOf('b'));
  a.ws._socket.destroy(); // the TLS socket: no close frame, no TLS close_notify
  assert.deepEqual(await b.next(isLeaveOf('a'), T(5000)), { type: 'leave', payload: { id: 'a', nick: 'A' } });
  await b.expectSilence(T(500), isLeaveOf('a'), 'second leave');
  await b.ping();
  // nginx logs an upgraded request when its connection ends.
  await waitFor(() => /"GET \/ HTTP\/1\.1" 101 /.test(ngx.accessLog()), T(5000), 'nginx to log the 101');
  await waitForMetrics(srv, (m) => m.get('switchboard_peers') === 1 && m.get('switchboard_connections') === 1,
    'one peer and one connection left');
});

test('heartbeat through nginx: a client that never answers pings is dropped, one that does stays', async (t) => {
  const HB = 1;
  const { ngx } = await behindNginx(t, ['--heartbeat', String(HB)]);
  const live = await joined(ngx.url, 'live', { t, room: 'hb', options: via(ngx) });
  let livePings = 0;
  live.ws.on('ping', () => { livePings += 1; });
  const silent = await joined(ngx.url, 'silent', { t, room: 'hb', nick: 'S', options: via(ngx, { autoPong: false }) });
  let silentPings = 0;
  silent.ws.on('ping', () => { silentPings += 1; });
  const start = Date.now();
  await live.next(isJoinOf('silent'));

  assert.deepEqual(await live.next(isLeaveOf('silent'), T((2 * HB + 4) * 1000)),
    { type: 'leave', payload: { id: 'silent', nick: 'S' } });
  const elapsed = Date.now() - start;
  assert.ok(elapsed >= 1000, `dropped after ${elapsed} ms, before a heartbeat could have run out`);
  assert.ok(silentPings >= 1, 'the server\'s ping reached the silent client through nginx');
  // nginx closes the client's side once the server has dropped its own.
  await withTimeout(silent.closed, T(5000), 'the silent client\'s connection to end');

  // The live client has been idle all along: it has answered several pings
  // (more than the two intervals a silent client survives) and is still here.
  await waitFor(() => livePings >= 3, T(8000), 'three pings to the live client');
  assert.equal(live.isOpen, true);
  await live.ping();
  await live.expectSilence(T(200), isLeaveOf('silent'), 'second leave');
});

// The backlog is four times what one read of the sender's messages (the
// server reads up to 64 KiB at once) can queue before the worker writes: at
// the minimum, 1 KiB, two 4 KB messages arriving together overflow it even
// for a peer that reads, and the flooder's own peer_not_found replies
// overflow its backlog once the slow peer is gone.
const BACKLOG = 256 * 1024;

test('backlog overflow through nginx: the peer that stops reading is closed, the flooder stays', async (t) => {
  const { srv, ngx } = await behindNginx(t, ['--max-backlog', String(BACKLOG)]);
  const room = 'slow';
  const b = await joined(ngx.url, 'b', { t, room, options: via(ngx) });
  const r = await rawConnect(ngx, { t, name: 'r', secure: ngx.tlsOptions });
  await r.join('r', { room, nick: 'Slow' });
  await b.next(isJoinOf('r'));
  r.pause();
  const a = await joined(ngx.url, 'a', { t, room, options: via(ngx) });
  await b.next(isJoinOf('a'));

  // 4 KB messages to r until the server gives up on it: enough to fill the
  // socket buffers between the server, nginx and r, and then the backlog.
  const chunk = 'x'.repeat(4000);
  const MAX_BYTES = 256 * 1024 * 1024;
  let sent = 0;
  const done = () => b.peek(isLeaveOf('r')).length > 0 || !a.isOpen;
  while (!done()) {
    assert.ok(sent * chunk.length < MAX_BYTES, `r still not closed after ${sent} messages`);
    for (let i = 0; i < 32; i++) {
      a.send({ type: 'message', receiverId: 'r', payload: { i: sent, data: chunk } });
      sent += 1;
    }
    await a.sendAsync({ type: 'ping' });
    while (a.ws.bufferedAmount > 256 * 1024) await sleep(5);
    await new Promise((resolve) => setImmediate(resolve));
  }
  t.diagnostic(`r was closed after ${sent} messages of 4 KB`);
  assert.equal(a.isOpen, true, `the flooder is still connected (${JSON.stringify(a.closeInfo)})`);
  assert.ok(sent * chunk.length > BACKLOG, `r was closed after only ${sent} messages`);
  assert.deepEqual(await b.next(isLeaveOf('r')), { type: 'leave', payload: { id: 'r', nick: 'Slow' } });
  // r reads again: what the server had written before it gave up on r, then
  // its close frame (which waits behind those bytes for up to 5 s)
  r.resume();
  assert.deepEqual(await a.next(isLeaveOf('r'), T(10000)), { type: 'leave', payload: { id: 'r', nick: 'Slow' } });
  await b.expectSilence(T(300), isLeaveOf('r'), 'second leave');
  for (const m of a.queue.take('error')) assert.equal(m.payload.code, 'peer_not_found', JSON.stringify(m));
  await a.ping(T(10000));
  a.send({ type: 'message', receiverId: 'b', payload: { after: true } });
  assert.deepEqual(await b.next('message'), { type: 'message', payload: { after: true, id: 'a', nick: '' } });

  // Its close frame waits behind what the server had written to it, for at
  // most 5 s (stretched by SB_TEST_SCALE in sanitizer builds); r reads
  // again as soon as the flood stops, well within that.
  const info = await withTimeout(r.closing, T(15000), 'r\'s connection to end');
  assert.equal(info.closeFrame, true, `r saw no close frame: ${JSON.stringify(info)}`);
  assert.equal(info.code, 1008, JSON.stringify(info));
  const m = await waitForMetrics(srv, (x) => x.get('switchboard_closes_total', { cause: 'backlog' }) >= 1
    && x.get('switchboard_connections') === 2, 'closes_total{cause="backlog"} 1, two connections left');
  assert.equal(m.get('switchboard_closes_total', { cause: 'backlog' }), 1);
  assert.equal(m.get('switchboard_peers'), 2);
});

test('drain through nginx: SIGTERM closes the clients with 1001 and the server exits 0', async (t) => {
  const { srv, ngx } = await behindNginx(t, ['--drain-timeout', '2']);
  const a = await joined(ngx.url, 'a', { t, room: 'r', options: via(ngx) });
  const b = await joined(ngx.url, 'b', { t, room: 'r', options: via(ngx) });
  const idle = await connect(ngx.url, { t, name: 'idle', options: via(ngx) });
  await a.next(isJoinOf('b'));
  await idle.ping();
  const exit = withTimeout(srv.stop('SIGTERM'), T(2000 + 5000), 'the server to exit after SIGTERM');
  for (const c of [a, b, idle]) {
    const info = await withTimeout(c.closed, T(5000), `${c.name} to be closed`);
    assert.equal(info.code, 1001, `${c.name}: ${JSON.stringify(info)}`);
    c.assertNone('leave', 'leave during shutdown');
  }
  assert.deepEqual(await exit, { code: 0, signal: null }, `stderr: ${srv.stderr().slice(-2000)}`);
  // nginx itself is still up and says the upstream is gone.
  const res = await ngx.get('/healthz');
  assert.equal(res.status, 502);
});

test('/healthz and /metrics over HTTPS through nginx; /metrics only for local addresses', async (t) => {
  const { ngx } = await behindNginx(t);
  const health = await ngx.get('/healthz');
  assert.equal(health.status, 200);
  assert.equal(health.body.trim(), 'ok');

  const c = await joined(ngx.url, 'm', { t, room: 'metrics', options: via(ngx) });
  const res = await ngx.get('/metrics');
  assert.equal(res.status, 200);
  assert.match(res.headers['content-type'] || '', /^text\/plain/);
  const m = parsePrometheus(res.body);
  assert.equal(m.get('switchboard_connections'), 1);
  assert.equal(m.get('switchboard_peers'), 1);
  assert.ok(m.has('switchboard_closes_total', { cause: 'backlog' }), 'closes_total{cause="backlog"} is there');

  // The example allows 127.0.0.1 and ::1 only.
  const denied = await ngx.get('/metrics', { localAddress: '127.0.0.2' });
  assert.equal(denied.status, 403);
  const elsewhere = await ngx.get('/healthz', { localAddress: '127.0.0.2' });
  assert.equal(elsewhere.status, 200);
  assert.equal((await ngx.get('/no-such-page')).status, 404);
  await c.ping();
});

describe('the client address behind nginx (--trusted-proxy)', () => {
  test('the access line names the address nginx saw, not a spoofed X-Forwarded-For', async (t) => {
    const { srv, ngx } = await behindNginx(t, ['--trusted-proxy', '127.0.0.1/32', '--log-format', 'json']);
    const spoof = { 'X-Forwarded-For': '203.0.113.9' };
    const c = await connect(ngx.url, { t, name: 'spoofer', headers: spoof, options: via(ngx, { localAddress: '127.0.0.2' }) });
    await c.join('spoofer', { room: 'xff' });
    await c.close();
    const line = await accessLine(srv, 'spoofer');
    assert.equal(line.client, '127.0.0.2', JSON.stringify(line));
    assert.equal(line.room, 'xff');

    // Through nginx from 127.0.0.1, no header of its own.
    const plain = await joined(ngx.url, 'plain', { t, room: 'xff', options: via(ngx) });
    await plain.close();
    assert.equal((await accessLine(srv, 'plain')).client, '127.0.0.1');

    // Straight to the server from an untrusted address: the header is ignored.
    const direct = await connect(srv.url, {
      t, name: 'direct', headers: spoof, options: { localAddress: '127.0.0.2' },
    });
    await direct.join('direct', { room: 'xff' });
    await direct.close();
    assert.equal((await accessLine(srv, 'direct')).client, '127.0.0.2');
  });

  test('--max-connections-per-ip counts the address nginx saw', async (t) => {
    const { srv, ngx } = await behindNginx(t, ['--trusted-proxy', '127.0.0.1/32', '--max-connections-per-ip', '1']);
    const first = await connect(ngx.url, { t, name: 'first', options: via(ngx, { localAddress: '127.0.0.2' }) });
    await first.join('first', { room: 'ip' });
    // A second connection from 127.0.0.2 is refused, whatever it claims;
    // nginx passes the server's 503 on.
    assert.equal(await upgradeStatus(ngx.url, {}, via(ngx, { localAddress: '127.0.0.2' })), 503);
    assert.equal(await upgradeStatus(ngx.url, { 'X-Forwarded-For': '198.51.100.7' }, via(ngx, { localAddress: '127.0.0.2' })), 503);
    // Another address is let in, though nginx's own is the same.
    const other = await connect(ngx.url, { t, name: 'other', options: via(ngx, { localAddress: '127.0.0.3' }) });
    await other.join('other', { room: 'ip' });
    await first.next(isJoinOf('other'));
    const m = await getMetrics(srv);
    assert.equal(m.get('switchboard_connections'), 2);
    // A freed place is reused.
    await first.close();
    await other.next(isLeaveOf('first'));
    await waitFor(async () => (await upgradeStatus(ngx.url, {}, via(ngx, { localAddress: '127.0.0.2' }))) === 101, T(5000),
      'the place of 127.0.0.2 to free up');
  });
});

// ------------------------------------------------------------ the documented check

const OPERATIONS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../docs/operations.md');

// The upgrade check of docs/operations.md: the indented command that starts
// with `curl --http1.1`, its continuation lines joined; the origins the
// page's environment file allows; the origin it says is refused.
function documentedCheck() {
  const doc = readFileSync(OPERATIONS, 'utf8');
  const lines = doc.split('\n');
  const start = lines.findIndex((l) => /^ {4,}curl --http1\.1 /.test(l));
  assert.ok(start >= 0, 'docs/operations.md has a `curl --http1.1` command');
  let command = '';
  for (let i = start; i < lines.length; i++) {
    const l = lines[i].trim();
    command += ` ${l.replace(/\\$/, '')}`;
    if (!l.endsWith('\\')) break;
  }
  const allowed = /^ +SWITCHBOARD_ALLOWED_ORIGIN=(\S+)$/m.exec(doc);
  assert.ok(allowed, 'docs/operations.md sets SWITCHBOARD_ALLOWED_ORIGIN');
  const refused = /with\s+`-H 'Origin: ([^']+)'`/.exec(doc);
  assert.ok(refused, 'docs/operations.md names an origin that is refused');
  return { command: command.trim(), allowedList: allowed[1], refused: refused[1] };
}

function sh(command, timeout) {
  return new Promise((resolve) => {
    execFile('bash', ['-c', command], { timeout }, (err, stdout, stderr) => {
      resolve({ code: err ? err.code : 0, stdout, stderr });
    });
  });
}

test('the upgrade check of docs/operations.md, as written: 101 for an allowed Origin, 403 for another', async (t) => {
  const { command, allowedList, refused } = documentedCheck();
  const example = readFileSync(EXAMPLE, 'utf8');
  // What makes --http1.1 necessary: nginx offers HTTP/2 on the example's listener.
  assert.match(example, /^\s*listen\s+443\s+ssl\s+http2;/m, 'the example listens with http2');
  const url = / (https:\/\/[^/\s]+)\/$/.exec(command);
  assert.ok(url, `the command ends with the server's URL: ${command}`);
  const host = new URL(url[1]).hostname;
  assert.ok(serverNames(example).includes(host), `${host} is the example's server_name`);
  const origin = /-H 'Origin: ([^']+)'/.exec(command)[1];
  assert.ok(allowedList.split(',').includes(origin), `${origin} is in the documented SWITCHBOARD_ALLOWED_ORIGIN`);
  assert.ok(!allowedList.split(',').includes(refused), `${refused} is not`);

  const srv = await startServer([], { t, env: { SWITCHBOARD_ALLOWED_ORIGIN: allowedList } });
  const ngx = await startNginx(srv, { t });
  // The documented command, pointed at this nginx under the documented name.
  const here = `curl --cacert '${ngx.caFile}' --connect-to ${host}:443:127.0.0.1:${ngx.port} `;
  const run = (cmd) => sh(cmd.replace(/^curl /, here), T(20000));

  const ok = await run(command);
  assert.equal(ok.stdout, '101\n', JSON.stringify(ok));
  assert.equal(ok.code, 28, `curl stops at --max-time with status 28: ${JSON.stringify(ok)}`);
  assert.match(ok.stderr, /^curl: \(28\) Operation timed out after \d+ milliseconds with 0 bytes received/);

  const no = await run(command.replace(`Origin: ${origin}`, `Origin: ${refused}`));
  assert.deepEqual(no, { code: 0, stdout: '403\n', stderr: '' });

  // Without --http1.1 curl negotiates HTTP/2, the Upgrade is lost and both
  // print 200 (the demo page): the check would prove nothing.
  const h2 = await run(command.replace('--http1.1 ', ''));
  assert.equal(h2.stdout, '200\n', JSON.stringify(h2));
  const h2no = await run(command.replace('--http1.1 ', '').replace(`Origin: ${origin}`, `Origin: ${refused}`));
  assert.equal(h2no.stdout, '200\n', JSON.stringify(h2no));
});

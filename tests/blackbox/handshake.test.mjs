// The HTTP handshake at the edge: requests the server refuses before it
// acts on them (docs/protocol.md, "Refused requests"), each with
// its status and a closed connection, counted in /metrics by reason;
// HTTP/2 in every form it can arrive in (h2c, prior knowledge, ALPN over
// TLS) refused or not negotiated, and no HTTP/2 connection left behind;
// upgrades on /healthz and /metrics refused; a flood of refused requests
// leaving the log alone. Well-formed browser upgrades and plain GETs work
// as before.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { connect, upgradeStatus } from './lib/client.mjs';
import { T, httpGet, startServer, track, untrack, waitFor, withTimeout } from './lib/harness.mjs';
import { getMetrics, waitForMetrics } from './lib/metrics.mjs';
import { makeCertificate } from './lib/nginx.mjs';
import { HttpConn, rawConnect } from './lib/rawws.mjs';

function isReference() {
  return (process.env.SWITCHBOARD_BIN || '').includes('server.js');
}

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';
// An empty SETTINGS frame, as an HTTP/2 client sends it after the preface.
const SETTINGS = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);

// A WebSocket upgrade request with these header lines after Host.
function upgrade(lines, target = '/') {
  return `GET ${target} HTTP/1.1\r\nHost: x\r\n${lines.map((l) => `${l}\r\n`).join('')}\r\n`;
}
const WS = ['Upgrade: websocket', 'Connection: Upgrade'];

// Sends `request` on a fresh connection and resolves with the response once
// the server has also closed the connection.
async function refusal(srv, request, { secure } = {}) {
  const conn = await HttpConn.open(srv, { secure, host: '127.0.0.1' });
  try {
    const res = await conn.requestRaw(request);
    await conn.waitClosed();
    return res;
  } finally {
    conn.destroy();
  }
}

// What every refusal answers: the status, Connection: close, the exact
// Content-Length of a one-line plain-text body.
function checkRefusal(res, status, what) {
  assert.equal(res.status, status, `${what}: status`);
  assert.match(res.headers.connection || '', /\bclose\b/i, `${what}: Connection`);
  assert.match(res.headers['content-type'] || '', /^text\/plain/, `${what}: Content-Type`);
  assert.equal(Number(res.headers['content-length']), Buffer.byteLength(res.body), `${what}: Content-Length`);
  assert.match(res.body, /^[^\n]+\n$/, `${what}: body`);
}

const refusals = [
  // [what, request, status, reason, header that must be there]
  ['Sec-WebSocket-Version 999', upgrade([...WS, `Sec-WebSocket-Key: ${KEY}`, 'Sec-WebSocket-Version: 999']),
    426, 'ws_version', ['sec-websocket-version', '13']],
  ['Sec-WebSocket-Version 8', upgrade([...WS, `Sec-WebSocket-Key: ${KEY}`, 'Sec-WebSocket-Version: 8']),
    426, 'ws_version', ['upgrade', 'websocket']],
  ['no Sec-WebSocket-Version', upgrade([...WS, `Sec-WebSocket-Key: ${KEY}`]), 400, 'ws_version',
    ['sec-websocket-version', '13']],
  ['Sec-WebSocket-Key "abc"', upgrade([...WS, 'Sec-WebSocket-Key: abc', 'Sec-WebSocket-Version: 13']), 400, 'ws_key'],
  ['Sec-WebSocket-Key of 17 bytes', upgrade([...WS, `Sec-WebSocket-Key: ${Buffer.alloc(17, 1).toString('base64')}`,
    'Sec-WebSocket-Version: 13']), 400, 'ws_key'],
  ['Sec-WebSocket-Key in base64url', upgrade([...WS, 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j-Q==',
    'Sec-WebSocket-Version: 13']), 400, 'ws_key'],
  ['no Sec-WebSocket-Key', upgrade([...WS, 'Sec-WebSocket-Version: 13']), 400, 'ws_key'],
  ['Upgrade: foo', upgrade(['Upgrade: foo', 'Connection: Upgrade']), 400, 'upgrade'],
  ['an upgrade without Connection: Upgrade', upgrade(['Upgrade: websocket', `Sec-WebSocket-Key: ${KEY}`,
    'Sec-WebSocket-Version: 13']), 400, 'upgrade'],
  ['Upgrade: h2c', 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n'
    + 'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n', 400, 'h2'],
  ['the HTTP/2 preface', Buffer.concat([Buffer.from(PREFACE), SETTINGS]), 505, 'h2'],
  ['a 9 KiB header', `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(9 * 1024)}\r\n\r\n`,
    431, 'headers_too_large'],
  ['5,000 headers', `GET /healthz HTTP/1.1\r\nHost: x\r\n${'a: b\r\n'.repeat(5000)}\r\n`, 431, 'headers_too_large'],
  ['a 10,000-byte URL', `GET /${'a'.repeat(10000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 414, 'uri_too_long'],
  ['two Content-Length', 'GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\nhello',
    400, 'framing'],
  ['Content-Length with Transfer-Encoding', 'GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n'
    + 'Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400, 'framing'],
  ['a body', 'GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello', 400, 'framing'],
  ['POST', 'POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n', 405, 'method', ['allow', 'GET, HEAD']],
  ['CONNECT', 'CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n', 405, 'method'],
  ['an unknown method', 'BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n', 501, 'method'],
  ['HTTP/2.0 in a request line', 'GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n', 505, 'version'],
  ['a bad %-escape', 'GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'malformed'],
  ['a bare LF', 'GET /healthz HTTP/1.1\nHost: x\n\n', 400, 'malformed'],
  ['a folded header', 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  2\r\n\r\n', 400, 'malformed'],
];

describe('refused requests', () => {
  let srv;
  before(async () => { srv = await startServer(['--workers', '2']); });
  after(() => srv && srv.finish());

  test('each gets its status and a closed connection; /metrics counts them by reason', async (t) => {
    if (isReference()) return t.skip('the reference checks no request heads');
    const before = await getMetrics(srv);
    const want = new Map();
    for (const [what, request, status, reason, header] of refusals) {
      const res = await refusal(srv, request);
      checkRefusal(res, status, what);
      if (header) assert.equal(res.headers[header[0]], header[1], `${what}: ${header[0]}`);
      want.set(reason, (want.get(reason) || 0) + 1);
    }
    const m = await getMetrics(srv);
    assert.equal(m.types.get('switchboard_http_refused_total'), 'counter');
    for (const s of m.series('switchboard_http_refused_total')) {
      const { reason } = s.labels;
      const moved = s.value - before.get('switchboard_http_refused_total', { reason });
      assert.equal(moved, want.get(reason) || 0, `switchboard_http_refused_total{reason="${reason}"}`);
    }
    for (const reason of want.keys()) {
      assert.ok(m.has('switchboard_http_refused_total', { reason }), `no series for ${reason}`);
    }
    // nothing of this reached a WebSocket or the log
    assert.equal(m.get('switchboard_connections'), 0);
    assert.doesNotMatch(srv.stderr(), /lws:/);
  });

  test('a refusal on a keep-alive connection ends it after what was answered before', async (t) => {
    if (isReference()) return t.skip('the reference checks no request heads');
    const conn = await HttpConn.open(srv, { t });
    const ok = await conn.get('/healthz');
    assert.equal(ok.status, 200);
    const res = await conn.requestRaw('GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx');
    checkRefusal(res, 400, 'a body on the second request');
    await conn.waitClosed();
  });

  test('a head cut into single bytes is refused at the same place', async (t) => {
    if (isReference()) return t.skip('the reference checks no request heads');
    const conn = await HttpConn.open(srv, { t });
    const text = upgrade([...WS, `Sec-WebSocket-Key: ${KEY}`, 'Sec-WebSocket-Version: 7']);
    const answer = conn.requestRaw('', T(10000));
    for (const ch of text) {
      if (conn.ended) break;
      conn.socket.write(ch);
      await new Promise((r) => setImmediate(r));
    }
    checkRefusal(await answer, 426, 'Sec-WebSocket-Version 7, a byte at a time');
    await conn.waitClosed();
  });

  test('upgrades on /healthz and /metrics get 404; GETs there and upgrades elsewhere work', async (t) => {
    if (isReference()) return t.skip('the reference lets any path upgrade');
    const before = await getMetrics(srv);
    const base = `ws://127.0.0.1:${srv.port}`;
    // the path as the server decodes it: these all are /healthz or /metrics
    for (const p of ['/healthz', '/metrics', '/healthz?x=1', '//healthz', '/%68ealthz', '/x/../metrics', '/healthz;a']) {
      assert.equal(await upgradeStatus(`${base}${p}`), 404, `an upgrade on ${p}`);
    }
    await waitForMetrics(srv, (m) => m.get('switchboard_http_refused_total', { reason: 'ws_path' })
      - before.get('switchboard_http_refused_total', { reason: 'ws_path' }) === 7, '7 ws_path refusals');
    for (const p of ['/healthzx', '/healthz/', '/metrics/x', '/room/healthz']) {
      assert.equal(await upgradeStatus(`${base}${p}`), 101, `an upgrade on ${p}`);
    }
    assert.equal((await httpGet(srv, '/healthz')).status, 200);
    assert.equal((await httpGet(srv, '/metrics')).status, 200);
    // the 404 ends the connection too
    const conn = await HttpConn.open(srv, { t });
    assert.equal((await conn.upgrade('/healthz')).status, 404);
    await conn.waitClosed();
  });
});

describe('what still works', () => {
  test('a browser-like upgrade, a raw one, /healthz with GET and HEAD, keep-alive', async (t) => {
    const srv = await startServer([], { t });
    const c = await connect(srv.url, {
      t,
      headers: {
        Origin: `http://127.0.0.1:${srv.port}`,
        'User-Agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36',
        'Accept-Encoding': 'gzip, deflate, br',
        'Accept-Language': 'en-US,en;q=0.9',
        'Cache-Control': 'no-cache',
        Pragma: 'no-cache',
        Cookie: `session=${'c'.repeat(2000)}; theme=dark`,
        'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits',
      },
    });
    await c.join('browser', { room: 'h' });
    await c.ping();
    const r = await rawConnect(srv, { t, path: '/room?a=1&b=2;c=3' });
    await r.ping();
    const conn = await HttpConn.open(srv, { t });
    assert.equal((await conn.get('/healthz')).status, 200);
    const head = await conn.requestRaw(`HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.equal(head.status, 200);
    assert.equal((await conn.get('/metrics')).status, 200);
    const m = await getMetrics(srv);
    for (const s of m.series('switchboard_http_refused_total')) assert.equal(s.value, 0, s.labels.reason);
  });
});

// ------------------------------------------------------------ HTTP/2

function curl(args) {
  return new Promise((resolve) => {
    execFile('curl', args, { timeout: T(10000) }, (err, stdout, stderr) => {
      resolve({ code: err ? (err.code ?? 1) : 0, missing: err && err.code === 'ENOENT', stdout, stderr });
    });
  });
}

// HTTP/2 over a plain connection (prior knowledge): resolves with what
// happened to the session and its one request.
function http2Request(url, options = {}) {
  return withTimeout(new Promise((resolve) => {
    const session = http2.connect(url, options);
    const seen = [];
    session.on('error', (err) => { seen.push(`session error ${err.code}`); });
    session.on('close', () => resolve({ seen }));
    const req = session.request({ ':path': '/healthz' });
    req.on('response', (h) => { seen.push(`response ${h[':status']}`); session.close(); });
    req.on('error', (err) => { seen.push(`request error ${err.code}`); });
    req.end();
  }), T(10000), `an HTTP/2 request to ${url}`);
}

describe('HTTP/2 on plain TCP', () => {
  let srv;
  before(async () => { srv = await startServer(['--heartbeat', '2', '--handshake-timeout', '600']); });
  after(() => srv && srv.finish());

  test('Node.js http2 with prior knowledge gets no response', async (t) => {
    if (isReference()) return t.skip('the reference is not libwebsockets');
    const { seen } = await http2Request(`http://127.0.0.1:${srv.port}`);
    assert.ok(!seen.some((s) => s.startsWith('response')), `HTTP/2 was answered: ${seen}`);
  });

  test('curl --http2 and --http2-prior-knowledge', async (t) => {
    if (isReference()) return t.skip('the reference is not libwebsockets');
    const url = `http://127.0.0.1:${srv.port}/healthz`;
    const fmt = ['-s', '-o', '/dev/null', '-w', '%{http_version} %{http_code}'];
    const up = await curl(['--http2', ...fmt, url]);
    if (up.missing) return t.skip('no curl');
    assert.equal(up.stdout, '1.1 400', 'an h2c upgrade is refused over HTTP/1.1');
    const prior = await curl(['--http2-prior-knowledge', ...fmt, url]);
    assert.notEqual(prior.code, 0, `curl --http2-prior-knowledge succeeded: ${prior.stdout}`);
    assert.ok(!/^2 /.test(prior.stdout), `answered over HTTP/2: ${prior.stdout}`);
  });

  test('300 idle HTTP/2 connections, prior knowledge and h2c, are all closed at once, not at a timeout', async (t) => {
    if (isReference()) return t.skip('the reference is not libwebsockets');
    const h2c = 'GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n'
      + 'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n';
    const before = (await getMetrics(srv)).get('switchboard_http_refused_total', { reason: 'h2' });
    const closed = [];
    for (let i = 0; i < 300; i++) {
      const hello = i % 2 ? Buffer.from(h2c) : Buffer.concat([Buffer.from(PREFACE), SETTINGS]);
      closed.push(withTimeout(new Promise((resolve) => {
        // sends its first bytes, then nothing: an idle HTTP/2 client
        const s = net.connect({ host: '127.0.0.1', port: srv.port }, () => s.write(hello));
        const holder = { destroy: () => s.destroy() };
        track(holder);
        let answer = '';
        s.setEncoding('latin1');
        s.on('data', (d) => { answer += d; });
        s.on('error', () => {});
        s.on('close', () => { untrack(holder); resolve(answer); });
      }), T(30000), `HTTP/2 connection ${i} to be closed (--handshake-timeout is 600 s)`));
    }
    const answers = await Promise.all(closed);
    answers.forEach((answer, i) => assert.match(answer, i % 2 ? /^HTTP\/1\.1 400 / : /^HTTP\/1\.1 505 /));
    const m = await waitForMetrics(srv, (x) => x.get('switchboard_http_refused_total', { reason: 'h2' }) - before >= 300,
      '300 h2 refusals');
    assert.equal(m.get('switchboard_http_refused_total', { reason: 'h2' }) - before, 300);
    // nothing held: the descriptors are back near where they started
    await waitFor(async () => (await getMetrics(srv)).get('process_open_fds', {}, 0) < 100, T(10000),
      'the descriptors of the refused connections to be closed');
  });
});

describe('HTTP/2 over TLS', () => {
  let dir;
  let cert;
  let srv;
  before(async () => {
    if (isReference()) return;
    dir = mkdtempSync(path.join(os.tmpdir(), 'sb-h2-'));
    cert = await makeCertificate('openssl', dir);
    srv = await startServer(['--tls-cert', cert.cert, '--tls-key', cert.key]);
  });
  after(async () => {
    if (srv) await srv.finish();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  // Resolves with the protocol ALPN settled on when the client offers `alpn`.
  function negotiated(alpn) {
    return withTimeout(new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: srv.port, ca: [cert.ca], servername: 'localhost', ALPNProtocols: alpn },
        () => { resolve(s.alpnProtocol); s.destroy(); });
      s.on('error', reject);
    }), T(5000), `a TLS handshake offering ${alpn}`);
  }

  test('ALPN offers http/1.1 only', async (t) => {
    if (isReference()) return t.skip('the reference has no TLS');
    assert.equal(await negotiated(['h2']), false);
    assert.equal(await negotiated(['h2', 'http/1.1']), 'http/1.1');
    assert.equal(await negotiated(['http/1.1']), 'http/1.1');
  });

  test('Node.js http2 gets no response; the preface sent anyway is refused', async (t) => {
    if (isReference()) return t.skip('the reference has no TLS');
    const { seen } = await http2Request(`https://127.0.0.1:${srv.port}`, { ca: [cert.ca], servername: 'localhost' });
    assert.ok(!seen.some((s) => s.startsWith('response')), `HTTP/2 was answered: ${seen}`);
    const res = await refusal(srv, Buffer.concat([Buffer.from(PREFACE), SETTINGS]), { secure: { ca: [cert.ca] } });
    checkRefusal(res, 505, 'the HTTP/2 preface over TLS');
    const v = await refusal(srv, upgrade([...WS, `Sec-WebSocket-Key: ${KEY}`, 'Sec-WebSocket-Version: 999']),
      { secure: { ca: [cert.ca] } });
    checkRefusal(v, 426, 'Sec-WebSocket-Version 999 over TLS');
  });

  test('curl --http2 and --http2-prior-knowledge are served HTTP/1.1', async (t) => {
    if (isReference()) return t.skip('the reference has no TLS');
    const fmt = ['-s', '--cacert', cert.cert, '-o', '/dev/null', '-w', '%{http_version} %{http_code}'];
    const url = `https://localhost:${srv.port}/healthz`;
    const resolve = ['--resolve', `localhost:${srv.port}:127.0.0.1`];
    const h2 = await curl(['--http2', ...resolve, ...fmt, url]);
    if (h2.missing) return t.skip('no curl');
    assert.equal(h2.stdout, '1.1 200');
    const prior = await curl(['--http2-prior-knowledge', ...resolve, ...fmt, url]);
    assert.equal(prior.stdout, '1.1 200');
  });
});

// ------------------------------------------------------------ the log

test('a flood of oversized-header requests leaves a bounded number of log lines', async (t) => {
  if (isReference()) return t.skip('the reference checks no request heads');
  const srv = await startServer(['--workers', '2'], { t });
  const lines = () => srv.stderr().split('\n').filter(Boolean).length;
  const start = lines();
  const big = `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(16 * 1024)}\r\n\r\n`;
  for (let round = 0; round < 20; round++) {
    await Promise.all(Array.from({ length: 25 }, async () => {
      const res = await refusal(srv, big);
      assert.equal(res.status, 431);
    }));
  }
  await waitForMetrics(srv, (m) => m.get('switchboard_http_refused_total', { reason: 'headers_too_large' }) === 500,
    '500 refusals');
  // none of them logs today; were any to, the client-line limit bounds them
  const grown = lines() - start;
  assert.ok(grown <= 25, `${grown} log lines for 500 refused requests:\n${srv.stderr().slice(-3000)}`);
});

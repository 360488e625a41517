// Direct TLS (--tls-cert, --tls-key) with a self-signed certificate made
// here: wss:// and https:// work as their plain forms do, the frame guard
// and UTF-8 checks answer as on plain TCP, pipelined and bursty input
// arrives whole and in order, a client that does not speak TLS harms
// nobody, a handshake never finished is cut off, logged and counted, and
// the options and files are checked at start, each fault in one line.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import tls from 'node:tls';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect, isJoinOf, joined } from './lib/client.mjs';
import { T, httpGet, runServer, startServer, waitFor, withTimeout } from './lib/harness.mjs';
import { parsePrometheus } from './lib/metrics.mjs';
import { OP, encodeFrame, rawConnect } from './lib/rawws.mjs';

function isReference() {
  return (process.env.SWITCHBOARD_BIN || '').includes('server.js');
}

let dir;
let cert;
let key;

before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'sb-tls-'));
  cert = path.join(dir, 'cert.pem');
  key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-keyout', key, '-out', cert], { stdio: 'ignore' });
});
after(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

async function tlsServer(t, args = []) {
  const srv = await startServer(['--tls-cert', cert, '--tls-key', key, ...args], { t });
  srv.wss = `wss://127.0.0.1:${srv.port}/`;
  return srv;
}

const trustAny = { rejectUnauthorized: false };

function httpsGet(srv, urlPath) {
  return httpGet(srv, urlPath, { host: '127.0.0.1', tls: { ca: [readFileSync(cert)], servername: 'localhost' } });
}

describe('wss:// and https://', () => {
  test('join, relay in order, leave; /healthz and /metrics over https, the certificate verifying', async (t) => {
    if (isReference()) return t.skip('the reference has no TLS');
    const srv = await tlsServer(t, ['--workers', '2']);
    const a = await joined(srv.wss, 'a', { t, room: 's', options: { ca: [readFileSync(cert)] } });
    const b = await joined(srv.wss, 'b', { t, room: 's', options: trustAny });
    await a.next(isJoinOf('b'));
    for (let i = 0; i < 200; i++) a.send({ type: 'message', payload: { i } });
    for (let i = 0; i < 200; i++) assert.equal((await b.next('message')).payload.i, i);
    b.send({ type: 'answer', receiverId: 'a', payload: { sdp: 'v=0' } });
    assert.deepEqual(await a.next('answer'), { type: 'answer', payload: { sdp: 'v=0', id: 'b', nick: '' } });
    const h = await httpsGet(srv, '/healthz');
    assert.equal(h.status, 200);
    assert.equal(h.body.trim(), 'ok');
    const m = parsePrometheus((await httpsGet(srv, '/metrics')).body);
    assert.equal(m.get('switchboard_peers'), 2);
    b.destroy();
    assert.equal((await a.next('leave')).payload.id, 'b');
  });

  test('a client that does not speak TLS is dropped; nobody else notices', async (t) => {
    if (isReference()) return t.skip('the reference has no TLS');
    const srv = await tlsServer(t);
    const a = await joined(srv.wss, 'a', { t, room: 'p', options: trustAny });
    for (let i = 0; i < 5; i++) {
      // plain HTTP, and silence then garbage, at the TLS port
      await withTimeout(new Promise((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port: srv.port }, () => {
          s.write(i % 2 ? 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n' : '\x16\x03\x01\x00\x05hello');
        });
        s.on('error', () => {});
        s.on('close', resolve);
        s.resume();
      }), T(5000), 'the server to drop a client without TLS');
    }
    await assert.rejects(connect(`ws://127.0.0.1:${srv.port}/`, { t, timeout: T(3000) }));
    await a.ping();
    const b = await joined(srv.wss, 'b', { t, room: 'p', options: trustAny });
    await a.next(isJoinOf('b'));
    assert.equal((await httpsGet(srv, '/healthz')).status, 200);
  });
});

describe('slow handshakes over TLS', () => {
  // resolves with how long after opening the server closed the connection
  function closedAfter(open) {
    return withTimeout(new Promise((resolve, reject) => {
      const started = Date.now();
      const s = open();
      s.on('error', () => {});
      s.on('close', () => resolve(Date.now() - started));
      s.once('error', (err) => { if (!s.readyState) reject(err); });
      s.resume();
    }), T(6000), 'the server to close a silent connection');
  }

  test('silent before TLS, or after TLS before the request: closed after --handshake-timeout', async (t) => {
    if (isReference()) return t.skip('the reference has no TLS');
    const srv = await tlsServer(t, ['--handshake-timeout', '1']);
    const plain = await closedAfter(() => net.connect({ host: '127.0.0.1', port: srv.port }));
    assert.ok(plain >= 900, `silent TCP closed after ${plain} ms`);
    const secured = await closedAfter(() => tls.connect({ host: '127.0.0.1', port: srv.port, ...trustAny }));
    assert.ok(secured >= 900, `silent TLS closed after ${secured} ms`);
    const a = await joined(srv.wss, 'a', { t, options: trustAny });
    await a.ping();
    // both were cut off by the handshake timer, logged and counted
    const m = parsePrometheus((await httpsGet(srv, '/metrics')).body);
    assert.equal(m.get('switchboard_http_refused_total', { reason: 'handshake_timeout' }), 2);
    await waitFor(() => (srv.stderr().match(/refused: client=127\.0\.0\.1 status=0 reason=handshake_timeout\n/g)
      || []).length === 2, T(5000), 'two refusal lines');
  });
});

describe('the frame guard over TLS', () => {
  test('an unmasked frame closes with 1002, invalid UTF-8 with 1007; the peer gets one leave each', async (t) => {
    if (isReference()) return t.skip('the reference has no TLS');
    const srv = await tlsServer(t);
    const b = await joined(srv.wss, 'b', { t, room: 'g', options: trustAny });
    const a = await rawConnect(srv, { t, secure: true, host: '127.0.0.1' });
    await a.join('a', { room: 'g' });
    await b.next(isJoinOf('a'));
    a.sendFrame({ mask: false, payload: '{"type":"ping"}' });
    assert.equal((await withTimeout(a.closing, T(5000), 'the close frame')).code, 1002);
    assert.equal((await b.next('leave')).payload.id, 'a');

    const c = await rawConnect(srv, { t, secure: true, host: '127.0.0.1' });
    await c.join('c', { room: 'g' });
    await b.next(isJoinOf('c'));
    c.sendFrame({ payload: Buffer.from([0x22, 0xc3, 0x28, 0x22]) });
    assert.equal((await withTimeout(c.closing, T(5000), 'the close frame')).code, 1007);
    assert.equal((await b.next('leave')).payload.id, 'c');
    await b.ping();
    b.assertNone('leave');
  });

  test('frames sent with the upgrade request, and a burst of 3000, arrive whole and in order', async (t) => {
    if (isReference()) return t.skip('the reference has no TLS');
    const srv = await tlsServer(t);
    const b = await joined(srv.wss, 'b', { t, room: 'burst', options: trustAny });
    // join and a message in the same TLS record as the upgrade request
    const pipelined = Buffer.concat([
      encodeFrame({ payload: JSON.stringify({ type: 'join', id: 'a', room: 'burst' }) }),
      encodeFrame({ payload: JSON.stringify({ type: 'message', payload: { first: true } }) }),
      encodeFrame({ opcode: OP.PING, payload: 'p' }),
    ]);
    const a = await rawConnect(srv, { t, secure: true, host: '127.0.0.1', pipelined });
    await a.next('joined', T(3000));
    assert.deepEqual((await b.next('message', T(3000))).payload, { first: true, id: 'a', nick: '' });
    // one write holding many frames: read ahead across TLS records
    const frames = [];
    for (let i = 0; i < 3000; i++) {
      frames.push(encodeFrame({ payload: JSON.stringify({ type: 'message', payload: { i, pad: 'x'.repeat(i % 97) } }) }));
    }
    await a.writeAsync(Buffer.concat(frames));
    for (let i = 0; i < 3000; i++) assert.equal((await b.next('message', T(5000))).payload.i, i);
  });
});

describe('--tls-cert and --tls-key at start', () => {
  test('one without the other: exit 2', async (t) => {
    if (isReference()) return t.skip('the reference has no TLS');
    const r1 = await runServer(['--port', '0', '--tls-cert', cert]);
    assert.equal(r1.code, 2);
    assert.match(r1.stderr, /--tls-cert and --tls-key go together/);
    const r2 = await runServer(['--port', '0', '--tls-key', key]);
    assert.equal(r2.code, 2);
  });

  // The error lines of a start that failed: exactly one, and no lws lines.
  function oneError(r) {
    const errors = r.stderr.split('\n').filter((l) => / error /.test(l));
    assert.equal(errors.length, 1, r.stderr);
    assert.doesNotMatch(r.stderr, /lws:/);
    return errors[0];
  }

  test('a file that cannot be read, or is not PEM: exit 1 with one line saying which', async (t) => {
    if (isReference()) return t.skip('the reference has no TLS');
    const missing = path.join(dir, 'missing.pem');
    const r1 = await runServer(['--port', '0', '--bind', '127.0.0.1', '--tls-cert', missing, '--tls-key', key]);
    assert.equal(r1.code, 1);
    assert.match(oneError(r1), /--tls-cert .*missing\.pem.*No such file/);
    const junk = path.join(dir, 'junk.pem');
    writeFileSync(junk, 'not a certificate\n');
    const r2 = await runServer(['--port', '0', '--bind', '127.0.0.1', '--tls-cert', junk, '--tls-key', key]);
    assert.equal(r2.code, 1);
    assert.match(oneError(r2), /--tls-cert .*junk\.pem is not a PEM certificate chain \(.*no start line\)/);
    const r3 = await runServer(['--port', '0', '--bind', '127.0.0.1', '--tls-cert', cert, '--tls-key', junk]);
    assert.equal(r3.code, 1);
    assert.match(oneError(r3), /--tls-key .*junk\.pem is not a PEM private key without a passphrase/);
  });

  test('a key that is not the certificate\'s, or has a passphrase: exit 1 with one line', async (t) => {
    if (isReference()) return t.skip('the reference has no TLS');
    const otherKey = path.join(dir, 'other-key.pem');
    execFileSync('openssl', ['genpkey', '-algorithm', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
      '-out', otherKey], { stdio: 'ignore' });
    const r1 = await runServer(['--port', '0', '--bind', '127.0.0.1', '--tls-cert', cert, '--tls-key', otherKey]);
    assert.equal(r1.code, 1);
    assert.match(oneError(r1), /--tls-key .*other-key\.pem is not the key of --tls-cert .*cert\.pem/);
    // never a prompt for the passphrase: refused at once
    const locked = path.join(dir, 'locked-key.pem');
    execFileSync('openssl', ['pkey', '-in', key, '-aes128', '-passout', 'pass:secret', '-out', locked],
      { stdio: 'ignore' });
    const r2 = await runServer(['--port', '0', '--bind', '127.0.0.1', '--tls-cert', cert, '--tls-key', locked]);
    assert.equal(r2.code, 1);
    assert.match(oneError(r2), /--tls-key .*locked-key\.pem is not a PEM private key without a passphrase/);
  });

  test('an expired certificate is served, with a warning', async (t) => {
    if (isReference()) return t.skip('the reference has no TLS');
    const old = path.join(dir, 'expired.pem');
    const oldKey = path.join(dir, 'expired-key.pem');
    // valid for one day in 2020: openssl ca signs it itself with those dates
    const ca = path.join(dir, 'ca');
    mkdirSync(ca);
    writeFileSync(path.join(ca, 'index.txt'), '');
    writeFileSync(path.join(ca, 'serial'), '01\n');
    writeFileSync(path.join(ca, 'ca.cnf'), '[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\n'
      + 'new_certs_dir = .\nserial = serial\ndefault_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n');
    execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
      '-nodes', '-subj', '/CN=localhost', '-keyout', oldKey, '-out', path.join(ca, 'req.csr')], { stdio: 'ignore' });
    execFileSync('openssl', ['ca', '-batch', '-config', 'ca.cnf', '-selfsign', '-keyfile', oldKey,
      '-in', 'req.csr', '-startdate', '20200101000000Z', '-enddate', '20200102000000Z', '-out', old],
    { cwd: ca, stdio: 'ignore' });
    const srv = await startServer(['--tls-cert', old, '--tls-key', oldKey], { t });
    // standard error is a pipe of its own: it may come after the listening line
    await waitFor(() => /ready at https:\/\/127\.0\.0\.1:\d+\/: .*TLS on/.test(srv.stderr()), T(5000),
      'the ready line');
    assert.match(srv.stderr(), / warn \[main\] --tls-cert .*expired\.pem has expired: browsers will refuse it\n/);
  });

  test('from the environment: SWITCHBOARD_TLS_CERT and SWITCHBOARD_TLS_KEY', async (t) => {
    if (isReference()) return t.skip('the reference has no TLS');
    process.env.SWITCHBOARD_TLS_CERT = cert;
    try {
      const r = await runServer(['--port', '0']);
      assert.equal(r.code, 2, 'a certificate without its key');
      process.env.SWITCHBOARD_TLS_KEY = key;
      const srv = await startServer([], { t });
      const a = await joined(`wss://127.0.0.1:${srv.port}/`, 'a', { t, options: trustAny });
      await a.ping();
    } finally {
      delete process.env.SWITCHBOARD_TLS_CERT;
      delete process.env.SWITCHBOARD_TLS_KEY;
    }
  });
});

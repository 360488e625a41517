// Running out of file descriptors: the acceptor logs loudly, pauses instead
// of spinning, keeps serving the connections it has, and accepts again once
// descriptors are free. And the descriptor limit the server sets itself.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { startServer, sleep, T, waitFor, track } from './lib/harness.mjs';
import { connect, joined } from './lib/client.mjs';
import { parsePrometheus } from './lib/metrics.mjs';

// GETs /metrics on one kept-alive connection, opened while descriptors
// are free, so that it still answers once they run out.
function keptAliveMetrics(srv) {
  const sock = track(net.connect(srv.port, srv.httpHost));
  let buf = '';
  let waiting = null;
  sock.setEncoding('utf8');
  sock.on('data', (d) => {
    buf += d;
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0 || !waiting) return;
    const len = Number(/content-length:\s*(\d+)/i.exec(buf.slice(0, end))[1]);
    if (Buffer.byteLength(buf.slice(end + 4)) < len) return;
    const body = buf.slice(end + 4, end + 4 + len);
    buf = buf.slice(end + 4 + len);
    const w = waiting;
    waiting = null;
    w.resolve(parsePrometheus(body));
  });
  sock.on('error', (err) => waiting?.reject(err));
  return () => new Promise((resolve, reject) => {
    waiting = { resolve, reject };
    sock.write('GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n');
  });
}

function openFds(pid) {
  return Number(execFileSync('sh', ['-c', `ls /proc/${pid}/fd | wc -l`]).toString().trim());
}

test('out of descriptors: pauses accepting, keeps serving, recovers', { timeout: T(60000) }, async (t) => {
  const srv = await startServer(['--workers', '1'], { t });
  if (srv.proc.spawnfile === 'node') {
    t.skip('not the C server');
    return;
  }
  const alice = await joined(srv.url, 'alice', { t, room: 'fd' });
  const getMetrics = keptAliveMetrics(srv);
  await getMetrics();

  // Leave room for a few more sockets, no more (the soft limit only, so
  // that it can be raised back).
  const [soft, hard] = execFileSync('prlimit', [`--pid=${srv.pid}`, '--nofile', '--raw', '--noheadings', '-o', 'SOFT,HARD'])
    .toString().trim().split(/\s+/);
  const limit = openFds(srv.pid) + 4;
  execFileSync('prlimit', [`--pid=${srv.pid}`, `--nofile=${limit}:${hard}`]);

  // Connections beyond the limit complete their TCP handshake in the
  // kernel's backlog but cannot be accepted.
  const extra = [];
  for (let i = 0; i < 12; i++) {
    const s = track(net.connect(srv.port, srv.httpHost));
    s.on('error', () => {});
    extra.push(s);
  }
  await waitFor(() => /out of resources; pausing accepting/.test(srv.stderr()),
    T(10000), 'the acceptor to report running out of descriptors');

  // Paused, not spinning: each failed accept() is followed by a pause of
  // 100 ms, so over any span the pauses counted cannot outnumber the span
  // over 100 ms, plus the one under way (a slower build pauses less often,
  // never more); a loop that retried at once would count thousands.
  const pauses = async () => (await getMetrics()).get('switchboard_accept_pauses_total');
  const t0 = Date.now();
  const before = await pauses();
  await sleep(2000);
  const after = await pauses();
  const span = Date.now() - t0;
  assert.ok(after > before, 'the acceptor kept trying while out of descriptors');
  assert.ok(after - before <= Math.floor(span / 100) + 1,
    `${after - before} pauses in ${span} ms: accept() is retried without pausing`);

  // The connection it already had is served as before.
  await alice.ping();

  // Free the descriptors: a new client gets through again.
  for (const s of extra) s.destroy();
  execFileSync('prlimit', [`--pid=${srv.pid}`, `--nofile=${soft}:${hard}`]);
  const bob = await connect(srv.url, { t, timeout: T(10000) });
  const joinedBob = await bob.join('bob', { room: 'fd' });
  assert.deepEqual(joinedBob.peers, [{ id: 'alice', nick: '' }]);
  await alice.next((m) => m.type === 'join' && m.payload.id === 'bob');
});

// The limits the server runs with: prlimit's SOFT and HARD for pid.
function nofile(pid) {
  const [soft, hard] = execFileSync('prlimit', [`--pid=${pid}`, '--nofile', '--raw', '--noheadings', '-o', 'SOFT,HARD'])
    .toString().trim().split(/\s+/);
  return { soft: soft === 'unlimited' ? Infinity : Number(soft), hard: hard === 'unlimited' ? Infinity : Number(hard) };
}

async function maxFds(srv) {
  const res = await fetch(`http://127.0.0.1:${srv.port}/metrics`, { signal: AbortSignal.timeout(T(5000)) });
  return parsePrometheus(await res.text()).get('process_max_fds');
}

// The descriptor limit follows --max-connections (docs/configuration.md):
// each worker's lws context keeps a table the size of the limit and reads
// all of it at every close, so the server does not simply take the hard
// limit, which is often a million.
test('the descriptor limit: --max-connections plus 1024, 65536 without it, within the hard limit', {
  timeout: T(30000),
}, async (t) => {
  const { hard } = nofile(process.pid); // the server inherits it
  const probe = await startServer([], { t });
  if (probe.proc.spawnfile === 'node') return t.skip('not the C server');

  // unset: 65536, or the hard limit when that is lower
  const want = Math.min(65536, hard);
  assert.deepEqual(nofile(probe.pid), { soft: want, hard });
  assert.equal(await maxFds(probe), want);
  assert.match(probe.stderr(), new RegExp(`descriptor limit ${want}\\n`));
  await probe.finish();

  // a cap: lowered to it plus 1024, whatever the soft limit was
  const capped = await startServer(['--max-connections', '100'], { t });
  assert.deepEqual(nofile(capped.pid), { soft: 1124, hard });
  assert.equal(await maxFds(capped), 1124);
  assert.match(capped.stderr(), /descriptor limit 1124\n/);
  assert.doesNotMatch(capped.stderr(), /needs \d+ descriptors/);
  await capped.finish();

  // a cap the hard limit cannot hold: the hard limit, and a warning that
  // says what to change
  // (where the hard limit is near the server's own ceiling of 1,000,000
  // there is no such cap to try)
  if (hard === Infinity || hard + 1024 > 1000000) return;
  const big = await startServer(['--max-connections', String(hard)], { t });
  assert.deepEqual(nofile(big.pid), { soft: hard, hard });
  assert.match(big.stderr(), new RegExp(`warn \\[main\\] --max-connections ${hard} needs ${hard + 1024} `
    + `descriptors, the hard limit is ${hard}: raise it \\(LimitNOFILE in the unit, ulimit -Hn\\) `
    + 'or lower --max-connections'));
});

// Running out of file descriptors: the acceptor logs loudly, pauses instead
// of spinning, keeps serving the connections it has, and accepts again once
// descriptors are free.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { startServer, sleep, T, waitFor, track } from './lib/harness.mjs';
import { connect, joined } from './lib/client.mjs';

// CPU time (user + system) of a process, in seconds.
function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return ticks / 100;
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

  // Paused, not spinning: a busy accept loop would burn a whole core.
  const before = cpuSeconds(srv.pid);
  await sleep(2000);
  const used = cpuSeconds(srv.pid) - before;
  assert.ok(used < 1.0, `server used ${used} s of CPU in 2 s while out of descriptors`);

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

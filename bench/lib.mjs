// What the benchmark drivers (bench.mjs, cluster.mjs) share: spawning and
// stopping processes, running the load generator and reading its JSON
// line, and the statistics of the runs.

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A loopback port that was free a moment ago.
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// cmd run on one core (taskset), or as it is when core is null.
export function pinned(cmd, core) {
  return core === null ? cmd : ['taskset', '-c', core, ...cmd];
}

// Stops proc with signal, then SIGKILL after 15 s; resolves once it exited.
export async function stop(proc, signal = 'SIGTERM') {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const done = new Promise((r) => proc.on('exit', r));
  proc.kill(signal);
  const t = setTimeout(() => proc.kill('SIGKILL'), 15000);
  await done;
  clearTimeout(t);
}

// Runs the load generator's command line cmd (killed after 180 s);
// resolves {code, json, err}: its exit status, its last line parsed (or
// null) and its standard error.
export function runCommand(cmd) {
  return new Promise((resolve) => {
    const p = spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    const kill = setTimeout(() => p.kill('SIGKILL'), 180000);
    p.on('exit', (code) => {
      clearTimeout(kill);
      let json = null;
      try { json = JSON.parse(out.trim().split('\n').pop()); } catch { /* the caller reports it */ }
      resolve({ code, json, err });
    });
  });
}

// A run's figure: p99 in ms, or the JSON member named metric.
export function figure(json, metric) {
  if (!json) return null;
  if (metric === 'p99') return json.latency_us ? json.latency_us.p99 / 1000 : null;
  return json[metric];
}

// The median of the finite numbers of xs; null when there are none.
export function median(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

// Room tokens for the token scenarios: a key for alg ('HS256': a random
// secret; 'ES256': a P-256 key pair) and one token per room named
// `${tag}r${k}`, k < rooms, valid for an hour, written to dir.  Resolves
// {serverArgs, tokensFile}: what the server needs to check them.
export function mintRoomTokens(alg, rooms, tag, dir) {
  const b64 = (b) => Buffer.from(b).toString('base64url');
  const exp = Math.floor(Date.now() / 1000) + 3600;
  let sign;
  let serverArgs;
  if (alg === 'HS256') {
    const secret = crypto.randomBytes(32).toString('base64');
    fs.writeFileSync(`${dir}/secret`, secret, { mode: 0o600 });
    sign = (data) => crypto.createHmac('sha256', secret).update(data).digest();
    serverArgs = ['--auth-secret-file', `${dir}/secret`];
  } else {
    const { publicKey, privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    fs.writeFileSync(`${dir}/public.pem`, publicKey.export({ type: 'spki', format: 'pem' }));
    sign = (data) => crypto.sign('sha256', Buffer.from(data), { key: privateKey, dsaEncoding: 'ieee-p1363' });
    serverArgs = ['--auth-public-key', `${dir}/public.pem`];
  }
  const head = b64(JSON.stringify({ alg, typ: 'JWT' }));
  const lines = [];
  for (let k = 0; k < rooms; k++) {
    const body = b64(JSON.stringify({ room: `${tag}r${k}`, exp }));
    lines.push(`${head}.${body}.${b64(sign(`${head}.${body}`))}`);
  }
  fs.writeFileSync(`${dir}/tokens`, `${lines.join('\n')}\n`);
  return { serverArgs, tokensFile: `${dir}/tokens` };
}

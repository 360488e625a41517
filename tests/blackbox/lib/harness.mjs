// Starting and stopping the server under test, timeouts, small HTTP helpers.
//
// The server is the command line in SWITCHBOARD_BIN, split on spaces
// (`/path/to/switchboard` or `node /path/to/server.js`). Without it the
// build tree's binary is used. Every wait in the suite is multiplied by
// SB_TEST_SCALE (default 1) so that a server built with a sanitizer, several
// times slower, passes the same tests.

import { spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import https from 'node:https';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after } from 'node:test';
import { startRedis } from './redis.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

export const SCALE = (() => {
  const n = Number(process.env.SB_TEST_SCALE);
  return Number.isFinite(n) && n > 0 ? n : 1;
})();

// A waiting timeout, scaled for slow (sanitizer) builds.
export function T(ms) {
  return Math.round(ms * SCALE);
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Resolves with what `promise` resolves to, or rejects after `ms`.
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Polls `fn` until it returns a truthy value (which is returned), or fails
// after `ms` with the last value or error described.
export async function waitFor(fn, ms, what, interval = 20) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${detail})`);
    }
    await sleep(interval);
  }
}

export function serverCommand() {
  const spec = (process.env.SWITCHBOARD_BIN || '').trim();
  if (spec) return spec.split(/\s+/);
  const built = path.resolve(here, '../../../build/switchboard');
  if (existsSync(built)) return [built];
  throw new Error('set SWITCHBOARD_BIN to the server command line (e.g. /path/to/build/switchboard)');
}

// The environment a server runs in: the suite's own, less SWITCHBOARD_BIN
// (the suite's, not an option: the server would warn about it), and the
// one test-only setting, SB_TEST_TIME_SCALE, which slows the server's
// heartbeat, close flush window and drain margin by SB_TEST_SCALE
// (tests/README.md), as T() does the waits here.
function serverEnv(extra = {}) {
  const { SWITCHBOARD_BIN: _bin, ...env } = process.env;
  return { ...env, SB_TEST_TIME_SCALE: String(SCALE), ...extra };
}

// A loopback TCP port that was free a moment ago (for the programs the
// tests start beside the server: Redis, nginx, coturn).
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

// ------------------------------------------------------------ cleanup

const liveProcs = new Set();
const liveResources = new Set(); // anything with a destroy() method

export function track(resource) {
  liveResources.add(resource);
  return resource;
}

export function untrack(resource) {
  liveResources.delete(resource);
}

// A program a test runs beside the server (Redis, coturn), its process
// the one proc() returns at the time (it may be started again). end(signal)
// sends it signal, when it still runs, and waits for it to exit (before:
// called with the process first, to wake a stopped one, say); cleanup()
// kills it and removes dir, and with t runs when the test ends. Until then
// it is killed when the test file ends, whatever happens.
export function sideProcess(name, proc, { t, dir, before } = {}) {
  function end(signal) {
    const p = proc();
    if (!p || p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
    const gone = new Promise((resolve) => p.once('exit', resolve));
    if (before) before(p);
    p.kill(signal);
    return withTimeout(gone, T(5000), `${name} to exit on ${signal}`);
  }
  const holder = track({ destroy: () => { try { proc()?.kill('SIGKILL'); } catch { /* gone */ } } });
  async function cleanup() {
    untrack(holder);
    await end('SIGKILL');
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
  if (t) t.after(cleanup);
  return { end, cleanup };
}

function destroyResources() {
  for (const r of liveResources) {
    try { r.destroy(); } catch { /* already gone */ }
  }
  liveResources.clear();
}

function killAll() {
  destroyResources();
  for (const p of liveProcs) {
    try { p.kill('SIGKILL'); } catch { /* already gone */ }
  }
  liveProcs.clear();
}

// Last line of defence: sockets a test left open are closed when the file's
// tests are done; server processes do not keep the file's process alive
// (they are unref'd) and are killed when it exits. Servers are normally
// ended before that by finish() (a `t.after` or `after` hook).
after(destroyResources);
process.on('exit', killAll);

// ------------------------------------------------------------ server

const LISTENING = /^switchboard listening on (\S+):(\d+)\s*$/;

function hasOption(args, long, short) {
  return args.some((a) => a === long || a === short || a.startsWith(`${long}=`));
}

// Runs the server command with `args` and resolves when it exits:
// {code, signal, stdout, stderr}. For command-line tests.
export function runServer(args, { timeout = T(10000), env = {} } = {}) {
  const [cmd, ...pre] = serverCommand();
  return new Promise((resolve, reject) => {
    const proc = spawn(cmd, [...pre, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: serverEnv(env) });
    liveProcs.add(proc);
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (d) => { stdout += d; });
    proc.stderr.setEncoding('utf8').on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`server with ${JSON.stringify(args)} did not exit within ${timeout} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeout);
    proc.on('error', (err) => { clearTimeout(timer); liveProcs.delete(proc); reject(err); });
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      liveProcs.delete(proc);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

// What a sanitizer prints when it finds something.
const SANITIZER = /ERROR: AddressSanitizer|ERROR: LeakSanitizer|WARNING: ThreadSanitizer|runtime error:|SUMMARY: \w+Sanitizer/;

// Starts the server and resolves once it has printed its listening line.
//
// By default the arguments are `--port 0 --bind 127.0.0.1` followed by
// `args`; `--bind` is left out when `args` has one or when `bind` is null,
// and with `raw: true` exactly `args` is passed. With `t` (a node:test
// context) the server is finished (see finish()) when that test ends.
//
// Resolves to {port, host, line, url, httpHost, proc, pid, exited, stdout(),
// stderr(), alive(), stop(signal), kill(), finish()}.
//
// With SB_CLUSTER_NODES=N (N >= 2) in the environment, the same call starts
// a Redis of its own and N nodes on it (--redis), and the object it
// resolves to hands out the nodes' URLs in turn (each read of `url` is the
// next node), so that the peers of every room a test makes are spread over
// the nodes; `port` and the HTTP fields are the first node's. Pass
// `single: true` for one server all the same.
export async function startServer(args = [], opts = {}) {
  const nodes = Number(process.env.SB_CLUSTER_NODES || 0);
  if (nodes >= 2 && !opts.single) return startCluster(nodes, args, opts);
  return startOne(args, opts);
}

async function startCluster(n, args, { t, ...opts } = {}) {
  const redis = await startRedis();
  const nodes = [];
  try {
    for (let i = 0; i < n; i++) {
      nodes.push(await startOne([...args, '--redis', redis.url(), '--node-timeout', '2'], opts));
    }
    // every node up on the backplane before the test begins
    for (const node of nodes) {
      await waitFor(async () => (await httpGet(node, '/healthz')).status === 200, T(10000),
        `node ${node.port} to reach Redis`);
    }
  } catch (err) {
    await Promise.all(nodes.map((node) => node.kill()));
    await redis.cleanup();
    throw err;
  }
  let turn = 0;
  const first = nodes[0];
  async function finish() {
    const problems = [];
    for (const node of nodes) {
      try { await node.finish(); } catch (err) { problems.push(err.message); }
    }
    await redis.cleanup();
    if (problems.length) throw new Error(problems.join('\n'));
  }
  const cluster = {
    nodes,
    redis,
    get url() { return nodes[turn++ % nodes.length].url; },
    port: first.port,
    host: first.host,
    line: first.line,
    httpHost: first.httpHost,
    proc: first.proc,
    pid: first.pid,
    exited: Promise.all(nodes.map((node) => node.exited)).then((all) => all[0]),
    stdout: () => nodes.map((node) => node.stdout()).join(''),
    stderr: () => nodes.map((node) => node.stderr()).join(''),
    alive: () => nodes.every((node) => node.alive()),
    stop: async (signal) => (await Promise.all(nodes.map((node) => node.stop(signal))))[0],
    kill: async () => (await Promise.all(nodes.map((node) => node.kill())))[0],
    finish,
  };
  if (t) t.after(finish);
  return cluster;
}

async function startOne(args = [], { t, bind = '127.0.0.1', raw = false, timeout = T(10000), env = {} } = {}) {
  const [cmd, ...pre] = serverCommand();
  let full = args;
  if (!raw) {
    full = [];
    if (!hasOption(args, '--port', '-p')) full.push('--port', '0');
    if (bind !== null && !hasOption(args, '--bind', '-b')) full.push('--bind', bind);
    full.push(...args);
  }
  const commandLine = [cmd, ...pre, ...full].join(' ');
  const proc = spawn(cmd, [...pre, ...full], { stdio: ['ignore', 'pipe', 'pipe'], env: serverEnv(env) });
  liveProcs.add(proc);
  proc.unref();
  proc.stdout.unref();
  proc.stderr.unref();

  let stdout = '';
  let stderr = '';
  const KEEP = 4 * 1024 * 1024;
  let exitInfo = null;
  let stopping = false; // the suite itself is ending the process
  let crashed = false; // it ended on its own after it had started listening
  let listening = false;
  const exited = new Promise((resolve) => {
    proc.on('close', (code, signal) => {
      liveProcs.delete(proc);
      exitInfo = { code, signal };
      if (!stopping && listening) {
        crashed = true;
        // Say so where the test output shows it, with the server's last words.
        process.stderr.write(`\n*** server ${commandLine} (pid ${proc.pid}) exited unexpectedly `
          + `(code ${code}, signal ${signal}); the end of its stderr:\n${stderr.slice(-8000)}\n***\n`);
      }
      resolve(exitInfo);
    });
  });
  proc.on('error', () => {}); // reported through `exited` / the ready timeout
  proc.stderr.setEncoding('utf8').on('data', (d) => {
    stderr += d;
    if (stderr.length > 2 * KEEP) stderr = stderr.slice(-KEEP);
  });

  const running = () => proc.exitCode === null && proc.signalCode === null;

  function kill() {
    if (running()) stopping = true;
    if (exitInfo === null) {
      try { proc.kill('SIGKILL'); } catch { /* gone */ }
    }
    return exited;
  }

  async function stop(signal = 'SIGTERM') {
    if (running()) {
      stopping = true;
      proc.kill(signal);
    }
    return exited;
  }

  // Ends the server the way an operator would (SIGTERM) and fails if it
  // crashed before, does not exit 0, or a sanitizer reported anything.
  // Kills it if it does not exit in time.
  async function finish() {
    const problems = [];
    if (running()) {
      try {
        await withTimeout(stop('SIGTERM'), T(15000), `${commandLine} to exit after SIGTERM`);
      } catch (err) {
        problems.push(err.message);
        await kill();
      }
      if (exitInfo && !(exitInfo.code === 0 && exitInfo.signal === null) && problems.length === 0) {
        problems.push(`exit after SIGTERM: code ${exitInfo.code}, signal ${exitInfo.signal}`);
      }
    } else {
      await exited;
    }
    if (crashed) problems.push(`the server exited on its own (code ${exitInfo.code}, signal ${exitInfo.signal})`);
    const report = SANITIZER.exec(stderr);
    if (report) problems.push(`a sanitizer reported:\n${stderr.slice(Math.max(0, report.index - 200), report.index + 6000)}`);
    if (problems.length) {
      throw new Error(`server ${commandLine} (pid ${proc.pid}):\n${problems.join('\n')}`);
    }
  }

  if (t) t.after(finish);

  const ready = new Promise((resolve, reject) => {
    let buffered = '';
    proc.stdout.setEncoding('utf8').on('data', (d) => {
      stdout += d;
      if (stdout.length > 2 * KEEP) stdout = stdout.slice(-KEEP);
      if (buffered === null) return;
      buffered += d;
      const lines = buffered.split('\n');
      buffered = lines.pop();
      for (const line of lines) {
        const m = LISTENING.exec(line);
        if (m) {
          buffered = null;
          resolve({ line: line.replace(/\s+$/, ''), addr: m[1], port: Number(m[2]) });
          return;
        }
      }
    });
    exited.then(({ code, signal }) => {
      reject(new Error(`server ${JSON.stringify(full)} exited (code ${code}, signal ${signal}) before listening\nstderr: ${stderr.slice(-8000)}`));
    });
  });

  let info;
  try {
    info = await withTimeout(ready, timeout, `the listening line of ${commandLine}`);
  } catch (err) {
    await kill();
    throw new Error(`${err.message}\nstdout: ${stdout.slice(-4000)}\nstderr: ${stderr.slice(-8000)}`);
  }
  listening = true;

  const host = info.addr.startsWith('[') ? info.addr.slice(1, -1) : info.addr;
  // Where a client should connect: the wildcard addresses mean "this host".
  let httpHost = host;
  if (host === '::' || host === '0.0.0.0') httpHost = '127.0.0.1';
  const urlHost = httpHost.includes(':') ? `[${httpHost}]` : httpHost;

  return {
    port: info.port,
    host,
    line: info.line,
    httpHost,
    url: `ws://${urlHost}:${info.port}/`,
    proc,
    pid: proc.pid,
    exited,
    stdout: () => stdout,
    stderr: () => stderr,
    alive: () => exitInfo === null,
    // Sends `signal` and resolves with {code, signal} when the process has exited.
    stop,
    kill,
    finish,
  };
}

// ------------------------------------------------------------ HTTP

// One plain HTTP GET on a fresh connection: {status, headers, body}.
// With `tls` (https.request's TLS options, e.g. { ca }) the GET is HTTPS.
export function httpGet(srv, urlPath, { timeout = T(5000), host, headers = {}, tls, localAddress } = {}) {
  return new Promise((resolve, reject) => {
    const req = (tls ? https : http).request({
      ...tls,
      localAddress,
      host: host || srv.httpHost,
      port: srv.port,
      path: urlPath,
      method: 'GET',
      agent: false,
      headers: { Connection: 'close', ...headers },
      timeout,
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${urlPath} timed out after ${timeout} ms`)));
    req.on('error', reject);
    req.end();
  });
}

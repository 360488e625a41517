#!/usr/bin/env node
// The cluster benchmarks: the same loads as the single-node suite, with the
// peers of each room spread over two nodes that share a Redis, beside one
// node on its own under the same load, alternating run by run.
//
//   node bench/cluster.mjs --server build-bench/switchboard \
//        --loadgen build-bench/bench/sb-loadgen [--runs N] [--only a,b] [--quick] [--out FILE]
//
// Each run starts what it measures afresh: a redis-server on a free loopback
// port (no persistence, its files in a temporary directory), two nodes with
// `--redis` (each ready once /healthz says so), the load generator with
// `--ports A,B` (member k of each room on node k mod 2: every pair of the
// relay spans the two nodes) and `--server-pid` for both nodes and Redis,
// whose CPU times it sums; then it stops them all.  "single" is one node
// without --redis, every peer on it.  Layout as in bench.mjs: the load
// generator on core 0, every server process (the nodes and Redis) on core 1,
// unless a scenario says `free` (nothing pinned).
//
// Loopback only; every run is bounded (the load generator's own deadline,
// and kills after a margin).

import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { figure, freePort, median, pinned, runCommand, sleep, stop } from './lib.mjs';
import os from 'node:os';
import path from 'node:path';

const args = process.argv.slice(2);
function opt(name, def) {
  const i = args.indexOf(`--${name}`);
  return i < 0 ? def : args[i + 1];
}
const flag = (name) => args.includes(`--${name}`);

const SERVER = opt('server');
const LOADGEN = opt('loadgen');
const REDIS = opt('redis-server', 'redis-server');
const QUICK = flag('quick');
const RUNS = Number(opt('runs', QUICK ? 1 : 5));
const ONLY = opt('only', '') ? opt('only').split(',') : null;
const OUT = opt('out', null);
if (!SERVER || !LOADGEN) {
  console.error('usage: cluster.mjs --server PATH --loadgen PATH [--redis-server PATH] [--runs N] [--only a,b] [--quick] [--out FILE]');
  process.exit(2);
}
if (OUT) writeFileSync(OUT, '');

const LG_CORE = '0';
const SRV_CORE = '1';
const D = QUICK ? 3 : 8;
const W = QUICK ? 1 : 2;

const SCENARIOS = [
  {
    name: 'relay-w16', title: 'relay, 1000 peers in pairs, window 16, 200 B',
    metric: 'server_cpu_us_per_msg', unit: 'us CPU/msg', maxRatio: 3, minRate: 150000,
    lg: ['--scenario', 'relay', '--peers', '1000', '--window', '16', '--size', '200', '--warmup', W, '--duration', D],
  },
  {
    name: 'relay-w2', title: 'relay, 1000 peers in pairs, window 2, 200 B',
    metric: 'server_cpu_us_per_msg', unit: 'us CPU/msg',
    lg: ['--scenario', 'relay', '--peers', '1000', '--window', '2', '--size', '200', '--warmup', W, '--duration', D],
  },
  {
    name: 'broadcast', title: 'broadcast, 200 peers in rooms of 10 (5 on each node), window 2',
    metric: 'server_cpu_us_per_delivery', unit: 'us CPU/delivery',
    lg: ['--scenario', 'broadcast', '--peers', '200', '--room-size', '10', '--window', '2', '--size', '200', '--warmup', W, '--duration', D],
  },
  {
    name: 'connect', title: 'connect and join 10,000 peers (in turn on each node)',
    metric: 'server_cpu_us_per_join', unit: 'us CPU/join',
    lg: ['--scenario', 'connect', '--peers', QUICK ? '2000' : '10000', '--source-addrs', '4', '--duration', '30'],
  },
  {
    name: 'latency', title: 'relay open loop, 200 peers, 20,000 msg/s',
    metric: 'p99', unit: 'ms p99 latency', maxP99: 3,
    lg: ['--scenario', 'relay', '--peers', '200', '--rate', '20000', '--size', '200', '--warmup', W, '--duration', QUICK ? '3' : '10'],
  },
  {
    name: 'latency-free', title: 'relay open loop, 20,000 msg/s, nothing pinned', free: true,
    metric: 'p99', unit: 'ms p99 latency', maxP99: 3,
    lg: ['--scenario', 'relay', '--peers', '200', '--rate', '20000', '--size', '200', '--warmup', W, '--duration', QUICK ? '3' : '10'],
  },
  {
    name: 'relay-w16-free', title: 'relay, window 16, nothing pinned', free: true,
    metric: 'server_cpu_us_per_msg', unit: 'us CPU/msg', minRate: 150000,
    lg: ['--scenario', 'relay', '--peers', '1000', '--window', '16', '--size', '200', '--warmup', W, '--duration', D],
  },
];

// Spawns cmd; resolves {proc, port} once its standard output matches re
// (whose first group is the port), or rejects after 10 s.
function startUntil(cmd, re, what) {
  const proc = spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`${what} did not start`)); }, 10000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = re.exec(out);
      if (m) {
        clearTimeout(timer);
        proc.stdout.resume();
        resolve({ proc, port: Number(m[1]) });
      }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`${what} exited ${code}`)); });
  });
}

// /healthz is 200 once the node's backplane is up.
async function waitHealthy(port) {
  const end = Date.now() + 10000;
  while (Date.now() < end) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(1000) });
      if (r.status === 200) return;
    } catch { /* not yet */ }
    await sleep(50);
  }
  throw new Error(`node on port ${port} not healthy after 10 s`);
}

// Starts the processes of one configuration: 'single' (one node) or
// 'cluster' (Redis and two nodes).  Returns {procs, ports, pids, dir}.
async function startConfig(config, core) {
  const node = ['--port', '0', '--bind', '127.0.0.1', '--workers', '1', '--log-level', 'warn'];
  const listening = /listening on \S+:(\d+)/;
  if (config === 'single') {
    const n = await startUntil(pinned([SERVER, ...node], core), listening, 'switchboard');
    return { procs: [n.proc], ports: [n.port], pids: [n.proc.pid] };
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-bench-redis-'));
  const rport = await freePort();
  const rcmd = pinned([REDIS, '--port', String(rport), '--bind', '127.0.0.1',
    '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning'], core);
  const redis = { proc: spawn(rcmd[0], rcmd.slice(1), { stdio: ['ignore', 'ignore', 'inherit'] }) };
  const end = Date.now() + 10000;
  for (;;) {
    const ok = await new Promise((r) => {
      const s = net.connect({ host: '127.0.0.1', port: rport });
      s.once('connect', () => { s.destroy(); r(true); });
      s.once('error', () => r(false));
    });
    if (ok) break;
    if (Date.now() > end || redis.proc.exitCode !== null) {
      redis.proc.kill('SIGKILL');
      throw new Error('redis-server did not listen');
    }
    await sleep(50);
  }
  const url = `redis://127.0.0.1:${rport}/0`;
  const a = await startUntil(pinned([SERVER, ...node, '--redis', url], core), listening, 'node A');
  const b = await startUntil(pinned([SERVER, ...node, '--redis', url], core), listening, 'node B');
  await waitHealthy(a.port);
  await waitHealthy(b.port);
  return { procs: [a.proc, b.proc, redis.proc], ports: [a.port, b.port], pids: [a.proc.pid, b.proc.pid, redis.proc.pid], dir };
}

async function stopConfig(c) {
  // the nodes first (they drain through Redis), then Redis
  await Promise.all(c.procs.slice(0, 2).map((p) => stop(p)));
  for (const p of c.procs.slice(2)) await stop(p);
  if (c.dir) rmSync(c.dir, { recursive: true, force: true });
}

function runLoadgen(c, lgArgs, core) {
  const cmd = [LOADGEN, '--url', `ws://127.0.0.1:${c.ports[0]}/`,
    ...(c.ports.length > 1 ? ['--ports', c.ports.join(',')] : []),
    ...c.pids.flatMap((p) => ['--server-pid', String(p)]), '--json-only', ...lgArgs.map(String)];
  return runCommand(pinned(cmd, core));
}

// The cost in us of CPU per unit of sc's figure for the measured interval:
// the nodes' and Redis's shares (cluster runs only).
function shares(json, sc) {
  const each = json.server_cpu_s_each;
  if (!each || sc.metric === 'p99') return null;
  const units = json.server_cpu_s / json[sc.metric] * 1e6;
  return { nodes: (each[0] + each[1]) / units * 1e6, redis: each[2] / units * 1e6 };
}

async function runOnce(config, sc, r) {
  const srvCore = sc.free ? null : SRV_CORE;
  const lgCore = sc.free ? null : LG_CORE;
  const c = await startConfig(config, srvCore);
  let res;
  try {
    await sleep(300);
    res = await runLoadgen(c, sc.lg, lgCore);
  } finally {
    await stopConfig(c);
  }
  if (OUT && res.json) appendFileSync(OUT, JSON.stringify({ server: 'switchboard', config, scenario: sc.name, pinned: !sc.free, ...res.json }) + '\n');
  if (res.code !== 0 || !res.json) {
    console.error(`  ${config} ${sc.name} run ${r + 1}: loadgen exit ${res.code}\n${res.err.split('\n').slice(-6).join('\n')}`);
    return null;
  }
  const sh = shares(res.json, sc);
  console.error(`  ${config} ${sc.name} run ${r + 1}: ${sc.unit} ${figure(res.json, sc.metric)}` +
    (sh ? ` (nodes ${sh.nodes.toFixed(2)}, redis ${sh.redis.toFixed(2)})` : '') +
    `, ${res.json.msgs_per_s ?? res.json.joins_per_s} /s, p99 ${res.json.latency_us ? (res.json.latency_us.p99 / 1000).toFixed(2) : 'n/a'} ms`);
  return res.json;
}

// A latency run during which the whole machine stalled (the load
// generator's idle main thread woke more than STALL_MS late: the host took
// the CPUs away) measures the host, not the servers: it is run again, at
// most RETRIES times, and counted.  CPU figures are not affected by a
// stall and are never run again.
const STALL_MS = 50;
const RETRIES = 3;
const stalled = { single: 0, cluster: 0 };

async function runCounted(config, sc, r) {
  for (let k = 0; ; k++) {
    const j = await runOnce(config, sc, r);
    if (!j || sc.metric !== 'p99' || !(j.machine_stall_ms > STALL_MS) || k === RETRIES) return j;
    stalled[config]++;
    console.error(`  ${config} ${sc.name} run ${r + 1}: the machine stalled for ${j.machine_stall_ms} ms: run again`);
  }
}

function summarize(jsons, sc) {
  const ok = jsons.filter(Boolean);
  const sh = ok.map((j) => shares(j, sc)).filter(Boolean);
  return {
    value: median(ok.map((j) => figure(j, sc.metric))),
    rate: median(ok.map((j) => (sc.name === 'broadcast' ? j.deliveries_per_s : j.msgs_per_s ?? j.joins_per_s ?? null))),
    p99: median(ok.map((j) => (j.latency_us ? j.latency_us.p99 / 1000 : null))),
    nodes: median(sh.map((s) => s.nodes)),
    redis: median(sh.map((s) => s.redis)),
    saturated: ok.some((j) => j.loadgen_saturated),
    n: ok.length,
  };
}

const fmt = (x, d = 2) => (x === null || x === undefined ? 'n/a' : Number(x).toFixed(d));

const rows = [];
for (const sc of SCENARIOS) {
  if (ONLY && !ONLY.includes(sc.name)) continue;
  console.error(sc.title);
  const jsons = { single: [], cluster: [] };
  for (let r = 0; r < RUNS; r++)
    for (const config of ['single', 'cluster']) jsons[config].push(await runCounted(config, sc, r));
  rows.push({ sc, single: summarize(jsons.single, sc), cluster: summarize(jsons.cluster, sc) });
}

const lines = [];
lines.push(`Machine: ${os.cpus().length} x ${os.cpus()[0].model.trim()}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}; ` +
  `medians of ${RUNS} run(s) each, one node and the cluster alternating; nodes with --workers 1; ` +
  `the load generator on core ${LG_CORE} and every server process (the nodes and Redis) on core ${SRV_CORE} unless the scenario says nothing pinned.`);
lines.push('');
lines.push('| scenario | figure | one node | two nodes + Redis | of which nodes | of which Redis | two / one | one node rate | two nodes rate | p99 one | p99 two |');
lines.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
for (const { sc, single, cluster } of rows) {
  const ratio = single.value && cluster.value !== null ? cluster.value / single.value : null;
  const sat = single.saturated || cluster.saturated ? ' (load generator saturated)' : '';
  lines.push(`| ${sc.title}${sat} | ${sc.unit} | ${fmt(single.value)} | ${fmt(cluster.value)} | ${fmt(cluster.nodes)} | ${fmt(cluster.redis)} | ${fmt(ratio, 2)} | ` +
    `${fmt(single.rate, 0)} | ${fmt(cluster.rate, 0)} | ${fmt(single.p99)} | ${fmt(cluster.p99)} |`);
}
lines.push('');
lines.push(`Latency runs run again after a stall of the whole machine (over ${STALL_MS} ms): one node ${stalled.single}, the cluster ${stalled.cluster}.`);
lines.push('');
lines.push('| target | figure | met |');
lines.push('| --- | --- | --- |');
for (const { sc, single, cluster } of rows) {
  if (sc.maxRatio) {
    const ratio = single.value && cluster.value !== null ? cluster.value / single.value : null;
    lines.push(`| ${sc.name}: two nodes + Redis at most ${sc.maxRatio}x one node's CPU per message | ${fmt(ratio, 2)}x | ${ratio !== null && ratio <= sc.maxRatio ? 'yes' : 'no'} |`);
  }
  if (sc.maxP99)
    lines.push(`| ${sc.name}: p99 at most ${sc.maxP99} ms across two nodes | ${fmt(cluster.value)} ms | ${cluster.value !== null && cluster.value <= sc.maxP99 ? 'yes' : 'no'} |`);
  if (sc.minRate)
    lines.push(`| ${sc.name}: two nodes relay at least ${sc.minRate} msg/s | ${fmt(cluster.rate, 0)} msg/s | ${cluster.rate !== null && cluster.rate >= sc.minRate ? 'yes' : 'no'} |`);
}
console.log(lines.join('\n'));

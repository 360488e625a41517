#!/usr/bin/env node
// The benchmark suite: runs every scenario against switchboard and against
// the Node.js reference server, in turn, on the same pinned cores with the
// same load, and prints a markdown table of the medians with the ratios.
//
//   node bench/bench.mjs --server build-bench/switchboard \
//        --loadgen build-bench/bench/sb-loadgen --reference /tmp/sb-reference/server.js
//
// Options: --runs N (default 5), --only name[,name] (scenario names below),
// --quick (shorter runs, 1 run each: a rehearsal, not a measurement),
// --out FILE (also write every raw JSON line there).
//
// With --baseline PATH (another switchboard binary, e.g. a build of an older
// commit) the suite compares the two builds instead: no reference is needed,
// the runs alternate (baseline, server, baseline, server...) so that the
// machine's drifts fall on both, and the table gives before, after and
// after / before.
//
// Loopback only; every run is bounded (the load generator's own deadline,
// and a kill after a margin).

import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { figure, median, mintRoomTokens, pinned, runCommand, sleep, stop } from './lib.mjs';

const args = process.argv.slice(2);
function opt(name, def) {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return def;
  return args[i + 1];
}
const flag = (name) => args.includes(`--${name}`);

const SERVER = opt('server');
const LOADGEN = opt('loadgen');
const REFERENCE = opt('reference');
const QUICK = flag('quick');
const RUNS = Number(opt('runs', QUICK ? 1 : 5));
const ONLY = opt('only', '') ? opt('only').split(',') : null;
const OUT = opt('out', null);
const BASELINE = opt('baseline', null);
if (!SERVER || !LOADGEN || (!REFERENCE && !BASELINE)) {
  console.error('usage: bench.mjs --server PATH --loadgen PATH (--reference server.js | --baseline PATH) [--runs N] [--only a,b] [--quick] [--out FILE]');
  process.exit(2);
}
if (OUT) writeFileSync(OUT, '');

const LG_CORE = '0';
const SRV_CORE = '1';
const D = QUICK ? 3 : 8;      // measured seconds of a throughput run
const W = QUICK ? 1 : 2;      // warm-up seconds

// name, what it measures, the figure, the target ratio (reference / ours,
// "at least"), or an absolute bound, and how to run it.
const SCENARIOS = [
  {
    name: 'relay-w2', title: 'relay, 1000 peers in pairs, window 2, 200 B',
    metric: 'server_cpu_us_per_msg', unit: 'us CPU/msg', ratio: 4,
    lg: ['--scenario', 'relay', '--peers', '1000', '--window', '2', '--size', '200', '--warmup', W, '--duration', D],
  },
  {
    name: 'relay-w16', title: 'relay, 1000 peers in pairs, window 16, 200 B',
    metric: 'server_cpu_us_per_msg', unit: 'us CPU/msg', ratio: 10,
    lg: ['--scenario', 'relay', '--peers', '1000', '--window', '16', '--size', '200', '--warmup', W, '--duration', D],
  },
  {
    name: 'broadcast', title: 'broadcast, 200 peers in rooms of 10, window 2',
    metric: 'server_cpu_us_per_delivery', unit: 'us CPU/delivery', ratio: 10,
    lg: ['--scenario', 'broadcast', '--peers', '200', '--room-size', '10', '--window', '2', '--size', '200', '--warmup', W, '--duration', D],
  },
  {
    name: 'connect', title: 'connect and join 10,000 peers',
    metric: 'server_cpu_us_per_join', unit: 'us CPU/join', ratio: 4,
    lg: ['--scenario', 'connect', '--peers', '10000', '--source-addrs', '4', '--duration', '30'],
  },
  {
    name: 'connect-hs256', title: 'connect and join 10,000 peers, each with an HS256 room token',
    metric: 'server_cpu_us_per_join', unit: 'us CPU/join', tokens: 'HS256',
    lg: ['--scenario', 'connect', '--peers', '10000', '--source-addrs', '4', '--duration', '30'],
  },
  {
    name: 'connect-es256', title: 'connect and join 10,000 peers, each with an ES256 room token',
    metric: 'server_cpu_us_per_join', unit: 'us CPU/join', tokens: 'ES256',
    lg: ['--scenario', 'connect', '--peers', '10000', '--source-addrs', '4', '--duration', '30'],
  },
  {
    name: 'churn', title: 'churn: 10,000 peers held, the oldest replaced (a close and a join each)',
    metric: 'server_cpu_us_per_join', unit: 'us CPU/join',
    lg: ['--scenario', 'churn', '--peers', QUICK ? '2000' : '10000', '--source-addrs', '4', '--warmup', W, '--duration', D],
  },
  {
    name: 'idle', title: 'idle, 19,000 joined peers (--workers 2)',
    metric: 'rss_per_conn_kb', unit: 'KiB RSS/conn', max: 4, workers: 2,
    lg: ['--scenario', 'idle', '--peers', QUICK ? '5000' : '19000', '--room-size', '10', '--source-addrs', '4', '--duration', QUICK ? '2' : '5'],
  },
  {
    name: 'latency', title: 'relay open loop, 200 peers, 20,000 msg/s',
    metric: 'p99', unit: 'ms p99 latency', max: 1.5,
    lg: ['--scenario', 'relay', '--peers', '200', '--rate', '20000', '--size', '200', '--warmup', W, '--duration', QUICK ? '3' : '10'],
  },
];

// Starts a server pinned to SRV_CORE (or unpinned); resolves {proc, port}.
function startServer(kind, workers, pin = true, extra = []) {
  const cmd = kind === 'reference'
    ? ['node', REFERENCE, '--port', '0', '--bind', '127.0.0.1', ...extra]
    : [kind === 'baseline' ? BASELINE : SERVER, '--port', '0', '--bind', '127.0.0.1', '--workers', String(workers), '--log-level', 'warn', ...extra];
  const full = pinned(cmd, pin ? SRV_CORE : null);
  const proc = spawn(full[0], full.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`${kind} did not start`)); }, 10000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = /listening on \S+:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, port: Number(m[1]) });
      }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`${kind} exited ${code}`)); });
  });
}

function runLoadgen(port, pid, lgArgs, pin = true) {
  const cmd = [LOADGEN, '--url', `ws://127.0.0.1:${port}/`, '--server-pid', String(pid), '--json-only', ...lgArgs.map(String)];
  return runCommand(pinned(cmd, pin ? LG_CORE : null));
}

// One run of scenario sc against a fresh server; its JSON line or null.
async function runOnce(kind, sc, { workers = sc.workers || 1, pinned = true, lg = sc.lg } = {}, r = 0) {
  // a token scenario: a key and a token per room (rooms of one peer)
  let dir = null;
  let extra = [];
  if (sc.tokens) {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sb-bench-tokens-'));
    const tag = `bt${r}-`;
    const peers = Number(lg[lg.indexOf('--peers') + 1]);
    const minted = mintRoomTokens(sc.tokens, peers, tag, dir);
    extra = minted.serverArgs;
    lg = [...lg, '--tag', tag, '--tokens', minted.tokensFile];
  }
  const { proc, port } = await startServer(kind, workers, pinned, extra);
  await sleep(300);
  const res = await runLoadgen(port, proc.pid, lg, pinned);
  await stop(proc);
  if (dir) rmSync(dir, { recursive: true, force: true });
  if (OUT && res.json) appendFileSync(OUT, JSON.stringify({ server: kind, scenario: sc.name, workers, pinned, ...res.json }) + '\n');
  if (res.code !== 0 || !res.json) {
    console.error(`  ${kind} ${sc.name} run ${r + 1}: loadgen exit ${res.code}\n${res.err.split('\n').slice(-6).join('\n')}`);
    return null;
  }
  console.error(`  ${kind} ${sc.name} run ${r + 1}: ${sc.unit} ${figure(res.json, sc.metric)}`);
  return res.json;
}

function summarize(jsons, sc) {
  const ok = jsons.filter(Boolean);
  return {
    value: median(ok.map((j) => figure(j, sc.metric))),
    rate: median(ok.map((j) => j.msgs_per_s ?? j.deliveries_per_s ?? j.joins_per_s ?? null)),
    saturated: ok.some((j) => j.loadgen_saturated),
    n: ok.length,
  };
}

async function measure(kind, sc, o = {}) {
  const jsons = [];
  for (let r = 0; r < RUNS; r++) jsons.push(await runOnce(kind, sc, o, r));
  return summarize(jsons, sc);
}

// The same scenario against each kind, alternating run by run.
async function measureAlternating(kinds, sc, o = {}) {
  const jsons = Object.fromEntries(kinds.map((k) => [k, []]));
  for (let r = 0; r < RUNS; r++)
    for (const k of kinds) jsons[k].push(await runOnce(k, sc, o, r));
  return Object.fromEntries(kinds.map((k) => [k, summarize(jsons[k], sc)]));
}

const fmt = (x, d = 2) => (x === null || x === undefined ? 'n/a' : Number(x).toFixed(d));

if (BASELINE) {
  await compareBuilds();
  process.exit(0);
}

// --baseline: the two builds side by side, alternating, every scenario.
async function compareBuilds() {
  const out = [];
  for (const sc of SCENARIOS) {
    if (ONLY && !ONLY.includes(sc.name)) continue;
    console.error(`${sc.title}`);
    const m = await measureAlternating(['baseline', 'switchboard'], sc);
    out.push({ sc, before: m.baseline, after: m.switchboard });
  }
  const lines = [];
  lines.push(`Machine: ${os.cpus().length} x ${os.cpus()[0].model.trim()}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}; ` +
    `medians of ${RUNS} run(s) each, the two builds alternating; servers on core ${SRV_CORE} with --workers 1 unless noted, load generator on core ${LG_CORE}.`);
  lines.push(`before: ${BASELINE}; after: ${SERVER}`);
  lines.push('');
  lines.push('| scenario | figure | before | after | after / before | before rate | after rate |');
  lines.push('| --- | --- | --- | --- | --- | --- | --- |');
  for (const { sc, before, after } of out) {
    const ratio = before.value && after.value !== null ? after.value / before.value : null;
    const sat = before.saturated || after.saturated ? ' (load generator saturated)' : '';
    const rate = (x) => (sc.name === 'idle' ? '' : fmt(x.rate, 0));
    lines.push(`| ${sc.title} | ${sc.unit} | ${fmt(before.value)} | ${fmt(after.value)} | ${fmt(ratio, 3)}${sat} | ${rate(before)} | ${rate(after)} |`);
  }
  console.log(lines.join('\n'));
}

const rows = [];
for (const sc of SCENARIOS) {
  if (ONLY && !ONLY.includes(sc.name)) continue;
  console.error(`${sc.title}`);
  const ours = await measure('switchboard', sc);
  const ref = await measure('reference', sc);
  rows.push({ sc, ours, ref });
}

let scaling = null;
if (!ONLY || ONLY.includes('scaling')) {
  const sc = { name: 'scaling', metric: 'server_cpu_us_per_msg', unit: 'us CPU/msg',
    lg: ['--scenario', 'relay', '--peers', '1000', '--window', '16', '--size', '200', '--warmup', W, '--duration', D, '--threads', '1'] };
  console.error('relay, window 16: --workers 1 pinned vs --workers 2 unpinned');
  const one = await measure('switchboard', sc, { workers: 1 });
  const two = await measure('switchboard', sc, { workers: 2, pinned: false });
  scaling = { one, two };
}

const lines = [];
lines.push(`Machine: ${os.cpus().length} x ${os.cpus()[0].model.trim()}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}; ` +
  `medians of ${RUNS} run(s); servers on core ${SRV_CORE} with --workers 1 unless noted, load generator on core ${LG_CORE}.`);
lines.push('');
lines.push('| scenario | figure | switchboard | reference | reference / switchboard | target | met |');
lines.push('| --- | --- | --- | --- | --- | --- | --- |');
for (const { sc, ours, ref } of rows) {
  const ratio = ours.value && ref.value ? ref.value / ours.value : null;
  let target;
  let met;
  if (sc.ratio) {
    target = `ratio >= ${sc.ratio}`;
    met = ratio !== null && ratio >= sc.ratio ? 'yes' : 'no';
  } else if (sc.max !== undefined) {
    target = `<= ${sc.max}`;
    met = ours.value !== null && ours.value <= sc.max ? 'yes' : 'no';
  } else {
    target = 'none';	/* a figure to watch, not a target */
    met = '';
  }
  const sat = ours.saturated || ref.saturated ? ' (load generator saturated)' : '';
  lines.push(`| ${sc.title} | ${sc.unit} | ${fmt(ours.value)} | ${fmt(ref.value)} | ${fmt(ratio, 1)} | ${target} | ${met}${sat} |`);
}
lines.push('');
lines.push('| throughput | switchboard | reference |');
lines.push('| --- | --- | --- |');
for (const { sc, ours, ref } of rows) {
  if (sc.name === 'idle') continue;
  const what = sc.metric === 'server_cpu_us_per_join' ? 'joins/s' : sc.name === 'broadcast' ? 'deliveries/s' : 'msgs/s';
  lines.push(`| ${sc.title} | ${fmt(ours.rate, 0)} ${what} | ${fmt(ref.rate, 0)} ${what} |`);
}
if (scaling) {
  lines.push('');
  lines.push('| relay, 1000 peers, window 16 | msgs/s | us CPU/msg |');
  lines.push('| --- | --- | --- |');
  lines.push(`| switchboard --workers 1, pinned to core ${SRV_CORE} | ${fmt(scaling.one.rate, 0)} | ${fmt(scaling.one.value)} |`);
  lines.push(`| switchboard --workers 2, unpinned (load generator unpinned too) | ${fmt(scaling.two.rate, 0)} | ${fmt(scaling.two.value)} |`);
}
console.log(lines.join('\n'));

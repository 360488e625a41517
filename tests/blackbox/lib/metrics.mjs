// A small parser for the Prometheus text exposition format, and helpers to
// read the server's /metrics.

import { T, httpGet, sleep } from './harness.mjs';

function parseLabels(text) {
  // text is what is between the braces: name="value",name="value"
  const labels = {};
  let i = 0;
  while (i < text.length) {
    while (text[i] === ' ' || text[i] === ',') i++;
    if (i >= text.length) break;
    const eq = text.indexOf('=', i);
    if (eq < 0) throw new Error(`bad labels {${text}}`);
    const name = text.slice(i, eq).trim();
    i = eq + 1;
    if (text[i] !== '"') throw new Error(`bad label value in {${text}}`);
    i++;
    let value = '';
    for (; i < text.length && text[i] !== '"'; i++) {
      if (text[i] === '\\') {
        i++;
        value += text[i] === 'n' ? '\n' : text[i];
      } else {
        value += text[i];
      }
    }
    if (text[i] !== '"') throw new Error(`unterminated label value in {${text}}`);
    i++;
    labels[name] = value;
  }
  return labels;
}

function keyOf(name, labels) {
  const parts = Object.keys(labels).sort().map((k) => `${k}=${JSON.stringify(labels[k])}`);
  return `${name}{${parts.join(',')}}`;
}

function parseValue(s) {
  if (s === '+Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  if (s === 'NaN') return NaN;
  const n = Number(s);
  if (s === '' || Number.isNaN(n)) throw new Error(`bad sample value ${JSON.stringify(s)}`);
  return n;
}

export class Metrics {
  constructor(text) {
    this.text = text;
    this.samples = new Map(); // key -> {name, labels, value}
    this.types = new Map(); // metric name -> type
    this.help = new Map();
    for (const raw of text.split('\n')) {
      const line = raw.trim();
      if (line === '') continue;
      if (line.startsWith('#')) {
        const m = /^#\s*(TYPE|HELP)\s+(\S+)\s*(.*)$/.exec(line);
        if (m && m[1] === 'TYPE') this.types.set(m[2], m[3].trim());
        if (m && m[1] === 'HELP') this.help.set(m[2], m[3]);
        continue;
      }
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$/.exec(line);
      if (!m) throw new Error(`bad metrics line ${JSON.stringify(raw)}`);
      const labels = m[3] !== undefined ? parseLabels(m[3]) : {};
      const name = m[1];
      this.samples.set(keyOf(name, labels), { name, labels, value: parseValue(m[4]) });
    }
  }

  has(name, labels = {}) {
    return this.samples.has(keyOf(name, labels));
  }

  // The sample's value, or `missing` (default 0) when the series is absent.
  get(name, labels = {}, missing = 0) {
    const s = this.samples.get(keyOf(name, labels));
    return s ? s.value : missing;
  }

  // Every sample of a metric name.
  series(name) {
    return [...this.samples.values()].filter((s) => s.name === name);
  }
}

export function parsePrometheus(text) {
  return new Metrics(text);
}

export async function getMetrics(srv) {
  const res = await httpGet(srv, '/metrics');
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return parsePrometheus(res.body);
}

// Polls /metrics until `check(metrics)` is true; resolves with the metrics.
// Counters may be updated a little after the event that moves them.
export async function waitForMetrics(srv, check, what, timeout = T(3000)) {
  const deadline = Date.now() + timeout;
  let m;
  for (;;) {
    m = await getMetrics(srv);
    if (check(m)) return m;
    if (Date.now() >= deadline) {
      const lines = m.text.split('\n').filter((l) => l.startsWith('switchboard_')).join('\n');
      throw new Error(`metrics never showed ${what} within ${timeout} ms; last:\n${lines}`);
    }
    await sleep(25);
  }
}

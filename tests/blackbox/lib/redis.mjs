// A Redis of the suite's own for the cluster tests: Debian's redis-server
// on a free loopback port, with no persistence and its files in a
// temporary directory, stopped when the test ends; a minimal RESP client
// to look into it and run scripts; and a subscriber that collects what is
// published on channels.

import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { T, freePort, sideProcess, sleep, track, untrack, withTimeout } from './harness.mjs';

// RESP: one command as an array of bulk strings.
function encode(args) {
  let out = `*${args.length}\r\n`;
  for (const a of args) {
    const b = Buffer.from(String(a));
    out += `$${b.length}\r\n${b.toString('latin1')}\r\n`;
  }
  return Buffer.from(out, 'latin1');
}

// Parses one reply at buf[i..]: [value, next] or null when incomplete.
// Errors become {error: text}; bulk strings are UTF-8 text, or with `raw`
// Buffers (their bytes as they are).
function parse(buf, i = 0, raw = false) {
  const eol = buf.indexOf('\r\n', i);
  if (eol < 0) return null;
  const line = buf.toString('latin1', i + 1, eol);
  const next = eol + 2;
  switch (buf[i]) {
    case 0x2b: return [line, next]; // +
    case 0x2d: return [{ error: line }, next]; // -
    case 0x3a: return [Number(line), next]; // :
    case 0x24: { // $
      const n = Number(line);
      if (n < 0) return [null, next];
      if (buf.length < next + n + 2) return null;
      const bytes = buf.subarray(next, next + n);
      return [raw ? Buffer.from(bytes) : bytes.toString('utf8'), next + n + 2];
    }
    case 0x2a: { // *
      const n = Number(line);
      if (n < 0) return [null, next];
      const out = [];
      let at = next;
      for (let k = 0; k < n; k++) {
        const r = parse(buf, at, raw);
        if (!r) return null;
        out.push(r[0]);
        at = r[1];
      }
      return [out, at];
    }
    default: throw new Error(`bad RESP byte ${buf[i]}`);
  }
}

// Sends the commands (arrays of arguments) on one connection and resolves
// with their replies, in order.
export function redisCommands(port, commands, { timeout = T(3000) } = {}) {
  return withTimeout(new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    track(sock);
    let buf = Buffer.alloc(0);
    const replies = [];
    sock.on('error', (err) => { untrack(sock); reject(err); });
    sock.on('connect', () => sock.write(Buffer.concat(commands.map(encode))));
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const r = parse(buf);
        if (!r) break;
        replies.push(r[0]);
        buf = buf.subarray(r[1]);
      }
      if (replies.length === commands.length) {
        sock.destroy();
        untrack(sock);
        resolve(replies);
      }
    });
  }), timeout, `Redis on port ${port} to answer ${JSON.stringify(commands)}`);
}

// Starts redis-server; with `t`, it is stopped when the test ends.
// Resolves to {port, password, url(db), command(...args), stop(), kill(),
// pause(), resume(), restart(), alive()}.
export async function startRedis({ t, password } = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-redis-'));
  let proc = null;
  let port = 0;
  let paused = false;

  const auth = password ? [['AUTH', password]] : [];

  // Starts redis-server on port p and waits for its PONG; throws with what
  // it said when it does not come.
  async function launchOn(p) {
    const args = ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--daemonize', 'no', '--dir', dir, '--loglevel', 'warning', '--protected-mode', 'no'];
    if (password) args.push('--requirepass', password);
    proc = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.unref();
    let out = '';
    proc.stdout.setEncoding('utf8').on('data', (d) => { out += d; });
    proc.stderr.setEncoding('utf8').on('data', (d) => { out += d; });
    const deadline = Date.now() + T(5000);
    while (Date.now() < deadline && proc.exitCode === null && proc.signalCode === null) {
      try {
        const r = await redisCommands(p, [...auth, ['PING']], { timeout: 500 });
        if (r[r.length - 1] === 'PONG') return;
      } catch { /* not yet */ }
      await sleep(20);
    }
    try { proc.kill('SIGKILL'); } catch { /* gone */ }
    throw new Error(`redis-server did not start on port ${p}:\n${out}`);
  }

  // On a free port: one taken meanwhile is tried again with another.
  async function launch() {
    for (let attempt = 0; ; attempt++) {
      port = await freePort();
      try {
        await launchOn(port);
        return;
      } catch (err) {
        if (attempt >= 3 || !/Address already in use/.test(err.message)) throw err;
      }
    }
  }

  const { end, cleanup } = sideProcess('redis-server', () => proc, {
    t,
    dir,
    before(p) {
      if (paused) { p.kill('SIGCONT'); paused = false; }
    },
  });

  await launch();
  const redis = {
    get port() { return port; },
    password,
    // The --redis URL of database db (default 0), with the password.
    url(db = 0) {
      return `redis://${password ? `:${encodeURIComponent(password)}@` : ''}127.0.0.1:${port}/${db}`;
    },
    // One command in database db; resolves with its reply.
    async command(db, ...args) {
      const r = await redisCommands(port, [...auth, ['SELECT', db], args]);
      return r[r.length - 1];
    },
    // A Lua script run with EVAL in database db, no KEYS, args as ARGV.
    eval(db, script, ...args) {
      return redis.command(db, 'EVAL', script, 0, ...args);
    },
    alive: () => proc && proc.exitCode === null && proc.signalCode === null,
    stop: () => end('SIGTERM'),
    kill: () => end('SIGKILL'),
    pause() { proc.kill('SIGSTOP'); paused = true; },
    resume() { proc.kill('SIGCONT'); paused = false; },
    // Stopped and started again on the same port, empty.
    async restart() {
      await end('SIGKILL');
      for (let i = 0; ; i++) {
        try {
          await launchOn(port);
          return;
        } catch (err) {
          // the old socket may linger a moment
          if (i >= 20 || !/Address already in use/.test(err.message)) throw err;
          await sleep(100);
        }
      }
    },
  };

  redis.cleanup = cleanup;
  return redis;
}

// Subscribes on one connection to `channels` (SUBSCRIBE) and `patterns`
// (PSUBSCRIBE) and collects what is published there, in order, as
// {channel, data} (data a Buffer, the bytes as published).  Resolves once
// Redis confirmed every subscription, to:
//   next(ms)   the next message not yet taken by next(), waiting at most ms
//   all()      every message so far
//   sync(ms)   every message published before the call, once they arrived:
//              a marker is published on a channel of the collector's own
//              and, Redis delivering in order, waited for (at most ms)
//   close()
// A pattern should not match a subscribed channel (the message would come
// twice), nor the marker's channel, "sb-test-mark:*".
export async function subscribe(port, { channels = [], patterns = [], password } = {}) {
  const mark = `sb-test-mark:${process.pid}:${Math.random().toString(16).slice(2)}`;
  const sock = net.connect({ host: '127.0.0.1', port });
  track(sock);
  const messages = [];
  const marks = new Set();
  let taken = 0;
  let wanted = 1 + channels.length + patterns.length;
  let confirmed = 0;
  let failure = null;
  let wake = () => {};
  let buf = Buffer.alloc(0);

  const changed = () => { const w = wake; wake = () => {}; w(); };
  // Resolves when ok() holds, rejects after ms or on a failure.
  async function until(ok, ms, what) {
    const deadline = Date.now() + ms;
    while (!ok()) {
      if (failure) throw failure;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        wake = () => { clearTimeout(timer); resolve(); };
      });
    }
  }

  sock.on('error', (err) => { failure = err; changed(); });
  sock.on('close', () => { failure = failure || new Error('the subscriber\'s connection closed'); changed(); });
  sock.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      const r = parse(buf, 0, true);
      if (!r) break;
      buf = buf.subarray(r[1]);
      const v = r[0];
      if (v && v.error) { failure = new Error(`Redis: ${v.error}`); continue; }
      if (!Array.isArray(v)) { confirmed++; continue; } // +OK of AUTH
      const kind = v[0].toString();
      if (kind === 'subscribe' || kind === 'psubscribe') confirmed++;
      else if (kind === 'message' || kind === 'pmessage') {
        const channel = v[v.length - 2].toString('utf8');
        const data = v[v.length - 1];
        if (channel === mark) marks.add(data.toString());
        else messages.push({ channel, data });
      }
    }
    changed();
  });

  const cmds = [];
  if (password) { cmds.push(['AUTH', password]); wanted++; }
  cmds.push(['SUBSCRIBE', mark, ...channels]);
  if (patterns.length) cmds.push(['PSUBSCRIBE', ...patterns]);
  sock.write(Buffer.concat(cmds.map(encode)));
  try {
    await until(() => confirmed >= wanted, T(3000), 'Redis to confirm the subscriptions');
  } catch (err) {
    sock.destroy();
    untrack(sock);
    throw err;
  }

  let marksSent = 0;
  return {
    async next(ms = T(2000)) {
      await until(() => messages.length > taken, ms, 'a published message');
      return messages[taken++];
    },
    all: () => messages.slice(),
    async sync(ms = T(2000)) {
      const token = String(++marksSent);
      await redisCommands(port, [...(password ? [['AUTH', password]] : []), ['PUBLISH', mark, token]]);
      await until(() => marks.has(token), ms, 'the marker published after the messages');
      return messages.slice();
    },
    close() {
      sock.destroy();
      untrack(sock);
    },
  };
}

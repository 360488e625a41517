// Debian's nginx in front of the server under test, configured from the
// shipped example deploy/nginx/switchboard.conf, or in front of several
// cluster nodes from deploy/nginx/switchboard-cluster.conf.
//
// The example is transformed, not copied: its listen lines become one
// loopback listener on a free high port, its upstream servers the ports of
// the switchboards under test, in order, its certificate paths a self-signed certificate
// made here with the openssl command line. Every other line (the location
// blocks, the proxy headers and timeouts) is used as shipped, so a change to
// the example is what the tests exercise. The server block is included from
// a minimal nginx.conf in a fresh temporary directory that also holds the
// pid file, the logs and the temp paths; nginx runs in the foreground
// (`daemon off`) and is stopped when the test ends.

import { execFile, spawn } from 'node:child_process';
import { accessSync, constants as fsc, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { T, freePort, httpGet, sleep, track, untrack, withTimeout } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
export const EXAMPLE = path.resolve(here, '../../../deploy/nginx/switchboard.conf');
export const CLUSTER_EXAMPLE = path.resolve(here, '../../../deploy/nginx/switchboard-cluster.conf');

const HOST = '127.0.0.1';

// ------------------------------------------------------------ programs

// nginx lives in /usr/sbin, which is not on an ordinary user's PATH.
function findProgram(name) {
  const dirs = (process.env.PATH || '').split(':').filter(Boolean);
  for (const d of ['/usr/sbin', '/sbin', '/usr/local/sbin', '/usr/bin', '/bin']) {
    if (!dirs.includes(d)) dirs.push(d);
  }
  for (const d of dirs) {
    const p = path.join(d, name);
    try {
      accessSync(p, fsc.X_OK);
      return p;
    } catch { /* not here */ }
  }
  return null;
}

export function requirePrograms() {
  const nginx = findProgram('nginx');
  const openssl = findProgram('openssl');
  const missing = [];
  if (!nginx) missing.push('nginx');
  if (!openssl) missing.push('openssl');
  if (missing.length) {
    throw new Error(`${missing.join(' and ')} not found (looked on PATH and in /usr/sbin): `
      + 'the nginx tests need Debian\'s nginx and openssl packages; scripts/deps.sh --test installs them');
  }
  return { nginx, openssl };
}

function run(file, args, { timeout = T(20000) } = {}) {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`${file} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
        return;
      }
      resolve({ stdout, stderr });
    });
  });
}

// A self-signed P-256 certificate for localhost, 127.0.0.1 and the host
// `names` in `dir`.
export async function makeCertificate(openssl, dir, names = []) {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  const dns = ['localhost', ...names].map((n) => `DNS:${n}`).join(',');
  await run(openssl, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-nodes', '-days', '1', '-subj', '/CN=localhost',
    '-addext', `subjectAltName=${dns},IP:127.0.0.1`,
    '-keyout', key, '-out', cert]);
  await fs.chmod(key, 0o600);
  return { cert, key, ca: readFileSync(cert, 'utf8') };
}

// ------------------------------------------------------------ configuration

// Replaces what `re` matches in `text` by `fn(match...)`, and fails unless
// it matched `count` times: if the example changes shape, the test says so
// instead of quietly testing something else.
function substitute(text, re, fn, count, what, file) {
  let n = 0;
  const out = text.replace(re, (...m) => {
    n += 1;
    return fn(...m);
  });
  if (n !== count) {
    throw new Error(`${file}: expected ${count} ${what}, found ${n}; update lib/nginx.mjs to the example's new shape`);
  }
  return out;
}

// A path as one nginx string, whatever the temporary directory's name.
function quote(p) {
  if (/["\\$\n]/.test(p)) throw new Error(`unusable path for an nginx configuration: ${JSON.stringify(p)}`);
  return `"${p}"`;
}

// The example's server block with the listen lines, the upstream servers
// (as many as `upstreamPorts`, given in order) and the certificate paths
// replaced; everything else as it is. `file` names the example in errors.
export function renderServerBlock(example, { port, upstreamPorts, cert, key }, file = EXAMPLE) {
  let text = example;
  // `listen 443 ssl http2;` -> `listen 127.0.0.1:PORT ssl http2;` (its
  // parameters kept); the IPv6 listener `listen [::]:443 ...` goes.
  let v4 = 0;
  text = text.replace(/^([ \t]*)listen[ \t]+(\S+)([^;\n]*);[^\n]*\n/gm, (all, indent, addr, params) => {
    if (addr.startsWith('[')) return '';
    v4 += 1;
    return `${indent}listen ${HOST}:${port}${params};\n`;
  });
  if (v4 !== 1) {
    throw new Error(`${file}: expected one IPv4 listen line, found ${v4}; update lib/nginx.mjs to the example's new shape`);
  }
  // The upstream's `server 127.0.0.1:8080;` lines (not `server {` or
  // `server_name`), their parameters kept.
  let next = 0;
  text = substitute(text, /^([ \t]*server[ \t]+)[^\s;{]+:\d+/gm,
    (all, head) => `${head}${HOST}:${upstreamPorts[next++]}`, upstreamPorts.length,
    `upstream server line${upstreamPorts.length === 1 ? '' : 's'}`, file);
  text = substitute(text, /^([ \t]*ssl_certificate[ \t]+)[^;\n]+;/gm, (all, head) => `${head}${quote(cert)};`, 1,
    'ssl_certificate line', file);
  text = substitute(text, /^([ \t]*ssl_certificate_key[ \t]+)[^;\n]+;/gm, (all, head) => `${head}${quote(key)};`, 1,
    'ssl_certificate_key line', file);
  return text;
}

// The names of the example's `server_name` lines.
export function serverNames(example) {
  return [...example.matchAll(/^[ \t]*server_name[ \t]+([^;\n]+);/gm)].flatMap((m) => m[1].trim().split(/\s+/));
}

// The minimal top-level configuration around the server block, everything
// nginx writes kept in `dir`. When the suite runs as root, nginx's workers
// would switch to nobody, which cannot enter a private temporary directory:
// they run as root instead.
export function renderMainConf(dir, serverBlock) {
  const p = (name) => quote(path.join(dir, name));
  return [
    'daemon off;',
    ...(typeof process.getuid === 'function' && process.getuid() === 0 ? ['user root;'] : []),
    `pid ${p('nginx.pid')};`,
    `error_log ${p('error.log')} notice;`,
    'events {}',
    'http {',
    `    access_log ${p('access.log')};`,
    `    client_body_temp_path ${p('client_body_temp')};`,
    `    proxy_temp_path ${p('proxy_temp')};`,
    `    fastcgi_temp_path ${p('fastcgi_temp')};`,
    `    uwsgi_temp_path ${p('uwsgi_temp')};`,
    `    scgi_temp_path ${p('scgi_temp')};`,
    `    include ${quote(serverBlock)};`,
    '}',
    '',
  ].join('\n');
}

// ------------------------------------------------------------ process

function readText(file) {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

// The master ends its workers on SIGTERM. SIGKILL is the last resort for a
// master that does not exit; its workers would outlive it, so they get one
// too (they are its children).
function killHard(pid) {
  let children = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number);
  } catch { /* gone, or no /proc */ }
  for (const p of [pid, ...children]) {
    try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
  }
}

const live = new Set(); // nginx masters still running, for the exit hook
process.on('exit', () => {
  for (const pid of live) {
    try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
  }
});

// One nginx run on `port`: resolves with {proc, exited} once its worker has
// started, or with {bindFailed: true} if the port was taken; rejects on any
// other failure.
async function launch(nginx, dir, port, timeout) {
  const conf = path.join(dir, 'nginx.conf');
  const errorLog = path.join(dir, 'error.log');
  await fs.writeFile(errorLog, '');
  const proc = spawn(nginx, ['-p', dir, '-c', conf, '-e', errorLog], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout.setEncoding('utf8').on('data', (d) => { output += d; });
  proc.stderr.setEncoding('utf8').on('data', (d) => { output += d; });
  proc.on('error', (err) => { output += `${err.message}\n`; });
  let exitInfo = null;
  const exited = new Promise((resolve) => {
    proc.on('close', (code, signal) => {
      live.delete(proc.pid);
      exitInfo = { code, signal };
      resolve(exitInfo);
    });
  });
  if (proc.pid) live.add(proc.pid);
  proc.unref();
  proc.stdout.unref();
  proc.stderr.unref();

  const deadline = Date.now() + timeout;
  for (;;) {
    const log = readText(errorLog);
    if (/bind\(\) to \S+ failed \(98/.test(log)) {
      killHard(proc.pid);
      await exited;
      return { bindFailed: true };
    }
    if (exitInfo) {
      throw new Error(`nginx exited (code ${exitInfo.code}, signal ${exitInfo.signal}) before it was ready\n`
        + `error.log:\n${log}\noutput:\n${output}`);
    }
    // Logged at notice level once the listening sockets are open.
    if (/start worker process \d+/.test(log)) return { proc, exited, output: () => output };
    if (Date.now() >= deadline) {
      killHard(proc.pid);
      await exited;
      throw new Error(`nginx was not ready within ${timeout} ms\nerror.log:\n${log}\noutput:\n${output}`);
    }
    await sleep(20);
  }
}

// Starts nginx in front of `upstream` (a started server, or an array of
// them for an example with as many upstream servers) and resolves with
// {port, url, ca, dir, tlsOptions, get(), errorLog(), accessLog(), stop()}.
// `example` is the file configured from (EXAMPLE by default). With `t` it
// is stopped when that test ends. Fails, rather than skips, when nginx or
// openssl is not installed.
export async function startNginx(upstream, { t, timeout = T(10000), example: file = EXAMPLE } = {}) {
  const { nginx, openssl } = requirePrograms();
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sb-nginx-'));
  let proc;
  let exited;
  let port;
  try {
    const example = await fs.readFile(file, 'utf8');
    const upstreamPorts = (Array.isArray(upstream) ? upstream : [upstream]).map((u) => u.port);
    // The certificate is valid for the example's server_name too, so that
    // a client can check it under the name the documentation uses.
    const { cert, key, ca } = await makeCertificate(openssl, dir, serverNames(example));
    const serverBlock = path.join(dir, 'switchboard.conf');
    await fs.writeFile(path.join(dir, 'nginx.conf'), renderMainConf(dir, serverBlock));
    let started = null;
    for (let attempt = 1; attempt <= 3 && !started; attempt++) {
      port = await freePort();
      await fs.writeFile(serverBlock, renderServerBlock(example, { port, upstreamPorts, cert, key }, file));
      const r = await launch(nginx, dir, port, timeout);
      if (!r.bindFailed) started = r;
    }
    if (!started) throw new Error('nginx could not bind a free loopback port in 3 attempts');
    ({ proc, exited } = started);
    const handle = makeHandle({ dir, port, ca, proc, exited });
    const holder = { destroy: () => killHard(proc.pid) };
    track(holder);
    handle.untrackHolder = () => untrack(holder);
    if (t) t.after(() => handle.stop());
    return handle;
  } catch (err) {
    await fs.rm(dir, { recursive: true, force: true });
    throw err;
  }
}

function makeHandle({ dir, port, ca, proc, exited }) {
  const errorLogPath = path.join(dir, 'error.log');
  let stopped = null;
  const handle = {
    port,
    host: HOST,
    httpHost: HOST,
    url: `wss://${HOST}:${port}/`,
    ca,
    caFile: path.join(dir, 'cert.pem'),
    dir,
    pid: proc.pid,
    // For the `ws` client and tls.connect: trust the test's certificate.
    tlsOptions: { ca },
    errorLog: () => readText(errorLogPath),
    accessLog: () => readText(path.join(dir, 'access.log')),
    alive: () => proc.exitCode === null && proc.signalCode === null,

    // One HTTPS GET through nginx on a fresh connection: {status, headers, body}.
    get(urlPath, { localAddress, headers = {}, timeout = T(5000) } = {}) {
      return httpGet(handle, urlPath, { tls: { ca }, localAddress, headers, timeout });
    },

    // Fast shutdown (SIGTERM: open WebSocket connections do not hold it up
    // as they would a graceful SIGQUIT), then the directory is removed.
    // Fails if nginx had died on its own or logged an alert.
    stop() {
      if (stopped) return stopped;
      stopped = (async () => {
        const problems = [];
        if (handle.alive()) {
          try {
            process.kill(proc.pid, 'SIGTERM');
            await withTimeout(exited, T(10000), 'nginx to exit after SIGTERM');
          } catch (err) {
            problems.push(err.message);
            killHard(proc.pid);
            await exited;
          }
        } else {
          const info = await exited;
          problems.push(`nginx exited on its own (code ${info.code}, signal ${info.signal})`);
        }
        if (handle.untrackHolder) handle.untrackHolder();
        const log = handle.errorLog();
        const alerts = log.split('\n').filter((l) => /\[(alert|emerg)\]/.test(l));
        if (alerts.length) problems.push(`nginx logged:\n${alerts.join('\n')}`);
        await fs.rm(dir, { recursive: true, force: true });
        if (problems.length) throw new Error(`nginx (pid ${proc.pid}):\n${problems.join('\n')}\nerror.log:\n${log.slice(-6000)}`);
      })();
      return stopped;
    },
  };
  return handle;
}

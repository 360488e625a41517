// A coturn of the suite's own for the TURN tests: Debian's turnserver on a
// free loopback port, in the TURN REST mode switchboard's credentials are
// for (use-auth-secret with a static secret), configured from a file in a
// temporary directory as docs/operations.md shows, stopped when the test
// ends. Ready once it answers a STUN Binding request. Its log (stdout) is
// kept, so that a test can see which users it allocated relays for.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { accessSync, constants, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { T, freePort, sideProcess, sleep } from './harness.mjs';

export const TURNSERVER = process.env.SB_TURNSERVER || '/usr/bin/turnserver';

export function requireCoturn() {
  try {
    accessSync(TURNSERVER, constants.X_OK);
  } catch {
    throw new Error(`${TURNSERVER} is missing: scripts/deps.sh --test installs Debian's coturn`);
  }
}

// Sends one STUN Binding request (RFC 8489) to 127.0.0.1:port over UDP;
// resolves true when a Binding success response with the same transaction
// id comes back within ms.
export function stunBinding(port, ms = 500) {
  return new Promise((resolve) => {
    const sock = dgram.createSocket('udp4');
    const txid = randomBytes(12);
    const req = Buffer.alloc(20);
    req.writeUInt16BE(0x0001, 0); // Binding request
    req.writeUInt16BE(0, 2); // no attributes
    req.writeUInt32BE(0x2112a442, 4); // magic cookie
    txid.copy(req, 8);
    const done = (ok) => {
      clearTimeout(timer);
      try { sock.close(); } catch { /* closed */ }
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), ms);
    sock.on('error', () => done(false));
    sock.on('message', (msg) => {
      if (msg.length >= 20 && msg.readUInt16BE(0) === 0x0101 && msg.subarray(8, 20).equals(txid)) done(true);
    });
    sock.send(req, port, '127.0.0.1');
  });
}

// A relay port range of its own: 100 ports at a random place above Linux's
// ephemeral range (32768-60999), where the servers on port 0 are not.
function relayRange() {
  const min = 61000 + 100 * Math.floor(Math.random() * 44);
  return [min, min + 99];
}

// Starts turnserver with `secret` as its static-auth-secret and `realm`;
// with `t`, it is stopped when the test ends. Resolves to {port, realm,
// uri(transport), log(), stop()}.
export async function startCoturn({ t, secret, realm = 'switchboard.test' } = {}) {
  requireCoturn();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-coturn-'));
  let proc = null;
  let out = '';
  let port = 0;

  async function launch() {
    port = await freePort();
    const [minPort, maxPort] = relayRange();
    const conf = path.join(dir, 'turnserver.conf');
    // As docs/operations.md has it, on the loopback: the peers of the
    // tests are on 127.0.0.1, which coturn refuses as a relay peer unless
    // told (allow-loopback-peers: for tests only, never in production).
    writeFileSync(conf, [
      'use-auth-secret',
      `static-auth-secret=${secret}`,
      `realm=${realm}`,
      'listening-ip=127.0.0.1',
      'relay-ip=127.0.0.1',
      `listening-port=${port}`,
      `min-port=${minPort}`,
      `max-port=${maxPort}`,
      'allow-loopback-peers',
      'fingerprint',
      'no-tls',
      'no-dtls',
      'no-cli',
      'no-software-attribute',
      'log-file=stdout',
      'simple-log',
      'verbose',
      `pidfile=${path.join(dir, 'turnserver.pid')}`,
      `userdb=${path.join(dir, 'turndb')}`,
      '',
    ].join('\n'), { mode: 0o600 });
    out = '';
    proc = spawn(TURNSERVER, ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.unref();
    proc.stdout.setEncoding('utf8').on('data', (d) => { out += d; });
    proc.stderr.setEncoding('utf8').on('data', (d) => { out += d; });
    const deadline = Date.now() + T(10000);
    while (Date.now() < deadline && proc.exitCode === null && proc.signalCode === null) {
      if (await stunBinding(port)) return true;
      await sleep(50);
    }
    try { proc.kill('SIGKILL'); } catch { /* gone */ }
    if (/Address already in use|Cannot bind/i.test(out)) return false;
    throw new Error(`turnserver did not answer STUN on port ${port}:\n${out.slice(-3000)}`);
  }

  const { cleanup } = sideProcess('turnserver', () => proc, { t, dir });
  // a port taken meanwhile is tried again with another
  for (let attempt = 0; !(await launch()); attempt++) {
    if (attempt >= 3) throw new Error(`turnserver found no free port:\n${out.slice(-3000)}`);
  }

  return {
    get port() { return port; },
    realm,
    // the --ice-server URI of this coturn
    uri: (transport = 'udp') => `turn:127.0.0.1:${port}?transport=${transport}`,
    log: () => out,
    stop: cleanup,
  };
}

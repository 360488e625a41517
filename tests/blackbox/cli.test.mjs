// The command line: help, version, bad options (exit 2), the listening line,
// the listen address (IPv4, IPv6, dual-stack default), and the options of
// room tokens, ICE servers and TURN (their refusals, and no secret shown).

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { connect } from './lib/client.mjs';
import { T, httpGet, runServer, startServer, waitFor } from './lib/harness.mjs';

async function ipv6Available() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ host: '::1', port: 0 }, () => s.close(() => resolve(true)));
  });
}

describe('help and version', () => {
  for (const flag of ['--help', '-h']) {
    test(`${flag} prints the usage and exits 0`, async () => {
      const r = await runServer([flag]);
      assert.equal(r.code, 0, `stderr: ${r.stderr}`);
      assert.match(r.stdout, /--port/);
      assert.match(r.stdout, /--max-message/);
      assert.match(r.stdout, /--drain-timeout|--heartbeat/);
    });
  }

  test('--version prints the name and exits 0', async () => {
    const r = await runServer(['--version']);
    assert.equal(r.code, 0, `stderr: ${r.stderr}`);
    assert.match(r.stdout, /switchboard/);
  });

  test('--help wins over the options around it', async () => {
    const r = await runServer(['--port', '0', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /--port/);
  });
});

describe('bad options exit 2 with a message on stderr', () => {
  const cases = [
    ['an unknown option', ['--bogus']],
    ['an unknown short option', ['-z']],
    ['a stray argument', ['extra']],
    ['--port without a value', ['--port']],
    ['--max-message without a value', ['--port', '0', '--max-message']],
    ['--port abc', ['--port', 'abc']],
    ['--port 70000', ['--port', '70000']],
    ['--port -1', ['--port', '-1']],
    ['--port 12x', ['--port', '12x']],
    ['--port=', ['--port=']],
    ['--workers 0', ['--port', '0', '--workers', '0']],
    ['--workers x', ['--port', '0', '--workers', 'x']],
    ['--heartbeat -1', ['--port', '0', '--heartbeat', '-1']],
    ['--heartbeat abc', ['--port', '0', '--heartbeat', 'abc']],
    ['--max-message abc', ['--port', '0', '--max-message', 'abc']],
    ['--max-room-peers -3', ['--port', '0', '--max-room-peers', '-3']],
    ['--max-backlog x', ['--port', '0', '--max-backlog', 'x']],
    ['--rate fast', ['--port', '0', '--rate', 'fast']],
    ['--drain-timeout -5', ['--port', '0', '--drain-timeout', '-5']],
  ];
  for (const [what, args] of cases) {
    test(what, async () => {
      const r = await runServer(args);
      assert.equal(r.code, 2, `exit code for ${JSON.stringify(args)}; stdout: ${r.stdout}; stderr: ${r.stderr}`);
      assert.ok(r.stderr.trim().length > 0, 'a message on stderr');
      assert.doesNotMatch(r.stdout, /listening/);
    });
  }
});

describe('--allowed-origin takes origins only', () => {
  // A URL with a path, or a host alone, would never equal a browser's
  // Origin header: every upgrade would be refused.  Said at start instead.
  for (const value of ['https://app.example/', 'app.example', 'https://app.example/chat']) {
    test(`'${value}' exits 2 and says how an origin is written`, async (t) => {
      if (serverIsReference()) return t.skip('the reference has no --allowed-origin');
      for (const [args, env] of [[['--port', '0', '--allowed-origin', value], {}],
        [['--port', '0'], { SWITCHBOARD_ALLOWED_ORIGIN: `https://ok.example,${value}` }]]) {
        const r = await runServer(args, { env });
        assert.equal(r.code, 2, `${JSON.stringify(args)} ${JSON.stringify(env)}: ${r.stderr}`);
        assert.match(r.stderr, /not an origin; give scheme:\/\/host\[:port\]/);
        assert.doesNotMatch(r.stdout, /listening/);
      }
    });
  }
});

test('an unknown SWITCHBOARD_ variable is named in a warning, with the option it misspells', async (t) => {
  if (serverIsReference()) return t.skip('the reference reads no environment');
  const srv = await startServer([], {
    t, env: { SWITCHBOARD_PROT: '9000', SWITCHBOARD_MAX_MESAGE: '10', SWITCHBOARD_NOT_AN_OPTION: 'x' },
  });
  const err = srv.stderr();
  assert.match(err, /warn .*unknown environment variable SWITCHBOARD_PROT ignored \(did you mean SWITCHBOARD_PORT\?\)/);
  assert.match(err, /unknown environment variable SWITCHBOARD_MAX_MESAGE ignored \(did you mean SWITCHBOARD_MAX_MESSAGE\?\)/);
  assert.match(err, /unknown environment variable SWITCHBOARD_NOT_AN_OPTION ignored\n/);
  assert.doesNotMatch(err, /unknown environment variable SWITCHBOARD_(PORT|BIN)\b/);
  // and it is ignored: the server runs on its defaults otherwise
  assert.equal((await httpGet(srv, '/healthz')).status, 200);
});

function isReference() {
  return (process.env.SWITCHBOARD_BIN || '').includes('server.js');
}

describe('the ready line', () => {
  // The text after "ready at " in the log (standard error, a pipe of its
  // own: it may arrive after the listening line on standard output).
  async function ready(srv) {
    const m = await waitFor(() => / info \[main\] ready at (.*)\n/.exec(srv.stderr()), T(5000),
      'the ready line');
    return m[1];
  }

  test('on the defaults: the URL to open on this machine, the workers, TLS, Origin, limits, web root', async (t) => {
    if (isReference()) return t.skip('the reference has no ready line');
    const srv = await startServer(['--port', '0', '--workers', '1'], { t, raw: true });
    assert.match(await ready(srv), new RegExp(`^http://localhost:${srv.port}/: 1 worker, TLS off, Origin any, `
      + 'limits: connections unlimited, per address unlimited, peers per room unlimited, '
      + 'message 65536 B, field 128 B, backlog 1048576 B, rate off, heartbeat 30 s, handshake 10 s, '
      + 'tokens off, ICE servers none; web root /.*web \\(\\d+ files\\)$'));
  });

  test('a bound address, the limits set, an Origin list and no web root', async (t) => {
    if (isReference()) return t.skip('the reference has no such options');
    const srv = await startServer(['--workers', '3', '--allowed-origin', 'https://a.example',
      '--allowed-origin', 'null', '--max-connections', '100', '--max-connections-per-ip', '5',
      '--max-room-peers', '4', '--max-message', '4096', '--max-field', '64', '--max-backlog', '200000',
      '--rate', '10', '--heartbeat', '0', '--handshake-timeout', '7', '--trusted-proxy', '10.0.0.0/8',
      '--web-root', 'none'], { t });
    assert.equal(await ready(srv), `http://127.0.0.1:${srv.port}/: 3 workers, TLS off, `
      + 'Origin https://a.example null, limits: connections 100, per address 5, peers per room 4, '
      + 'message 4096 B, field 64 B, backlog 200000 B, rate 10/s, heartbeat off, handshake 7 s, '
      + '1 trusted proxy, tokens off, ICE servers none; web root none');
  });

  test('in JSON, the same words', async (t) => {
    if (isReference()) return t.skip('the reference has no ready line');
    const srv = await startServer(['--log-format', 'json', '--workers', '2'], { t });
    const line = await waitFor(() => srv.stderr().split('\n').filter(Boolean).map((l) => JSON.parse(l))
      .find((o) => o.msg.startsWith('ready at ')), T(5000), 'the ready line');
    assert.match(line.msg, new RegExp(`^ready at http://127\\.0\\.0\\.1:${srv.port}/: 2 workers, TLS off, Origin any, `));
    assert.equal(line.level, 'info');
  });
});

describe('room tokens, ICE servers and TURN', () => {
  // Recognisable secrets, looked for in everything the server prints.
  const SECRET = 'Zq7-sekrit-Wm4';
  const TURN = 'Tn9-turnkey-Rx2';

  function noSecret(text, where) {
    assert.ok(!text.includes(SECRET) && !text.includes(TURN), `a secret in ${where}:\n${text}`);
  }

  function secretFiles(t) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-secret-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const auth = path.join(dir, 'auth');
    const turn = path.join(dir, 'turn');
    writeFileSync(auth, `${SECRET}\n`);
    writeFileSync(turn, `${TURN}\r\n`);
    return { dir, auth, turn };
  }

  test('a turn: URI without a TURN secret exits 2 saying what to set', async (t) => {
    if (isReference()) return t.skip('the reference has no ICE servers');
    for (const [args, env] of [[['--port', '0', '--ice-server', 'turn:turn.example.com:3478'], {}],
      [['--port', '0'], { SWITCHBOARD_ICE_SERVER: 'stun:stun.example.com turn:turn.example.com:3478' }]]) {
      const r = await runServer(args, { env });
      assert.equal(r.code, 2, `${JSON.stringify(args)} ${JSON.stringify(env)}: ${r.stderr}`);
      assert.match(r.stderr, /^switchboard: --ice-server turn:turn\.example\.com:3478 needs a TURN secret for its credentials: set --turn-secret-file \(or --turn-secret\)/);
      assert.doesNotMatch(r.stdout, /listening/);
    }
  });

  test('other refusals exit 2 with one line each, and no secret', async (t) => {
    if (isReference()) return t.skip('the reference has no such options');
    const { dir, auth } = secretFiles(t);
    const cases = [
      [['--ice-server', 'stun://stun.example.com'], {},
        /bad value 'stun:\/\/stun\.example\.com' for --ice-server \('\/\/' after the scheme/],
      [['--ice-server', `turn:user:${SECRET}@turn.example.com`], {}, /--ice-server holds '@'/],
      [['--auth-secret-file', path.join(dir, 'missing')], {},
        /cannot read .*missing for --auth-secret-file: No such file or directory/],
      [['--turn-secret-file', dir], {}, /cannot read .* for --turn-secret-file: Is a directory/],
      [['--auth-secret-file', auth], { SWITCHBOARD_AUTH_SECRET: SECRET },
        /--auth-secret and --auth-secret-file are both set/],
      [['--auth-public-key', auth, '--auth-secret', SECRET], {}, /--auth-secret and --auth-public-key are both set/],
      [['--turn-secret', TURN], {}, /--turn-secret is set but no --ice-server is a turn: or turns: URI/],
      [['--auth-audience', 'app'], {}, /--auth-audience checks room tokens, which are off/],
      [['--turn-ttl', '59'], {}, /--turn-ttl \(expected a whole number from 60 to 604800\)/],
      [['--auth-secretx=' + SECRET], {}, /unknown option '--auth-secretx'/],
    ];
    for (const [args, env, want] of cases) {
      const r = await runServer(['--port', '0', ...args], { env });
      assert.equal(r.code, 2, `${JSON.stringify(args)}: ${r.stderr}`);
      assert.match(r.stderr, want);
      assert.equal(r.stderr.split('\n').filter(Boolean).length, 2, `one line and the hint: ${r.stderr}`);
      noSecret(r.stderr + r.stdout, `the refusal of ${JSON.stringify(args)}`);
    }
  });

  test('a secret on the command line, in a file or in the environment never shows', async (t) => {
    if (isReference()) return t.skip('the reference has no such options');
    const { auth, turn } = secretFiles(t);
    const cases = [
      [['--auth-secret', SECRET, '--ice-server', 'turn:t.example', '--turn-secret', TURN], {}],
      [['--auth-secret-file', auth, '--ice-server', 'stun:s.example', '--ice-server', 'turn:t.example',
        '--turn-secret-file', turn], {}],
      [[], { SWITCHBOARD_AUTH_SECRET: SECRET, SWITCHBOARD_TURN_SECRET: TURN,
        SWITCHBOARD_ICE_SERVER: 'stun:s.example, turn:t.example' }],
      [[], { SWITCHBOARD_AUTH_SECRET_FILE: auth, SWITCHBOARD_TURN_SECRET_FILE: turn,
        SWITCHBOARD_ICE_SERVER: 'turn:t.example' }],
    ];
    for (const [args, env] of cases) {
      const srv = await startServer([...args, '--workers', '1', '--log-level', 'debug'], { t, env });
      const m = await waitFor(() => / info \[main\] ready at (.*)\n/.exec(srv.stderr()), T(5000), 'the ready line');
      assert.match(m[1], /, tokens HS256, ICE servers [12] \(TURN credentials for 86400 s\); web root /);
      noSecret((await httpGet(srv, '/metrics')).body, '/metrics');
      await srv.finish();
      noSecret(srv.stdout(), 'standard output');
      noSecret(srv.stderr(), 'standard error');
    }
  });
});

describe('listening', () => {
  test('the listening line with --bind 127.0.0.1', async (t) => {
    const srv = await startServer([], { t });
    assert.match(srv.line, /^switchboard listening on 127\.0\.0\.1:\d+$/);
    assert.ok(srv.port > 0 && srv.port < 65536);
    const c = await connect(srv.url, { t });
    await c.ping();
  });

  test('--port=0 and --bind=ADDR forms', async (t) => {
    const srv = await startServer(['--port=0', '--bind=127.0.0.1'], { t, raw: true });
    assert.match(srv.line, /^switchboard listening on 127\.0\.0\.1:\d+$/);
    assert.notEqual(srv.port, 0);
    assert.equal((await httpGet(srv, '/healthz')).status, 200);
  });

  test('short options -p and -b and -w', async (t) => {
    const srv = await startServer(['-p', '0', '-b', '127.0.0.1', '-w', '2'], { t, raw: true });
    assert.match(srv.line, /^switchboard listening on 127\.0\.0\.1:\d+$/);
    const c = await connect(srv.url, { t });
    await c.ping();
  });

  test('every documented option is accepted', async (t) => {
    const srv = await startServer(['--workers', '2', '--max-message', '4096', '--max-field', '64', '--max-room-peers', '10',
      '--max-backlog', '100000', '--heartbeat', '10', '--rate', '100', '--drain-timeout', '1'], { t });
    const c = await connect(srv.url, { t });
    await c.ping();
  });

  test('--bind ::1 prints the address in brackets and serves over IPv6', async (t) => {
    if (!(await ipv6Available())) {
      t.skip('no IPv6 loopback on this machine');
      return;
    }
    const srv = await startServer(['--bind', '::1'], { t });
    assert.match(srv.line, /^switchboard listening on \[::1\]:\d+$/);
    assert.equal(srv.url, `ws://[::1]:${srv.port}/`);
    const c = await connect(srv.url, { t });
    await c.ping();
    assert.equal((await httpGet(srv, '/healthz', { host: '::1' })).status, 200);
  });

  test('the default bind (::) is dual-stack', async (t) => {
    if (!(await ipv6Available())) {
      t.skip('no IPv6 on this machine');
      return;
    }
    const srv = await startServer(['--port', '0'], { t, raw: true });
    assert.match(srv.line, /^switchboard listening on \[::\]:\d+$/);
    const v4 = await connect(`ws://127.0.0.1:${srv.port}/`, { t });
    await v4.ping();
    const v6 = await connect(`ws://[::1]:${srv.port}/`, { t });
    await v6.ping();
    assert.equal((await httpGet(srv, '/healthz', { host: '127.0.0.1' })).status, 200);
    assert.equal((await httpGet(srv, '/healthz', { host: '::1' })).status, 200);
  });

  test('a port already in use: the second server fails with a message', async (t) => {
    const first = await startServer([], { t });
    const r = await runServer(['--port', String(first.port), '--bind', '127.0.0.1'], { timeout: T(10000) });
    assert.notEqual(r.code, 0, `a second server started on port ${first.port}: ${r.stdout}`);
    assert.ok(r.stderr.trim().length > 0, 'a message on stderr');
    assert.doesNotMatch(r.stdout, /listening/);
    const c = await connect(first.url, { t });
    await c.ping();
  });
});

describe('options from the environment', () => {
  // The server inherits this process's environment; each test restores it.
  function withEnv(vars, fn) {
    return async (t) => {
      const saved = {};
      for (const [k, v] of Object.entries(vars)) {
        saved[k] = process.env[k];
        process.env[k] = v;
      }
      try {
        await fn(t);
      } finally {
        for (const k of Object.keys(vars)) {
          if (saved[k] === undefined) delete process.env[k];
          else process.env[k] = saved[k];
        }
      }
    };
  }

  test('SWITCHBOARD_MAX_FIELD limits fields like --max-field', withEnv({ SWITCHBOARD_MAX_FIELD: '4' }, async (t) => {
    if (serverIsReference()) return t.skip('the reference has no environment options');
    const srv = await startServer([], { t });
    const c = await connect(srv.url, { t });
    c.send({ type: 'join', id: 'abcde' });
    const m = await c.next();
    assert.equal(m.type, 'error');
    assert.equal(m.payload.code, 'bad_message');
    c.send({ type: 'join', id: 'abcd' });
    assert.equal((await c.next()).type, 'joined');
  }));

  test('the command line wins over the environment', withEnv({ SWITCHBOARD_MAX_FIELD: '4' }, async (t) => {
    if (serverIsReference()) return t.skip('the reference has no environment options');
    const srv = await startServer(['--max-field', '10'], { t });
    const c = await connect(srv.url, { t });
    c.send({ type: 'join', id: 'abcdefghij' });
    assert.equal((await c.next()).type, 'joined');
  }));

  test('a bad value in the environment exits 2 naming the variable', withEnv({ SWITCHBOARD_PORT: 'abc' }, async (t) => {
    if (serverIsReference()) return t.skip('the reference has no environment options');
    const r = await runServer(['--port', '0', '--bind', '127.0.0.1']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /SWITCHBOARD_PORT/);
  }));
});

function serverIsReference() {
  return (process.env.SWITCHBOARD_BIN || '').includes('server.js');
}

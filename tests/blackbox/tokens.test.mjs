// Room tokens and ICE servers (protocol 1.1), end to end: each token rule
// with tokens made here by Node's crypto (HS256, RS256, ES256), the name
// claim as the nick, unauthorized leaving the connection open, the secret
// from a file and from the environment and never printed, iceServers with
// TURN credentials checked against Node's HMAC-SHA1, `switchboard token`,
// /metrics, and a cluster of two nodes.

import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { assertError, connect, expectError, isJoinOf } from './lib/client.mjs';
import { T, runServer, startServer, waitFor, httpGet } from './lib/harness.mjs';
import { getMetrics } from './lib/metrics.mjs';
import { startRedis } from './lib/redis.mjs';

const b64url = (buf) => Buffer.from(buf).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

// A compact JWS of header and claims, its signature made by signer over
// "header.payload".
function jws(header, claims, signer) {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  return `${input}.${b64url(signer(Buffer.from(input)))}`;
}

function hs256(secret, claims, header = { alg: 'HS256', typ: 'JWT' }) {
  return jws(header, claims, (data) => createHmac('sha256', secret).update(data).digest());
}

function rs256(privateKey, claims, header = { alg: 'RS256', typ: 'JWT' }) {
  return jws(header, claims, (data) => sign('sha256', data, privateKey));
}

function es256(privateKey, claims, header = { alg: 'ES256', typ: 'JWT' }) {
  return jws(header, claims, (data) => sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' }));
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-tokens-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
function writeFile(name, content) {
  const file = path.join(dir, name);
  fs.writeFileSync(file, content, { mode: 0o600 });
  return file;
}

// Secrets that look like nothing else in the output.
const SECRET = `hs-${randomBytes(24).toString('hex')}`;
const OTHER = `other-${randomBytes(24).toString('hex')}`;
const TURN_SECRET = `turn-${randomBytes(24).toString('hex')}`;
const TURN_TTL = 600;
const STUN = 'stun:stun.example.org:3478';
const TURN = 'turn:turn.example.org:3478';
const TURNS = 'turns:turn.example.org:5349';

let rooms = 0;
const newRoom = () => `tok-${++rooms}`;

// Sends a join with token (undefined: none) and resolves with the answer.
async function tryJoin(c, { id, room, nick, token }) {
  const msg = { type: 'join', id };
  if (room !== undefined) msg.room = room;
  if (nick !== undefined) msg.nick = nick;
  if (token !== undefined) msg.token = token;
  c.send(msg);
  return c.next((m) => m.type === 'joined' || m.type === 'error');
}

async function refused(c, join, message) {
  const reply = await tryJoin(c, join);
  assertError(reply, 'unauthorized', 'join');
  if (message instanceof RegExp) assert.match(reply.payload.message, message);
  else if (message !== undefined) assert.equal(reply.payload.message, message);
  await c.ping();
  return reply;
}

async function admitted(c, join) {
  const reply = await tryJoin(c, join);
  assert.equal(reply.type, 'joined', `join ${JSON.stringify(join)} answered ${JSON.stringify(reply)}`);
  return reply.payload;
}

describe('HS256 with the secret in a file, ICE servers and TURN', () => {
  let srv;
  before(async () => {
    srv = await startServer(['--auth-secret-file', writeFile('secret', `${SECRET}\n`),
      '--ice-server', STUN, '--ice-server', TURN, '--ice-server', TURNS,
      '--turn-secret', TURN_SECRET, '--turn-ttl', String(TURN_TTL),
      '--max-field', '16', '--max-room-peers', '2', '--log-level', 'debug']);
  });
  after(() => srv && srv.finish());
  const good = (room, more = {}) => hs256(SECRET, { room, exp: now() + 60, ...more });

  test('no token: unauthorized, the connection stays open, a retry with a token joins', async (t) => {
    const room = newRoom();
    const c = await connect(srv.url, { t });
    await refused(c, { id: 'a', room }, 'a room token is required');
    const p = await admitted(c, { id: 'a', room, nick: 'Al', token: good(room) });
    assert.equal(p.id, 'a');
    assert.equal(p.nick, 'Al');
    assert.equal(p.room, room);
  });

  test('each rule refuses with its reason', async (t) => {
    const room = newRoom();
    const c = await connect(srv.url, { t });
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const cases = [
      ['alg none', jws({ alg: 'none' }, { room, exp: now() + 60 }, () => Buffer.from('x')), /alg is not HS256/],
      ['alg mismatch (RS256)', rs256(privateKey, { room, exp: now() + 60 }), /alg is not HS256/],
      ['another secret', hs256(OTHER, { room, exp: now() + 60 }), 'bad signature'],
      ['a changed payload', (() => {
        const [h, , s] = good(room).split('.');
        return `${h}.${b64url(JSON.stringify({ room, exp: now() + 3600 }))}.${s}`;
      })(), 'bad signature'],
      ['expired beyond the leeway', hs256(SECRET, { room, exp: now() - 60 }), 'the token has expired'],
      ['no exp', hs256(SECRET, { room }), 'the token has no exp'],
      ['nbf in the future', hs256(SECRET, { room, exp: now() + 600, nbf: now() + 300 }), 'the token is not valid yet (nbf)'],
      ['another room', good('elsewhere'), 'the token is for another room'],
      ['another id', good(room, { sub: 'b' }), 'the token is for another id (sub)'],
      ['not a JWT', 'hello', /three parts/],
      ['too long', `${good(room)}${'A'.repeat(5000)}`, 'the token is too long'],
      ['a name with a control character', good(room, { name: 'a\u0001b' }), "the token's name is not a valid nick"],
      ['a name over --max-field', good(room, { name: 'n'.repeat(17) }), "the token's name is not a valid nick"],
    ];
    for (const [what, token, why] of cases) {
      await t.test(what, () => refused(c, { id: 'a', room, token }, why));
    }
    // still not joined, and a good token joins on the same connection
    await admitted(c, { id: 'a', room, token: good(room, { sub: 'a' }) });
  });

  test('a token that is not a string is bad_message, before any token rule', async (t) => {
    const c = await connect(srv.url, { t });
    for (const token of [null, 5, {}, ['x']]) {
      await expectError(c, { type: 'join', id: 'a', room: newRoom(), token }, 'bad_message', 'join');
    }
    // members first: a bad id is bad_message even without a token
    await expectError(c, { type: 'join', id: '' }, 'bad_message', 'join');
  });

  test('the name claim is the nick, in joined and in the join event', async (t) => {
    const room = newRoom();
    const a = await connect(srv.url, { t });
    await admitted(a, { id: 'a', room, nick: 'ignored', token: good(room, { name: 'Alice' }) });
    const b = await connect(srv.url, { t });
    const p = await admitted(b, { id: 'b', room, nick: 'Bobby', token: good(room, { sub: 'b', name: 'Bob' }) });
    assert.equal(p.nick, 'Bob');
    assert.deepEqual(p.peers, [{ id: 'a', nick: 'Alice' }]);
    const ev = await a.next(isJoinOf('b'));
    assert.deepEqual(ev.payload, { id: 'b', nick: 'Bob' });
    // relays carry it too
    b.send({ type: 'message', payload: { text: 'hi' } });
    const m = await a.next('message');
    assert.equal(m.payload.nick, 'Bob');
  });

  test('iceServers in joined: STUN, and TURN with REST credentials', async (t) => {
    const room = newRoom();
    const c = await connect(srv.url, { t });
    const before = now();
    const p = await admitted(c, { id: 'peer-1', room, token: good(room) });
    const after = now();
    assert.ok(Array.isArray(p.iceServers), JSON.stringify(p));
    assert.equal(p.iceServers.length, 2);
    assert.deepEqual(p.iceServers[0], { urls: [STUN] });
    const turn = p.iceServers[1];
    assert.deepEqual(turn.urls, [TURN, TURNS]);
    const m = /^(\d+):peer-1$/.exec(turn.username);
    assert.ok(m, `username ${turn.username}`);
    const expiry = Number(m[1]);
    assert.ok(expiry >= before + TURN_TTL && expiry <= after + TURN_TTL, `expiry ${expiry}`);
    assert.equal(turn.credential, createHmac('sha1', TURN_SECRET).update(turn.username).digest('base64'));
    assert.notEqual(turn.credential, createHmac('sha1', OTHER).update(turn.username).digest('base64'));
    assert.deepEqual(Object.keys(turn).sort(), ['credential', 'urls', 'username']);
  });

  test('/metrics counts refused joins by reason, and shows no secret', async (t) => {
    const room = newRoom();
    const m0 = await getMetrics(srv);
    const c = await connect(srv.url, { t });
    await refused(c, { id: 'a', room }, 'a room token is required');
    await refused(c, { id: 'a', room, token: good('x') });
    const a = await connect(srv.url, { t });
    await admitted(a, { id: 'a', room, token: good(room) });
    const d = await connect(srv.url, { t });
    await expectError(d, { type: 'join', id: 'a', room, token: good(room) }, 'id_taken', 'join');
    await admitted(c, { id: 'b', room, token: good(room) });
    await expectError(d, { type: 'join', id: 'c', room, token: good(room) }, 'room_full', 'join');
    const res = await httpGet(srv, '/metrics');
    const m1 = await getMetrics(srv);
    const delta = (reason) => m1.get('switchboard_joins_refused_total', { reason }) -
      m0.get('switchboard_joins_refused_total', { reason });
    assert.equal(delta('unauthorized'), 2);
    assert.equal(delta('id_taken'), 1);
    assert.equal(delta('room_full'), 1);
    assert.equal(delta('unavailable'), 0);
    assert.ok(m1.has('switchboard_joins_refused_total', { reason: 'unavailable' }));
    assert.equal(m1.types.get('switchboard_joins_refused_total'), 'counter');
    for (const s of [SECRET, TURN_SECRET]) assert.ok(!res.body.includes(s), 'a secret in /metrics');
  });

  test('the secrets never appear in what the server prints (--log-level debug)', async () => {
    const out = srv.stdout() + srv.stderr();
    assert.match(out, /tokens HS256/);
    for (const s of [SECRET, TURN_SECRET]) assert.ok(!out.includes(s), 'a secret in the output');
  });
});

describe('the leeway and the default room', () => {
  let srv;
  before(async () => { srv = await startServer(['--auth-secret', SECRET]); });
  after(() => srv && srv.finish());

  test('exp 10 s ago and nbf 10 s ahead are within the 30 s leeway', async (t) => {
    const room = newRoom();
    const a = await connect(srv.url, { t });
    await admitted(a, { id: 'a', room, token: hs256(SECRET, { room, exp: now() - 10 }) });
    const b = await connect(srv.url, { t });
    await admitted(b, { id: 'b', room, token: hs256(SECRET, { room, exp: now() + 60, nbf: now() + 10 }) });
    // no --ice-server: no iceServers in joined
    const c = await connect(srv.url, { t });
    const p = await admitted(c, { id: 'c', room, token: hs256(SECRET, { room, exp: now() + 60 }) });
    assert.ok(!Object.hasOwn(p, 'iceServers'));
  });

  test('a join without room is checked against "default"', async (t) => {
    const c = await connect(srv.url, { t });
    await refused(c, { id: 'd', token: hs256(SECRET, { room: 'x', exp: now() + 60 }) }, 'the token is for another room');
    const p = await admitted(c, { id: 'd', token: hs256(SECRET, { room: 'default', exp: now() + 60 }) });
    assert.equal(p.room, 'default');
  });
});

describe('audience and issuer, the secret from the environment', () => {
  let srv;
  before(async () => {
    srv = await startServer(['--auth-audience', 'app', '--auth-issuer', 'https://backend.example',
      '--log-level', 'debug'], { env: { SWITCHBOARD_AUTH_SECRET: SECRET } });
  });
  after(() => srv && srv.finish());

  test('aud and iss are required and checked', async (t) => {
    const room = newRoom();
    const c = await connect(srv.url, { t });
    const base = { room, exp: now() + 60 };
    const iss = 'https://backend.example';
    await refused(c, { id: 'a', room, token: hs256(SECRET, { ...base, iss }) }, 'the token has no aud');
    await refused(c, { id: 'a', room, token: hs256(SECRET, { ...base, iss, aud: 'other' }) }, 'the token is for another audience');
    await refused(c, { id: 'a', room, token: hs256(SECRET, { ...base, aud: 'app' }) }, 'the token has no iss');
    await refused(c, { id: 'a', room, token: hs256(SECRET, { ...base, aud: 'app', iss: 'x' }) }, 'the token is from another issuer');
    await admitted(c, { id: 'a', room, token: hs256(SECRET, { ...base, aud: ['other', 'app'], iss }) });
    const d = await connect(srv.url, { t });
    await admitted(d, { id: 'd', room, token: hs256(SECRET, { ...base, aud: 'app', iss }) });
    assert.ok(!(srv.stdout() + srv.stderr()).includes(SECRET), 'the secret in the output');
  });
});

describe('RS256 and ES256 with a public key file', () => {
  for (const [alg, gen, signer] of [
    ['RS256', () => generateKeyPairSync('rsa', { modulusLength: 2048 }), rs256],
    ['ES256', () => generateKeyPairSync('ec', { namedCurve: 'P-256' }), es256],
  ]) {
    test(`${alg}: its tokens join, an HS256 token made with the PEM as secret does not`, async (t) => {
      const { publicKey, privateKey } = gen();
      const pem = publicKey.export({ type: 'spki', format: 'pem' });
      const srv = await startServer(['--auth-public-key', writeFile(`${alg}.pem`, pem)], { t });
      const room = newRoom();
      const c = await connect(srv.url, { t });
      await refused(c, { id: 'a', room, token: hs256(pem, { room, exp: now() + 60 }) }, `the token's alg is not ${alg}`);
      await refused(c, { id: 'a', room, token: hs256(pem, { room, exp: now() + 60 }, { alg, typ: 'JWT' }) });
      const other = gen().privateKey;
      await refused(c, { id: 'a', room, token: signer(other, { room, exp: now() + 60 }) }, 'bad signature');
      const p = await admitted(c, { id: 'a', room, token: signer(privateKey, { room, sub: 'a', name: 'Ann', exp: now() + 60 }) });
      assert.equal(p.nick, 'Ann');
      assert.match(srv.stdout() + srv.stderr(), new RegExp(`tokens RS256 or ES256`));
    });
  }

  test('a file that holds no usable public key stops the server (exit 2)', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const priv = writeFile('private.pem', privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const r = await runServer(['--port', '0', '--auth-public-key', priv]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /private\.pem/);
    assert.ok(!r.stderr.includes('PRIVATE KEY-----\n'), 'the key quoted');
    assert.doesNotMatch(r.stdout, /listening/);
  });

  test('a short HMAC secret is taken with one warning that does not quote it', async (t) => {
    const srv = await startServer(['--auth-secret', 'shortsecret-xyz'], { t });
    const out = srv.stdout() + srv.stderr();
    assert.equal(out.match(/advised/g)?.length, 1, out);
    assert.ok(!out.includes('shortsecret-xyz'));
  });
});

describe('switchboard token', () => {
  test('its token joins a server with the same secret, not one with another', async (t) => {
    const file = writeFile('cmd-secret', SECRET);
    const r = await runServer(['token', '--room', 'cmd-room', '--id', 'a', '--name', 'Cmd', '--ttl', '120',
      '--auth-secret-file', file]);
    assert.equal(r.code, 0, r.stderr);
    const token = r.stdout.trim();
    assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    assert.ok(!r.stdout.includes(SECRET) && !r.stderr.includes(SECRET));
    const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url'));
    assert.equal(claims.room, 'cmd-room');
    assert.equal(claims.sub, 'a');
    assert.equal(claims.name, 'Cmd');
    assert.ok(Math.abs(claims.exp - now() - 120) <= 2, JSON.stringify(claims));
    const same = await startServer(['--auth-secret-file', file], { t });
    const c = await connect(same.url, { t });
    const p = await admitted(c, { id: 'a', room: 'cmd-room', token });
    assert.equal(p.nick, 'Cmd');
    const other = await startServer(['--auth-secret', OTHER], { t });
    const d = await connect(other.url, { t });
    await refused(d, { id: 'a', room: 'cmd-room', token }, 'bad signature');
  });

  test('the secret from the environment; default ttl one hour', async () => {
    const r = await runServer(['token', '--room', 'r'], { env: { SWITCHBOARD_AUTH_SECRET: SECRET } });
    assert.equal(r.code, 0, r.stderr);
    const claims = JSON.parse(Buffer.from(r.stdout.trim().split('.')[1], 'base64url'));
    assert.ok(Math.abs(claims.exp - now() - 3600) <= 2);
    assert.ok(!Object.hasOwn(claims, 'sub') && !Object.hasOwn(claims, 'name'));
  });

  test('refusals: no secret, a public key, no room, a bad ttl, an unknown option (exit 2)', async () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = writeFile('cmd.pem', publicKey.export({ type: 'spki', format: 'pem' }));
    for (const [args, why] of [
      [['token', '--room', 'r'], /no secret/],
      [['token', '--room', 'r', '--auth-public-key', pem], /cannot sign/],
      [['token', '--auth-secret', SECRET], /--room/],
      [['token', '--room', 'r', '--ttl', '0', '--auth-secret', SECRET], /--ttl/],
      [['token', '--room', 'r', '--port', '1', '--auth-secret', SECRET], /unknown option '--port'/],
    ]) {
      const r = await runServer(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, why);
      assert.equal(r.stdout, '');
      assert.ok(!r.stderr.includes(SECRET));
    }
  });

  test('--help, and the server\'s --help names it', async () => {
    const r = await runServer(['token', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^usage: switchboard token --room ROOM/);
    const h = await runServer(['--help']);
    assert.match(h.stdout, /^ +switchboard token .*room token/m);
  });
});

describe('in a cluster', () => {
  test('each node checks the token before the backplane; names cross nodes', async (t) => {
    const redis = await startRedis({ t });
    const file = writeFile('cluster-secret', SECRET);
    const nodes = [];
    for (let i = 0; i < 2; i++) {
      nodes.push(await startServer(['--redis', redis.url(), '--node-timeout', '2', '--auth-secret-file', file,
        '--ice-server', STUN], { t }));
    }
    for (const node of nodes) {
      await waitFor(async () => (await httpGet(node, '/healthz')).status === 200, T(10000), 'a node up');
    }
    const room = newRoom();
    const a = await connect(nodes[0].url, { t });
    await refused(a, { id: 'a', room }, 'a room token is required');
    const pa = await admitted(a, { id: 'a', room, token: hs256(SECRET, { room, exp: now() + 60, name: 'Alice' }) });
    assert.equal(pa.nick, 'Alice');
    assert.deepEqual(pa.iceServers, [{ urls: [STUN] }]);
    const b = await connect(nodes[1].url, { t });
    await refused(b, { id: 'b', room, token: hs256(OTHER, { room, exp: now() + 60 }) }, 'bad signature');
    await refused(b, { id: 'b', room, token: hs256(SECRET, { room, sub: 'a', exp: now() + 60 }) }, 'the token is for another id (sub)');
    const pb = await admitted(b, { id: 'b', room, token: hs256(SECRET, { room, sub: 'b', name: 'Bob', exp: now() + 60 }) });
    assert.equal(pb.nick, 'Bob');
    assert.deepEqual(pb.peers, [{ id: 'a', nick: 'Alice' }]);
    assert.deepEqual(pb.iceServers, [{ urls: [STUN] }]);
    assert.deepEqual((await a.next(isJoinOf('b'))).payload, { id: 'b', nick: 'Bob' });
    // id_taken across nodes counts as a refused join
    const c = await connect(nodes[0].url, { t });
    await expectError(c, { type: 'join', id: 'b', room, token: hs256(SECRET, { room, exp: now() + 60 }) }, 'id_taken', 'join');
    const m = await getMetrics(nodes[0]);
    assert.equal(m.get('switchboard_joins_refused_total', { reason: 'id_taken' }), 1);
    assert.equal(m.get('switchboard_joins_refused_total', { reason: 'unauthorized' }), 1);
  });
});

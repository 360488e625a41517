// web/switchboard-client.js's SignalingClient outside a browser (Node.js,
// with the `ws` package as its WebSocket), against the real server: events,
// sending, the backoff, reconnecting and rejoining with the same id,
// waiting out an old connection that still holds that id, a refused join
// and a refused upgrade. Room tokens and the server's ICE servers against
// a stand-in server that requires tokens (lib/tokenserver.mjs): the token
// in every join, a token function asked before each, `unauthorized`
// retried once with a fresh token and then refused, and the Mesh's
// RTCPeerConnection configuration (a fake RTCPeerConnection that records
// it).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import WebSocket from 'ws';
import { backoffDelay, Mesh, SignalingClient } from '../../web/switchboard-client.js';
import { isLeaveOf, joined } from './lib/client.mjs';
import { T, sleep, startServer, waitFor } from './lib/harness.mjs';
import { signToken, startTokenServer } from './lib/tokenserver.mjs';

function isReference() {
  return (process.env.SWITCHBOARD_BIN || '').includes('server.js');
}

// A client whose events are recorded in order: [type, detail].
function recorded(url, options) {
  const c = new SignalingClient(url, { WebSocket, ...options });
  c.log = [];
  for (const type of ['state', 'joined', 'peerjoined', 'peerleft', 'signal', 'message', 'error', 'refused',
    'disconnected']) {
    c.addEventListener(type, (e) => c.log.push([type, e.detail]));
  }
  c.seen = (type, pred = () => true) => c.log.filter(([t, d]) => t === type && pred(d));
  return c;
}

function until(c, type, pred, what) {
  return waitFor(() => c.seen(type, pred).at(-1)?.[1], T(10000), what || `${type} on ${c.id}`);
}

describe('backoffDelay', () => {
  test('grows by the factor up to the cap, spread by the jitter', () => {
    const opts = { minDelay: 100, maxDelay: 1000, factor: 2, jitter: 0.5 };
    assert.equal(backoffDelay(0, opts, () => 0.5), 100);
    assert.equal(backoffDelay(1, opts, () => 0.5), 200);
    assert.equal(backoffDelay(3, opts, () => 0.5), 800);
    assert.equal(backoffDelay(4, opts, () => 0.5), 1000);
    assert.equal(backoffDelay(50, opts, () => 0.5), 1000);
    assert.equal(backoffDelay(0, opts, () => 0), 50);
    assert.equal(backoffDelay(0, opts, () => 0.999999), 150);
    for (let i = 0; i < 1000; i++) {
      const d = backoffDelay(2, opts);
      assert.ok(d >= 200 && d <= 600, String(d));
    }
    assert.equal(backoffDelay(0, { minDelay: 100, jitter: 0 }, Math.random), 100);
  });
});

describe('SignalingClient', () => {
  test('joins, sees peers come and go, signals and messages in both directions', async (t) => {
    if (isReference()) return t.skip('one file is enough against the reference');
    const srv = await startServer([], { t });
    const other = await joined(srv.url, 'other', { t, room: 'lib', nick: 'O' });
    const c = recorded(srv.url, { room: 'lib', id: 'me', nick: 'Me' });
    t.after(() => c.close());
    c.connect();
    const j = await until(c, 'joined');
    assert.deepEqual(j, { id: 'me', nick: 'Me', room: 'lib', peers: [{ id: 'other', nick: 'O' }] });
    assert.deepEqual(c.seen('state').map(([, d]) => d.state), ['connecting', 'joining', 'joined']);
    assert.deepEqual([...c.peers.keys()], ['other']);

    assert.equal(c.signal('offer', { sdp: 'x' }, 'other'), true);
    assert.deepEqual((await other.next('offer')).payload, { sdp: 'x', id: 'me', nick: 'Me' });
    assert.equal(c.send({ text: 'hi' }), true);
    assert.deepEqual((await other.next('message')).payload, { text: 'hi', id: 'me', nick: 'Me' });
    other.send({ type: 'icecandidate', receiverId: 'me', payload: { candidate: 'c' } });
    assert.deepEqual(await until(c, 'signal'), { type: 'icecandidate', from: 'other', nick: 'O', payload: { candidate: 'c' } });
    other.send({ type: 'message', payload: { n: 1 } });
    assert.deepEqual(await until(c, 'message'), { from: 'other', nick: 'O', payload: { n: 1 } });
    assert.throws(() => c.signal('message', {}), TypeError);

    // a refusal is an error event; the connection goes on
    c.signal('answer', { sdp: 'y' }, 'nobody');
    assert.deepEqual(await until(c, 'error'), {
      code: 'peer_not_found', message: 'no other peer with that id in this room', ref: 'answer' });

    const third = await joined(srv.url, 'third', { t, room: 'lib' });
    await until(c, 'peerjoined', (d) => d.id === 'third');
    await third.close();
    assert.deepEqual(await until(c, 'peerleft', (d) => d.id === 'third'), { id: 'third', nick: '' });
    assert.deepEqual([...c.peers.keys()], ['other']);

    c.close();
    assert.equal(c.state, 'closed');
    assert.equal(c.send({ late: true }), false);
    assert.equal((await other.next(isLeaveOf('me'))).payload.id, 'me');
  });

  test('after the server restarts: reconnects with backoff and rejoins with the same id', async (t) => {
    if (isReference()) return t.skip('one file is enough against the reference');
    let srv = await startServer([], { t });
    const port = srv.port;
    const c = recorded(srv.url, { room: 'r', id: 'me', backoff: { minDelay: 50, maxDelay: 400 } });
    t.after(() => c.close());
    c.connect();
    await until(c, 'joined');
    const other = await joined(srv.url, 'other', { t, room: 'r' });
    await until(c, 'peerjoined', (d) => d.id === 'other');

    await srv.finish();
    await until(c, 'disconnected');
    const d = c.seen('disconnected')[0][1]; // later attempts are refused: 1006
    assert.equal(d.code, 1001);
    assert.equal(d.willReconnect, true);
    assert.equal(d.opened, true);
    // nobody will say who left meanwhile: the client forgets its peers
    assert.deepEqual(await until(c, 'peerleft', (x) => x.id === 'other'), { id: 'other', nick: '', disconnected: true });
    await waitFor(() => c.seen('disconnected').length >= 3, T(5000), 'a few refused attempts');
    assert.equal(c.state, 'reconnecting');
    assert.equal(c.peers.size, 0);
    await other.closed;

    srv = await startServer(['--port', String(port)], { t });
    const back = await joined(srv.url, 'other', { t, room: 'r' });
    const j = await waitFor(() => c.seen('joined').length === 2 && c.seen('joined')[1][1], T(10000), 'the rejoin');
    assert.equal(j.id, 'me');
    assert.equal(j.room, 'r');
    // other is in the roster when it joined first; else its join event is
    // on its way to c (sent when other joined, which may be after the
    // rejoin that is already seen here)
    if (!j.peers.some((p) => p.id === 'other')) {
      await waitFor(() => c.seen('peerjoined', (x) => x.id === 'other').length === 2, T(5000),
        'the join event of other after the rejoin');
    }
    assert.equal(c.state, 'joined');
    c.send({ again: true }, 'other');
    assert.deepEqual((await back.next('message')).payload, { again: true, id: 'me', nick: '' });
  });

  test('an old connection still holding the id: the rejoin waits until the server lets it go', async (t) => {
    if (isReference()) return t.skip('one file is enough against the reference');
    const srv = await startServer([], { t });
    const old = await joined(srv.url, 'me', { t, room: 'held' });
    const c = recorded(srv.url, { room: 'held', id: 'me', backoff: { minDelay: 50, maxDelay: 200 } });
    t.after(() => c.close());
    c.connect();
    await waitFor(() => c.idTakenRetries >= 2, T(5000), 'a couple of retries');
    assert.equal(c.state, 'joining');
    assert.equal(c.seen('error').length, 0, 'id_taken while retrying is not an error event');
    await old.close();
    const j = await until(c, 'joined');
    assert.equal(j.id, 'me');
  });

  test('a refused join: a refused event, no error event, and the client is closed', async (t) => {
    if (isReference()) return t.skip('one file is enough against the reference');
    const srv = await startServer(['--max-room-peers', '1'], { t });
    const first = await joined(srv.url, 'first', { t, room: 'small' });
    const c = recorded(srv.url, { room: 'small', id: 'me', backoff: { minDelay: 10, maxDelay: 20 } });
    t.after(() => c.close());
    c.connect();
    assert.deepEqual(await until(c, 'refused'), { code: 'room_full', message: 'the room is full' });
    assert.equal(c.state, 'closed');
    assert.deepEqual(c.seen('state').map(([, d]) => d.state), ['connecting', 'joining', 'closed']);
    assert.equal(c.seen('error').length, 0);
    // closed for good: no reconnecting, however short the backoff
    await sleep(200);
    assert.deepEqual(c.seen('state').map(([, d]) => d.state), ['connecting', 'joining', 'closed']);

    // connect() again once there is room: it joins
    await first.close();
    c.connect();
    assert.equal((await until(c, 'joined')).id, 'me');
  });

  test('id_taken that outlasts the retries: refused, and connect() retries afresh', async (t) => {
    if (isReference()) return t.skip('one file is enough against the reference');
    const srv = await startServer([], { t });
    const holder = await joined(srv.url, 'me', { t, room: 'held' });
    const c = recorded(srv.url, { room: 'held', id: 'me', joinRetries: 2, backoff: { minDelay: 10, maxDelay: 40 } });
    t.after(() => c.close());
    c.connect();
    const r = await until(c, 'refused');
    assert.equal(r.code, 'id_taken');
    assert.equal(c.idTakenRetries, 2);
    assert.equal(c.state, 'closed');
    assert.equal(c.seen('error').length, 0);

    c.connect();
    await waitFor(() => c.idTakenRetries >= 1 && c.state === 'joining', T(5000), 'retrying again');
    await holder.close();
    assert.equal((await until(c, 'joined')).id, 'me');
  });

  test('a refused upgrade (403, Origin not allowed): disconnected before it opened, and retried', async (t) => {
    if (isReference()) return t.skip('one file is enough against the reference');
    // the ws package sends no Origin: with an allow-list, that is a 403
    const srv = await startServer(['--allowed-origin', 'http://example.org'], { t });
    const c = recorded(srv.url, { backoff: { minDelay: 10, maxDelay: 40 } });
    t.after(() => c.close());
    c.connect();
    const d = await until(c, 'disconnected');
    assert.equal(d.opened, false);
    assert.equal(d.willReconnect, true);
    await waitFor(() => c.seen('disconnected').length >= 2, T(5000), 'a retry');
    assert.equal(c.seen('state', (x) => x.state === 'joining').length, 0);
    assert.equal(c.state, 'reconnecting');
  });

  test('without reconnect, a drop is final', async (t) => {
    if (isReference()) return t.skip('one file is enough against the reference');
    const srv = await startServer([], { t });
    const c = recorded(srv.url, { reconnect: false });
    c.connect();
    await until(c, 'joined');
    await srv.finish();
    assert.equal((await until(c, 'disconnected')).willReconnect, false);
    await waitFor(() => c.state === 'closed', T(2000), 'closed');
  });
});

// The states a client went through, in order.
function states(c) {
  return c.seen('state').map(([, d]) => d.state);
}

// Waits until the client has joined n times.
function nthJoined(c, n) {
  return waitFor(() => c.seen('joined').length >= n && c.seen('joined')[n - 1][1], T(10000), `join ${n} of ${c.id}`);
}

describe('SignalingClient with room tokens (a stand-in server that requires them)', () => {
  const FAST = { minDelay: 10, maxDelay: 40 };
  const BOUND = { timeout: T(30000) };

  test('a token string goes in every join, after a reconnect too; once expired, the rejoin is refused', BOUND, async (t) => {
    assert.throws(() => new SignalingClient('ws://x/', { WebSocket, token: 42 }), TypeError);
    const srv = await startTokenServer({ t });
    const token = srv.token({ room: 'r', sub: 'me' });
    const c = recorded(srv.url, { room: 'r', id: 'me', token, backoff: FAST });
    t.after(() => c.close());
    c.connect();
    await nthJoined(c, 1);
    assert.deepEqual(srv.joins.map((j) => [j.token, j.admitted]), [[token, true]]);

    srv.dropAll();
    await nthJoined(c, 2);
    assert.deepEqual(srv.joins.map((j) => [j.token, j.admitted]), [[token, true], [token, true]]);

    // two hours later the same string has expired: nothing fresh to ask
    // for, so the first unauthorized is final
    srv.advance(2 * 3600);
    srv.dropAll();
    assert.deepEqual(await until(c, 'refused'), { code: 'unauthorized', message: 'the token has expired' });
    assert.deepEqual(srv.joins.map((j) => [j.token, j.admitted]), [[token, true], [token, true], [token, false]]);
    assert.equal(c.state, 'closed');
    assert.equal(c.seen('error').length, 0);
    await sleep(200);
    assert.equal(srv.joins.length, 3, 'no retry');
  });

  test('a token function is asked before every join and its fresh token sent: first, each rejoin, hours later', BOUND, async (t) => {
    const srv = await startTokenServer({ t });
    const asked = [];
    const token = async (who) => {
      asked.push(who);
      await sleep(5); // as a request to the application's backend
      return srv.token({ room: who.room, sub: who.id, n: asked.length });
    };
    const c = recorded(srv.url, { room: 'r', id: 'me', nick: 'Me', token, backoff: FAST });
    t.after(() => c.close());
    c.connect();
    await nthJoined(c, 1);
    assert.deepEqual(asked, [{ id: 'me', room: 'r', nick: 'Me' }]);
    srv.dropAll();
    await nthJoined(c, 2);
    // two hours later: a token minted then, not the one of before
    srv.advance(2 * 3600);
    srv.dropAll();
    await nthJoined(c, 3);
    assert.equal(asked.length, 3);
    const claims = srv.joins.map((j) => JSON.parse(Buffer.from(j.token.split('.')[1], 'base64url')));
    assert.deepEqual(claims.map((x) => x.n), [1, 2, 3]);
    assert.deepEqual(srv.joins.map((j) => j.admitted), [true, true, true]);
    assert.ok(claims[2].exp > claims[0].exp + 3600, 'the third token was minted two hours later');
    assert.equal(c.seen('refused').length + c.seen('error').length, 0);
  });

  test('unauthorized with a token function: asked once more, and the join retried with the fresh token', BOUND, async (t) => {
    const srv = await startTokenServer({ t });
    let calls = 0;
    const token = () => {
      calls += 1;
      // the first has expired on its way (a token cached too long)
      return calls === 1 ? signToken('test secret', { room: 'r', exp: srv.now() - 3600 }) : srv.token({ room: 'r' });
    };
    const c = recorded(srv.url, { room: 'r', id: 'me', token });
    t.after(() => c.close());
    c.connect();
    await nthJoined(c, 1);
    assert.equal(calls, 2);
    assert.deepEqual(srv.joins.map((j) => j.admitted), [false, true]);
    assert.notEqual(srv.joins[0].token, srv.joins[1].token);
    assert.deepEqual(states(c), ['connecting', 'joining', 'joined']);
    assert.equal(c.seen('refused').length + c.seen('error').length, 0);
  });

  test('unauthorized again after the retry: refused, and no third try', BOUND, async (t) => {
    const srv = await startTokenServer({ t });
    let calls = 0;
    // a backend that mints for the wrong room: a fresh token will not help
    const token = async () => {
      calls += 1;
      return srv.token({ room: 'another' });
    };
    const c = recorded(srv.url, { room: 'r', id: 'me', token, backoff: FAST });
    t.after(() => c.close());
    c.connect();
    assert.deepEqual(await until(c, 'refused'), { code: 'unauthorized', message: 'the token is for another room' });
    assert.equal(c.state, 'closed');
    assert.deepEqual(states(c), ['connecting', 'joining', 'closed']);
    assert.equal(c.seen('error').length, 0);
    await sleep(300);
    assert.equal(calls, 2);
    assert.deepEqual(srv.joins.map((j) => j.admitted), [false, false]);

    // connect() starts afresh: one retry again
    c.connect();
    await waitFor(() => c.seen('refused').length === 2, T(10000), 'the second refusal');
    assert.equal(calls, 4);
  });

  test('without a token, or with a token string, unauthorized is refused at once', BOUND, async (t) => {
    const srv = await startTokenServer({ t });
    const none = recorded(srv.url, { room: 'r', id: 'none', backoff: FAST });
    const bad = recorded(srv.url, { room: 'r', id: 'bad', token: 'not.a.token', backoff: FAST });
    t.after(() => { none.close(); bad.close(); });
    none.connect();
    bad.connect();
    assert.deepEqual(await until(none, 'refused'), { code: 'unauthorized', message: 'a room token is required' });
    assert.equal((await until(bad, 'refused')).code, 'unauthorized');
    await sleep(200);
    const joins = srv.joins.map((j) => [j.id, 'token' in j]).sort();
    assert.deepEqual(joins, [['bad', true], ['none', false]], 'one join each, a token only where given');
    for (const c of [none, bad]) assert.equal(c.state, 'closed');
  });

  test('a token function that fails: an error event, a new connection after the backoff, and it is asked again', BOUND, async (t) => {
    const srv = await startTokenServer({ t });
    let calls = 0;
    const token = async () => {
      calls += 1;
      if (calls === 1) throw new Error('the backend is down');
      if (calls === 2) return undefined;
      return srv.token({ room: 'r' });
    };
    const c = recorded(srv.url, { room: 'r', id: 'me', token, backoff: FAST });
    t.after(() => c.close());
    c.connect();
    await nthJoined(c, 1);
    assert.equal(calls, 3);
    assert.deepEqual(c.seen('error').map(([, d]) => d), [
      { code: 'token_failed', message: 'the backend is down', ref: 'join' },
      { code: 'token_failed', message: 'the token function gave undefined, not a string', ref: 'join' },
    ]);
    const drops = c.seen('disconnected').map(([, d]) => d);
    assert.equal(drops.length, 2);
    for (const d of drops) assert.deepEqual([d.code, d.willReconnect, d.opened], [1000, true, true]);
    assert.deepEqual(srv.joins.map((j) => j.admitted), [true], 'no join without a token');
    assert.equal(c.seen('refused').length, 0);
  });

  test('a token that comes after its connection is gone is not sent: close(), or a drop and a new connection', BOUND, async (t) => {
    const srv = await startTokenServer({ t });
    let calls = 0;
    const token = async () => {
      calls += 1;
      if (calls === 1) await sleep(300);
      return srv.token({ room: 'r' });
    };
    const c = recorded(srv.url, { room: 'r', id: 'me', token, backoff: { minDelay: 10, maxDelay: 40 } });
    t.after(() => c.close());
    c.connect();
    // the connection drops while the first token is on its way; the next
    // one joins with its own, and the late first one goes nowhere
    await waitFor(() => calls === 1, T(5000), 'the token function');
    srv.dropAll();
    await nthJoined(c, 1);
    await sleep(500);
    assert.equal(calls, 2);
    assert.equal(srv.joins.length, 1);
    assert.equal(c.seen('error').length, 0);

    let asked = false;
    const slow = async () => {
      asked = true;
      await sleep(200);
      return srv.token({ room: 'r' });
    };
    const d = recorded(srv.url, { room: 'r', id: 'other', token: slow });
    t.after(() => d.close());
    d.connect();
    await waitFor(() => asked, T(5000), 'the token function');
    d.close();
    await sleep(400);
    assert.equal(srv.joins.length, 1);
    assert.equal(d.state, 'closed');
  });
});

// Enough of RTCPeerConnection for Mesh in Node.js: each records the
// configuration it was made with (and given later); nothing negotiates.
function fakePeerConnection() {
  return class FakePC {
    static made = [];

    constructor(config) {
      this.config = config;
      this.connectionState = 'new';
      this.restarts = 0;
      FakePC.made.push(this);
    }

    createDataChannel() {
      return { readyState: 'connecting', close() {} };
    }

    getConfiguration() {
      return this.config;
    }

    setConfiguration(config) {
      this.config = config;
    }

    restartIce() {
      this.restarts += 1;
    }

    addTrack() {}

    close() {
      this.connectionState = 'closed';
    }
  };
}

describe('Mesh with the server\'s ICE servers (a stand-in server that sends them)', () => {
  const PAGE_STUN = { urls: 'stun:stun.page.example' };
  const SERVER_STUN = { urls: ['stun:stun.example.org:3478'] };
  const turn = (n) => ({ urls: ['turn:turn.example.org:3478'], username: `${1800000000 + n}:me`, credential: `c${n}` });
  const BOUND = { timeout: T(30000) };

  test('the page\'s servers, then the server\'s, for each connection made after a join; fresh ones each rejoin', BOUND, async (t) => {
    const roster = [{ id: 'other', nick: 'O' }];
    const srv = await startTokenServer({ t, roster, iceServers: (join, n) => [SERVER_STUN, turn(n)] });
    const PC = fakePeerConnection();
    const token = () => srv.token({ room: 'r' });
    const c = recorded(srv.url, { room: 'r', id: 'me', token, backoff: { minDelay: 10, maxDelay: 40 } });
    const rtcConfig = { iceServers: [PAGE_STUN], iceTransportPolicy: 'relay' };
    const mesh = new Mesh(c, { rtcConfig, RTCPeerConnection: PC });
    t.after(() => { mesh.close(); c.close(); });
    c.connect();
    const j = await nthJoined(c, 1);
    assert.deepEqual(j.iceServers, [SERVER_STUN, turn(1)]);
    assert.deepEqual(c.iceServers, [SERVER_STUN, turn(1)]);
    assert.equal(PC.made.length, 1, 'a connection to the peer of the roster');
    assert.deepEqual(PC.made[0].config, { iceServers: [PAGE_STUN, SERVER_STUN, turn(1)], iceTransportPolicy: 'relay' });
    assert.deepEqual(rtcConfig, { iceServers: [PAGE_STUN], iceTransportPolicy: 'relay' }, 'the page\'s own left as it was');

    // a rejoin: the connection that never got connected is made anew,
    // with the credentials of this join
    srv.dropAll();
    await nthJoined(c, 2);
    assert.equal(PC.made.length, 2);
    assert.equal(PC.made[0].connectionState, 'closed');
    assert.deepEqual(PC.made[1].config.iceServers, [PAGE_STUN, SERVER_STUN, turn(2)]);

    // one that is connected is kept: it takes the new servers, then
    // restarts ICE
    PC.made[1].connectionState = 'connected';
    srv.dropAll();
    await nthJoined(c, 3);
    assert.equal(PC.made.length, 2);
    assert.equal(PC.made[1].restarts, 1);
    assert.deepEqual(PC.made[1].config, { iceServers: [PAGE_STUN, SERVER_STUN, turn(3)], iceTransportPolicy: 'relay' });

    // and a connection made later (an offer from a newcomer) has them too
    mesh.ensure('newcomer', 'N');
    assert.deepEqual(PC.made[2].config.iceServers, [PAGE_STUN, SERVER_STUN, turn(3)]);
  });

  test('no rtcConfig of the page\'s: the server\'s servers alone; none from the server either: the default', BOUND, async (t) => {
    const roster = [{ id: 'other', nick: 'O' }];
    const withIce = await startTokenServer({ t, roster, iceServers: [SERVER_STUN, turn(0)] });
    const without = await startTokenServer({ t, roster });
    const made = [];
    for (const srv of [withIce, without]) {
      const PC = fakePeerConnection();
      const c = recorded(srv.url, { room: 'r', id: 'me', token: srv.token({ room: 'r' }) });
      const mesh = new Mesh(c, { RTCPeerConnection: PC });
      t.after(() => { mesh.close(); c.close(); });
      c.connect();
      const j = await nthJoined(c, 1);
      made.push([j, c.iceServers, PC.made.map((pc) => pc.config)]);
    }
    assert.deepEqual(made[0][2], [{ iceServers: [SERVER_STUN, turn(0)] }]);
    assert.deepEqual(made[1][2], [{ iceServers: [{ urls: 'stun:stun.l.google.com:19302' }] }]);
    assert.equal('iceServers' in made[1][0], false, 'no iceServers in joined when the server sent none');
    assert.equal(made[1][1], null);
  });
});

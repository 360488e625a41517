// TURN end to end: the real server with room tokens and a TURN secret,
// Debian's coturn beside it on the loopback with the same secret
// (use-auth-secret, lib/coturn.mjs), and two Chromium pages that use
// web/switchboard-client.js as an application would: a token function
// (the application's backend, here the test) asked before every join, and
// a Mesh restricted to relayed candidates (iceTransportPolicy "relay")
// with nothing but the ICE servers from `joined`. The pages connect only
// through coturn: video decodes, the data channel carries text both ways,
// and after a dropped WebSocket the rejoin asks for a fresh token, brings
// fresh credentials and the pair connects through coturn again. With a
// TURN secret on switchboard's side that is not coturn's, coturn refuses
// the credentials (401) and the pages gather no candidate and do not
// connect. docs/protocol.md, "ICE servers and TURN credentials";
// docs/operations.md, "TURN with coturn".

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { closePages, framesDecoded, launch, meshState, openPage } from './lib/browser.mjs';
import { startCoturn } from './lib/coturn.mjs';
import { T, startServer, waitFor } from './lib/harness.mjs';
import { signToken } from './lib/tokenserver.mjs';

const TOKEN_SECRET = 'the application backend and switchboard share this';
const TURN_SECRET = 'switchboard and coturn share this one';
const TURN_TTL = 600;

function isReference() {
  return (process.env.SWITCHBOARD_BIN || '').includes('server.js');
}

// The secrets in files (the form docs/configuration.md prefers), removed
// when the test ends.
function secretFiles(t, secrets) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-turn-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const files = {};
  for (const [name, value] of Object.entries(secrets)) {
    files[name] = path.join(dir, name);
    writeFileSync(files[name], `${value}\n`, { mode: 0o600 });
  }
  return files;
}

// The server with tokens required and coturn as its only ICE server.
function startSwitchboard(t, coturn, turnSecret) {
  const files = secretFiles(t, { auth: TOKEN_SECRET, turn: turnSecret });
  return startServer(['--bind', '127.0.0.1', '--auth-secret-file', files.auth, '--ice-server', coturn.uri(),
    '--turn-secret-file', files.turn, '--turn-ttl', String(TURN_TTL)], { t, single: true });
}

// A page of the server's origin that joins `room` as the library's user
// would: its token function calls the test (exposeFunction), which signs
// a token for that id and room, as an application's backend does. What the
// page saw is in window.demo.seen: every `joined`, the types of the local
// candidates, the icecandidateerror events, the data channel's messages.
async function openCaller(browser, srv, room, nick) {
  const page = await openPage(browser, `http://127.0.0.1:${srv.port}/`);
  page.nick = nick;
  page.tokenRequests = [];
  await page.exposeFunction('mintToken', (who) => {
    page.tokenRequests.push(who);
    return signToken(TOKEN_SECRET, {
      room: who.room, sub: who.id, name: nick, exp: Math.floor(Date.now() / 1000) + 300,
    });
  });
  await page.evaluate(async ({ url, room: r, nick: n }) => {
    const { SignalingClient, Mesh } = await import('/switchboard-client.js');
    const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
    const seen = { joined: [], configs: [], candidates: [], errors: [], data: [] };
    class RecordingPeerConnection extends RTCPeerConnection {
      constructor(config) {
        super(config);
        seen.configs.push(config);
        this.addEventListener('icecandidate', (e) => { if (e.candidate) seen.candidates.push(e.candidate.type); });
        this.addEventListener('icecandidateerror', (e) => seen.errors.push({ code: e.errorCode, url: e.url }));
      }
    }
    const client = new SignalingClient(url, { room: r, nick: 'not this one', token: (who) => window.mintToken(who) });
    const mesh = new Mesh(client, {
      stream, rtcConfig: { iceTransportPolicy: 'relay' }, RTCPeerConnection: RecordingPeerConnection,
    });
    client.addEventListener('joined', (e) => seen.joined.push(e.detail));
    mesh.addEventListener('data', (e) => seen.data.push(e.detail.data));
    window.demo = { client, mesh, seen };
    client.connect();
  }, { url: srv.url, room, nick });
  return page;
}

const seen = (page) => page.evaluate(() => window.demo.seen);

// Waits until `page` is joined and connected, with an open data channel,
// to `other` alone.
async function connectedTo(page, other, what) {
  return waitFor(async () => {
    const m = await meshState(page);
    return m && m.state === 'joined' && m.peers.length === 1 && m.peers[0].nick === other.nick
      && m.peers[0].pc === 'connected' && m.peers[0].channel === 'open' ? m : false;
  }, T(30000), what || `${page.nick} connected to ${other.nick}`, 100);
}

// The candidate types of the pair each connection of `page` uses.
function selectedPairs(page) {
  return page.evaluate(async () => {
    const out = [];
    for (const p of window.demo.mesh.peers.values()) {
      const stats = await p.pc.getStats();
      let pairId = null;
      stats.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId; });
      const pair = pairId && stats.get(pairId);
      out.push(pair ? [stats.get(pair.localCandidateId).candidateType, stats.get(pair.remoteCandidateId).candidateType]
        : null);
    }
    return out;
  });
}

// The iceServers a `joined` for `id` must carry: coturn's URI with the TURN
// REST credentials, computed here on their own.
function checkIceServers(joined, coturn, turnSecret) {
  assert.equal(joined.iceServers.length, 1, JSON.stringify(joined.iceServers));
  const [entry] = joined.iceServers;
  assert.deepEqual(entry.urls, [coturn.uri()]);
  const m = /^(\d+):(.+)$/.exec(entry.username);
  assert.ok(m, entry.username);
  assert.equal(m[2], joined.id);
  const expiry = Number(m[1]) - Math.floor(Date.now() / 1000);
  assert.ok(expiry > TURN_TTL - 120 && expiry <= TURN_TTL + 1, `expires in ${expiry} s`);
  assert.equal(entry.credential, createHmac('sha1', turnSecret).update(entry.username).digest('base64'));
  return entry.username;
}

// The users coturn allocated a relay for, sorted, each once.
function allocatedUsers(coturn) {
  const users = new Set();
  for (const m of coturn.log().matchAll(/user <([^>]*)>: incoming packet ALLOCATE processed, success/g)) users.add(m[1]);
  return [...users].sort();
}

describe('TURN through coturn, with credentials from joined', { concurrency: false }, () => {
  let chrome;
  before(async () => {
    if (!isReference()) chrome = await launch();
  });
  after(() => chrome && chrome.close());

  test('relay-only pages connect through coturn: video, data channel, and again after a rejoin', {
    timeout: T(120000),
  }, async (t) => {
    if (isReference()) return t.skip('the reference is tested with these options elsewhere');
    const coturn = await startCoturn({ t, secret: TURN_SECRET });
    const srv = await startSwitchboard(t, coturn, TURN_SECRET);
    t.after(() => closePages(chrome.browser));

    const a = await openCaller(chrome.browser, srv, 'relayed', 'ann');
    await waitFor(async () => (await meshState(a))?.state === 'joined', T(10000), 'ann joined');
    const b = await openCaller(chrome.browser, srv, 'relayed', 'bob');
    await connectedTo(a, b);
    await connectedTo(b, a);

    // each page asked its backend once, for its own id and the room; the
    // token's name is the nick the others see
    const users = [];
    for (const p of [a, b]) {
      const s = await seen(p);
      assert.equal(s.joined.length, 1);
      const { id } = s.joined[0];
      assert.deepEqual(p.tokenRequests, [{ id, room: 'relayed', nick: 'not this one' }]);
      assert.equal(s.joined[0].nick, p.nick);
      users.push(checkIceServers(s.joined[0], coturn, TURN_SECRET));
      // the connection took the page's policy and the server's servers only
      assert.deepEqual(s.configs, [{ iceTransportPolicy: 'relay', iceServers: s.joined[0].iceServers }]);
    }

    // only relayed candidates, and the pair in use is coturn's on both ends
    for (const p of [a, b]) {
      const s = await seen(p);
      assert.ok(s.candidates.length > 0);
      assert.deepEqual([...new Set(s.candidates)], ['relay'], `${p.nick}'s candidates`);
      assert.deepEqual(s.errors, [], `${p.nick}: no ICE candidate errors`);
      assert.deepEqual(await selectedPairs(p), [['relay', 'relay']], `${p.nick}'s candidate pair`);
    }
    // coturn allocated relays for the pages' users and no other
    assert.deepEqual(allocatedUsers(coturn), users.slice().sort());

    // video decodes both ways, and the data channel carries text both ways
    for (const p of [a, b]) {
      await waitFor(async () => Object.values(await framesDecoded(p)).every((n) => n > 5), T(30000),
        `${p.nick} to decode video through the relay`, 250);
    }
    await a.evaluate(() => window.demo.mesh.broadcast('hello over the relay'));
    await b.evaluate(() => window.demo.mesh.broadcast('and back'));
    await waitFor(async () => (await seen(b)).data.includes('hello over the relay'), T(10000), 'bob to get the text');
    await waitFor(async () => (await seen(a)).data.includes('and back'), T(10000), 'ann to get the text');

    // ann's WebSocket drops: her client asks for a fresh token before it
    // joins again, gets fresh credentials, and the pair starts over
    // through coturn
    await a.evaluate(() => window.demo.client.ws.close(4000, 'test drop'));
    await waitFor(async () => (await seen(a)).joined.length === 2, T(15000), 'ann to rejoin');
    const s = await seen(a);
    assert.equal(s.joined[1].id, s.joined[0].id);
    assert.equal(a.tokenRequests.length, 2);
    assert.deepEqual(a.tokenRequests[1], a.tokenRequests[0]);
    checkIceServers(s.joined[1], coturn, TURN_SECRET);
    await connectedTo(a, b, 'ann connected to bob again');
    await connectedTo(b, a, 'bob connected to ann again');
    for (const p of [a, b]) {
      assert.deepEqual(await selectedPairs(p), [['relay', 'relay']], `${p.nick}'s candidate pair after the rejoin`);
    }
    // the new connections' allocations: ann's with her new credentials
    const every = [];
    for (const p of [a, b]) for (const j of (await seen(p)).joined) every.push(j.iceServers[0].username);
    assert.deepEqual(allocatedUsers(coturn), [...new Set(every)].sort());
    await a.evaluate(() => window.demo.mesh.broadcast('after the rejoin'));
    await waitFor(async () => (await seen(b)).data.includes('after the rejoin'), T(10000), 'bob to get the last text');
    for (const p of [a, b]) assert.deepEqual(p.errors.filter((x) => !/WebSocket/.test(x)), [], `${p.nick}: no errors`);
  });

  test('a TURN secret that is not coturn\'s: coturn answers 401, no candidate, no connection', {
    timeout: T(90000),
  }, async (t) => {
    if (isReference()) return t.skip('the reference is tested with these options elsewhere');
    const coturn = await startCoturn({ t, secret: TURN_SECRET });
    const srv = await startSwitchboard(t, coturn, 'not the secret coturn has');
    t.after(() => closePages(chrome.browser));

    const a = await openCaller(chrome.browser, srv, 'unrelayed', 'ann');
    await waitFor(async () => (await meshState(a))?.state === 'joined', T(10000), 'ann joined');
    const b = await openCaller(chrome.browser, srv, 'unrelayed', 'bob');
    // both have a connection to the other, and its gathering is over
    for (const p of [a, b]) {
      await waitFor(() => p.evaluate(() => {
        const peers = [...window.demo.mesh.peers.values()];
        return peers.length === 1 && peers[0].pc.iceGatheringState === 'complete';
      }), T(30000), `${p.nick}'s gathering to end`, 100);
    }
    for (const p of [a, b]) {
      const s = await seen(p);
      assert.deepEqual(s.candidates, [], `${p.nick}: no candidate`);
      assert.ok(s.errors.length > 0 && s.errors.every((e) => e.code === 401), `${p.nick}: ${JSON.stringify(s.errors)}`);
      const m = await meshState(p);
      assert.notEqual(m.peers[0].pc, 'connected');
      assert.notEqual(m.peers[0].channel, 'open');
      const user = s.joined[0].iceServers[0].username;
      assert.match(coturn.log(), new RegExp(`user <${user}>: incoming packet \\S+ processed, error 401`));
      assert.doesNotMatch(coturn.log(), new RegExp(`user <${user}>: incoming packet \\S+ processed, success`));
    }
  });
});

// The demo page and web/switchboard-client.js in real Chromium (headless,
// fake camera and microphone), against the real server: three pages in one
// room set up a full mesh of WebRTC connections through the server, chat
// over data channels and decode each other's video; a page that closes is
// seen leaving; a page in another room sees none of it; and after the
// server restarts the pages rejoin and signaling works again. The demo's
// first-run behaviour: a refused join or upgrade returns to the form with
// the reason, a page alone offers a link with the room to share, and the
// chat tells who joined and who left. On a server that requires room
// tokens (a stand-in, lib/tokenserver.mjs, which serves the page too, and
// then the server itself) the page asks for one, and joins with one from
// the link's fragment. One Chromium serves every test.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { closePages, framesDecoded, launch, meshState, openDemo, openPage } from './lib/browser.mjs';
import { T, startServer, waitFor } from './lib/harness.mjs';
import { signToken, startTokenServer } from './lib/tokenserver.mjs';

const WEB_ROOT = fileURLToPath(new URL('../../web', import.meta.url));

function isReference() {
  return (process.env.SWITCHBOARD_BIN || '').includes('server.js');
}

// Waits until `page` is joined and has a connected peer connection with an
// open data channel to exactly the pages `others`.
async function meshWith(page, others, what) {
  const want = others.map((p) => p.nick).sort();
  return waitFor(async () => {
    const m = await meshState(page);
    if (!m || m.state !== 'joined') return false;
    const ready = m.peers.filter((p) => p.pc === 'connected' && p.channel === 'open').map((p) => p.nick).sort();
    return JSON.stringify(ready) === JSON.stringify(want) && m.peers.length === want.length ? m : false;
  }, T(30000), what || `${page.nick} connected to ${want.join(', ') || 'nobody'}`, 100);
}

async function chatLines(page) {
  return page.$$eval('#chat-log li', (lis) => lis.map((li) => li.textContent));
}

// What the page shows about the form and the join: for a page back at the
// form, joinable again.
async function formState(page) {
  return {
    badge: await page.locator('#state').getAttribute('data-state'),
    join: await page.locator('#join').isEnabled(),
    leave: await page.locator('#leave').isVisible(),
    room: await page.locator('#room').isEnabled(),
    nick: await page.locator('#nick').isEnabled(),
  };
}
const AT_FORM = { badge: 'idle', join: true, leave: false, room: true, nick: true };

async function noticeText(page) {
  return (await page.locator('#notice').isVisible()) ? page.locator('#notice').textContent() : '';
}

describe('the demo in Chromium', { concurrency: false }, () => {
  let chrome;
  before(async () => {
    if (!isReference()) chrome = await launch();
  });
  after(() => chrome && chrome.close());
  test('three pages: full mesh, chat, video; one leaves; another room sees nothing; the server restarts', async (t) => {
    if (isReference()) return t.skip('the reference serves no demo page');
    let srv = await startServer(['--bind', '127.0.0.1'], { t });
    const origin = `http://127.0.0.1:${srv.port}`;
    t.after(() => closePages(chrome.browser));

    const [a, b, c] = [await openDemo(chrome.browser, origin, 'call', 'ann'),
      await openDemo(chrome.browser, origin, 'call', 'bob'),
      await openDemo(chrome.browser, origin, 'call', 'cid')];
    const other = await openDemo(chrome.browser, origin, 'elsewhere', 'eve');

    // a full mesh: each page connected to the other two
    await meshWith(a, [b, c]);
    await meshWith(b, [a, c]);
    await meshWith(c, [a, b]);
    for (const p of [a, b, c]) {
      assert.equal(await p.locator('#tiles .tile').count(), 3, `${p.nick}: its own tile and two others`);
    }

    // chat over the data channels
    await a.fill('#chat-input', 'hello from ann');
    await a.click('#chat-send');
    await c.fill('#chat-input', 'cid here');
    await c.press('#chat-input', 'Enter');
    for (const p of [b, c]) {
      await waitFor(async () => (await chatLines(p)).includes('ann: hello from ann'), T(10000), `${p.nick} to see ann's line`);
    }
    for (const p of [a, b]) {
      await waitFor(async () => (await chatLines(p)).includes('cid: cid here'), T(10000), `${p.nick} to see cid's line`);
    }

    // every page decodes video from both others
    for (const p of [a, b, c]) {
      await waitFor(async () => {
        const f = await framesDecoded(p);
        const counts = Object.values(f);
        return counts.length === 2 && counts.every((n) => n > 5) ? f : false;
      }, T(30000), `${p.nick} to decode video from both others`, 250);
    }
    // and the video elements play it
    const playing = await b.$$eval('#tiles .tile:not(.local) video', (vs) => vs.map((v) => v.videoWidth > 0 && !v.paused));
    assert.deepEqual(playing, [true, true]);

    // the page in the other room saw none of it, and nobody saw it
    const e = await meshState(other);
    assert.equal(e.state, 'joined');
    assert.deepEqual(e.roster, []);
    assert.deepEqual(e.peers, []);
    assert.deepEqual(await chatLines(other), []);
    for (const p of [a, b, c]) assert.ok(!(await meshState(p)).roster.includes(e.id));

    // cid closes its page: the others see it leave, and the mesh shrinks
    await c.context().close();
    await meshWith(a, [b], 'ann to see cid leave');
    await meshWith(b, [a], 'bob to see cid leave');
    for (const p of [a, b]) {
      await waitFor(async () => (await p.locator('#tiles .tile').count()) === 2, T(5000), `${p.nick}'s tile of cid to go`);
    }

    // the server restarts on the same port: the pages notice, retry, and
    // rejoin the same room with the same id
    const idsBefore = [(await meshState(a)).id, (await meshState(b)).id];
    const port = srv.port;
    await srv.finish();
    await waitFor(async () => (await meshState(a)).state === 'reconnecting', T(10000), 'ann to notice the server is gone');
    assert.equal(await a.locator('#state').getAttribute('data-state'), 'reconnecting');
    assert.match(await a.locator('#notice').textContent(), /unreachable/);
    srv = await startServer(['--bind', '127.0.0.1', '--port', String(port)], { t });
    for (const [p, id, peer] of [[a, idsBefore[0], idsBefore[1]], [b, idsBefore[1], idsBefore[0]]]) {
      await waitFor(async () => {
        const m = await meshState(p);
        return m.state === 'joined' && m.id === id && m.roster.includes(peer);
      }, T(30000), `${p.nick} to rejoin with its id and see the other`, 200);
    }
    // the call went on meanwhile, and signaling works again: a newcomer
    // sets up connections with both through the new server
    await meshWith(a, [b]);
    const d = await openDemo(chrome.browser, origin, 'call', 'dan');
    await meshWith(d, [a, b]);
    await meshWith(a, [b, d]);
    await meshWith(b, [a, d]);
    await d.fill('#chat-input', 'dan joined after the restart');
    await d.click('#chat-send');
    for (const p of [a, b]) {
      await waitFor(async () => (await chatLines(p)).includes('dan: dan joined after the restart'), T(10000),
        `${p.nick} to see dan's line`);
    }

    for (const p of [a, b, d, other]) {
      assert.deepEqual(p.errors.filter((x) => !/WebSocket|ERR_CONNECTION_REFUSED/.test(x)), [],
        `${p.nick}: no errors on the page`);
    }
  });

  test('without a camera, and with offers crossing: the page says why, still calls, and renegotiation settles', async (t) => {
    if (isReference()) return t.skip('the reference serves no demo page');
    const srv = await startServer(['--bind', '127.0.0.1'], { t });
    const origin = `http://127.0.0.1:${srv.port}`;
    t.after(() => closePages(chrome.browser));

    // a user who refuses the camera: getUserMedia fails as browsers fail it
    const denied = await chrome.browser.newContext();
    await denied.addInitScript(() => {
      navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));
    });
    const a = await openDemo(chrome.browser, origin, 'nocam', 'ann', { context: denied });
    const b = await openDemo(chrome.browser, origin, 'nocam', 'bob');
    await waitFor(async () => /denied/.test(await a.locator('#notice').textContent()), T(10000), 'the notice on the page');
    assert.equal(await a.locator('#notice').isVisible(), true);
    await meshWith(a, [b]);
    await meshWith(b, [a]);
    // the page without a camera still sees and hears the other
    await waitFor(async () => Object.values(await framesDecoded(a)).every((n) => n > 5), T(30000), 'ann to decode bob\'s video', 250);

    // both sides renegotiate at once (an ICE restart each), and the offers
    // cross: each page holds back what arrives until both have sent theirs.
    // The polite side yields, and both end stable and connected.
    const states = async (p) => p.evaluate(() => [...window.demo.mesh.peers.values()].map((x) => x.pc.signalingState));
    for (const p of [a, b]) {
      await p.evaluate(() => {
        const m = window.demo.mesh;
        m.held = [];
        m.enqueue = (signal) => m.held.push(signal);
      });
    }
    await Promise.all([a, b].map((p) => p.evaluate(() => {
      for (const x of window.demo.mesh.peers.values()) x.pc.restartIce();
    })));
    for (const p of [a, b]) {
      await waitFor(async () => (await states(p)).every((x) => x === 'have-local-offer'), T(10000), `${p.nick}'s offer out`);
    }
    await Promise.all([a, b].map((p) => p.evaluate(() => {
      const m = window.demo.mesh;
      delete m.enqueue; // the prototype's again
      for (const signal of m.held) m.enqueue(signal);
    })));
    for (const p of [a, b]) {
      await waitFor(async () => (await states(p)).every((x) => x === 'stable'), T(15000), `${p.nick} stable again`);
    }
    await meshWith(a, [b]);
    await meshWith(b, [a]);
    const crossed = await Promise.all([a, b].map((p) => p.evaluate(() => window.demo.mesh.collisions)));
    t.diagnostic(`offers that crossed: ann ${crossed[0]}, bob ${crossed[1]}`);
    assert.deepEqual(crossed, [1, 1], 'each side saw the other\'s offer cross its own');
    await b.fill('#chat-input', 'still here');
    await b.click('#chat-send');
    await waitFor(async () => (await chatLines(a)).includes('bob: still here'), T(10000), 'the chat after renegotiating');

    // ann's own WebSocket drops (the server is fine): bob gets her leave
    // and closes his end; ann reconnects, rejoins, and the two start over
    // until they are connected again
    const before = await a.evaluate(() => window.demo.client.attempt);
    await a.evaluate(() => window.demo.client.ws.close(4000, 'test drop'));
    await waitFor(async () => (await meshState(b)).peers.length === 0, T(10000), 'bob to close his end');
    await waitFor(async () => {
      const m = await meshState(a);
      return m.state === 'joined' && m.roster.length === 1;
    }, T(15000), 'ann to rejoin');
    assert.equal(await a.evaluate(() => window.demo.client.attempt), 0, `reconnected (attempts before: ${before})`);
    await meshWith(a, [b], 'ann connected to bob again');
    await meshWith(b, [a], 'bob connected to ann again');
    await a.fill('#chat-input', 'back again');
    await a.click('#chat-send');
    await waitFor(async () => (await chatLines(b)).includes('ann: back again'), T(10000), 'the chat after starting over');
  });

  test('alone in a room: waiting, with a link to share that has the room and not the nick; a full room refuses', async (t) => {
    if (isReference()) return t.skip('the reference serves no demo page');
    const srv = await startServer(['--bind', '127.0.0.1', '--max-room-peers', '1'], { t });
    const origin = `http://127.0.0.1:${srv.port}`;
    t.after(() => closePages(chrome.browser));
    const context = await chrome.browser.newContext({ permissions: ['clipboard-read', 'clipboard-write'] });
    const a = await openDemo(chrome.browser, origin, 'solo room', 'ann', { context });

    // ann is alone: the page says so, and offers the link to the room
    await waitFor(async () => (await meshState(a))?.state === 'joined', T(10000), 'ann joined');
    await waitFor(() => a.locator('#waiting').isVisible(), T(5000), 'the waiting message');
    assert.match(await a.locator('#waiting').textContent(), /Waiting for others/);
    const link = `${origin}/?room=solo%20room`;
    assert.equal(await a.locator('#share-link').getAttribute('href'), link);
    assert.equal(await a.locator('#share-link').textContent(), link);
    assert.equal(a.url(), link, 'the address bar holds the same link: no nick in it');
    await a.click('#copy-link');
    await waitFor(async () => (await a.locator('#copy-link').textContent()) === 'Copied', T(5000), 'the copy');
    assert.equal(await a.evaluate(() => navigator.clipboard.readText()), link);

    // the link opens the form with the room filled in; it does not join
    const b = await openPage(chrome.browser, link);
    assert.equal(await b.locator('#room').inputValue(), 'solo room');
    assert.equal(await b.locator('#nick').inputValue(), '');
    assert.deepEqual(await formState(b), AT_FORM);
    assert.equal(await b.evaluate(() => window.demo === undefined), true, 'not joined');

    // bob joins from it, and the full room refuses: the form is back, with
    // the server's reason and code
    await b.fill('#nick', 'bob');
    await b.click('#join');
    await waitFor(async () => /room_full/.test(await noticeText(b)), T(10000), 'the refusal on bob\'s page');
    assert.equal(await noticeText(b), 'The server refused to let you into room "solo room": the room is full (room_full).');
    assert.deepEqual(await formState(b), AT_FORM);
    assert.equal(await b.locator('#waiting').isVisible(), false);
    assert.equal(await b.locator('#tiles .tile').count(), 0);
    assert.equal((await meshState(a)).roster.length, 0, 'ann saw nobody');

    // once ann has left, the same form joins, and bob is the one waiting
    await a.click('#leave');
    assert.deepEqual(await formState(a), AT_FORM);
    assert.equal(await a.locator('#waiting').isVisible(), false);
    await b.click('#join');
    await waitFor(async () => (await meshState(b))?.state === 'joined', T(10000), 'bob joined');
    await waitFor(() => b.locator('#waiting').isVisible(), T(5000), 'bob waiting');
    assert.equal(await noticeText(b), '');
    assert.equal(await b.locator('#share-link').getAttribute('href'), link);
  });

  test('join and leave notices in the chat; the waiting message goes and comes back', async (t) => {
    if (isReference()) return t.skip('the reference serves no demo page');
    const srv = await startServer(['--bind', '127.0.0.1'], { t });
    const origin = `http://127.0.0.1:${srv.port}`;
    t.after(() => closePages(chrome.browser));
    const a = await openDemo(chrome.browser, origin, 'notices', 'ann');
    await waitFor(() => a.locator('#waiting').isVisible(), T(10000), 'ann waiting');
    const b = await openDemo(chrome.browser, origin, 'notices', 'bob');
    await waitFor(async () => (await chatLines(a)).includes('bob joined'), T(10000), 'ann to see bob join');
    await waitFor(async () => !(await a.locator('#waiting').isVisible()), T(5000), 'ann no longer waiting');
    assert.equal(await b.locator('#waiting').isVisible(), false, 'bob found ann there');
    assert.equal(await a.locator('#chat-log li.system').count(), 1);
    assert.deepEqual(await chatLines(b), [], 'who was there already is not news');

    await b.click('#leave');
    await waitFor(async () => (await chatLines(a)).includes('bob left'), T(10000), 'ann to see bob leave');
    assert.deepEqual(await chatLines(a), ['bob joined', 'bob left']);
    await waitFor(() => a.locator('#waiting').isVisible(), T(5000), 'ann waiting again');
  });

  test('a refused upgrade (Origin not allowed): the page says so and returns to the form', async (t) => {
    if (isReference()) return t.skip('the reference serves no demo page');
    const srv = await startServer(['--bind', '127.0.0.1', '--allowed-origin', 'http://example.org'], { t });
    const origin = `http://127.0.0.1:${srv.port}`;
    t.after(() => closePages(chrome.browser));
    const a = await openDemo(chrome.browser, origin, 'anywhere', 'ann');
    await waitFor(async () => /refused the connection or is unreachable/.test(await noticeText(a)), T(10000),
      'the notice');
    assert.deepEqual(await formState(a), AT_FORM);
    assert.equal(await a.locator('#room').inputValue(), 'anywhere');
    assert.equal(await a.locator('#waiting').isVisible(), false);
  });

  test('a server that requires room tokens: the page asks for one; #token= in the link joins; no link shows it', {
    timeout: T(90000),
  }, async (t) => {
    if (isReference()) return t.skip('the reference serves no demo page');
    const stun = [{ urls: ['stun:127.0.0.1:3478'] }];
    const srv = await startTokenServer({ t, webRoot: WEB_ROOT, iceServers: stun });
    const { origin } = srv;
    const link = `${origin}/?room=guarded`;
    t.after(() => closePages(chrome.browser));
    const invited = 'This server admits only invited peers: paste the token your application gave you.';

    // no token: the field is not there until the server asks for one
    const a = await openPage(chrome.browser, link);
    assert.equal(await a.locator('#token').isVisible(), false);
    await a.fill('#nick', 'ann');
    await a.click('#join');
    await waitFor(async () => (await noticeText(a)) === invited, T(10000), 'the page to ask for a token');
    assert.deepEqual(await formState(a), AT_FORM);
    assert.equal(await a.locator('#token').isVisible(), true);
    assert.equal(await a.locator('#token').isEnabled(), true);
    assert.equal(await a.evaluate(() => document.activeElement.id), 'token');
    assert.deepEqual(srv.joins.map((j) => [j.nick, 'token' in j, j.admitted]), [['ann', false, false]]);

    // a token for another room: the server's reason
    await a.fill('#token', srv.token({ room: 'elsewhere' }));
    await a.click('#join');
    await waitFor(async () => /another room/.test(await noticeText(a)), T(10000), 'the second refusal');
    assert.equal(await noticeText(a), `${invited} The server did not accept this one: the token is for another room.`);
    assert.deepEqual(await formState(a), AT_FORM);

    // the token pasted: in
    const tokenA = srv.token({ room: 'guarded' });
    await a.fill('#token', tokenA);
    await a.click('#join');
    await waitFor(async () => (await meshState(a))?.state === 'joined', T(10000), 'ann joined');
    assert.equal(await noticeText(a), '');
    assert.equal(await a.locator('#token').isEnabled(), false);
    const lastJoin = () => {
      const { id, ...rest } = srv.joins.at(-1);
      return rest;
    };
    assert.deepEqual(lastJoin(), { type: 'join', nick: 'ann', room: 'guarded', token: tokenA, admitted: true });
    await waitFor(() => a.locator('#waiting').isVisible(), T(5000), 'ann waiting');
    assert.equal(await a.locator('#share-link').getAttribute('href'), link);
    assert.equal(a.url(), link);
    // and the server's ICE servers are the mesh's
    assert.deepEqual(await a.evaluate(() => window.demo.mesh.configuration()), { iceServers: stun });

    // a link with the token in its fragment joins at once; the address bar
    // and the link to share are without it
    const tokenB = srv.token({ room: 'guarded' });
    const b = await openPage(chrome.browser, `${link}&nick=bob#token=${tokenB}`);
    await waitFor(async () => (await meshState(b))?.state === 'joined', T(10000), 'bob joined');
    assert.deepEqual(lastJoin(), { type: 'join', nick: 'bob', room: 'guarded', token: tokenB, admitted: true });
    await waitFor(() => b.locator('#waiting').isVisible(), T(5000), 'bob waiting');
    assert.equal(await b.locator('#share-link').getAttribute('href'), link);
    assert.equal(b.url(), link);

    // without the nick: the form, with the token filled in, and the address
    // bar already without it
    const tokenC = srv.token({ room: 'guarded' });
    const c = await openPage(chrome.browser, `${link}#token=${tokenC}`);
    assert.equal(await c.locator('#token').inputValue(), tokenC);
    assert.equal(await c.locator('#token').isVisible(), true);
    assert.equal(c.url(), link);
    assert.equal(await c.evaluate(() => window.demo === undefined), true, 'not joined');
    await c.fill('#nick', 'cid');
    await c.click('#join');
    await waitFor(async () => (await meshState(c))?.state === 'joined', T(10000), 'cid joined');
    assert.equal(srv.joins.at(-1).token, tokenC);

    // no token ever went to the server in a request's path or query
    assert.ok(srv.requests.length >= 3, JSON.stringify(srv.requests));
    for (const tok of [tokenA, tokenB, tokenC]) {
      assert.deepEqual(srv.requests.filter((r) => r.includes(tok.split('.')[2])), []);
    }
    for (const p of [a, b, c]) assert.deepEqual(p.errors, [], 'no errors on the page');
  });

  test('the same against the server itself with --auth-secret-file and --ice-server', { timeout: T(60000) }, async (t) => {
    if (isReference()) return t.skip('the reference serves no demo page');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-demo-token-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const secret = 'a secret of the application and the server, long enough';
    writeFileSync(path.join(dir, 'token.key'), `${secret}\n`, { mode: 0o600 });
    const srv = await startServer(['--bind', '127.0.0.1', '--auth-secret-file', path.join(dir, 'token.key'),
      '--ice-server', 'stun:127.0.0.1:3478'], { t, single: true });
    const origin = `http://127.0.0.1:${srv.port}`;
    const link = `${origin}/?room=guarded`;
    t.after(() => closePages(chrome.browser));
    const exp = () => Math.floor(Date.now() / 1000) + 300;

    // no token: the server's unauthorized, and the page asks for one
    const a = await openPage(chrome.browser, `${link}&nick=ann`);
    await waitFor(async () => /invited peers/.test(await noticeText(a)), T(10000), 'the page to ask for a token');
    assert.equal(await noticeText(a),
      'This server admits only invited peers: paste the token your application gave you.');
    assert.deepEqual(await formState(a), AT_FORM);
    assert.equal(await a.locator('#token').isVisible(), true);
    // one for another room: the server's own reason
    await a.fill('#token', signToken(secret, { room: 'elsewhere', exp: exp() }));
    await a.click('#join');
    await waitFor(async () => /another room/.test(await noticeText(a)), T(10000), 'the second refusal');
    // a good one, with a name claim: in, under that name
    await a.fill('#token', signToken(secret, { room: 'guarded', name: 'Ann A.', exp: exp() }));
    await a.click('#join');
    await waitFor(async () => (await meshState(a))?.state === 'joined', T(10000), 'ann joined');
    assert.deepEqual(await a.evaluate(() => window.demo.mesh.configuration()),
      { iceServers: [{ urls: ['stun:127.0.0.1:3478'] }] });

    // a link with the token in its fragment joins at once, and the two meet
    const b = await openPage(chrome.browser,
      `${link}&nick=bob#token=${signToken(secret, { room: 'guarded', exp: exp() })}`);
    b.nick = 'bob';
    await waitFor(async () => (await chatLines(a)).includes('bob joined'), T(10000), 'ann to see bob join');
    assert.equal(b.url(), link);
    await waitFor(async () => (await chatLines(b)).length === 0 && (await meshState(b)).roster.length === 1,
      T(10000), 'bob to see ann');
    assert.equal(await b.evaluate(() => [...window.demo.client.peers.values()][0].nick), 'Ann A.');
    for (const p of [a, b]) assert.deepEqual(p.errors, [], 'no errors on the page');
  });
});

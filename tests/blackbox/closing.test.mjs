// How connections end: a failed connection does not linger after its close
// frame; a message begun must be finished in time; a drain during heavy
// relaying loses nothing and closes everyone with 1001; the server refuses
// to run when libwebsockets does not read through the frame guard.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isJoinOf, joined } from './lib/client.mjs';
import { T, sleep, startServer, withTimeout } from './lib/harness.mjs';
import { waitForMetrics } from './lib/metrics.mjs';
import { OP, closePayload, encodeFrame, rawConnect } from './lib/rawws.mjs';

describe('a failed connection ends without waiting for the client', { concurrency: true }, () => {
  // RFC 6455 7.1.7: after a protocol fault the server sends its close frame
  // and ends the TCP connection at most 1 s later (docs/protocol.md), where
  // a normal close waits up to 5 s for the client's close frame.  The
  // client here never answers; the bound allows 2 s of slack over the 1 s
  // (the server's timer does not stretch with SB_TEST_SCALE: it is part of
  // the protocol) and stays clear of the 5 s a waiting server would take.
  const LINGER_BOUND = 3000;
  const cases = [
    ['an unmasked frame', 1002, [], (a) => a.sendFrame({ mask: false, payload: '{"type":"ping"}' })],
    ['a binary frame', 1003, [], (a) => a.sendFrame({ opcode: OP.BINARY, payload: Buffer.from([1, 2, 3]) })],
    ['invalid UTF-8', 1007, [], (a) => a.sendFrame({ payload: Buffer.from([0x22, 0xff, 0x22]) })],
    ['a message over --max-message', 1009, ['--max-message', '1024'],
      (a) => a.sendFrame({ payload: JSON.stringify({ type: 'ping', x: 'y'.repeat(2000) }) })],
  ];
  for (const [what, code, args, fault] of cases) {
    test(`${what}: close ${code}, then the TCP connection ends`, async (t) => {
      const srv = await startServer(args, { t });
      const b = await joined(srv.url, 'b', { t, room: 'fail' });
      const a = await rawConnect(srv, { t, name: 'a', echoClose: false });
      await a.join('a', { room: 'fail' });
      await b.next(isJoinOf('a'));
      fault(a);
      const info = await a.waitCloseFrame(T(5000));
      assert.equal(info.code, code, JSON.stringify(info));
      const framed = Date.now();
      await a.waitClosed(T(10000));
      const linger = Date.now() - framed;
      assert.ok(linger < LINGER_BOUND,
        `the TCP connection ended ${linger} ms after the close frame (at most 1000 ms + slack)`);
      await b.next((m) => m.type === 'leave' && m.payload.id === 'a');
    });
  }

  // A client that closes right after the fault, in the same write (say
  // ws.send(binary); ws.close()): its close frame reaches lws before the
  // server's close is sent.  The answer it gets carries the server's code,
  // whether the close frame came in the same read or from the read-ahead.
  for (const pad of [0, 3000]) {
    test(`a close frame right behind the fault (${pad} bytes before it) gets the server's code`, async (t) => {
      const srv = await startServer([], { t });
      const a = await rawConnect(srv, { t, name: 'a', echoClose: false });
      const frames = [];
      if (pad) frames.push(encodeFrame({ payload: JSON.stringify({ type: 'ping', pad: 'x'.repeat(pad) }) }));
      frames.push(encodeFrame({ opcode: OP.BINARY, payload: Buffer.from([1, 2, 3]) }));
      frames.push(encodeFrame({ opcode: OP.CLOSE, payload: closePayload(1000) }));
      a.write(Buffer.concat(frames));
      const info = await a.waitClosed(T(5000));
      assert.deepEqual([info.closeFrame, info.code], [true, 1003], JSON.stringify(info));
    });
  }

  test('a client that answers the close frame is let go at once as well', async (t) => {
    const srv = await startServer([], { t });
    const a = await rawConnect(srv, { t, name: 'a' });
    a.sendFrame({ mask: false, payload: '{"type":"ping"}' });
    const info = await a.waitClosed(T(5000));
    assert.equal(info.code, 1002);
  });
});

describe('a message begun must be finished within a heartbeat interval', { concurrency: true }, () => {
  // --heartbeat 1: stretched by SB_TEST_SCALE in the server and in T().
  const HB = ['--heartbeat', '1'];

  test('a frame trickled in byte by byte: closed with 1008 (cause "limit")', async (t) => {
    const srv = await startServer(HB, { t });
    const b = await joined(srv.url, 'b', { t, room: 'slow' });
    const a = await rawConnect(srv, { t, name: 'a' });
    await a.join('a', { room: 'slow' });
    await b.next(isJoinOf('a'));
    // a frame of 500 bytes, of which a byte goes out every 100 ms: each
    // byte is life for the heartbeat, but the frame would take 50 s
    const frame = encodeFrame({ payload: JSON.stringify({ type: 'ping', x: 'z'.repeat(470) }) });
    let sent = 0;
    const closed = a.waitCloseFrame(T(20000));
    let done = false;
    closed.then(() => { done = true; }, () => { done = true; });
    while (!done && sent < frame.length - 1) {
      a.write(frame.subarray(sent, sent + 1));
      sent += 1;
      await sleep(100);
    }
    const info = await closed;
    assert.equal(info.code, 1008, JSON.stringify(info));
    assert.ok(sent < frame.length - 1, 'the frame was never finished');
    assert.deepEqual(await b.next((m) => m.type === 'leave'), { type: 'leave', payload: { id: 'a', nick: '' } });
    const m = await waitForMetrics(srv, (x) => x.get('switchboard_closes_total', { cause: 'limit' }) === 1,
      'closes_total{cause="limit"} 1');
    assert.equal(m.get('switchboard_closes_total', { cause: 'heartbeat' }), 0);
  });

  test('a fragmented message whose fragments never end: closed with 1008', async (t) => {
    const srv = await startServer(HB, { t });
    const a = await rawConnect(srv, { t, name: 'a' });
    const closed = a.waitCloseFrame(T(20000));
    let done = false;
    closed.then(() => { done = true; }, () => { done = true; });
    a.sendFrame({ fin: false, payload: '{"type":"ping","x":"' });
    for (let i = 0; !done && i < 400; i++) {
      a.sendFrame({ fin: false, opcode: OP.CONT, payload: 'a' });
      await sleep(100);
    }
    assert.equal((await closed).code, 1008);
  });

  test('messages sent slowly, each one whole, keep the connection', async (t) => {
    const srv = await startServer(HB, { t });
    const a = await rawConnect(srv, { t, name: 'a', autoPong: false });
    const end = Date.now() + T(4500);
    while (Date.now() < end) {
      // each message in two halves, 100 ms apart: finished well in time
      const frame = encodeFrame({ payload: '{"type":"ping"}' });
      a.write(frame.subarray(0, 5));
      await sleep(100);
      a.write(frame.subarray(5));
      await a.next('pong', T(2000));
      await sleep(150);
    }
    assert.equal(a.isOpen, true);
  });
});

// The access lines of the server's log, by id: {in, out, cause}.
function accessLines(stderr) {
  const byId = new Map();
  for (const m of stderr.matchAll(/connection closed: .*? id="([^"]*)" duration_ms=\d+ in=(\d+) out=(\d+) cause=(\w+)/g)) {
    byId.set(m[1], { in: Number(m[2]), out: Number(m[3]), cause: m[4] });
  }
  return byId;
}

test('SIGTERM while pairs relay at window 64: every message counted as sent arrives, everyone gets 1001',
  { timeout: T(120000) }, async (t) => {
    const PAIRS = 40;
    const WINDOW = 64;
    const srv = await startServer(['--workers', '2', '--drain-timeout', '10'], { t });
    const clients = [];
    for (let p = 0; p < PAIRS; p++) {
      for (const side of ['a', 'b']) {
        const id = `${side}${p}`;
        const c = await rawConnect(srv, { t, name: id });
        c.received = 0;
        c.onMessage(() => { c.received += 1; });
        await c.join(id, { room: `pair${p}` });
        clients.push(c);
      }
    }
    // each side sends its partner WINDOW messages, waits for the partner's
    // WINDOW, and so on, in one write per window (a burst the server reads
    // ahead of lws)
    const body = 'q'.repeat(60);
    let stopping = false;
    const loops = clients.map(async (c, k) => {
      const peer = clients[k ^ 1].name;
      let round = 0;
      while (!stopping && c.isOpen) {
        const frames = [];
        for (let i = 0; i < WINDOW; i++) {
          frames.push(encodeFrame({ payload: JSON.stringify({ type: 'message', receiverId: peer, payload: { r: round, i, body } }) }));
        }
        c.write(Buffer.concat(frames));
        round += 1;
        try {
          await c.next((m) => m.type === 'message' && m.payload.r === round - 1 && m.payload.i === WINDOW - 1, T(20000));
        } catch {
          return;	// closed meanwhile
        }
      }
    });
    await sleep(T(1500));
    srv.stop('SIGTERM');
    stopping = true;
    const infos = await withTimeout(Promise.all(clients.map((c) => c.closed)), T(60000), 'every connection to end');
    await Promise.all(loops);
    const exit = await withTimeout(srv.exited, T(30000), 'the server to exit');
    assert.deepEqual(exit, { code: 0, signal: null });
    const lines = accessLines(srv.stderr());
    let relayed = 0;
    for (const [k, c] of clients.entries()) {
      assert.deepEqual(infos[k], { code: 1001, reason: infos[k].reason, closeFrame: true }, `${c.name}: ${JSON.stringify(infos[k])}`);
      const line = lines.get(c.name);
      assert.ok(line, `no access line for ${c.name}`);
      assert.equal(line.cause, 'shutdown', c.name);
      // the server says how many messages it wrote to the client: every
      // one of them arrived (join, joined and relays alike)
      assert.equal(c.received, line.out, `${c.name} received ${c.received} of the ${line.out} the server wrote`);
      relayed += c.received;
    }
    t.diagnostic(`${relayed} messages arrived before the drain closed ${clients.length} connections`);
  });

test('a burst in flight when 1001 arrives: the client\'s close frame behind it is still read', async (t) => {
  // The client had 64 messages under way when the server's close frame
  // reached it, and answers after them, all in one write: more than lws
  // takes in one read, so the rest, close frame included, waits in the
  // read-ahead.  The server must go on feeding lws from there to see the
  // answer and end the TCP connection then; one that dropped the
  // read-ahead when the close began would wait out its 5 s close timeout
  // instead.  The bound leaves 2 s of slack for a slow build.
  const srv = await startServer(['--drain-timeout', '30'], { t });
  const a = await rawConnect(srv, { t, name: 'a', echoClose: false });
  await a.join('a', { room: 'burst' });
  const frames = [];
  for (let i = 0; i < 64; i++) frames.push(encodeFrame({ payload: JSON.stringify({ type: 'ping', i, pad: 'p'.repeat(40) }) }));
  srv.stop('SIGTERM');
  const info = await a.waitCloseFrame(T(10000));
  assert.equal(info.code, 1001, JSON.stringify(info));
  frames.push(encodeFrame({ opcode: OP.CLOSE, payload: closePayload(1001) }));
  a.write(Buffer.concat(frames));
  const answered = Date.now();
  await a.waitClosed(T(15000));
  const took = Date.now() - answered;
  assert.ok(took < 2000, `the TCP connection ended ${took} ms after the client answered the close frame`);
  assert.deepEqual(await withTimeout(srv.exited, T(15000), 'the server to exit'), { code: 0, signal: null });
});

test('the server will not run when libwebsockets reads without the frame guard', async () => {
  // SB_TEST_SKIP_GUARD adopts sockets without attaching their guard: the
  // first upgrade finds that the guard never saw its request
  const srv = await startServer([], { env: { SB_TEST_SKIP_GUARD: '1' } });
  await rawConnect(srv, { name: 'a' }).catch(() => {});
  const exit = await withTimeout(srv.exited, T(10000), 'the server to exit');
  assert.deepEqual(exit, { code: 70, signal: null });
  assert.match(srv.stderr(), /the frame guard was not reached/);
});

// RFC 6455 faults and framing, with a raw client: invalid UTF-8 (1007),
// protocol violations (1002), fragmentation, control frames, pipelining.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { isJoinOf, isLeaveOf, joined } from './lib/client.mjs';
import { T, sleep, startServer, waitFor } from './lib/harness.mjs';
import { OP, closePayload, encodeFrame, rawConnect } from './lib/rawws.mjs';

let srv;
let rooms = 0;
const newRoom = () => `ws-${++rooms}`;

// A fresh server for each group of tests, so that a crash in one group
// does not fail the others.
function freshServer() {
  before(async () => { srv = await startServer(); });
  after(() => srv && srv.finish());
}

// A raw client `a` joined in a room with a well-behaved observer `b`.
async function rawPair(t) {
  const room = newRoom();
  const b = await joined(srv.url, 'b', { t, room });
  const a = await rawConnect(srv, { t, name: 'a' });
  await a.join('a', { room, nick: 'raw' });
  await b.next(isJoinOf('a'));
  return { a, b, room };
}

async function expectClose(a, code) {
  const info = await a.waitCloseFrame();
  assert.equal(info.code, code, `close: ${JSON.stringify(info)}`);
}

async function oneLeave(b, id) {
  assert.deepEqual(await b.next(isLeaveOf(id)), { type: 'leave', payload: { id, nick: 'raw' } });
  await b.expectSilence(T(300), isLeaveOf(id), `second leave for ${id}`);
  await b.ping();
}

const ping = (extra) => Buffer.concat([Buffer.from('{"type":"ping","x":"'), Buffer.from(extra), Buffer.from('"}')]);

describe('invalid UTF-8 in a text message -> 1007', () => {
  freshServer();

  const cases = [
    ['a lone continuation byte', [0x80]],
    ['a bad second byte', [0xc3, 0x28]],
    ['an overlong encoding', [0xc0, 0xaf]],
    ['an encoded surrogate', [0xed, 0xa0, 0x80]],
    ['a code point over U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
    ['a 0xFF byte', [0xff]],
    ['a truncated sequence', [0xe6, 0x97]],
  ];
  for (const [what, bytes] of cases) {
    test(`${what}: close 1007, the others get one leave`, async (t) => {
      const { a, b } = await rawPair(t);
      a.sendFrame({ payload: ping(bytes) });
      await expectClose(a, 1007);
      a.assertNone('pong');
      await oneLeave(b, 'a');
    });
  }

  test('a message ending inside a character: close 1007', async (t) => {
    const a = await rawConnect(srv, { t });
    a.sendFrame({ payload: Buffer.from([0x7b, 0x7d, 0xe2, 0x82]) });
    await expectClose(a, 1007);
  });

  test('invalid UTF-8 spread over fragments: close 1007', async (t) => {
    const { a, b } = await rawPair(t);
    a.sendFrame({ fin: false, opcode: OP.TEXT, payload: Buffer.from([...Buffer.from('{"type":"ping","x":"'), 0xc3]) });
    a.sendFrame({ fin: true, opcode: OP.CONT, payload: Buffer.from([0x28, 0x22, 0x7d]) });
    await expectClose(a, 1007);
    await oneLeave(b, 'a');
  });

  test('a valid character split between fragments is fine', async (t) => {
    const { a, b } = await rawPair(t);
    const text = Buffer.from('{"type":"message","payload":{"s":"é😀"}}');
    const cut1 = text.indexOf(0xc3) + 1; // inside é
    const cut2 = text.indexOf(0xf0) + 2; // inside the emoji
    a.sendFrame({ fin: false, opcode: OP.TEXT, payload: text.subarray(0, cut1) });
    a.sendFrame({ fin: false, opcode: OP.CONT, payload: text.subarray(cut1, cut2) });
    a.sendFrame({ fin: true, opcode: OP.CONT, payload: text.subarray(cut2) });
    assert.deepEqual(await b.next(), { type: 'message', payload: { s: 'é😀', id: 'a', nick: 'raw' } });
  });
});

describe('protocol violations -> 1002', () => {
  freshServer();

  const faults = [
    ['an unmasked frame', (a) => a.sendFrame({ mask: false, payload: '{"type":"ping"}' })],
    ['RSV1 set', (a) => a.sendFrame({ rsv: 4, payload: '{"type":"ping"}' })],
    ['RSV2 set', (a) => a.sendFrame({ rsv: 2, payload: '{"type":"ping"}' })],
    ['RSV3 set', (a) => a.sendFrame({ rsv: 1, payload: '{"type":"ping"}' })],
    ['reserved opcode 0x3', (a) => a.sendFrame({ opcode: 0x3, payload: '{"type":"ping"}' })],
    ['reserved control opcode 0xB', (a) => a.sendFrame({ opcode: 0xb, payload: '' })],
    ['a continuation frame without a start', (a) => a.sendFrame({ opcode: OP.CONT, payload: '{"type":"ping"}' })],
    ['a new text frame while a fragmented message is open', (a) => {
      a.sendFrame({ fin: false, opcode: OP.TEXT, payload: '{"type":' });
      a.sendFrame({ fin: true, opcode: OP.TEXT, payload: '{"type":"ping"}' });
    }],
    ['a fragmented ping', (a) => a.sendFrame({ fin: false, opcode: OP.PING, payload: 'x' })],
    ['a control frame over 125 bytes', (a) => a.sendFrame({ opcode: OP.PING, payload: Buffer.alloc(126, 0x61) })],
  ];
  for (const [what, fault] of faults) {
    test(`${what}: close 1002, the others get one leave`, async (t) => {
      const { a, b } = await rawPair(t);
      fault(a);
      await expectClose(a, 1002);
      a.assertNone('pong');
      await oneLeave(b, 'a');
    });
  }

  test('every reserved opcode (0x3-0x7, 0xB-0xF) closes with 1002', async (t) => {
    const clients = [];
    for (const opcode of [0x3, 0x4, 0x5, 0x6, 0x7, 0xb, 0xc, 0xd, 0xe, 0xf]) {
      const a = await rawConnect(srv, { t, name: `op${opcode}` });
      a.sendFrame({ opcode, payload: 'x' });
      clients.push([opcode, a]);
    }
    for (const [opcode, a] of clients) {
      const info = await a.waitCloseFrame();
      assert.equal(info.code, 1002, `opcode ${opcode}: ${JSON.stringify(info)}`);
    }
  });

  test('an unmasked frame before join closes with 1002 as well', async (t) => {
    const a = await rawConnect(srv, { t });
    a.sendFrame({ mask: false, opcode: OP.PING, payload: 'x' });
    await expectClose(a, 1002);
  });
});

describe('the end of the connection', () => {
  freshServer();

  // RFC 6455 7.1.1: once an endpoint has sent and received a close frame it
  // closes the TCP connection, the server first.
  const faults = [
    ['1002', (a) => a.sendFrame({ mask: false, payload: '{"type":"ping"}' })],
    ['1007', (a) => a.sendFrame({ payload: Buffer.from([0x22, 0xff, 0x22]) })],
    ['1009', (a) => a.sendFrame({ payload: JSON.stringify({ type: 'ping', pad: 'x'.repeat(70000) }) })],
    ['1003', (a) => a.sendFrame({ opcode: OP.BINARY, payload: 'x' })],
  ];
  for (const [code, fault] of faults) {
    test(`after a ${code} close handshake the server ends the TCP connection`, async (t) => {
      const a = await rawConnect(srv, { t });
      fault(a);
      const frame = await a.waitCloseFrame();
      assert.equal(String(frame.code), code);
      // Our close frame went back at once (echoClose); the server has no
      // reason to hold the connection any longer.
      await a.waitClosed(T(2000));
    });
  }
});

describe('framing that is correct', () => {
  freshServer();

  test('a message in 3 fragments with a ping between them is reassembled', async (t) => {
    const { a, b } = await rawPair(t);
    const text = Buffer.from(JSON.stringify({ type: 'message', payload: { parts: 3, text: 'abcdefghij'.repeat(5) } }));
    a.sendFrame({ fin: false, opcode: OP.TEXT, payload: text.subarray(0, 10) });
    a.sendFrame({ opcode: OP.PING, payload: 'mid' });
    a.sendFrame({ fin: false, opcode: OP.CONT, payload: text.subarray(10, 40) });
    a.sendFrame({ fin: true, opcode: OP.CONT, payload: text.subarray(40) });
    assert.deepEqual(await b.next(), { type: 'message', payload: { parts: 3, text: 'abcdefghij'.repeat(5), id: 'a', nick: 'raw' } });
    // lws answers pings itself, on its own schedule: a pong is not ordered
    // with the server's messages, so wait for it rather than for a marker.
    await waitFor(() => a.pongs.some((p) => p.toString() === 'mid'), T(5000),
      'the pong for the ping between fragments');
  });

  test('a WebSocket ping is answered with a pong carrying its payload', async (t) => {
    const a = await rawConnect(srv, { t });
    a.sendFrame({ opcode: OP.PING, payload: 'hello-123' });
    await waitFor(() => a.pongs.length > 0, T(5000), 'the pong');
    await a.ping();
    assert.deepEqual(a.pongs.map((p) => p.toString()), ['hello-123']);
  });

  test('an unsolicited pong is ignored', async (t) => {
    const a = await rawConnect(srv, { t });
    a.sendFrame({ opcode: OP.PONG, payload: 'x' });
    assert.deepEqual(await a.ping(), { type: 'pong', payload: {} });
  });

  test('a join pipelined behind the upgrade request is handled', async (t) => {
    const room = newRoom();
    const b = await joined(srv.url, 'b', { t, room });
    const frames = Buffer.concat([
      encodeFrame({ payload: JSON.stringify({ type: 'join', id: 'early', room }) }),
      encodeFrame({ payload: JSON.stringify({ type: 'message', payload: { n: 1 } }) }),
    ]);
    const a = await rawConnect(srv, { t, pipelined: frames });
    assert.equal((await a.next()).type, 'joined');
    assert.deepEqual(await b.next(), { type: 'join', payload: { id: 'early', nick: '' } });
    assert.deepEqual(await b.next(), { type: 'message', payload: { n: 1, id: 'early', nick: '' } });
  });

  test('many frames in one write are handled in order', async (t) => {
    const a = await rawConnect(srv, { t });
    const frames = [];
    for (let i = 0; i < 50; i++) frames.push(encodeFrame({ payload: JSON.stringify({ type: i % 2 ? 'ping' : `unknown-${i}` }) }));
    a.write(Buffer.concat(frames));
    for (let i = 0; i < 50; i++) {
      const m = await a.next();
      if (i % 2) assert.deepEqual(m, { type: 'pong', payload: {} });
      else assert.equal(m.payload.ref, `unknown-${i}`);
    }
  });

  test('tens of kilobytes of frames in one write: each handled once, in order', async (t) => {
    // Far more than one read of lws's 2 KiB buffer: the server reads ahead
    // and hands lws the rest without waiting for the socket again.
    const a = await rawConnect(srv, { t });
    const frames = [];
    const big = 'y'.repeat(40000);
    for (let i = 0; i < 400; i++) {
      const type = i === 200 ? `unknown-${big}` : i % 2 ? 'ping' : `unknown-${i}`;
      frames.push(encodeFrame({ payload: JSON.stringify({ type }) }));
    }
    a.write(Buffer.concat(frames));
    for (let i = 0; i < 400; i++) {
      const m = await a.next();
      if (i === 200) assert.equal(m.payload.ref, `unknown-${big}`);
      else if (i % 2) assert.deepEqual(m, { type: 'pong', payload: {} });
      else assert.equal(m.payload.ref, `unknown-${i}`, `reply ${i}`);
    }
    await a.expectSilence(T(300));
  });

  test('a frame written one byte at a time is handled', async (t) => {
    const a = await rawConnect(srv, { t });
    const frame = encodeFrame({ payload: '{"type":"ping","pad":"slowly, one byte after another"}' });
    for (const byte of frame) {
      await a.writeAsync(Buffer.from([byte]));
      await sleep(2);
    }
    assert.deepEqual(await a.next(), { type: 'pong', payload: {} });
  });

  test('16-bit and 64-bit payload lengths', async (t) => {
    const a = await rawConnect(srv, { t });
    a.sendFrame({ payload: JSON.stringify({ type: 'ping', pad: 'x'.repeat(300) }) }); // 126 form
    assert.deepEqual(await a.next(), { type: 'pong', payload: {} });
    const big = JSON.stringify({ type: 'ping', pad: 'x'.repeat(65536 - 24) });
    assert.equal(Buffer.byteLength(big), 65536);
    a.sendFrame({ payload: big }); // 127 form
    assert.deepEqual(await a.next(), { type: 'pong', payload: {} });
  });

  test('a client close is answered with a close frame; the others get one leave', async (t) => {
    const { a, b } = await rawPair(t);
    a.sendClose(1000, 'bye');
    const info = await a.waitClosed();
    assert.equal(info.closeFrame, true, 'the server answers the close frame');
    assert.equal(info.code, 1000);
    await oneLeave(b, 'a');
  });

  test('a close frame without a status code is answered; the others get one leave', async (t) => {
    const { a, b } = await rawPair(t);
    a.sendFrame({ opcode: OP.CLOSE, payload: closePayload(undefined) });
    const info = await a.waitClosed();
    assert.equal(info.closeFrame, true, 'the server answers the close frame');
    await oneLeave(b, 'a');
  });

  test('a close frame pipelined after a message: the message is handled first', async (t) => {
    const { a, b } = await rawPair(t);
    a.write(Buffer.concat([
      encodeFrame({ payload: JSON.stringify({ type: 'message', payload: { last: true } }) }),
      encodeFrame({ opcode: OP.CLOSE, payload: closePayload(1000) }),
    ]));
    assert.deepEqual(await b.next(), { type: 'message', payload: { last: true, id: 'a', nick: 'raw' } });
    await oneLeave(b, 'a');
    await a.waitClosed();
  });
});

describe('empty fragments', () => {
  freshServer();

  test('an empty text message -> bad_json', async (t) => {
    const a = await rawConnect(srv, { t });
    a.sendFrame({ payload: '' });
    const m = await a.next();
    assert.equal(m.payload?.code, 'bad_json', JSON.stringify(m));
    await a.ping();
  });

  test('empty fragments are fine', async (t) => {
    const a = await rawConnect(srv, { t });
    a.sendFrame({ fin: false, opcode: OP.TEXT, payload: '' });
    a.sendFrame({ fin: false, opcode: OP.CONT, payload: '{"type":"ping"}' });
    a.sendFrame({ fin: true, opcode: OP.CONT, payload: '' });
    assert.deepEqual(await a.next(), { type: 'pong', payload: {} });
  });
});

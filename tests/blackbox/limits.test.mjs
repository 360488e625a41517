// Message size limit (1009), binary frames (1003), and the leave the others
// get when the server closes a connection for them.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connect, isJoinOf, isLeaveOf, joined } from './lib/client.mjs';
import { T, startServer, withTimeout } from './lib/harness.mjs';
import { OP, rawConnect } from './lib/rawws.mjs';

// A JSON text of exactly `bytes` UTF-8 bytes: {"type":T,...,"pad":"..."}
// padded with `unit` characters (then ASCII to make up the rest).
function sized(bytes, base, unit = 'x') {
  const empty = Buffer.byteLength(JSON.stringify({ ...base, pad: '' }));
  let room = bytes - empty;
  assert.ok(room >= 0, `cannot make ${bytes} bytes`);
  const unitBytes = Buffer.byteLength(unit);
  const units = Math.floor(room / unitBytes);
  room -= units * unitBytes;
  const text = JSON.stringify({ ...base, pad: unit.repeat(units) + 'x'.repeat(room) });
  assert.equal(Buffer.byteLength(text), bytes);
  return text;
}

async function closedWith(client, code) {
  const info = await withTimeout(client.closed, T(5000), `${client.name} to be closed with ${code}`);
  assert.equal(info.code, code, `close code: ${JSON.stringify(info)}`);
  return info;
}

async function oneLeave(observer, id) {
  await observer.next(isLeaveOf(id));
  await observer.expectSilence(T(300), isLeaveOf(id), `second leave for ${id}`);
}

describe('--max-message 1024', () => {
  let srv;
  let rooms = 0;
  const newRoom = () => `lim-${++rooms}`;
  before(async () => { srv = await startServer(['--max-message', '1024']); });
  after(() => srv && srv.finish());

  async function pair(t) {
    const room = newRoom();
    const a = await joined(srv.url, 'a', { t, room });
    const b = await joined(srv.url, 'b', { t, room });
    await a.next(isJoinOf('b'));
    return { a, b, room };
  }

  test('a message of exactly the limit is handled', async (t) => {
    const { a, b } = await pair(t);
    a.sendText(sized(1024, { type: 'ping' }));
    assert.deepEqual(await a.next(), { type: 'pong', payload: {} });
    a.sendText(sized(1024, { type: 'message', payload: { k: 1 } }));
    assert.deepEqual(await b.next(), { type: 'message', payload: { k: 1, id: 'a', nick: '' } });
    a.sendText(sized(1024, { type: 'ping' }, 'é'));
    assert.deepEqual(await a.next(), { type: 'pong', payload: {} });
  });

  test('one byte over the limit closes with 1009; the others get one leave', async (t) => {
    const { a, b } = await pair(t);
    a.sendText(sized(1025, { type: 'ping' }));
    await closedWith(a, 1009);
    await oneLeave(b, 'a');
    await b.ping();
  });

  test('the limit counts bytes, not characters', async (t) => {
    const { a, b } = await pair(t);
    const text = sized(1025, { type: 'ping' }, 'é');
    assert.ok(text.length < 1024);
    a.sendText(text);
    await closedWith(a, 1009);
    await oneLeave(b, 'a');
  });

  test('a fragmented message whose total goes over the limit closes with 1009', async (t) => {
    const room = newRoom();
    const b = await joined(srv.url, 'b', { t, room });
    const a = await rawConnect(srv, { t, name: 'a' });
    await a.join('a', { room });
    await b.next(isJoinOf('a'));
    const text = Buffer.from(sized(1100, { type: 'ping' }));
    a.sendFrame({ fin: false, opcode: OP.TEXT, payload: text.subarray(0, 400) });
    a.sendFrame({ fin: false, opcode: OP.CONT, payload: text.subarray(400, 800) });
    a.sendFrame({ fin: true, opcode: OP.CONT, payload: text.subarray(800) });
    const info = await a.waitCloseFrame();
    assert.equal(info.code, 1009, JSON.stringify(info));
    a.assertNone('pong');
    await oneLeave(b, 'a');
  });

  test('a fragmented message of exactly the limit is handled', async (t) => {
    const a = await rawConnect(srv, { t, name: 'a' });
    const text = Buffer.from(sized(1024, { type: 'ping' }));
    a.sendFrame({ fin: false, opcode: OP.TEXT, payload: text.subarray(0, 500) });
    a.sendFrame({ fin: false, opcode: OP.CONT, payload: text.subarray(500, 1000) });
    a.sendFrame({ fin: true, opcode: OP.CONT, payload: text.subarray(1000) });
    assert.deepEqual(await a.next(), { type: 'pong', payload: {} });
  });

  test('a connection that never joined is closed with 1009 as well', async (t) => {
    const a = await connect(srv.url, { t });
    a.sendText(sized(5000, { type: 'ping' }));
    await closedWith(a, 1009);
  });

  test('a binary frame closes with 1003; the others get one leave', async (t) => {
    const { a, b } = await pair(t);
    a.ws.send(Buffer.from('{"type":"ping"}'), { binary: true });
    await closedWith(a, 1003);
    await oneLeave(b, 'a');
    await b.ping();
  });

  test('an empty binary frame closes with 1003', async (t) => {
    const a = await rawConnect(srv, { t, name: 'a' });
    a.sendFrame({ opcode: OP.BINARY, payload: Buffer.alloc(0) });
    const info = await a.waitCloseFrame();
    assert.equal(info.code, 1003, JSON.stringify(info));
  });
});

describe('default limit (64 KiB)', () => {
  let srv;
  before(async () => { srv = await startServer(); });
  after(() => srv && srv.finish());

  test('65536 bytes pass, 65537 close with 1009', async (t) => {
    const a = await connect(srv.url, { t });
    a.sendText(sized(65536, { type: 'ping' }));
    assert.deepEqual(await a.next(), { type: 'pong', payload: {} });
    a.sendText(sized(65537, { type: 'ping' }));
    await closedWith(a, 1009);
  });
});

// The happy paths of docs/protocol.md: join, relay, leave, ping, rooms.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { barrier, connect, isJoinOf, isLeaveOf, joined } from './lib/client.mjs';
import { T, startServer } from './lib/harness.mjs';

let srv;
let rooms = 0;
const newRoom = () => `room-${++rooms}`;

before(async () => { srv = await startServer(); });
after(() => srv && srv.finish());

const byId = (a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

test('join answers joined with the other members and announces the newcomer', async (t) => {
  const room = newRoom();
  const a = await connect(srv.url, { t, name: 'a' });
  a.send({ type: 'join', id: 'a', nick: 'Alice', room });
  assert.deepEqual(await a.next(), { type: 'joined', payload: { id: 'a', nick: 'Alice', room, peers: [] } });

  const b = await connect(srv.url, { t, name: 'b' });
  b.send({ type: 'join', id: 'b', nick: 'Bob', room });
  assert.deepEqual(await b.next(), { type: 'joined', payload: { id: 'b', nick: 'Bob', room, peers: [{ id: 'a', nick: 'Alice' }] } });
  assert.deepEqual(await a.next(), { type: 'join', payload: { id: 'b', nick: 'Bob' } });

  const c = await connect(srv.url, { t, name: 'c' });
  c.send({ type: 'join', id: 'c', nick: 'Carol', room });
  const reply = await c.next();
  assert.equal(reply.type, 'joined');
  assert.deepEqual(Object.keys(reply.payload).sort(), ['id', 'nick', 'peers', 'room']);
  assert.deepEqual(reply.payload.peers.slice().sort(byId), [{ id: 'a', nick: 'Alice' }, { id: 'b', nick: 'Bob' }]);
  assert.deepEqual(await a.next(), { type: 'join', payload: { id: 'c', nick: 'Carol' } });
  assert.deepEqual(await b.next(), { type: 'join', payload: { id: 'c', nick: 'Carol' } });
  // The newcomer does not hear about itself.
  await c.expectSilence(T(200));
});

test('nick defaults to "" and room to "default"', async (t) => {
  // Another test file may not use "default"; this file uses it only here.
  const a = await connect(srv.url, { t, name: 'a' });
  a.send({ type: 'join', id: 'dflt-a' });
  assert.deepEqual(await a.next(), { type: 'joined', payload: { id: 'dflt-a', nick: '', room: 'default', peers: [] } });
  const b = await connect(srv.url, { t, name: 'b' });
  b.send({ type: 'join', id: 'dflt-b', room: 'default', nick: '' });
  assert.deepEqual(await b.next(), { type: 'joined', payload: { id: 'dflt-b', nick: '', room: 'default', peers: [{ id: 'dflt-a', nick: '' }] } });
  assert.deepEqual(await a.next(), { type: 'join', payload: { id: 'dflt-b', nick: '' } });
});

test('token and unknown members are ignored', async (t) => {
  const room = newRoom();
  const a = await connect(srv.url, { t, name: 'a' });
  a.send({ type: 'join', id: 'a', room, token: 'secret-token', color: 'blue', extra: { nested: [1, 2] }, n: 5 });
  assert.deepEqual(await a.next(), { type: 'joined', payload: { id: 'a', nick: '', room, peers: [] } });
  const b = await joined(srv.url, 'b', { t, room });
  await a.next(isJoinOf('b'));
  b.send({ type: 'offer', payload: { sdp: 'v=0' }, unknown: true, receiverIdx: 'zz', sdp: 'outside' });
  assert.deepEqual(await a.next(), { type: 'offer', payload: { sdp: 'v=0', id: 'b', nick: '' } });
  b.send({ type: 'ping', foo: 'bar' });
  assert.deepEqual(await b.next(), { type: 'pong', payload: {} });
});

test('ping answers pong, before and after join', async (t) => {
  const a = await connect(srv.url, { t });
  a.send({ type: 'ping' });
  assert.deepEqual(await a.next(), { type: 'pong', payload: {} });
  await a.join('p', { room: newRoom() });
  a.send({ type: 'ping' });
  assert.deepEqual(await a.next(), { type: 'pong', payload: {} });
  a.send({ type: 'ping' });
  a.send({ type: 'ping' });
  assert.deepEqual(await a.next(), { type: 'pong', payload: {} });
  assert.deepEqual(await a.next(), { type: 'pong', payload: {} });
});

for (const type of ['offer', 'icecandidate', 'message']) {
  test(`${type} without receiverId reaches every other member, not the sender`, async (t) => {
    const room = newRoom();
    const a = await joined(srv.url, 'a', { t, room, nick: 'Alice' });
    const b = await joined(srv.url, 'b', { t, room, nick: 'Bob' });
    const c = await joined(srv.url, 'c', { t, room, nick: 'Carol' });
    await a.next(isJoinOf('b'));
    await a.next(isJoinOf('c'));
    await b.next(isJoinOf('c'));
    const payload = { sdp: 'v=0\r\no=- 1 2 IN IP4 127.0.0.1', kind: type };
    a.send({ type, payload });
    const want = { type, payload: { ...payload, id: 'a', nick: 'Alice' } };
    assert.deepEqual(await b.next(), want);
    assert.deepEqual(await c.next(), want);
    // The sender gets nothing back: its next message is the pong.
    await a.ping();
    a.assertNone();
  });
}

for (const type of ['offer', 'answer', 'icecandidate', 'message']) {
  test(`${type} with receiverId reaches that member only`, async (t) => {
    const room = newRoom();
    const a = await joined(srv.url, 'a', { t, room, nick: 'Alice' });
    const b = await joined(srv.url, 'b', { t, room, nick: 'Bob' });
    const c = await joined(srv.url, 'c', { t, room, nick: 'Carol' });
    await a.next(isJoinOf('b'));
    await a.next(isJoinOf('c'));
    await b.next(isJoinOf('c'));
    a.send({ type, receiverId: 'b', payload: { n: 1 } });
    assert.deepEqual(await b.next(), { type, payload: { n: 1, id: 'a', nick: 'Alice' } });
    c.send({ type, receiverId: 'a', payload: { n: 2 } });
    assert.deepEqual(await a.next(), { type, payload: { n: 2, id: 'c', nick: 'Carol' } });
    // b broadcasts a marker after a's targeted message; c must have nothing else.
    await barrier(a, [b, c]);
    c.assertNone();
    await barrier(c, [a, b]);
    b.assertNone();
  });
}

test('the payload is relayed untouched: nesting, numbers, unicode, escapes', async (t) => {
  const room = newRoom();
  const a = await joined(srv.url, 'a', { t, room, nick: 'Ané 🚀' });
  const b = await joined(srv.url, 'b', { t, room });
  await a.next(isJoinOf('b'));
  const payload = {
    sdp: 'v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n',
    candidate: { candidate: 'candidate:1 1 UDP 2122252543 192.168.1.2 54321 typ host', sdpMid: '0', sdpMLineIndex: 0 },
    numbers: [0, -1, 42, 3.25, -0.5, 1e-7, 6.02e23, 9007199254740991, -9007199254740991],
    flags: { yes: true, no: false, nothing: null },
    empty: { obj: {}, arr: [], str: '' },
    unicode: 'héllo wörld — 日本語 😀 𝄞',
    escapes: 'quote " backslash \\ slash / tab \t newline \n cr \r bs \b ff \f ctl \u0001 del \u007f',
    nested: { a: { b: { c: { d: { e: { f: { g: { h: 'deep' } } } } } } } },
    list: [[1, [2, [3, [4]]]], { k: [{}, []] }],
  };
  a.send({ type: 'message', payload });
  assert.deepEqual(await b.next(), { type: 'message', payload: { ...payload, id: 'a', nick: 'Ané 🚀' } });

  // The same, written with \u escapes (surrogate pairs included) by hand.
  a.sendText('{"type":"message","payload":{"s":"\\u00e9\\u65e5\\ud83d\\ude00\\"\\\\\\/","t":"\\u0000x"}}');
  assert.deepEqual(await b.next(), { type: 'message', payload: { s: 'é日😀"\\/', t: '\u0000x', id: 'a', nick: 'Ané 🚀' } });
});

test('a forged id and nick in the payload are replaced by the sender\'s', async (t) => {
  const room = newRoom();
  const a = await joined(srv.url, 'a', { t, room, nick: 'Alice' });
  const b = await joined(srv.url, 'b', { t, room, nick: 'Bob' });
  await a.next(isJoinOf('b'));
  for (const type of ['offer', 'icecandidate', 'message']) {
    b.send({ type, payload: { id: 'a', nick: 'Alice', x: 1 } });
    assert.deepEqual(await a.next(), { type, payload: { id: 'b', nick: 'Bob', x: 1 } });
  }
  b.send({ type: 'answer', receiverId: 'a', payload: { id: 42, nick: { not: 'a string' }, sdp: 's' } });
  assert.deepEqual(await a.next(), { type: 'answer', payload: { id: 'b', nick: 'Bob', sdp: 's' } });
  // Only the id and nick members are set; an "Id" or "NICK" is left alone.
  b.send({ type: 'message', payload: { Id: 'x', NICK: 'y' } });
  assert.deepEqual(await a.next(), { type: 'message', payload: { Id: 'x', NICK: 'y', id: 'b', nick: 'Bob' } });
});

test('leave: the others get leave, the connection stays open and may join again', async (t) => {
  const room = newRoom();
  const other = newRoom();
  const a = await joined(srv.url, 'a', { t, room, nick: 'Alice' });
  const b = await joined(srv.url, 'b', { t, room, nick: 'Bob' });
  const x = await joined(srv.url, 'x', { t, room: other });
  await a.next(isJoinOf('b'));
  a.send({ type: 'leave' });
  assert.deepEqual(await b.next(), { type: 'leave', payload: { id: 'a', nick: 'Alice' } });
  await a.ping();
  assert.equal(a.isOpen, true);

  // No longer in the room: b's broadcasts do not reach it, and it is not joined.
  b.send({ type: 'message', payload: { n: 1 } });
  a.send({ type: 'message', payload: { n: 2 } });
  const err = await a.next('error');
  assert.equal(err.payload.code, 'not_joined');
  a.assertNone('message');

  // The id is free again in that room.
  const a2 = await joined(srv.url, 'a', { t, room, nick: 'Second' });
  assert.deepEqual(await b.next(), { type: 'join', payload: { id: 'a', nick: 'Second' } });
  await a2.ping();

  // The first connection joins another room, under a new nick.
  const p = await a.join('a', { room: other, nick: 'Again' });
  assert.deepEqual(p, { id: 'a', nick: 'Again', room: other, peers: [{ id: 'x', nick: '' }] });
  assert.deepEqual(await x.next(), { type: 'join', payload: { id: 'a', nick: 'Again' } });
  await b.expectSilence(T(200), (m) => m.type === 'join' || m.type === 'leave');
  // And can leave and come back to the first room under another id.
  a.send({ type: 'leave' });
  assert.deepEqual(await x.next(), { type: 'leave', payload: { id: 'a', nick: 'Again' } });
  const back = await a.join('a3', { room });
  assert.deepEqual(back.peers.slice().sort(byId), [{ id: 'a', nick: 'Second' }, { id: 'b', nick: 'Bob' }]);
});

test('closing the connection gives the others exactly one leave', async (t) => {
  const room = newRoom();
  const a = await joined(srv.url, 'a', { t, room, nick: 'Alice' });
  const b = await joined(srv.url, 'b', { t, room });
  const c = await joined(srv.url, 'c', { t, room });
  await b.next(isJoinOf('c'));
  await a.close(1000);
  assert.deepEqual(await b.next(isLeaveOf('a')), { type: 'leave', payload: { id: 'a', nick: 'Alice' } });
  assert.deepEqual(await c.next(isLeaveOf('a')), { type: 'leave', payload: { id: 'a', nick: 'Alice' } });
  await b.expectSilence(T(300), isLeaveOf('a'), 'second leave');
  c.assertNone(isLeaveOf('a'), 'second leave');
  // The room no longer lists it.
  const d = await joined(srv.url, 'd', { t, room });
  assert.deepEqual(d.joined.peers.map((p) => p.id).sort(), ['b', 'c']);
});

test('a lost TCP connection gives the others exactly one leave', async (t) => {
  const room = newRoom();
  const a = await joined(srv.url, 'a', { t, room, nick: 'Alice' });
  const b = await joined(srv.url, 'b', { t, room });
  await a.next(isJoinOf('b'));
  await a.terminate();
  assert.deepEqual(await b.next(isLeaveOf('a')), { type: 'leave', payload: { id: 'a', nick: 'Alice' } });
  await b.expectSilence(T(300), isLeaveOf('a'), 'second leave');
  // The id can be taken again at once.
  await joined(srv.url, 'a', { t, room });
});

test('a leave followed by close gives only the one leave', async (t) => {
  const room = newRoom();
  const a = await joined(srv.url, 'a', { t, room });
  const b = await joined(srv.url, 'b', { t, room });
  await a.next(isJoinOf('b'));
  a.send({ type: 'leave' });
  await b.next(isLeaveOf('a'));
  await a.close();
  await b.expectSilence(T(300), isLeaveOf('a'), 'second leave');
});

test('a connection that never joined leaves no trace when it closes', async (t) => {
  const room = newRoom();
  const b = await joined(srv.url, 'b', { t, room });
  const a = await connect(srv.url, { t });
  await a.ping();
  await a.close();
  await b.expectSilence(T(200));
});

test('rooms are isolated', async (t) => {
  const r1 = newRoom();
  const r2 = newRoom();
  const a = await joined(srv.url, 'a', { t, room: r1 });
  const b = await joined(srv.url, 'b', { t, room: r1 });
  const x = await joined(srv.url, 'x', { t, room: r2 });
  assert.deepEqual(x.joined.peers, []);
  await a.next(isJoinOf('b'));
  a.send({ type: 'offer', payload: { n: 1 } });
  await b.next('offer');
  a.send({ type: 'message', receiverId: 'b', payload: { n: 2 } });
  await b.next('message');
  // x cannot reach a member of r1.
  x.send({ type: 'message', receiverId: 'a', payload: {} });
  const err = await x.next();
  assert.equal(err.type, 'error');
  assert.equal(err.payload.code, 'peer_not_found');
  x.send({ type: 'message', payload: { from: 'x' } });
  b.send({ type: 'leave' });
  await a.next(isLeaveOf('b'));
  await barrier(a, []);
  await x.expectSilence(T(200));
  a.assertNone((m) => m.type === 'message');
});

test('the same id may live in different rooms', async (t) => {
  const r1 = newRoom();
  const r2 = newRoom();
  const a1 = await joined(srv.url, 'same', { t, room: r1, nick: 'one' });
  const a2 = await joined(srv.url, 'same', { t, room: r2, nick: 'two' });
  const b1 = await joined(srv.url, 'b', { t, room: r1 });
  const b2 = await joined(srv.url, 'b', { t, room: r2 });
  await a1.next(isJoinOf('b'));
  await a2.next(isJoinOf('b'));
  b2.send({ type: 'message', receiverId: 'same', payload: { to: 'two' } });
  assert.deepEqual(await a2.next(), { type: 'message', payload: { to: 'two', id: 'b', nick: '' } });
  b1.send({ type: 'message', receiverId: 'same', payload: { to: 'one' } });
  assert.deepEqual(await a1.next(), { type: 'message', payload: { to: 'one', id: 'b', nick: '' } });
  await a1.close();
  assert.deepEqual(await b1.next(), { type: 'leave', payload: { id: 'same', nick: 'one' } });
  await b2.expectSilence(T(200));
  a2.assertNone();
});

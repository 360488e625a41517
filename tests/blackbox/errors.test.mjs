// Every error code, its `ref`, the order of the checks, and that a refused
// message changes nothing, reaches no one and leaves the connection open.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { assertError, barrier, connect, expectError, isJoinOf, isLeaveOf, joined } from './lib/client.mjs';
import { T, sleep, startServer } from './lib/harness.mjs';

let srv;
let rooms = 0;
const newRoom = () => `err-${++rooms}`;

before(async () => { srv = await startServer(); });
after(() => srv && srv.finish());

// A room with a joined `a` (the one that errs) and an observer `b`.
async function pair(t, nickA = 'Alice') {
  const room = newRoom();
  const a = await joined(srv.url, 'a', { t, room, nick: nickA });
  const b = await joined(srv.url, 'b', { t, room, nick: 'Bob' });
  await a.next(isJoinOf('b'));
  return { room, a, b };
}

describe('bad_json', () => {
  const cases = [
    ['not JSON', 'hello'],
    ['an empty message', ''],
    ['truncated JSON', '{"type":"ping"'],
    ['trailing garbage', '{"type":"ping"} x'],
    ['two objects', '{"type":"ping"}{"type":"ping"}'],
    ['a trailing comma', '{"type":"ping",}'],
    ['single quotes', "{'type':'ping'}"],
    ['an array', '[]'],
    ['an array holding an object', '[{"type":"ping"}]'],
    ['a number', '1'],
    ['a string', '"x"'],
    ['null', 'null'],
    ['true', 'true'],
  ];
  for (const [what, text] of cases) {
    test(`${what} -> bad_json without ref, connection open`, async (t) => {
      const c = await connect(srv.url, { t });
      await expectError(c, text, 'bad_json', undefined);
    });
  }

  test('bad_json from a joined peer reaches no one and changes nothing', async (t) => {
    const { a, b } = await pair(t);
    await expectError(a, '{"type":"message","payload":{}', 'bad_json', undefined);
    await expectError(a, '[{"type":"leave"}]', 'bad_json', undefined);
    await barrier(a, [b]);
    b.assertNone();
    // Still joined: a relays as before.
    a.send({ type: 'message', payload: { still: 'here' } });
    assert.deepEqual(await b.next(), { type: 'message', payload: { still: 'here', id: 'a', nick: 'Alice' } });
  });
});

describe('bad_message for the type member', () => {
  const cases = [
    ['no type', '{}'],
    ['no type but other members', '{"id":"a","room":"r"}'],
    ['a number type', '{"type":1}'],
    ['a null type', '{"type":null}'],
    ['an array type', '{"type":["join"]}'],
    ['an object type', '{"type":{"t":"join"}}'],
    ['a boolean type', '{"type":true}'],
  ];
  for (const [what, text] of cases) {
    test(`${what} -> bad_message without ref`, async (t) => {
      const c = await connect(srv.url, { t });
      await expectError(c, text, 'bad_message', undefined);
    });
  }
});

describe('unknown_type', () => {
  for (const type of ['hello', '', 'JOIN', 'Offer', 'joined', 'pong', 'error', 'unauthorized', ' join', 'join ']) {
    test(`type ${JSON.stringify(type)} -> unknown_type with ref`, async (t) => {
      const c = await connect(srv.url, { t });
      await expectError(c, { type }, 'unknown_type', type);
    });
  }

  test('unknown_type from a joined peer reaches no one', async (t) => {
    const { a, b } = await pair(t);
    await expectError(a, { type: 'broadcast', payload: { x: 1 } }, 'unknown_type', 'broadcast');
    await barrier(a, [b]);
    b.assertNone();
  });
});

describe('not_joined', () => {
  for (const type of ['offer', 'answer', 'icecandidate', 'message']) {
    test(`${type} before join -> not_joined with ref`, async (t) => {
      const c = await connect(srv.url, { t });
      await expectError(c, { type, receiverId: 'x', payload: {} }, 'not_joined', type);
      await expectError(c, { type, payload: { a: 1 } }, 'not_joined', type);
    });
  }

  test('leave before join -> not_joined with ref', async (t) => {
    const c = await connect(srv.url, { t });
    await expectError(c, { type: 'leave' }, 'not_joined', 'leave');
  });

  test('leave after leave -> not_joined', async (t) => {
    const { a, b } = await pair(t);
    a.send({ type: 'leave' });
    await b.next(isLeaveOf('a'));
    await expectError(a, { type: 'leave' }, 'not_joined', 'leave');
    await b.expectSilence(T(200));
  });

  test('a not-joined connection reaches no one', async (t) => {
    const room = newRoom();
    const b = await joined(srv.url, 'b', { t, room });
    const c = await connect(srv.url, { t });
    await expectError(c, { type: 'message', receiverId: 'b', payload: {} }, 'not_joined', 'message');
    await expectError(c, { type: 'offer', payload: {} }, 'not_joined', 'offer');
    await b.expectSilence(T(200));
  });
});

describe('already_joined', () => {
  test('join while joined -> already_joined; nothing changes', async (t) => {
    const { room, a, b } = await pair(t);
    await expectError(a, { type: 'join', id: 'a2', room }, 'already_joined', 'join');
    await expectError(a, { type: 'join', id: 'a', room }, 'already_joined', 'join');
    await expectError(a, { type: 'join', id: 'z', room: newRoom(), nick: 'Z' }, 'already_joined', 'join');
    await barrier(a, [b]);
    b.assertNone();
    // Still `a` with its nick in the same room.
    a.send({ type: 'message', receiverId: 'b', payload: {} });
    assert.deepEqual(await b.next(), { type: 'message', payload: { id: 'a', nick: 'Alice' } });
    const c = await joined(srv.url, 'c', { t, room });
    assert.deepEqual(c.joined.peers.map((p) => p.id).sort(), ['a', 'b']);
  });
});

describe('id_taken', () => {
  test('an id held in the room -> id_taken; the refused joiner can try another id', async (t) => {
    const { room, a, b } = await pair(t);
    const c = await connect(srv.url, { t });
    await expectError(c, { type: 'join', id: 'a', room, nick: 'Impostor' }, 'id_taken', 'join');
    await expectError(c, { type: 'join', id: 'b', room }, 'id_taken', 'join');
    // It is not joined after the refusal.
    await expectError(c, { type: 'message', payload: {} }, 'not_joined', 'message');
    await barrier(a, [b]);
    await barrier(b, [a]);
    a.assertNone();
    b.assertNone();
    await c.join('c', { room });
    await a.next(isJoinOf('c'));
    await b.next(isJoinOf('c'));
  });
});

describe('peer_not_found', () => {
  for (const type of ['offer', 'answer', 'icecandidate', 'message']) {
    test(`${type} to an unknown or own id -> peer_not_found; nothing delivered`, async (t) => {
      const { a, b } = await pair(t);
      const c = await joined(srv.url, 'c', { t, room: a.joined.room });
      await a.next(isJoinOf('c'));
      await b.next(isJoinOf('c'));
      await expectError(a, { type, receiverId: 'nobody', payload: { x: 1 } }, 'peer_not_found', type);
      await expectError(a, { type, receiverId: 'a', payload: { x: 2 } }, 'peer_not_found', type);
      await expectError(a, { type, receiverId: 'B', payload: { x: 3 } }, 'peer_not_found', type);
      await barrier(a, [b, c]);
      b.assertNone();
      c.assertNone();
    });
  }

  test('a peer that left is not found', async (t) => {
    const { a, b } = await pair(t);
    b.send({ type: 'leave' });
    await a.next(isLeaveOf('b'));
    await expectError(a, { type: 'answer', receiverId: 'b', payload: {} }, 'peer_not_found', 'answer');
    await b.expectSilence(T(200));
  });
});

describe('room_full', () => {
  let small;
  before(async () => { small = await startServer(['--max-room-peers', '2']); });
  after(() => small && small.finish());

  test('--max-room-peers 2: the third joiner gets room_full; a place frees on leave', async (t) => {
    const a = await joined(small.url, 'a', { t, room: 'r' });
    const b = await joined(small.url, 'b', { t, room: 'r' });
    await a.next(isJoinOf('b'));
    const c = await connect(small.url, { t, name: 'c' });
    await expectError(c, { type: 'join', id: 'c', room: 'r' }, 'room_full', 'join');
    await expectError(c, { type: 'offer', payload: {} }, 'not_joined', 'offer');
    await barrier(a, [b]);
    b.assertNone();
    a.assertNone();
    // Other rooms are not affected.
    const d = await joined(small.url, 'd', { t, room: 'other' });
    // id_taken comes before room_full.
    await expectError(c, { type: 'join', id: 'a', room: 'r' }, 'id_taken', 'join');
    b.send({ type: 'leave' });
    await a.next(isLeaveOf('b'));
    const p = await c.join('c', { room: 'r' });
    assert.deepEqual(p.peers, [{ id: 'a', nick: '' }]);
    await a.next(isJoinOf('c'));
    await d.expectSilence(T(100));
  });
});

describe('rate_limited', () => {
  // Bucket of 2N tokens, full at the start; N a second come back.
  let limited;
  before(async () => { limited = await startServer(['--rate', '1']); });
  after(() => limited && limited.finish());

  test('--rate 1: the third message of a burst is refused with its type as ref; the connection stays open', async (t) => {
    const c = await connect(limited.url, { t });
    c.send({ type: 'ping' });
    c.send({ type: 'ping' });
    c.send({ type: 'offer', payload: {} });
    assert.deepEqual(await c.next(), { type: 'pong', payload: {} });
    assert.deepEqual(await c.next(), { type: 'pong', payload: {} });
    assertError(await c.next(), 'rate_limited', 'offer');
    assert.equal(c.isOpen, true);
    // Tokens come back with time.
    await sleep(2500);
    await c.ping();
  });

  test('refused messages cost a token too', async (t) => {
    const c = await connect(limited.url, { t });
    c.sendText('not json');
    c.send({ type: 'nope' });
    c.send({ type: 'ping' });
    assertError(await c.next(), 'bad_json', undefined);
    assertError(await c.next(), 'unknown_type', 'nope');
    assertError(await c.next(), 'rate_limited', 'ping');
  });

  test('join costs a token', async (t) => {
    const c = await connect(limited.url, { t });
    c.send({ type: 'join', id: 'j', room: 'rate-join' });
    c.send({ type: 'ping' });
    c.send({ type: 'leave' });
    assert.equal((await c.next()).type, 'joined');
    assert.deepEqual(await c.next(), { type: 'pong', payload: {} });
    assertError(await c.next(), 'rate_limited', 'leave');
    // The dropped leave did nothing: still joined.
    await sleep(2500);
    await expectError(c, { type: 'join', id: 'j2', room: 'rate-join' }, 'already_joined', 'join', { ping: false });
  });

  test('rate limit is checked before anything else: no ref when the type is unknown', async (t) => {
    const c = await connect(limited.url, { t });
    c.send({ type: 'ping' });
    c.send({ type: 'ping' });
    c.sendText('garbage');
    c.sendText('[1]');
    c.send({ type: 7 });
    c.send({});
    c.send({ type: 'no-such-type' });
    c.send({ type: 'leave' });
    c.send({ type: 'join' });
    await c.next('pong');
    await c.next('pong');
    assertError(await c.next(), 'rate_limited', undefined);
    assertError(await c.next(), 'rate_limited', undefined);
    assertError(await c.next(), 'rate_limited', undefined);
    assertError(await c.next(), 'rate_limited', undefined);
    assertError(await c.next(), 'rate_limited', 'no-such-type');
    assertError(await c.next(), 'rate_limited', 'leave');
    assertError(await c.next(), 'rate_limited', 'join');
    assert.equal(c.isOpen, true);
  });

  test('a rate-limited message reaches no one', async (t) => {
    const room = 'rate-relay';
    const b = await joined(limited.url, 'b', { t, room });
    const a = await connect(limited.url, { t });
    // join (1 token), message 1 (2 tokens used): the bucket of 2 is empty.
    a.send({ type: 'join', id: 'a', room });
    a.send({ type: 'message', payload: { n: 1 } });
    a.send({ type: 'message', payload: { n: 2 } });
    a.send({ type: 'message', receiverId: 'b', payload: { n: 3 } });
    assert.equal((await a.next()).type, 'joined');
    assertError(await a.next(), 'rate_limited', 'message');
    assertError(await a.next(), 'rate_limited', 'message');
    await b.next(isJoinOf('a'));
    assert.deepEqual(await b.next('message'), { type: 'message', payload: { n: 1, id: 'a', nick: '' } });
    await b.expectSilence(T(300), 'message');
  });
});

describe('order of the checks', () => {
  test('offer before join with nothing else -> not_joined, not bad_message', async (t) => {
    const c = await connect(srv.url, { t });
    await expectError(c, { type: 'offer' }, 'not_joined', 'offer');
    await expectError(c, { type: 'answer' }, 'not_joined', 'answer');
    await expectError(c, { type: 'message', payload: 'not an object', receiverId: 5 }, 'not_joined', 'message');
  });

  test('join without id while joined -> already_joined, not bad_message', async (t) => {
    const { a } = await pair(t);
    await expectError(a, { type: 'join' }, 'already_joined', 'join');
    await expectError(a, { type: 'join', id: '', nick: null, room: 5 }, 'already_joined', 'join');
  });

  test('a taken id with a too-long nick -> bad_message, not id_taken', async (t) => {
    const { room } = await pair(t);
    const c = await connect(srv.url, { t });
    await expectError(c, { type: 'join', id: 'a', room, nick: 'n'.repeat(129) }, 'bad_message', 'join');
    await expectError(c, { type: 'join', id: 'a', room, nick: 7 }, 'bad_message', 'join');
  });

  test('an unknown type before join -> unknown_type, not not_joined', async (t) => {
    const c = await connect(srv.url, { t });
    await expectError(c, { type: 'kick', receiverId: 'a' }, 'unknown_type', 'kick');
  });

  test('a missing type beats everything after it', async (t) => {
    const c = await connect(srv.url, { t });
    await expectError(c, { id: 'a', payload: [] }, 'bad_message', undefined);
  });

  test('a bad receiverId -> bad_message, not peer_not_found', async (t) => {
    const { a } = await pair(t);
    await expectError(a, { type: 'message', receiverId: '', payload: {} }, 'bad_message', 'message');
    await expectError(a, { type: 'message', receiverId: 'x\u0001', payload: {} }, 'bad_message', 'message');
  });

  test('a bad payload with an unknown receiverId -> bad_message, not peer_not_found', async (t) => {
    const { a } = await pair(t);
    await expectError(a, { type: 'offer', receiverId: 'nobody', payload: [] }, 'bad_message', 'offer');
    await expectError(a, { type: 'offer', receiverId: 'nobody' }, 'bad_message', 'offer');
  });
});

// Member validation (bad_message), field limits in UTF-8 bytes, control
// characters, duplicate keys and JSON nesting depth.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { barrier, connect, expectError, isJoinOf, joined } from './lib/client.mjs';
import { startServer } from './lib/harness.mjs';

let srv;
let rooms = 0;
const newRoom = () => `val-${++rooms}`;

before(async () => { srv = await startServer(); });
after(() => srv && srv.finish());

async function pair(t) {
  const room = newRoom();
  const a = await joined(srv.url, 'a', { t, room, nick: 'Alice' });
  const b = await joined(srv.url, 'b', { t, room, nick: 'Bob' });
  await a.next(isJoinOf('b'));
  return { room, a, b };
}

// A join that must be refused with bad_message and leave `c` not joined.
async function badJoin(c, msg) {
  await expectError(c, msg, 'bad_message', 'join');
  await expectError(c, { type: 'leave' }, 'not_joined', 'leave');
}

describe('join members', () => {
  const cases = [
    ['no id', { type: 'join', room: 'x' }],
    ['an empty id', { type: 'join', id: '' }],
    ['a number id', { type: 'join', id: 1 }],
    ['a null id', { type: 'join', id: null }],
    ['an object id', { type: 'join', id: { s: 'a' } }],
    ['an array id', { type: 'join', id: ['a'] }],
    ['a boolean id', { type: 'join', id: true }],
    ['an empty room', { type: 'join', id: 'a', room: '' }],
    ['a number room', { type: 'join', id: 'a', room: 5 }],
    ['a null room', { type: 'join', id: 'a', room: null }],
    ['an array room', { type: 'join', id: 'a', room: [] }],
    ['a number nick', { type: 'join', id: 'a', nick: 5 }],
    ['a null nick', { type: 'join', id: 'a', nick: null }],
    ['an object nick', { type: 'join', id: 'a', nick: {} }],
    ['a boolean nick', { type: 'join', id: 'a', nick: false }],
  ];
  for (const [what, msg] of cases) {
    test(`join with ${what} -> bad_message`, async (t) => {
      const c = await connect(srv.url, { t });
      await badJoin(c, msg);
    });
  }

  test('an empty nick is fine', async (t) => {
    const c = await connect(srv.url, { t });
    const room = newRoom();
    assert.deepEqual(await c.join('e', { room, nick: '' }), { id: 'e', nick: '', room, peers: [] });
  });

  test('a refused join creates no room and announces nothing', async (t) => {
    const { room, a, b } = await pair(t);
    const c = await connect(srv.url, { t });
    await badJoin(c, { type: 'join', id: 'c', room, nick: null });
    await barrier(a, [b]);
    b.assertNone();
    const d = await joined(srv.url, 'd', { t, room });
    assert.deepEqual(d.joined.peers.map((p) => p.id).sort(), ['a', 'b']);
  });
});

describe('relay members', () => {
  for (const type of ['offer', 'answer', 'icecandidate', 'message']) {
    const cases = [
      ['no payload', { receiverId: 'b' }],
      ['an array payload', { receiverId: 'b', payload: [] }],
      ['a string payload', { receiverId: 'b', payload: 'sdp' }],
      ['a null payload', { receiverId: 'b', payload: null }],
      ['a number payload', { receiverId: 'b', payload: 1 }],
      ['an empty receiverId', { receiverId: '', payload: {} }],
      ['a number receiverId', { receiverId: 5, payload: {} }],
      ['a null receiverId', { receiverId: null, payload: {} }],
      ['an object receiverId', { receiverId: { id: 'b' }, payload: {} }],
      ['a receiverId with a control character', { receiverId: 'b\n', payload: {} }],
      ['a receiverId over the field limit', { receiverId: 'b'.repeat(129), payload: {} }],
    ];
    if (type !== 'answer') cases.push(['no payload and no receiverId', {}]);
    test(`${type}: bad members -> bad_message with ref, nothing delivered`, async (t) => {
      const { a, b } = await pair(t);
      for (const [what, members] of cases) {
        a.send({ type, ...members });
        const reply = await a.next();
        assert.equal(reply.type, 'error', `${type} with ${what}: ${JSON.stringify(reply)}`);
        assert.equal(reply.payload.code, 'bad_message', `${type} with ${what}: ${JSON.stringify(reply)}`);
        assert.equal(reply.payload.ref, type, `${type} with ${what}: ${JSON.stringify(reply)}`);
      }
      await a.ping();
      await barrier(a, [b]);
      b.assertNone();
    });
  }

  test('answer requires receiverId', async (t) => {
    const { a, b } = await pair(t);
    await expectError(a, { type: 'answer', payload: { sdp: 'x' } }, 'bad_message', 'answer');
    await barrier(a, [b]);
    b.assertNone();
  });
});

describe('field length in UTF-8 bytes (--max-field 128 by default)', () => {
  const ok = [
    ['128 ASCII bytes', 'x'.repeat(128)],
    ['64 two-byte characters (128 bytes)', 'é'.repeat(64)],
    ['42 three-byte characters and 2 ASCII (128 bytes)', '日'.repeat(42) + 'ab'],
    ['32 four-byte characters (128 bytes)', '😀'.repeat(32)],
  ];
  const over = [
    ['129 ASCII bytes', 'x'.repeat(129)],
    ['65 two-byte characters (130 bytes)', 'é'.repeat(65)],
    ['43 three-byte characters (129 bytes)', '日'.repeat(43)],
    ['33 four-byte characters (132 bytes)', '😀'.repeat(33)],
    ['127 ASCII and one two-byte character (129 bytes)', 'x'.repeat(127) + 'é'],
  ];
  for (const field of ['id', 'nick', 'room']) {
    for (const [what, value] of ok) {
      test(`${field} of ${what} is accepted`, async (t) => {
        const c = await connect(srv.url, { t });
        const msg = { id: `id-${field}`, room: newRoom(), nick: 'n', [field]: value };
        const p = await c.join(msg.id, { room: msg.room, nick: msg.nick });
        assert.equal(p[field], value);
      });
    }
    for (const [what, value] of over) {
      test(`${field} of ${what} -> bad_message`, async (t) => {
        const c = await connect(srv.url, { t });
        await badJoin(c, { type: 'join', id: `id-${field}`, room: newRoom(), [field]: value });
      });
    }
  }

  test('lengths are counted after JSON escapes are decoded', async (t) => {
    const c = await connect(srv.url, { t });
    const room = newRoom();
    // 64 x \u00e9: 384 bytes of JSON text, 128 bytes of UTF-8.
    const nick64 = '\\u00e9'.repeat(64);
    c.sendText(`{"type":"join","id":"esc","room":"${room}","nick":"${nick64}"}`);
    const reply = await c.next();
    assert.deepEqual(reply, { type: 'joined', payload: { id: 'esc', nick: 'é'.repeat(64), room, peers: [] } });

    const d = await connect(srv.url, { t });
    d.sendText(`{"type":"join","id":"esc2","room":"${room}","nick":"${'\\u00e9'.repeat(65)}"}`);
    const err = await d.next();
    assert.equal(err.payload?.code, 'bad_message', JSON.stringify(err));
    assert.equal(err.payload.ref, 'join');

    // 128 escaped quotes and backslashes: 256 bytes of text, 128 decoded.
    const e = await connect(srv.url, { t });
    const id = '\\"\\\\'.repeat(64);
    e.sendText(`{"type":"join","id":"${id}","room":"${room}"}`);
    const r2 = await e.next();
    assert.equal(r2.type, 'joined', JSON.stringify(r2));
    assert.equal(r2.payload.id, '"\\'.repeat(64));

    // Surrogate pairs: 32 x \ud83d\ude00 is 32 four-byte characters.
    const f = await connect(srv.url, { t });
    f.sendText(`{"type":"join","id":"${'\\ud83d\\ude00'.repeat(32)}","room":"${room}"}`);
    const r3 = await f.next();
    assert.equal(r3.type, 'joined', JSON.stringify(r3));
    f.sendText(`{"type":"leave"}`);
    await f.ping();
    f.sendText(`{"type":"join","id":"${'\\ud83d\\ude00'.repeat(33)}","room":"${room}"}`);
    const r4 = await f.next();
    assert.equal(r4.payload?.code, 'bad_message', JSON.stringify(r4));
  });
});

describe('--max-field 8', () => {
  let small;
  before(async () => { small = await startServer(['--max-field', '8']); });
  after(() => small && small.finish());

  test('8 bytes pass, 9 fail, for id, nick, room and receiverId', async (t) => {
    const a = await connect(small.url, { t });
    await a.join('abcdefgh', { room: 'roomroom', nick: 'nicknick' });
    for (const [field, value] of [['id', 'abcdefghi'], ['nick', 'nicknickn'], ['room', 'roomroomr'], ['id', 'éééé\u00e9']]) {
      const c = await connect(small.url, { t });
      await badJoin(c, { type: 'join', id: 'x', room: 'r', [field]: value });
    }
    const b = await joined(small.url, 'b', { t, room: 'roomroom' });
    await a.next(isJoinOf('b'));
    await expectError(b, { type: 'message', receiverId: 'abcdefghi', payload: {} }, 'bad_message', 'message');
    b.send({ type: 'message', receiverId: 'abcdefgh', payload: { ok: true } });
    assert.deepEqual(await a.next(), { type: 'message', payload: { ok: true, id: 'b', nick: '' } });
  });
});

describe('control characters', () => {
  const controls = ['\u0000', '\u0001', '\t', '\n', '\r', '\u001b', '\u001f', '\u007f'];
  for (const field of ['id', 'nick', 'room']) {
    test(`${field} holding U+0000-U+001F or U+007F -> bad_message`, async (t) => {
      const c = await connect(srv.url, { t });
      for (const ch of controls) {
        const msg = { type: 'join', id: 'ctl', room: newRoom(), nick: 'n', [field]: `a${ch}b` };
        c.send(msg);
        const reply = await c.next();
        assert.equal(reply.payload?.code, 'bad_message', `${field} with U+${ch.charCodeAt(0).toString(16).padStart(4, '0')}: ${JSON.stringify(reply)}`);
        assert.equal(reply.payload.ref, 'join');
      }
      await c.ping();
      await expectError(c, { type: 'leave' }, 'not_joined', 'leave');
    });
  }

  test('receiverId holding a control character -> bad_message', async (t) => {
    const { a, b } = await pair(t);
    for (const ch of controls) {
      await expectError(a, { type: 'message', receiverId: `b${ch}`, payload: {} }, 'bad_message', 'message', { ping: false });
    }
    await barrier(a, [b]);
    b.assertNone();
  });

  async function accepted(t, strings) {
    const room = newRoom();
    for (const [i, s] of strings.entries()) {
      const c = await connect(srv.url, { t });
      c.send({ type: 'join', id: `${s}-${i}`, nick: s, room: `${room}${s}` });
      const reply = await c.next();
      assert.equal(reply.type, 'joined', `${JSON.stringify(s)}: ${JSON.stringify(reply)}`);
      assert.equal(reply.payload.nick, s);
      assert.equal(reply.payload.id, `${s}-${i}`);
    }
  }

  test('a space and non-ASCII characters such as U+00A0 are accepted', async (t) => {
    await accepted(t, ['a b', '\u00a0', '\u2028\u2029', '\ufeff', '\u00ff']);
  });

  test('U+0080-U+009F are not control characters in the sense of docs/protocol.md and are accepted', async (t) => {
    await accepted(t, ['x\u0080y', 'x\u0085y', 'x\u009fy']);
  });

  test('control characters inside the payload are relayed', async (t) => {
    const { a, b } = await pair(t);
    a.send({ type: 'message', payload: { text: 'line1\nline2\u0000\u0001\u007f' } });
    assert.deepEqual(await b.next(), { type: 'message', payload: { text: 'line1\nline2\u0000\u0001\u007f', id: 'a', nick: 'Alice' } });
  });
});

describe('duplicate keys: the last wins', () => {
  test('duplicate id, nick and type', async (t) => {
    const room = newRoom();
    const c = await connect(srv.url, { t });
    c.sendText(`{"type":"join","id":"first","id":"last","nick":null,"nick":"N","room":"${room}"}`);
    assert.deepEqual(await c.next(), { type: 'joined', payload: { id: 'last', nick: 'N', room, peers: [] } });
    c.sendText('{"type":"bogus","type":"ping"}');
    assert.deepEqual(await c.next(), { type: 'pong', payload: {} });
    const d = await connect(srv.url, { t });
    d.sendText(`{"type":"join","id":"ok","id":"","room":"${room}"}`);
    const err = await d.next();
    assert.equal(err.payload?.code, 'bad_message', JSON.stringify(err));
  });

  test('duplicate payload and receiverId', async (t) => {
    const { a, b } = await pair(t);
    a.sendText('{"type":"message","receiverId":"nobody","receiverId":"b","payload":[],"payload":{"v":2}}');
    assert.deepEqual(await b.next(), { type: 'message', payload: { v: 2, id: 'a', nick: 'Alice' } });
    a.sendText('{"type":"message","payload":{"id":"x","v":1,"v":3}}');
    assert.deepEqual(await b.next(), { type: 'message', payload: { v: 3, id: 'a', nick: 'Alice' } });
  });
});

function nested(depth) {
  // `depth` levels of objects; the innermost holds a string.
  let v = { leaf: 'x' };
  for (let i = 1; i < depth; i++) v = { n: v };
  return v;
}

describe('JSON nesting depth', () => {
  test('a payload nested 10 deep is relayed', async (t) => {
    const { a, b } = await pair(t);
    a.send({ type: 'message', payload: nested(10) });
    assert.deepEqual(await b.next(), { type: 'message', payload: { ...nested(10), id: 'a', nick: 'Alice' } });
  });

  test('32 levels counting the outer object are accepted', async (t) => {
    const { a, b } = await pair(t);
    // outer object (1) + payload (2) ... = 32 levels
    a.send({ type: 'message', payload: nested(31) });
    assert.deepEqual(await b.next(), { type: 'message', payload: { ...nested(31), id: 'a', nick: 'Alice' } });
  });

  test('33 levels -> bad_json, connection open, nothing delivered', async (t) => {
    const { a, b } = await pair(t);
    await expectError(a, { type: 'message', payload: nested(32) }, 'bad_json', undefined);
    await barrier(a, [b]);
    b.assertNone();
  });

  test('deep arrays in an unknown member -> bad_json', async (t) => {
    const c = await connect(srv.url, { t });
    await expectError(c, `{"type":"ping","x":${'['.repeat(40)}${']'.repeat(40)}}`, 'bad_json', undefined);
  });

  test('50,000 unclosed brackets -> bad_json, the server survives', async (t) => {
    const c = await connect(srv.url, { t });
    await expectError(c, '['.repeat(50000), 'bad_json', undefined);
    await expectError(c, `{"type":"ping","x":${'{"a":'.repeat(10000)}`, 'bad_json', undefined);
  });

  test('valid JSON nested 10,000 deep -> bad_json, the server survives', async (t) => {
    const c = await connect(srv.url, { t });
    await expectError(c, `{"type":"ping","x":${'{"a":'.repeat(10000)}1${'}'.repeat(10000)}}`, 'bad_json', undefined);
    await expectError(c, `{"type":"ping","x":${'['.repeat(30000)}${']'.repeat(30000)}}`, 'bad_json', undefined);
  });
});

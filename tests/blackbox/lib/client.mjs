// A well-behaved client: the `ws` package, with a queue of parsed events.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { T, track, untrack, withTimeout } from './harness.mjs';
import { MessageQueue } from './queue.mjs';

export class Client {
  constructor(ws, name) {
    this.ws = ws;
    this.name = name;
    this.queue = new MessageQueue(name);
    this.closeInfo = null;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        untrack(this);
        this.closeInfo = { code, reason: reason.toString() };
        this.queue.end(`connection closed (${code})`);
        resolve(this.closeInfo);
      });
    });
    ws.on('error', (err) => { this.error = err; });
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        this.queue.push({ type: '__binary__', length: data.length });
        return;
      }
      const text = data.toString('utf8');
      let msg;
      try {
        msg = JSON.parse(text);
      } catch {
        msg = { type: '__not_json__', text };
      }
      this.queue.push(msg);
    });
  }

  get isOpen() {
    return this.ws.readyState === WebSocket.OPEN;
  }

  send(obj) {
    this.ws.send(JSON.stringify(obj));
  }

  sendText(text) {
    this.ws.send(text);
  }

  // Resolves once the message has been written to the socket.
  sendAsync(objOrText) {
    const data = typeof objOrText === 'string' ? objOrText : JSON.stringify(objOrText);
    return new Promise((resolve, reject) => {
      this.ws.send(data, (err) => (err ? reject(err) : resolve()));
    });
  }

  next(pred, timeout) {
    return this.queue.next(pred, timeout);
  }

  expectSilence(ms, pred, what) {
    return this.queue.expectSilence(ms, pred, what);
  }

  assertNone(pred, what) {
    this.queue.assertNone(pred, what);
  }

  // Pending messages matching `pred`, left in place.
  peek(pred) {
    return this.queue.peek(pred);
  }

  onMessage(fn) {
    return this.queue.onMessage(fn);
  }

  get history() {
    return this.queue.history;
  }

  // Starts the closing handshake.
  close(code = 1000, reason = '') {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(code, reason);
    return this.closed;
  }

  // Drops the TCP connection without a close frame.
  terminate() {
    this.ws.terminate();
    return this.closed;
  }

  destroy() {
    this.ws.terminate();
  }

  // ---------------------------------------------------------- protocol

  // Sends join and resolves with the `joined` payload; fails on an error event.
  async join(id, { room, nick, extra = {} } = {}) {
    const msg = { type: 'join', id, ...extra };
    if (room !== undefined) msg.room = room;
    if (nick !== undefined) msg.nick = nick;
    this.send(msg);
    const reply = await this.next((m) => m.type === 'joined' || m.type === 'error');
    assert.equal(reply.type, 'joined', `${this.name}: join ${JSON.stringify(msg)} answered ${JSON.stringify(reply)}`);
    this.id = id;
    return reply.payload;
  }

  // Sends ping and waits for its pong: proves the connection is open and
  // that everything sent before has been handled.
  async ping(timeout) {
    this.send({ type: 'ping' });
    const pong = await this.next('pong', timeout);
    assert.deepEqual(pong, { type: 'pong', payload: {} });
  }
}

let counter = 0;

// Opens a WebSocket connection; with `t` it is closed when the test ends.
// `options` go to the `ws` constructor as they are (TLS options such as
// `ca` for wss://, `localAddress`, `autoPong`).
export async function connect(url, { t, name, timeout = T(5000), headers, options = {} } = {}) {
  counter += 1;
  const label = name || `client${counter}`;
  const ws = new WebSocket(url, { perMessageDeflate: false, headers, handshakeTimeout: timeout, ...options });
  const client = new Client(ws, label);
  track(client);
  if (t) t.after(() => client.destroy());
  await withTimeout(new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
    ws.once('unexpected-response', (req, res) => reject(new Error(`${label}: upgrade answered ${res.statusCode}`)));
  }), timeout, `${label} to connect to ${url}`).catch((err) => {
    client.destroy();
    throw err;
  });
  return client;
}

// Connects and joins: resolves with the client; its `joined` payload is client.joined.
export async function joined(url, id, { t, room, nick, name, options } = {}) {
  const c = await connect(url, { t, name: name || id, options });
  c.joined = await c.join(id, { room, nick });
  return c;
}

// Asserts an error event: {"type":"error","payload":{code,message,ref?}}.
// `ref` undefined means the payload must not have one.
export function assertError(msg, code, ref) {
  assert.equal(msg.type, 'error', `expected an error event, got ${JSON.stringify(msg)}`);
  const p = msg.payload;
  assert.equal(typeof p, 'object', `error payload: ${JSON.stringify(msg)}`);
  assert.equal(p.code, code, `error code in ${JSON.stringify(msg)}`);
  assert.equal(typeof p.message, 'string', `error message in ${JSON.stringify(msg)}`);
  assert.ok(p.message.length > 0, `empty error message in ${JSON.stringify(msg)}`);
  if (ref === undefined) {
    assert.ok(!Object.hasOwn(p, 'ref'), `error should have no ref: ${JSON.stringify(msg)}`);
  } else {
    assert.equal(p.ref, ref, `error ref in ${JSON.stringify(msg)}`);
  }
}

// Sends `msg` (an object, or a string sent as is), expects an error with
// `code` and `ref`, then proves the connection is still open with a ping
// (unless `ping` is false). Resolves with the error event.
export async function expectError(client, msg, code, ref, { ping = true } = {}) {
  if (typeof msg === 'string') client.sendText(msg);
  else client.send(msg);
  const reply = await client.next();
  assertError(reply, code, ref);
  if (ping) await client.ping();
  return reply;
}

// A marker `message` broadcast by `sender` (a joined client) that each of
// `receivers` waits for: since messages from one peer arrive in order,
// anything the sender caused before the marker has arrived by then.
export async function barrier(sender, receivers) {
  const token = randomUUID();
  sender.send({ type: 'message', payload: { barrier: token } });
  await Promise.all(receivers.map((r) => r.next((m) => m.type === 'message' && m.payload && m.payload.barrier === token)));
}

export function isLeaveOf(id) {
  return (m) => m.type === 'leave' && m.payload && m.payload.id === id;
}

export function isJoinOf(id) {
  return (m) => m.type === 'join' && m.payload && m.payload.id === id;
}

// Tries a WebSocket upgrade; resolves with the HTTP status of a refusal, or
// 101 (and closes the connection again) when it was let in. `options` go
// to the `ws` constructor (TLS options, `localAddress`).
export function upgradeStatus(url, headers = {}, options = {}, timeout = T(5000)) {
  return withTimeout(new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, perMessageDeflate: false, ...options });
    ws.on('unexpected-response', (req, res) => {
      resolve(res.statusCode);
      req.destroy();
    });
    ws.on('open', () => {
      ws.terminate();
      resolve(101);
    });
    ws.on('error', (err) => { if (!err.message.includes('Unexpected server response')) reject(err); });
  }), timeout, `an upgrade to ${url}${options.localAddress ? ` from ${options.localAddress}` : ''}`);
}

// A raw RFC 6455 client on node:net, for what no well-behaved client sends:
// unmasked frames, reserved bits and opcodes, invalid UTF-8, broken
// fragmentation, binary frames, data pipelined behind the handshake, a client
// that never answers pings or never reads. Also a keep-alive HTTP connection.

import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { T, track, untrack, withTimeout } from './harness.mjs';
import { MessageQueue } from './queue.mjs';

export const OP = { CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa };

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

function toBuffer(payload) {
  if (payload === undefined || payload === null) return Buffer.alloc(0);
  if (Buffer.isBuffer(payload)) return payload;
  if (typeof payload === 'string') return Buffer.from(payload, 'utf8');
  return Buffer.from(JSON.stringify(payload), 'utf8');
}

// One frame. `rsv` is the three reserved bits as a number 0-7 (4 = RSV1,
// 2 = RSV2, 1 = RSV3); `mask` false sends it unmasked.
export function encodeFrame({ fin = true, opcode = OP.TEXT, rsv = 0, mask = true, payload } = {}) {
  const data = toBuffer(payload);
  const len = data.length;
  let header;
  if (len < 126) {
    header = Buffer.alloc(2);
    header[1] = len;
  } else if (len < 65536) {
    header = Buffer.alloc(4);
    header[1] = 126;
    header.writeUInt16BE(len, 2);
  } else {
    header = Buffer.alloc(10);
    header[1] = 127;
    header.writeBigUInt64BE(BigInt(len), 2);
  }
  header[0] = (fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0f);
  if (!mask) return Buffer.concat([header, data]);
  header[1] |= 0x80;
  const key = randomBytes(4);
  const body = Buffer.alloc(len);
  for (let i = 0; i < len; i++) body[i] = data[i] ^ key[i & 3];
  return Buffer.concat([header, key, body]);
}

export function closePayload(code, reason = '') {
  if (code === undefined) return Buffer.alloc(0);
  const b = Buffer.alloc(2);
  b.writeUInt16BE(code, 0);
  return Buffer.concat([b, Buffer.from(reason, 'utf8')]);
}

// Incremental decoder of frames (masked or not).
export class FrameDecoder {
  constructor(onFrame) {
    this.buf = Buffer.alloc(0);
    this.onFrame = onFrame;
  }

  push(chunk) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      const b = this.buf;
      if (b.length < 2) return;
      let len = b[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (b.length < 4) return;
        len = b.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (b.length < 10) return;
        len = Number(b.readBigUInt64BE(2));
        off = 10;
      }
      const masked = (b[1] & 0x80) !== 0;
      const keyOff = off;
      if (masked) off += 4;
      if (b.length < off + len) return;
      let payload = b.subarray(off, off + len);
      if (masked) {
        const key = b.subarray(keyOff, keyOff + 4);
        payload = Buffer.from(payload);
        for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3];
      }
      this.buf = b.subarray(off + len);
      this.onFrame({ fin: (b[0] & 0x80) !== 0, rsv: (b[0] >> 4) & 7, opcode: b[0] & 0x0f, masked, payload });
    }
  }
}

function openSocket(host, port, timeout, secure = false) {
  return withTimeout(new Promise((resolve, reject) => {
    // secure: TLS; true trusts any certificate (tests make their own), an
    // object is tls.connect's options ({ ca } to check the certificate)
    const tlsOptions = secure === true ? { rejectUnauthorized: false } : secure;
    const s = secure
      ? tls.connect({ host, port, servername: 'localhost', ...tlsOptions })
      : net.connect({ host, port });
    s.setNoDelay(true);
    // Never an unhandled 'error' (a reset after a timeout, say); the users
    // of the socket add their own listeners.
    s.on('error', (err) => { s.lastError = err; });
    s.once(secure ? 'secureConnect' : 'connect', () => { s.off('error', reject); resolve(s); });
    s.once('error', reject);
  }), timeout, `a TCP connection to ${host}:${port}`);
}

// Reads one HTTP response head off `socket`: {status, headers, rest}.
function readHead(socket, timeout) {
  return withTimeout(new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      cleanup();
      const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(lines[0].split(' ')[1]);
      const headers = {};
      for (const line of lines.slice(1)) {
        const i = line.indexOf(':');
        if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      resolve({ status, statusLine: lines[0], headers, rest: buf.subarray(end + 4) });
    };
    const onEnd = () => { cleanup(); reject(new Error(`connection closed before a response (got ${JSON.stringify(buf.toString('latin1'))})`)); };
    const onError = (err) => { cleanup(); reject(err); };
    const cleanup = () => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onError);
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    socket.on('error', onError);
  }), timeout, 'an HTTP response');
}

let counter = 0;

export class RawClient {
  // Use rawConnect().
  constructor(socket, rest, { name, autoPong = true, echoClose = true } = {}) {
    this.socket = socket;
    this.name = name;
    this.autoPong = autoPong;
    this.echoClose = echoClose;
    this.queue = new MessageQueue(name);
    this.pings = []; // payloads of pings received
    this.pongs = []; // payloads of pongs received
    this.frames = []; // every frame received: {fin, rsv, opcode, length}
    this.closeFrame = null; // {code, reason} of the server's close frame
    this.sentClose = false;
    this.fragments = null;
    this.decoder = new FrameDecoder((f) => this.onFrame(f));
    // Settles at the server's close frame, or at the end of the connection.
    this.closing = new Promise((resolve) => { this.onClosing = resolve; });
    this.closed = new Promise((resolve) => {
      socket.on('close', () => {
        untrack(this);
        const info = this.closeFrame
          ? { code: this.closeFrame.code, reason: this.closeFrame.reason, closeFrame: true }
          : { code: 1006, reason: '', closeFrame: false };
        this.closeInfo = info;
        this.queue.end(`connection closed (${info.code})`);
        this.onClosing(info);
        resolve(info);
      });
    });
    socket.on('error', (err) => { this.error = err; });
    socket.on('data', (chunk) => this.decoder.push(chunk));
    if (rest && rest.length) this.decoder.push(rest);
  }

  onFrame(f) {
    this.frames.push({ fin: f.fin, rsv: f.rsv, opcode: f.opcode, length: f.payload.length });
    switch (f.opcode) {
      case OP.PING:
        this.pings.push(f.payload);
        if (this.autoPong) this.sendFrame({ opcode: OP.PONG, payload: f.payload });
        return;
      case OP.PONG:
        this.pongs.push(f.payload);
        return;
      case OP.CLOSE: {
        const code = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005;
        const reason = f.payload.length > 2 ? f.payload.subarray(2).toString('utf8') : '';
        if (!this.closeFrame) {
          this.closeFrame = { code, reason };
          this.onClosing({ code, reason, closeFrame: true });
        }
        if (this.echoClose && !this.sentClose) {
          this.sentClose = true;
          this.sendFrame({ opcode: OP.CLOSE, payload: code === 1005 ? undefined : closePayload(code) });
          this.socket.end();
        }
        return;
      }
      case OP.TEXT:
      case OP.BINARY:
        this.fragments = { opcode: f.opcode, parts: [f.payload] };
        break;
      case OP.CONT:
        if (this.fragments) this.fragments.parts.push(f.payload);
        break;
      default:
        return;
    }
    if (!f.fin || !this.fragments) return;
    const { opcode, parts } = this.fragments;
    this.fragments = null;
    const data = Buffer.concat(parts);
    if (opcode === OP.BINARY) {
      this.queue.push({ type: '__binary__', length: data.length });
      return;
    }
    const text = data.toString('utf8');
    try {
      this.queue.push(JSON.parse(text));
    } catch {
      this.queue.push({ type: '__not_json__', text });
    }
  }

  get isOpen() {
    return !this.socket.destroyed && this.closeFrame === null;
  }

  write(buf) {
    if (this.socket.destroyed || this.socket.writableEnded) return false;
    return this.socket.write(buf);
  }

  // Resolves once `buf` has been handed to the kernel.
  writeAsync(buf) {
    return new Promise((resolve, reject) => {
      if (this.socket.destroyed || this.socket.writableEnded) {
        reject(new Error(`${this.name}: socket is closed`));
        return;
      }
      this.socket.write(buf, (err) => (err ? reject(err) : resolve()));
    });
  }

  sendFrame(opts) {
    if (opts.opcode === OP.CLOSE) this.sentClose = true;
    return this.write(encodeFrame(opts));
  }

  send(obj) {
    return this.sendFrame({ payload: JSON.stringify(obj) });
  }

  sendText(text) {
    return this.sendFrame({ payload: text });
  }

  sendClose(code = 1000, reason = '') {
    return this.sendFrame({ opcode: OP.CLOSE, payload: closePayload(code, reason) });
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

  onMessage(fn) {
    return this.queue.onMessage(fn);
  }

  // Pending messages matching `pred`, left in place.
  peek(pred) {
    return this.queue.peek(pred);
  }

  get history() {
    return this.queue.history;
  }

  // Stops reading: what the server sends piles up in the kernel, then in the server.
  pause() {
    this.socket.pause();
  }

  resume() {
    this.socket.resume();
  }

  // Drops the TCP connection without a close frame.
  destroy() {
    this.socket.destroy();
  }

  // Sends join and resolves with the `joined` payload.
  async join(id, { room, nick } = {}) {
    const msg = { type: 'join', id };
    if (room !== undefined) msg.room = room;
    if (nick !== undefined) msg.nick = nick;
    this.send(msg);
    const reply = await this.next((m) => m.type === 'joined' || m.type === 'error');
    if (reply.type !== 'joined') throw new Error(`${this.name}: join answered ${JSON.stringify(reply)}`);
    this.id = id;
    return reply.payload;
  }

  async ping(timeout) {
    this.send({ type: 'ping' });
    return this.next('pong', timeout);
  }

  // Resolves with {code, reason, closeFrame} once the TCP connection has ended.
  waitClosed(timeout = T(5000)) {
    return withTimeout(this.closed, timeout, `${this.name}'s connection to end`);
  }

  // Resolves with {code, reason, closeFrame} at the server's close frame, or
  // once the TCP connection has ended without one (code 1006).
  waitCloseFrame(timeout = T(5000)) {
    return withTimeout(this.closing, timeout, `${this.name} to be closed by the server`);
  }
}

function upgradeRequest(host, port, path, key, headers) {
  const lines = [
    `GET ${path} HTTP/1.1`,
    `Host: ${host.includes(':') ? `[${host}]` : host}:${port}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${key}`,
    'Sec-WebSocket-Version: 13',
  ];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

// Opens a WebSocket connection by hand. `target` is a started server or
// {httpHost, port}. `pipelined` (a Buffer) is written in the same write as
// the upgrade request. With `t` the socket is destroyed when the test ends.
export async function rawConnect(target, {
  t, name, path = '/', headers = {}, pipelined, autoPong = true, echoClose = true, timeout = T(5000), host,
  secure = false,
} = {}) {
  counter += 1;
  const label = name || `raw${counter}`;
  const h = host || target.httpHost;
  const socket = await openSocket(h, target.port, timeout, secure);
  const holder = { destroy: () => socket.destroy() };
  track(holder);
  if (t) t.after(() => socket.destroy());
  const key = randomBytes(16).toString('base64');
  let req = Buffer.from(upgradeRequest(h, target.port, path, key, headers), 'latin1');
  if (pipelined) req = Buffer.concat([req, pipelined]);
  socket.write(req);
  let head;
  try {
    head = await readHead(socket, timeout);
  } catch (err) {
    socket.destroy();
    throw err;
  }
  if (head.status !== 101) {
    socket.destroy();
    const err = new Error(`${label}: upgrade answered ${head.statusLine}`);
    err.status = head.status;
    throw err;
  }
  const accept = createHash('sha1').update(key + GUID).digest('base64');
  if (head.headers['sec-websocket-accept'] !== accept) {
    socket.destroy();
    throw new Error(`${label}: bad Sec-WebSocket-Accept ${head.headers['sec-websocket-accept']}`);
  }
  untrack(holder);
  const client = new RawClient(socket, head.rest, { name: label, autoPong, echoClose });
  track(client);
  return client;
}

// ------------------------------------------------------------ keep-alive HTTP

// A persistent HTTP/1.1 connection on which requests are sent one after the
// other, to see how the server answers on a connection opened earlier.
// `secure` as for rawConnect (TLS).
export class HttpConn {
  static async open(target, { t, timeout = T(5000), host, secure = false } = {}) {
    const h = host || target.httpHost;
    const socket = await openSocket(h, target.port, timeout, secure);
    const conn = new HttpConn(socket, h, target.port);
    track(conn);
    if (t) t.after(() => socket.destroy());
    return conn;
  }

  constructor(socket, host, port) {
    this.socket = socket;
    this.host = host;
    this.port = port;
    this.buf = Buffer.alloc(0);
    this.ended = false;
    this.waiter = null;
    socket.on('data', (chunk) => { this.buf = Buffer.concat([this.buf, chunk]); this.poke(); });
    socket.on('end', () => { this.ended = true; this.poke(); });
    socket.on('close', () => { this.ended = true; untrack(this); this.poke(); });
    socket.on('error', (err) => { this.error = err; });
  }

  poke() {
    if (this.waiter) this.waiter();
  }

  // Parses one complete response from the buffer, or returns null.
  parse() {
    const end = this.buf.indexOf('\r\n\r\n');
    if (end < 0) return null;
    const lines = this.buf.subarray(0, end).toString('latin1').split('\r\n');
    const status = Number(lines[0].split(' ')[1]);
    const headers = {};
    for (const line of lines.slice(1)) {
      const i = line.indexOf(':');
      if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    let rest = this.buf.subarray(end + 4);
    let body;
    if (headers['transfer-encoding'] && /chunked/i.test(headers['transfer-encoding'])) {
      const parts = [];
      for (;;) {
        const le = rest.indexOf('\r\n');
        if (le < 0) return null;
        const size = parseInt(rest.subarray(0, le).toString('latin1'), 16);
        if (rest.length < le + 2 + size + 2) return null;
        parts.push(rest.subarray(le + 2, le + 2 + size));
        rest = rest.subarray(le + 2 + size + 2);
        if (size === 0) break;
      }
      body = Buffer.concat(parts);
    } else if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length']);
      if (rest.length < n) return null;
      body = rest.subarray(0, n);
      rest = rest.subarray(n);
    } else if (status === 101 || status === 204 || status === 304) {
      body = Buffer.alloc(0);
    } else {
      if (!this.ended) return null; // delimited by the end of the connection
      body = rest;
      rest = Buffer.alloc(0);
    }
    this.buf = rest;
    return { status, headers, body: body.toString('utf8') };
  }

  // Resolves once the server has closed the connection.
  waitClosed(timeout = T(5000)) {
    return withTimeout(new Promise((resolve) => {
      if (this.socket.destroyed || this.socket.readyState === 'closed') resolve();
      else this.socket.once('close', resolve);
    }), timeout, 'the server to close the HTTP connection');
  }

  // Sends `text` (a string or a Buffer) as is and resolves with the
  // response; rejects if the server closes the connection first.
  requestRaw(text, timeout = T(5000)) {
    return withTimeout(new Promise((resolve, reject) => {
      this.waiter = () => {
        const res = this.parse();
        if (res) {
          this.waiter = null;
          resolve(res);
        } else if (this.ended) {
          this.waiter = null;
          reject(new Error(`the server closed the keep-alive connection without an answer${this.error ? ` (${this.error.code})` : ''}`));
        }
      };
      if (this.ended) {
        this.poke();
        return;
      }
      this.socket.write(text);
    }), timeout, 'an HTTP response on the keep-alive connection');
  }

  get(path, headers = {}, timeout) {
    const all = {
      Host: `${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port}`,
      Connection: 'keep-alive',
      ...headers,
    };
    const lines = [`GET ${path} HTTP/1.1`];
    for (const [k, v] of Object.entries(all)) lines.push(`${k}: ${v}`);
    return this.requestRaw(`${lines.join('\r\n')}\r\n\r\n`, timeout);
  }

  // A WebSocket upgrade request on this connection, with `extra` header
  // lines (Origin, ...); resolves with the response head.
  upgrade(path = '/', timeout, extra = {}) {
    const key = randomBytes(16).toString('base64');
    return this.get(path, {
      Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Key': key, 'Sec-WebSocket-Version': '13', ...extra,
    }, timeout);
  }

  destroy() {
    this.socket.destroy();
  }
}

// switchboard-client.js: a browser client for the switchboard signaling
// server (protocol version 1.1), and a mesh of RTCPeerConnections on top of
// it. One ES module, no dependencies. Documented in docs/client.md.
//
//   import { SignalingClient, Mesh } from './switchboard-client.js';
//   const client = new SignalingClient('wss://signal.example.org/', { room: 'demo', id: 'alice', token });
//   const mesh = new Mesh(client, { stream });  // optional: video calls
//   client.connect();

// Connection states, in the order a healthy connection goes through them.
export const STATES = Object.freeze(['idle', 'connecting', 'joining', 'joined', 'reconnecting', 'closed']);

function randomId() {
  const bytes = new Uint8Array(8);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

// The delay before reconnect attempt n (0-based): exponential, capped, and
// spread by a random factor so that clients dropped together do not come
// back together.
export function backoffDelay(n, { minDelay = 500, maxDelay = 15000, factor = 2, jitter = 0.5 } = {}, random = Math.random) {
  const base = Math.min(maxDelay, minDelay * factor ** n);
  return Math.round(base * (1 - jitter + 2 * jitter * random()));
}

function emit(target, type, detail) {
  target.dispatchEvent(new CustomEvent(type, { detail }));
}

// A WebSocket connection to switchboard that joins one room and stays in it:
// after a drop it reconnects with exponential backoff and jitter and joins
// the same room with the same id again.
//
// A server that requires room tokens admits a `join` only with one: `token`
// is either a string, sent with every join, or a function (async or not)
// called with { id, room, nick } before every join, whose string is sent:
// tokens expire, and a rejoin hours later needs a fresh one. When the
// server answers `unauthorized`, a token function is asked once more and
// the join tried again with what it returns; a second `unauthorized`, or
// the first with a string or no token, is a refused join.
//
// Events (CustomEvent, the data in `event.detail`):
//   state        { state, previous }            see STATES
//   joined       { id, nick, room, peers[, iceServers] }  after every (re)join
//   peerjoined   { id, nick }                   another peer joined
//   peerleft     { id, nick }                   a peer left (or was dropped)
//   signal       { type, from, nick, payload }  offer, answer or icecandidate
//   message      { from, nick, payload }        an application message
//   error        { code, message, ref }         the server refused a message;
//                                               or token_failed: the token
//                                               function failed (a retry
//                                               with backoff follows)
//   refused      { code, message }              the server refused the join;
//                                               the client is closed
//   disconnected { code, reason, willReconnect, opened }
export class SignalingClient extends EventTarget {
  constructor(url, {
    room = 'default', id = randomId(), nick = '',
    token = null, reconnect = true, backoff = {}, pingInterval = 20000, joinRetries = 20,
    WebSocket: WebSocketImpl = globalThis.WebSocket,
  } = {}) {
    super();
    if (token !== null && token !== undefined && typeof token !== 'string' && typeof token !== 'function') {
      throw new TypeError('token must be a string or a function');
    }
    this.url = url;
    this.room = room;
    this.id = id;
    this.nick = nick;
    this.token = token ?? null;
    this.reconnect = reconnect;
    this.backoff = backoff;
    this.pingInterval = pingInterval;
    this.joinRetries = joinRetries;
    this.WebSocket = WebSocketImpl;
    this.state = 'idle';
    this.peers = new Map(); // id -> { id, nick }, the room's other members
    this.ws = null;
    this.attempt = 0; // reconnect attempts since the last successful join
    this.idTakenRetries = 0;
    this.unauthorizedRetries = 0; // on this connection
    this.iceServers = null; // what the last `joined` brought, if anything
    this.timer = null;
    this.pinger = null;
  }

  setState(state) {
    if (state === this.state) return;
    const previous = this.state;
    this.state = state;
    emit(this, 'state', { state, previous });
  }

  // Opens the connection and joins; after a drop, does so again by itself
  // until close() is called.
  connect() {
    if (this.state !== 'idle' && this.state !== 'closed') return;
    this.closing = false;
    this.attempt = 0;
    this.idTakenRetries = 0;
    this.open();
  }

  open() {
    clearTimeout(this.timer);
    this.setState(this.attempt ? 'reconnecting' : 'connecting');
    if (this.closing) return; // a state listener called close()
    let ws;
    try {
      ws = new this.WebSocket(this.url);
    } catch (err) {
      this.dropped(1006, String(err && err.message ? err.message : err), false);
      return;
    }
    this.ws = ws;
    let opened = false; // a close before the open: refused or unreachable
    ws.onopen = () => {
      if (ws !== this.ws) return;
      opened = true;
      this.unauthorizedRetries = 0;
      this.setState('joining');
      this.startPinging();
      this.sendJoin(ws);
    };
    ws.onmessage = (ev) => {
      if (ws !== this.ws) return;
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      this.handle(msg);
    };
    ws.onclose = (ev) => {
      if (ws !== this.ws) return;
      this.dropped(ev.code, ev.reason, opened);
    };
    ws.onerror = () => {}; // a close event always follows
  }

  // Sends `join` on ws, with the token: the string given, or a fresh one
  // from the token function. A function that fails (or returns no string)
  // is like a drop: an `error` event, then a new connection after the
  // backoff, which asks it again.
  async sendJoin(ws) {
    const msg = { type: 'join', id: this.id, nick: this.nick, room: this.room };
    if (typeof this.token === 'function') {
      let token;
      try {
        token = await this.token({ id: this.id, room: this.room, nick: this.nick });
        if (typeof token !== 'string') throw new TypeError(`the token function gave ${typeof token}, not a string`);
      } catch (err) {
        if (ws !== this.ws || this.state !== 'joining') return;
        const message = String(err && err.message ? err.message : err);
        emit(this, 'error', { code: 'token_failed', message, ref: 'join' });
        if (ws !== this.ws) return; // a listener called close()
        ws.close(1000, 'no token');
        this.dropped(1000, `no token: ${message}`, true);
        return;
      }
      // closed, dropped or replaced while the token was on its way
      if (ws !== this.ws || this.state !== 'joining') return;
      msg.token = token;
    } else if (this.token !== null) {
      msg.token = this.token;
    }
    this.sendRaw(msg);
  }

  handle(msg) {
    const p = msg.payload || {};
    switch (msg.type) {
      case 'joined':
        this.attempt = 0;
        this.idTakenRetries = 0;
        this.peers = new Map(p.peers.map((x) => [x.id, { id: x.id, nick: x.nick }]));
        // a server with ICE servers configured mints fresh TURN
        // credentials at each join
        this.iceServers = Array.isArray(p.iceServers) ? p.iceServers : null;
        this.setState('joined');
        emit(this, 'joined', {
          id: p.id, nick: p.nick, room: p.room, peers: p.peers.slice(),
          ...(this.iceServers ? { iceServers: this.iceServers } : {}),
        });
        break;
      case 'join':
        this.peers.set(p.id, { id: p.id, nick: p.nick });
        emit(this, 'peerjoined', { id: p.id, nick: p.nick });
        break;
      case 'leave':
        this.peers.delete(p.id);
        emit(this, 'peerleft', { id: p.id, nick: p.nick });
        break;
      case 'offer':
      case 'answer':
      case 'icecandidate': {
        const { id: from, nick, ...payload } = p;
        emit(this, 'signal', { type: msg.type, from, nick, payload });
        break;
      }
      case 'message': {
        const { id: from, nick, ...payload } = p;
        emit(this, 'message', { from, nick, payload });
        break;
      }
      case 'error':
        if (p.code === 'id_taken' && p.ref === 'join' && this.state === 'joining' &&
            this.idTakenRetries < this.joinRetries) {
          // After a drop the server may not have noticed the old
          // connection yet (its heartbeat will): try again shortly.
          this.idTakenRetries += 1;
          const ws = this.ws;
          this.timer = setTimeout(() => {
            if (this.state === 'joining' && ws === this.ws) this.sendJoin(ws);
          }, backoffDelay(Math.min(this.idTakenRetries, 4), this.backoff));
          break;
        }
        if (p.code === 'unauthorized' && p.ref === 'join' && this.state === 'joining' &&
            typeof this.token === 'function' && this.unauthorizedRetries < 1) {
          // the token may have expired on its way: once more with a fresh
          // one; a second refusal means the token function's answer will
          // not do
          this.unauthorizedRetries += 1;
          this.sendJoin(this.ws);
          break;
        }
        if (p.ref === 'join' && this.state === 'joining') {
          // room_full, unauthorized (after the retry with a token
          // function), a bad id, nick or room, id_taken after the
          // retries: trying again would meet the same answer
          this.close();
          emit(this, 'refused', { code: p.code, message: p.message });
          break;
        }
        emit(this, 'error', { code: p.code, message: p.message, ref: p.ref });
        break;
      default:
        break; // pong, and whatever a later server version adds
    }
  }

  dropped(code, reason, opened) {
    this.stopPinging();
    clearTimeout(this.timer);
    this.ws = null;
    const willReconnect = this.reconnect && !this.closing;
    const hadPeers = [...this.peers.values()];
    this.peers = new Map();
    emit(this, 'disconnected', { code, reason, willReconnect, opened });
    // Nobody will tell us who left while we were away: a rejoin's roster
    // says who is there now.
    for (const peer of hadPeers) emit(this, 'peerleft', { ...peer, disconnected: true });
    // (a listener may have called close() meanwhile)
    if (!willReconnect || this.closing) {
      this.setState('closed');
      return;
    }
    const delay = backoffDelay(this.attempt, this.backoff);
    this.attempt += 1;
    this.setState('reconnecting');
    if (!this.closing) this.timer = setTimeout(() => this.open(), delay);
  }

  // Browsers cannot send WebSocket pings; a `ping` message keeps idle
  // connections alive through proxies that cut silent ones.
  startPinging() {
    this.stopPinging();
    if (this.pingInterval > 0) {
      this.pinger = setInterval(() => this.sendRaw({ type: 'ping' }), this.pingInterval);
    }
  }

  stopPinging() {
    clearInterval(this.pinger);
    this.pinger = null;
  }

  sendRaw(obj) {
    if (!this.ws || this.ws.readyState !== 1) return false;
    this.ws.send(JSON.stringify(obj));
    return true;
  }

  // Sends an offer, answer or icecandidate (payload: an object) to one peer,
  // or to the whole room without `to` (not for an answer). Returns false
  // when not joined (nothing is queued: signaling after a reconnect starts
  // over).
  signal(type, payload, to) {
    if (!['offer', 'answer', 'icecandidate'].includes(type)) throw new TypeError(`not a signal type: ${type}`);
    return this.relay(type, payload, to);
  }

  // Sends an application message (payload: an object) to one peer or, without
  // `to`, to everyone else in the room.
  send(payload, to) {
    return this.relay('message', payload, to);
  }

  relay(type, payload, to) {
    if (this.state !== 'joined') return false;
    const msg = { type, payload };
    if (to !== undefined) msg.receiverId = to;
    return this.sendRaw(msg);
  }

  // Leaves the room and closes the connection for good.
  close() {
    const wasJoined = this.state === 'joined';
    this.closing = true;
    clearTimeout(this.timer);
    this.stopPinging();
    const ws = this.ws;
    this.ws = null;
    this.peers = new Map();
    if (ws) {
      if (wasJoined && ws.readyState === 1) ws.send(JSON.stringify({ type: 'leave' }));
      ws.close(1000, 'bye');
    }
    this.setState('closed');
  }
}

const DEFAULT_RTC_CONFIG = { iceServers: [{ urls: 'stun:stun.l.google.com:19302' }] };

// One RTCPeerConnection per other peer of the room. The newcomer offers to
// the peers its `joined` roster names; the others make their connection
// when that offer arrives, so a new pair starts without two offers
// crossing. After that both sides may renegotiate at any time, with the
// "perfect negotiation" pattern: on a collision the polite peer (the one
// whose id sorts after the other's) yields. Offers, answers and candidates
// go to that one peer through the server, and are handled one at a time per
// peer, in the order they came. Each connection carries the local stream's
// tracks and one data channel ("chat", negotiated: the same on both sides,
// no extra round trip).
//
// ICE servers: a server configured with them sends its own in `joined`
// (TURN credentials minted for that join). Each connection made after a
// join uses the page's rtcConfig with the server's servers after the
// page's; without an rtcConfig of the page's, the server's alone (the
// default STUN server only when the server sends none). Connections kept
// across a rejoin take the new servers too, before their ICE restart.
//
// Events (CustomEvent, `event.detail`):
//   peer       { id, nick, pc }             a connection was created
//   track      { id, stream, track }        a remote track arrived
//   peerstate  { id, state }                pc.connectionState changed
//   channel    { id, state }                the data channel opened or closed
//   data       { id, data }                 a data channel message (a string)
//   peerclosed { id }                       the connection was closed
export class Mesh extends EventTarget {
  constructor(client, { stream = null, rtcConfig = null, RTCPeerConnection: PC = globalThis.RTCPeerConnection } = {}) {
    super();
    this.client = client;
    this.stream = stream;
    this.rtcConfig = rtcConfig; // null: the default, unless the server sends servers
    this.PC = PC;
    this.peers = new Map(); // id -> state of one connection
    this.queues = new Map(); // id -> the promise its signals are chained on
    this.collisions = 0; // offers that crossed one of ours
    this.listeners = [
      ['joined', (e) => this.onJoined(e.detail.peers)],
      ['peerleft', (e) => { if (!e.detail.disconnected) this.drop(e.detail.id); }],
      ['signal', (e) => this.enqueue(e.detail)],
    ];
    for (const [type, fn] of this.listeners) client.addEventListener(type, fn);
  }

  // After every (re)join: a connection to each peer of the roster. One we
  // still have from before a drop is renegotiated (an ICE restart): the
  // other side may have lost it meanwhile (it got our `leave`), and then
  // answers from a new connection, which makes ours start over too. One
  // that never got connected is made anew.
  onJoined(roster) {
    const config = this.configuration();
    for (const { id, nick } of roster) {
      const old = this.peers.get(id);
      if (old && old.pc.connectionState !== 'connected') this.drop(id);
      else if (old) {
        // the server's servers of this join (fresh TURN credentials) for
        // the restart
        if (this.client.iceServers) {
          try {
            old.pc.setConfiguration({ ...old.pc.getConfiguration(), iceServers: config.iceServers });
          } catch (err) {
            console.warn(`switchboard: the new ICE servers for ${id} were not taken`, err);
          }
        }
        old.pc.restartIce();
      }
      this.ensure(id, nick);
    }
  }

  // The RTCConfiguration of a new connection: the page's, with the ICE
  // servers of the last join after its own.
  configuration() {
    const fromServer = this.client.iceServers || [];
    if (!this.rtcConfig) return fromServer.length ? { iceServers: fromServer.slice() } : DEFAULT_RTC_CONFIG;
    return { ...this.rtcConfig, iceServers: [...(this.rtcConfig.iceServers || []), ...fromServer] };
  }

  polite(id) {
    return this.client.id > id;
  }

  // The connection to peer id, made if there is none or the old one failed.
  ensure(id, nick = '') {
    if (id === this.client.id) return null;
    const old = this.peers.get(id);
    if (old && !['failed', 'closed'].includes(old.pc.connectionState)) {
      old.nick = nick || old.nick;
      return old;
    }
    if (old) this.drop(id);
    const pc = new this.PC(this.configuration());
    const peer = {
      id, nick, pc, conn: randomId(), remoteConn: null,
      makingOffer: false, ignoreOffer: false, answerPending: false,
      channel: pc.createDataChannel('chat', { negotiated: true, id: 0 }),
      stream: null,
    };
    this.peers.set(id, peer);

    pc.onnegotiationneeded = async () => {
      try {
        peer.makingOffer = true;
        await pc.setLocalDescription();
        this.client.signal('offer', { description: pc.localDescription.toJSON(), conn: peer.conn }, id);
      } catch (err) {
        console.warn(`switchboard: offer to ${id} failed`, err);
      } finally {
        peer.makingOffer = false;
      }
    };
    pc.onicecandidate = ({ candidate }) => {
      if (candidate) this.client.signal('icecandidate', { candidate: candidate.toJSON(), conn: peer.conn }, id);
    };
    pc.ontrack = ({ track, streams }) => {
      peer.stream = streams[0] || peer.stream || new MediaStream();
      if (!streams[0]) peer.stream.addTrack(track);
      emit(this, 'track', { id, stream: peer.stream, track });
    };
    pc.onconnectionstatechange = () => {
      emit(this, 'peerstate', { id, state: pc.connectionState });
      if (pc.connectionState !== 'failed' || this.peers.get(id) !== peer) return;
      // still in the room: start over with a new connection (the other
      // side replaces its own when it sees the new one); gone (it left
      // while we were away from the server): let it go
      this.drop(id);
      if (this.client.peers.has(id)) this.ensure(id, peer.nick);
    };
    peer.channel.onopen = () => emit(this, 'channel', { id, state: 'open' });
    peer.channel.onclose = () => emit(this, 'channel', { id, state: 'closed' });
    peer.channel.onmessage = (ev) => emit(this, 'data', { id, data: ev.data });
    if (this.stream) for (const track of this.stream.getTracks()) pc.addTrack(track, this.stream);
    emit(this, 'peer', { id, nick, pc });
    return peer;
  }

  // Signals from one peer are handled in order, each after the one before
  // has finished (a candidate must not overtake the description it belongs
  // to).
  enqueue(signal) {
    const prev = this.queues.get(signal.from) || Promise.resolve();
    const next = prev.then(() => this.onSignal(signal)).catch((err) => {
      console.warn(`switchboard: a signal from ${signal.from} failed`, err);
    });
    this.queues.set(signal.from, next);
    next.then(() => {
      if (this.queues.get(signal.from) === next) this.queues.delete(signal.from);
    });
  }

  async onSignal({ type, from, payload }) {
    let peer = this.peers.get(from);
    // Signals name the connection they belong to. One from a connection
    // other than the one ours is talking to means the other side started
    // over (a new page, or a connection that failed): ours cannot be
    // renegotiated with it, so make a new one.
    if (peer && payload.conn && peer.remoteConn && payload.conn !== peer.remoteConn) {
      if (type === 'icecandidate') return; // for a connection gone
      this.drop(from);
      peer = null;
      if (type === 'answer') {
        // to an offer of our old connection: the new one offers afresh
        this.ensure(from, this.client.peers.get(from)?.nick);
        return;
      }
    }
    if (!peer) {
      if (type !== 'offer') return; // a leftover of a connection gone
      peer = this.ensure(from, this.client.peers.get(from)?.nick);
      if (!peer) return;
    }
    if (payload.conn && type !== 'icecandidate') peer.remoteConn = payload.conn;
    const { pc } = peer;
    try {
      if (type === 'icecandidate') {
        try {
          await pc.addIceCandidate(payload.candidate);
        } catch (err) {
          if (!peer.ignoreOffer) throw err;
        }
        return;
      }
      const description = payload.description;
      const readyForOffer = !peer.makingOffer && (pc.signalingState === 'stable' || peer.answerPending);
      const collision = description.type === 'offer' && !readyForOffer;
      peer.ignoreOffer = !this.polite(from) && collision;
      if (collision) this.collisions += 1;
      if (peer.ignoreOffer) return;
      peer.answerPending = description.type === 'answer';
      try {
        await pc.setRemoteDescription(description);
      } finally {
        peer.answerPending = false;
      }
      if (description.type === 'offer') {
        await pc.setLocalDescription();
        this.client.signal('answer', { description: pc.localDescription.toJSON(), conn: peer.conn }, from);
      }
    } catch (err) {
      console.warn(`switchboard: ${type} from ${from} failed`, err);
    }
  }

  // Sends a string on every open data channel; returns how many took it.
  broadcast(data) {
    let n = 0;
    for (const peer of this.peers.values()) {
      if (peer.channel.readyState === 'open') {
        peer.channel.send(data);
        n += 1;
      }
    }
    return n;
  }

  drop(id) {
    const peer = this.peers.get(id);
    if (!peer) return;
    this.peers.delete(id);
    peer.channel.close();
    peer.pc.close();
    emit(this, 'peerclosed', { id });
  }

  // Closes every connection and stops listening to the client.
  close() {
    for (const id of [...this.peers.keys()]) this.drop(id);
    for (const [type, fn] of this.listeners) this.client.removeEventListener(type, fn);
  }
}

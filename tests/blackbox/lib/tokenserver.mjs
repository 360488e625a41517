// A stand-in for a switchboard 1.1 server that requires room tokens, for
// the tests of the client library and the demo page: it admits a `join`
// only with a good HS256 token and sends `iceServers` in `joined`, as
// docs/protocol.md says ("Room tokens", "ICE servers and TURN
// credentials"), and answers `ping`. Nothing else: no relaying. It records
// every `join` it gets and the path of every HTTP request, and can serve
// the demo page's files. Its clock can be moved forward, so that a test
// sees a token expire without waiting for it.

import { createHmac, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { WebSocketServer } from 'ws';
import { track, untrack } from './harness.mjs';

const LEEWAY = 30; // seconds, for exp and nbf

function b64url(data) {
  return Buffer.from(data).toString('base64url');
}

// A compact HS256 JWS with these claims, as an application's backend signs.
export function signToken(secret, claims, header = { alg: 'HS256', typ: 'JWT' }) {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

// Why `token` does not admit `join` (a message for `unauthorized`), or null
// when it does.
function refusal(secret, token, join, now) {
  if (typeof token !== 'string') return 'a room token is required';
  const parts = token.split('.');
  if (parts.length !== 3) return 'the token is not a JWT';
  let header;
  let claims;
  try {
    header = JSON.parse(Buffer.from(parts[0], 'base64url'));
    claims = JSON.parse(Buffer.from(parts[1], 'base64url'));
  } catch {
    return 'the token is not a JWT';
  }
  if (header.alg !== 'HS256') return 'the token is not signed with HS256';
  const want = createHmac('sha256', secret).update(`${parts[0]}.${parts[1]}`).digest();
  const got = Buffer.from(parts[2], 'base64url');
  if (got.length !== want.length || !timingSafeEqual(got, want)) return 'the token\'s signature does not verify';
  if (typeof claims.exp !== 'number') return 'the token has no exp';
  if (now > claims.exp + LEEWAY) return 'the token has expired';
  if (typeof claims.nbf === 'number' && now < claims.nbf - LEEWAY) return 'the token is not valid yet';
  if (claims.room !== (join.room ?? 'default')) return 'the token is for another room';
  if (claims.sub !== undefined && claims.sub !== join.id) return 'the token is for another id';
  return null;
}

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

// Starts the server on 127.0.0.1, a free port. Options: `secret` (HS256),
// `iceServers` (an array, or a function of (join, n) for the n-th join:
// `joined` carries what it returns), `roster` (the `peers` of `joined`),
// `webRoot` (a directory whose files are served over HTTP). With `t` (a
// node:test context) it is closed when that test ends.
//
// Resolves to {url, origin, port, joins, requests, now(), advance(seconds),
// token(claims), dropAll(), close()}: `joins` holds each join message
// received, with `admitted` (true or false) added; `requests` each HTTP
// request's path and query.
export async function startTokenServer({ secret = 'test secret', iceServers = null, roster = [], webRoot = null, t } = {}) {
  const httpServer = http.createServer(async (req, res) => {
    srv.requests.push(req.url);
    const name = new URL(req.url, 'http://x').pathname.replace(/^\/$/, '/index.html');
    const file = webRoot && path.join(webRoot, path.normalize(name));
    if (!file || !file.startsWith(webRoot + path.sep) || !TYPES[path.extname(file)]) {
      res.writeHead(404).end();
      return;
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[path.extname(file)], 'cache-control': 'no-store' }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  const wss = new WebSocketServer({ server: httpServer });
  let skew = 0; // seconds the clock has been moved forward
  const sockets = new Set();
  const srv = {
    joins: [],
    requests: [],
    now: () => Math.floor(Date.now() / 1000) + skew,
    advance(seconds) { skew += seconds; },
    // a token good for an hour from the server's now, for `room`
    token(claims) {
      return signToken(secret, { exp: srv.now() + 3600, ...claims });
    },
    dropAll() {
      for (const ws of sockets) ws.terminate();
    },
    async close() {
      untrack(srv);
      srv.dropAll();
      wss.close();
      httpServer.closeAllConnections();
      await new Promise((resolve) => httpServer.close(resolve));
    },
    destroy() {
      srv.dropAll();
      httpServer.closeAllConnections();
      httpServer.close();
    },
  };
  wss.on('connection', (ws) => {
    sockets.add(ws);
    ws.on('close', () => sockets.delete(ws));
    ws.on('message', (data) => {
      let msg;
      try {
        msg = JSON.parse(String(data));
      } catch {
        return;
      }
      const send = (type, payload) => ws.send(JSON.stringify({ type, payload }));
      if (msg.type === 'ping') send('pong', {});
      if (msg.type !== 'join') return;
      const why = refusal(secret, msg.token, msg, srv.now());
      srv.joins.push({ ...msg, admitted: !why });
      if (why) {
        send('error', { code: 'unauthorized', message: why, ref: 'join' });
        return;
      }
      const payload = { id: msg.id, nick: msg.nick ?? '', room: msg.room ?? 'default', peers: roster };
      const servers = typeof iceServers === 'function' ? iceServers(msg, srv.joins.length) : iceServers;
      if (servers) payload.iceServers = servers;
      send('joined', payload);
    });
  });
  httpServer.listen(0, '127.0.0.1');
  await once(httpServer, 'listening');
  srv.port = httpServer.address().port;
  srv.origin = `http://127.0.0.1:${srv.port}`;
  srv.url = `ws://127.0.0.1:${srv.port}/`;
  track(srv);
  if (t) t.after(() => srv.close());
  return srv;
}

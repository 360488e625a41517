// Logging: one access line per WebSocket connection at close, in text or
// as JSON objects (--log-format json), every line of the latter parseable.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect, joined } from './lib/client.mjs';
import { T, startServer, waitFor } from './lib/harness.mjs';

function isReference() {
  return (process.env.SWITCHBOARD_BIN || '').includes('server.js');
}

test('--log-format json: every line is a JSON object; the access line has the fields', async (t) => {
  if (isReference()) return t.skip('the reference has no access log');
  const srv = await startServer(['--log-format', 'json', '--workers', '2'], { t });
  const a = await joined(srv.url, 'alice', { t, room: 'logs' });
  const b = await joined(srv.url, 'bob', { t, room: 'logs' });
  a.send({ type: 'message', payload: { n: 1 } });
  await b.next('message');
  await a.close();
  const line = await waitFor(() => srv.stderr().split('\n').filter(Boolean).map((l) => JSON.parse(l))
    .find((o) => o.msg === 'connection closed' && o.id === 'alice'), T(5000), 'the access line of alice');
  assert.equal(line.level, 'info');
  assert.equal(line.client, '127.0.0.1');
  assert.equal(line.room, 'logs');
  assert.equal(line.cause, 'client');
  assert.equal(line.in, 2);               // join, message
  assert.equal(line.out, 2);              // joined, join of bob
  assert.equal(typeof line.duration_ms, 'number');
  assert.match(line.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  for (const l of srv.stderr().split('\n').filter(Boolean)) {
    const o = JSON.parse(l);
    assert.equal(typeof o.msg, 'string');
    assert.ok(['error', 'warn', 'info', 'debug'].includes(o.level), l);
  }
});

test('text logs: the access line names the cause of a server-side close', async (t) => {
  if (isReference()) return t.skip('the reference has no access log');
  const srv = await startServer(['--max-message', '100'], { t });
  const c = await connect(srv.url, { t });
  await c.join('carol', { room: 'r 1' });
  c.sendText(JSON.stringify({ type: 'ping', pad: 'x'.repeat(200) }));
  await c.closed;
  await waitFor(() => /connection closed: client=127\.0\.0\.1 room="r 1" id="carol" duration_ms=\d+ in=\d+ out=\d+ cause=limit/
    .test(srv.stderr()), T(5000), 'the access line of carol');
});

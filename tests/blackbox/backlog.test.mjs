// Outbound backlog (--max-backlog 65536): a peer that never reads is closed
// with 1008 once the server holds more than that for it; its peers get one
// leave; the sender and the other readers are not affected.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { isJoinOf, isLeaveOf, joined } from './lib/client.mjs';
import { T, sleep, startServer, waitFor, withTimeout } from './lib/harness.mjs';
import { getMetrics } from './lib/metrics.mjs';
import { rawConnect } from './lib/rawws.mjs';

const CHUNK = 'x'.repeat(4000);
const MAX_BYTES = 64 * 1024 * 1024; // give up after sending this much

let srv;
before(async () => { srv = await startServer(['--max-backlog', '65536']); });
after(() => srv && srv.finish());

// Sends 4 KB messages from `a` (built by `make(i)`) until `done()` is true.
async function flood(a, make, done, { batch = 16 } = {}) {
  let sent = 0;
  let bytes = 0;
  while (!done()) {
    assert.ok(bytes < MAX_BYTES, `still not closed after ${bytes} bytes sent`);
    for (let i = 0; i < batch; i++) {
      const text = JSON.stringify(make(sent));
      a.sendText(text);
      sent += 1;
      bytes += text.length;
    }
    // Wait for our own socket so that it is the server, not us, that
    // buffers; and let the event loop read what has arrived.
    await a.sendAsync({ type: 'ping' });
    while (a.ws.bufferedAmount > 256 * 1024) await sleep(5);
    await new Promise((resolve) => setImmediate(resolve));
  }
  return sent;
}

test('a peer that never reads is closed; the others get one leave; the sender goes on', async (t) => {
  const room = 'slow';
  const b = await joined(srv.url, 'b', { t, room });
  const r = await rawConnect(srv, { t, name: 'r' });
  await r.join('r', { room, nick: 'Slow' });
  await b.next(isJoinOf('r'));
  r.pause();
  const a = await joined(srv.url, 'a', { t, room });
  await b.next(isJoinOf('a'));

  const sent = await flood(a, (i) => ({ type: 'message', receiverId: 'r', payload: { i, data: CHUNK } }),
    () => b.peek(isLeaveOf('r')).length > 0 || a.peek('error').length > 0 || !a.isOpen);
  assert.equal(a.isOpen, true, 'the sender is still connected');
  t.diagnostic(`the slow peer was closed after ${sent} messages of 4 KB`);

  assert.deepEqual(await b.next(isLeaveOf('r')), { type: 'leave', payload: { id: 'r', nick: 'Slow' } });
  assert.deepEqual(await a.next(isLeaveOf('r')), { type: 'leave', payload: { id: 'r', nick: 'Slow' } });
  await b.expectSilence(T(500), isLeaveOf('r'), 'second leave');
  a.assertNone(isLeaveOf('r'), 'second leave');
  // The only errors the sender may have had are for messages sent after r was gone.
  for (const m of a.queue.take('error')) assert.equal(m.payload.code, 'peer_not_found', JSON.stringify(m));

  // The sender still works, and b never received any of the flood.
  await a.ping();
  a.send({ type: 'message', receiverId: 'b', payload: { after: true } });
  assert.deepEqual(await b.next('message'), { type: 'message', payload: { after: true, id: 'a', nick: '' } });

  // The slow peer, once it reads again, gets what the server had written
  // before it gave up on it, then the close frame, 1008.
  r.resume();
  const info = await withTimeout(r.closed, T(15000), 'the slow peer\'s connection to end');
  assert.equal(info.closeFrame, true, `no close frame: ${JSON.stringify(info)}`);
  assert.equal(info.code, 1008, JSON.stringify(info));
});

test('the backlog close is counted as cause "backlog"', async () => {
  // (on the node the slow peer was on, when the test runs on a cluster)
  const nodes = srv.nodes || [srv];
  const counts = async () => {
    const all = await Promise.all(nodes.map((node) => getMetrics(node)));
    return all.map((m) => m.get('switchboard_closes_total', { cause: 'backlog' }));
  };
  await waitFor(async () => (await counts()).reduce((x, y) => x + y, 0) >= 1, T(3000),
    'closes_total{cause="backlog"} 1');
  assert.deepEqual((await counts()).filter((n) => n).sort(), [1]);
});

test('broadcasts: the slow peer is closed while a reading peer gets every message in order', async (t) => {
  const room = 'slow-broadcast';
  const b = await joined(srv.url, 'b', { t, room });
  const r = await rawConnect(srv, { t, name: 'r2' });
  await r.join('r2', { room });
  await b.next(isJoinOf('r2'));
  r.pause();
  const a = await joined(srv.url, 'a', { t, room });
  await b.next(isJoinOf('a'));

  let seen = 0;
  let disorder = null;
  b.onMessage((m) => {
    if (m.type !== 'message') return;
    if (m.payload.i !== seen && disorder === null) disorder = `expected ${seen}, got ${m.payload.i}`;
    seen += 1;
  });
  let sent = 0;
  const WINDOW = 8; // 32 KB in flight towards b at most
  while (b.peek(isLeaveOf('r2')).length === 0) {
    assert.ok(sent * CHUNK.length < MAX_BYTES, 'the slow peer was never closed');
    while (sent - seen >= WINDOW) {
      await b.next((m) => m.type === 'message' && m.payload.i >= sent - WINDOW / 2, T(10000)).catch((err) => {
        throw new Error(`b stopped receiving at ${seen} of ${sent}: ${err.message}`);
      });
    }
    a.send({ type: 'message', payload: { i: sent, data: CHUNK } });
    sent += 1;
  }
  await b.next(isLeaveOf('r2'));
  await a.next(isLeaveOf('r2'));
  // Everything a sent reaches b, once and in order.
  a.send({ type: 'message', payload: { i: sent, end: true } });
  await b.next((m) => m.type === 'message' && m.payload.end === true, T(10000));
  assert.equal(disorder, null, disorder);
  assert.equal(seen, sent + 1);
  await b.expectSilence(T(300), isLeaveOf('r2'), 'second leave');
  assert.equal(a.isOpen, true);
  assert.equal(b.isOpen, true);
});

// Order and exactly-once delivery across worker threads (--workers 4):
// per-sender order, join before the newcomer's messages, leave after the
// departing peer's messages. Senders are paced so that no receiver's
// backlog comes near the limit, however slow the server is.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connect, joined } from './lib/client.mjs';
import { T, sleep, startServer, withTimeout } from './lib/harness.mjs';

let srv;
let rooms = 0;
const newRoom = () => `ord-${++rooms}`;

before(async () => { srv = await startServer(['--workers', '4']); });
after(() => srv && srv.finish());

// Connections handed out round-robin or to the least loaded worker: open a
// few extra ones so that the peers of a test are spread over workers.
async function spread(t, n) {
  const extra = [];
  for (let i = 0; i < n; i++) extra.push(await connect(srv.url, { t, name: `filler${i}` }));
  return extra;
}

// Resolves when `cond()` is true, re-checking whenever one of `clients` receives a
// message; fails if nothing moves for `idle` ms.
function progress(clients, cond, what, idle = T(10000)) {
  return new Promise((resolve, reject) => {
    if (cond()) {
      resolve();
      return;
    }
    let timer;
    const stops = [];
    const finish = (err) => {
      clearTimeout(timer);
      for (const stop of stops) stop();
      if (err) reject(err);
      else resolve();
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => finish(new Error(`no progress for ${idle} ms waiting for ${what}`)), idle);
    };
    arm();
    for (const c of clients) {
      stops.push(c.onMessage(() => {
        if (cond()) finish();
        else arm();
      }));
    }
  });
}

test('10,000 targeted messages arrive exactly once and in order', async (t) => {
  const N = 10000;
  const WINDOW = 256;
  const room = newRoom();
  await spread(t, 2);
  const a = await joined(srv.url, 'a', { t, room });
  await spread(t, 1);
  const b = await joined(srv.url, 'b', { t, room });
  await a.next('join');
  const extra = await joined(srv.url, 'c', { t, room });

  let got = 0;
  let problem = null;
  b.onMessage((m) => {
    if (m.type !== 'message') return;
    if (m.payload.seq !== got && problem === null) problem = `expected seq ${got}, got ${m.payload.seq}`;
    got += 1;
  });
  for (let seq = 0; seq < N; seq++) {
    if (seq - got >= WINDOW) await progress([b], () => seq - got < WINDOW / 2, `b to catch up at ${got}/${seq}`);
    a.send({ type: 'message', receiverId: 'b', payload: { seq, pad: 'p'.repeat(32) } });
  }
  await progress([b], () => got >= N, `all ${N} messages at b (has ${got})`);
  assert.equal(problem, null, problem);
  // Nothing more comes: each exactly once.
  a.send({ type: 'message', receiverId: 'b', payload: { seq: N, last: true } });
  await progress([b], () => got >= N + 1, 'the final marker');
  assert.equal(problem, null, problem);
  assert.equal(got, N + 1);
  // The third member saw none of the targeted messages.
  extra.assertNone('message', 'targeted message at a bystander');
});

test('4 senders x 2,000 broadcasts in a room of 6: every sequence complete and in order', async (t) => {
  const SENDERS = 4;
  const N = 2000;
  const WINDOW = 128;
  const room = newRoom();
  const peers = [];
  for (let i = 0; i < 6; i++) {
    peers.push(await joined(srv.url, `p${i}`, { t, room }));
    if (i % 2 === 0) await spread(t, 1);
  }
  // Wait for every join event so that the counts below see only messages.
  for (let i = 0; i < 6; i++) {
    for (let j = i + 1; j < 6; j++) await peers[i].next((m) => m.type === 'join' && m.payload.id === `p${j}`);
  }
  // seen[r][s]: messages from sender s counted at receiver r.
  const seen = peers.map(() => new Array(SENDERS).fill(0));
  const problems = [];
  peers.forEach((p, r) => {
    p.onMessage((m) => {
      if (m.type !== 'message') return;
      const s = Number(m.payload.id.slice(1));
      if (m.payload.seq !== seen[r][s] && problems.length < 10) {
        problems.push(`p${r} from p${s}: expected ${seen[r][s]}, got ${m.payload.seq}`);
      }
      seen[r][s] += 1;
    });
  });
  const slowest = (s) => Math.min(...seen.filter((_, r) => r !== s).map((row) => row[s]));

  const send = async (s) => {
    const p = peers[s];
    for (let seq = 0; seq < N; seq++) {
      if (seq - slowest(s) >= WINDOW) {
        await progress(peers, () => seq - slowest(s) < WINDOW / 2, `the receivers of p${s} to catch up`);
      }
      p.send({ type: 'message', payload: { seq } });
    }
  };
  await Promise.all([0, 1, 2, 3].map(send));
  await progress(peers, () => [0, 1, 2, 3].every((s) => slowest(s) >= N), 'every sequence to complete', T(20000));
  assert.deepEqual(problems, []);
  seen.forEach((row, r) => {
    row.forEach((count, s) => assert.equal(count, r === s ? 0 : N, `p${r} got ${count} from p${s}`));
  });
  // No duplicates trail behind.
  await sleep(T(300));
  seen.forEach((row, r) => {
    row.forEach((count, s) => assert.equal(count, r === s ? 0 : N, `p${r} got ${count} from p${s}`));
  });
});

test('a newcomer\'s join reaches each member before any message from it', async (t) => {
  const room = newRoom();
  const members = [];
  for (let i = 0; i < 4; i++) members.push(await joined(srv.url, `m${i}`, { t, room }));
  for (let round = 0; round < 20; round++) {
    const id = `n${round}`;
    const n = await connect(srv.url, { t, name: id });
    if (round % 2 === 0) {
      // Right after joined.
      await n.join(id, { room });
      n.send({ type: 'message', payload: { from: id } });
      n.send({ type: 'message', receiverId: 'm0', payload: { to: 'm0' } });
    } else {
      // Pipelined behind the join, without waiting for joined.
      n.send({ type: 'join', id, room });
      n.send({ type: 'message', payload: { from: id } });
      n.send({ type: 'message', receiverId: 'm0', payload: { to: 'm0' } });
    }
    for (const m of members) {
      await m.next((x) => x.type === 'message' && x.payload.id === id && x.payload.from === id);
      const h = m.history;
      const joinAt = h.findIndex((x) => x.type === 'join' && x.payload.id === id);
      const msgAt = h.findIndex((x) => x.type === 'message' && x.payload.id === id);
      assert.ok(joinAt >= 0, `${m.name} never got join for ${id}`);
      assert.ok(joinAt < msgAt, `${m.name} got a message from ${id} before its join`);
    }
    await members[0].next((x) => x.type === 'message' && x.payload.id === id && x.payload.to === 'm0');
    n.send({ type: 'leave' });
    for (const m of members) await m.next((x) => x.type === 'leave' && x.payload.id === id);
    n.destroy();
  }
});

async function departure(t, how) {
  const N = 500;
  const room = newRoom();
  const receivers = [];
  for (let i = 0; i < 3; i++) {
    receivers.push(await joined(srv.url, `r${i}`, { t, room }));
    await spread(t, 1);
  }
  const s = await joined(srv.url, 's', { t, room });
  for (const r of receivers) await r.next((m) => m.type === 'join' && m.payload.id === 's');
  for (let i = 0; i < N; i++) s.send({ type: 'message', payload: { seq: i } });
  // Everything handed to the kernel before the connection goes.
  await s.sendAsync({ type: 'message', payload: { seq: N } });
  if (how === 'abrupt') s.terminate();
  else s.close();
  for (const r of receivers) {
    await r.next((m) => m.type === 'leave' && m.payload.id === 's', T(10000));
    const fromS = r.history.filter((m) => (m.type === 'message' || m.type === 'leave') && m.payload.id === 's');
    const seqs = fromS.filter((m) => m.type === 'message').map((m) => m.payload.seq);
    assert.equal(seqs.length, N + 1, `${r.name} got ${seqs.length} messages from s`);
    assert.deepEqual(seqs, Array.from({ length: N + 1 }, (_, i) => i), `${r.name}: out of order`);
    assert.equal(fromS[fromS.length - 1].type, 'leave', `${r.name}: leave is not last`);
  }
  await sleep(T(200));
  for (const r of receivers) {
    assert.equal(r.history.filter((m) => m.type === 'leave' && m.payload.id === 's').length, 1, `${r.name}: one leave`);
  }
}

test('a peer\'s leave arrives after all its messages (abrupt TCP close)', async (t) => {
  await departure(t, 'abrupt');
});

test('a peer\'s leave arrives after all its messages (close handshake)', async (t) => {
  await departure(t, 'close');
});

test('join and leave storms keep every member list consistent', async (t) => {
  const room = newRoom();
  const base = await joined(srv.url, 'base', { t, room });
  const ids = Array.from({ length: 16 }, (_, i) => `s${i}`);
  const clients = await Promise.all(ids.map((id) => connect(srv.url, { t, name: id })));
  await Promise.all(clients.map((c, i) => c.join(ids[i], { room })));
  for (const id of ids) await base.next((m) => m.type === 'join' && m.payload.id === id);
  await Promise.all(clients.map((c, i) => (i % 2 ? c.terminate() : c.close())));
  for (const id of ids) await base.next((m) => m.type === 'leave' && m.payload.id === id);
  const late = await joined(srv.url, 'late', { t, room });
  assert.deepEqual(late.joined.peers, [{ id: 'base', nick: '' }]);
  await withTimeout(base.next((m) => m.type === 'join' && m.payload.id === 'late'), T(3000), 'join of late');
});

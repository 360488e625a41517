// A queue of received messages that tests wait on.
//
// Everything received is kept until a wait takes it, so a wait also sees what
// arrived before it started; a wait takes only the first message that matches
// and leaves the others in place for later waits.

import assert from 'node:assert/strict';
import { T } from './harness.mjs';

// A predicate from a type name, a function, or nothing (anything matches).
export function matcher(pred) {
  if (pred === undefined || pred === null) return () => true;
  if (typeof pred === 'string') return (m) => m !== null && typeof m === 'object' && m.type === pred;
  if (typeof pred === 'function') return pred;
  throw new TypeError('a predicate is a type name or a function');
}

function describe(pred) {
  return typeof pred === 'string' ? `a "${pred}" message` : 'a matching message';
}

function show(messages, n = 8) {
  const tail = messages.slice(-n).map((m) => {
    const s = JSON.stringify(m);
    return s.length > 200 ? `${s.slice(0, 200)}...` : s;
  });
  return `[${tail.join(', ')}]${messages.length > n ? ` (last ${n} of ${messages.length})` : ''}`;
}

export class MessageQueue {
  constructor(name = 'client') {
    this.name = name;
    this.pending = []; // received and not yet taken
    this.history = []; // everything received, in order
    this.waiters = [];
    this.listeners = [];
    this.ended = null; // a reason once nothing more can arrive
  }

  push(msg) {
    this.history.push(msg);
    for (const fn of this.listeners.slice()) fn(msg);
    const i = this.waiters.findIndex((w) => w.match(msg));
    if (i >= 0) {
      const [w] = this.waiters.splice(i, 1);
      clearTimeout(w.timer);
      w.resolve(msg);
      return;
    }
    this.pending.push(msg);
  }

  // Called once the connection is gone: waits still open fail at once.
  end(reason) {
    if (this.ended) return;
    this.ended = reason;
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new Error(`${this.name}: ${reason} while waiting for ${w.what}; pending: ${show(this.pending)}`));
    }
  }

  // Calls fn for every message from now on (not only the ones taken);
  // returns a function that stops it.
  onMessage(fn) {
    this.listeners.push(fn);
    return () => {
      const i = this.listeners.indexOf(fn);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  // Resolves with the first pending or future message matching `pred`.
  next(pred, timeout = T(3000)) {
    const match = matcher(pred);
    const i = this.pending.findIndex(match);
    if (i >= 0) return Promise.resolve(this.pending.splice(i, 1)[0]);
    const what = describe(pred);
    if (this.ended) {
      return Promise.reject(new Error(`${this.name}: ${this.ended}, no ${what}; pending: ${show(this.pending)}`));
    }
    return new Promise((resolve, reject) => {
      const w = { match, resolve, reject, what };
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`${this.name}: no ${what} within ${timeout} ms; pending: ${show(this.pending)}`));
      }, timeout);
      this.waiters.push(w);
    });
  }

  // Pending messages that match `pred`, without taking them.
  peek(pred) {
    return this.pending.filter(matcher(pred));
  }

  // Takes every pending message matching `pred`.
  take(pred) {
    const match = matcher(pred);
    const taken = this.pending.filter(match);
    this.pending = this.pending.filter((m) => !match(m));
    return taken;
  }

  // Fails if a message matching `pred` is pending now.
  assertNone(pred, what = 'message') {
    const found = this.peek(pred);
    assert.equal(found.length, 0, `${this.name}: unexpected ${what}: ${show(found)}`);
  }

  // Waits `ms`, then fails if a message matching `pred` is pending (whether
  // it arrived before or during the wait).
  async expectSilence(ms = T(300), pred, what) {
    await new Promise((resolve) => setTimeout(resolve, ms));
    this.assertNone(pred, what);
  }
}

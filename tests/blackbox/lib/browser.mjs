// Debian's Chromium, headless, driven with playwright-core: fake camera and
// microphone, no permission prompts, and WebRTC on the machine's own
// addresses (no mDNS names, loopback allowed), so that pages on one host
// can call each other with nothing but the host.

import { accessSync, constants } from 'node:fs';
import { after } from 'node:test';
import { chromium } from 'playwright-core';
import { T, withTimeout } from './harness.mjs';

export const CHROMIUM = process.env.SB_CHROMIUM || '/usr/bin/chromium';

export function requireChromium() {
  try {
    accessSync(CHROMIUM, constants.X_OK);
  } catch {
    throw new Error(`${CHROMIUM} is missing: scripts/deps.sh --test installs Debian's chromium`);
  }
}

const browsers = new Set();
after(async () => {
  for (const b of browsers) await b.close().catch(() => {});
});

export async function launch() {
  requireChromium();
  const args = [
    '--use-fake-device-for-media-stream',
    '--use-fake-ui-for-media-stream',
    '--disable-features=WebRtcHideLocalIpsWithMdns',
    '--allow-loopback-in-peer-connection',
    '--autoplay-policy=no-user-gesture-required',
    '--disable-dev-shm-usage',
  ];
  // Chromium's sandbox needs user namespaces, which root in a container
  // usually lacks; as root it refuses to start without this.
  if (process.getuid && process.getuid() === 0) args.push('--no-sandbox');
  const browser = await withTimeout(chromium.launch({ executablePath: CHROMIUM, headless: true, args }),
    T(60000), 'chromium to start');
  browsers.add(browser);
  return {
    browser,
    async close() {
      browsers.delete(browser);
      await browser.close().catch(() => {});
    },
  };
}

// A page of its own context (its own storage, its own media devices; or the
// context given) at `url`. Console errors are collected in page.errors.
export async function openPage(browser, url, { context: given } = {}) {
  const context = given || await browser.newContext();
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (err) => page.errors.push(String(err)));
  page.on('console', (msg) => {
    if (msg.type() === 'error') page.errors.push(msg.text());
  });
  await page.goto(url);
  return page;
}

// A page on the demo at `origin`, joining `room` as `nick` at once.
export async function openDemo(browser, origin, room, nick, options = {}) {
  const page = await openPage(browser, `${origin}/?room=${encodeURIComponent(room)}&nick=${encodeURIComponent(nick)}`,
    options);
  page.nick = nick;
  return page;
}

// Closes every context (and so every page) of `browser`: one test's pages
// do not go on using the machine during the next.
export async function closePages(browser) {
  for (const context of browser.contexts()) await context.close().catch(() => {});
}

// What the page's mesh looks like: per peer, connection and channel state.
export function meshState(page) {
  return page.evaluate(() => {
    const d = window.demo;
    if (!d) return null;
    return {
      state: d.client.state,
      id: d.client.id,
      roster: [...d.client.peers.keys()].sort(),
      peers: [...d.mesh.peers.values()].map((p) => ({
        id: p.id,
        nick: p.nick,
        pc: p.pc.connectionState,
        channel: p.channel.readyState,
      })),
    };
  });
}

// Frames of remote video decoded so far, per peer id.
export function framesDecoded(page) {
  return page.evaluate(async () => {
    const out = {};
    for (const p of window.demo.mesh.peers.values()) {
      let frames = 0;
      const stats = await p.pc.getStats();
      stats.forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') frames += s.framesDecoded || 0;
      });
      out[p.id] = frames;
    }
    return out;
  });
}

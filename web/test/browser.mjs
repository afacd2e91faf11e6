// Starts Debian's Chromium for the console's browser tests.
//
// Playwright's own browser downloads are not used: the tests drive the
// system Chromium at /usr/bin/chromium (override with TETHER_CHROMIUM).
// Each launch gets a fresh, throw-away profile directory.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM_PATH = process.env.TETHER_CHROMIUM || '/usr/bin/chromium';

// Flags for a headless, hermetic browser that can still do WebRTC with a
// broker on the loopback interface. Chromium honours only the last
// --disable-features switch, so every feature to disable belongs in this one.
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--allow-loopback-in-peer-connection',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
];

/**
 * Launches Chromium with a fresh profile.
 *
 * @param {object} [opts]
 * @param {{width:number,height:number}} [opts.viewport] default 1440x900
 * @param {boolean} [opts.headless] default true
 * @param {string[]} [opts.args] extra switches (not --disable-features)
 * @returns {Promise<{context: import('playwright-core').BrowserContext,
 *   newPage: () => Promise<import('playwright-core').Page>,
 *   close: () => Promise<void>}>}
 */
export async function launch(opts = {}) {
  const userDataDir = await mkdtemp(join(tmpdir(), 'tether-chromium-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM_PATH,
      headless: opts.headless ?? true,
      args: [...CHROMIUM_ARGS, ...(opts.args ?? [])],
      ignoreHTTPSErrors: true, // the broker serves a dev CA certificate in tests
      viewport: opts.viewport ?? { width: 1440, height: 900 },
      deviceScaleFactor: 1,
    });
  } catch (err) {
    await rm(userDataDir, { recursive: true, force: true });
    throw err;
  }
  return {
    context,
    // A persistent context opens with one blank page; reuse it first.
    async newPage() {
      const blank = context.pages().find((p) => p.url() === 'about:blank' && !p.__tetherUsed);
      const page = blank ?? (await context.newPage());
      page.__tetherUsed = true;
      return page;
    },
    async close() {
      await context.close().catch(() => {});
      await rm(userDataDir, { recursive: true, force: true });
    },
  };
}

// collectErrors gathers what goes wrong in the page: uncaught errors, and
// console errors (a blocked style or script among them) other than the
// broker's expected 401, 403 and 429 answers.
export function collectErrors(page) {
  const errors = [];
  page.on('pageerror', (err) => errors.push(err));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !/status of (401|403|429)/.test(msg.text())) errors.push(new Error(msg.text()));
  });
  return errors;
}

/** Page coordinates that show remote pixel (x, y) in the console's picture. */
export async function remotePoint(page, x, y) {
  return page.getByTestId('remote-video').evaluate((v, [x, y]) => {
    const r = v.getBoundingClientRect();
    const scale = Math.min(r.width / v.videoWidth, r.height / v.videoHeight);
    const left = r.left + (r.width - v.videoWidth * scale) / 2;
    const top = r.top + (r.height - v.videoHeight * scale) / 2;
    return [left + (x + 0.5) * scale, top + (y + 0.5) * scale];
  }, [x, y]);
}

/** Resolves after the console's picture has presented a few frames at its current size. */
export async function waitForPaint(page) {
  await page.evaluate(() => new Promise((done) => {
    const v = document.querySelector('[data-testid="remote-video"]');
    let n = 0;
    const next = () => v.requestVideoFrameCallback(() => (++n >= 3 ? done() : next()));
    next();
    setTimeout(done, 3000);
  }));
  await page.waitForTimeout(300);
}

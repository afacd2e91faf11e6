// Starts Debian's Chromium for the console's browser tests.
//
// Playwright's own browser downloads are not used: the tests drive the
// system Chromium at /usr/bin/chromium (override with TETHER_CHROMIUM).
// One Chromium serves a test file (node --test runs each file in a
// process of its own): each launch is a fresh browser context of it, with
// cookies, storage and permissions of its own, as a fresh profile has.

import { after } from 'node:test';
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

// The Chromiums started, by their switches; closed once the test file is
// done (a benchmark script exits, which ends them).
const browsers = new Map();

if (process.env.NODE_TEST_CONTEXT) {
  after(async () => {
    const all = [...browsers.values()];
    browsers.clear();
    await Promise.all(all.map((b) => b.then((browser) => browser.close()).catch(() => {})));
  });
}

/**
 * Opens a fresh browser context (a new profile, in effect) in this
 * process's Chromium, starting it first if need be.
 *
 * @param {object} [opts]
 * @param {{width:number,height:number}} [opts.viewport] default 1440x900
 * @param {boolean} [opts.headless] default true
 * @param {string[]} [opts.args] extra switches (not --disable-features)
 * @param {number} [opts.deviceScaleFactor] screen pixels per CSS pixel, default 1
 * @param {string} [opts.display] the X display (":N") a headed browser shows
 *   its window on; default $DISPLAY
 * @returns {Promise<{context: import('playwright-core').BrowserContext,
 *   newPage: () => Promise<import('playwright-core').Page>,
 *   close: () => Promise<void>}>}
 */
export async function launch(opts = {}) {
  const headless = opts.headless ?? true;
  const args = [...CHROMIUM_ARGS, ...(opts.args ?? [])];
  const key = JSON.stringify([headless, args, opts.display]);
  if (!browsers.has(key)) {
    const env = opts.display ? { ...process.env, DISPLAY: opts.display } : undefined;
    const started = chromium.launch({ executablePath: CHROMIUM_PATH, headless, args, env });
    started.catch(() => browsers.delete(key)); // the next launch tries again
    browsers.set(key, started);
  }
  const browser = await browsers.get(key);
  const context = await browser.newContext({
    ignoreHTTPSErrors: true, // the broker serves a dev CA certificate in tests
    viewport: opts.viewport ?? { width: 1440, height: 900 },
    deviceScaleFactor: opts.deviceScaleFactor ?? 1,
  });
  return {
    context,
    newPage: () => context.newPage(),
    close: () => context.close().catch(() => {}),
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

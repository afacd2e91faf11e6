// Remote control end to end through the console: a real broker and host on
// a private Xvfb display, headless Chromium clicking on the console's remote
// screen, and the X server's own pointer position as the judge. It proves
// the console's coordinate mapping (letterboxed "fit" and scrolled "1:1")
// lands on the exact remote pixel.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, test } from 'node:test';
import { launch } from './browser.mjs';
import { bin, start, startBroker, startXvfb, stopAll } from './procs.mjs';

const WIDTH = 1280;
const HEIGHT = 720;

after(stopAll);

function pointer(display) {
  const out = execFileSync('xdotool', ['getmouselocation', '--shell'], { env: { ...process.env, DISPLAY: display } }).toString();
  const v = Object.fromEntries(out.trim().split('\n').map((l) => l.split('=')));
  return [Number(v.X), Number(v.Y)];
}

test('clicks on the console land on the same pixel of the remote display', { timeout: 120_000 }, async (t) => {
  try {
    execFileSync('xdotool', ['--version']);
  } catch {
    t.skip('xdotool is not installed');
    return;
  }
  const display = await startXvfb(WIDTH, HEIGHT);
  const painter = start(bin('xpattern'), ['-mode', 'counter', '-interval', '50'], { env: { DISPLAY: display }, readyLine: /ready/ });
  await painter.ready;
  const broker = await startBroker();
  const browser = await launch({ viewport: { width: 1440, height: 900 } });
  t.after(() => browser.close());

  const page = await browser.newPage();
  await page.goto(`${broker.url}/`);
  await page.getByTestId('login-username').fill(broker.admin.user);
  await page.getByTestId('login-password').fill(broker.admin.password);
  await page.getByTestId('login-submit').click();
  await page.getByTestId('new-session').click();
  await page.getByTestId('new-session-ticket').fill('INC-5150');
  await page.getByTestId('new-session-submit').click();
  const code = await page.getByTestId('session-code').getAttribute('data-code');
  await page.getByTestId('open-session').click();

  const host = start(bin('host'), ['-broker', broker.url, '-ca', broker.ca, code], { env: { DISPLAY: display }, readyLine: /Connected/ });
  await host.ready;
  await page.waitForSelector('[data-testid="conn-state"][data-state="live"]', { timeout: 30_000 });
  await page.waitForFunction((w) => document.querySelector('[data-testid="remote-video"]').videoWidth === w, WIDTH, { timeout: 20_000 });
  await page.waitForFunction(() => window.tether.viewer?.control?.readyState === 'open', null, { timeout: 10_000 });

  await page.getByTestId('mode-control').click();
  await page.waitForFunction(() => window.tether.control.enabled === true, null, { timeout: 5000 });

  for (const mode of ['fit', 'actual']) {
    if (mode === 'actual') {
      await page.getByTestId('fit-toggle').click();
      await page.waitForFunction((w) => document.querySelector('[data-testid="remote-video"]').getBoundingClientRect().width === w, WIDTH);
    }
    const box = await page.getByTestId('remote-video').evaluate((v) => {
      const r = v.getBoundingClientRect();
      return { left: r.left, top: r.top, width: r.width, height: r.height };
    });
    // The displayed picture (object-fit: contain), worked out independently.
    const scale = Math.min(box.width / WIDTH, box.height / HEIGHT);
    const left = box.left + (box.width - WIDTH * scale) / 2;
    const top = box.top + (box.height - HEIGHT * scale) / 2;
    for (const [x, y] of [[100, 50], [640, 360], [WIDTH - 1, HEIGHT - 1], [3, 700]]) {
      await page.mouse.click(left + (x + 0.5) * scale, top + (y + 0.5) * scale);
      let got;
      for (let i = 0; i < 40; i++) {
        got = pointer(display);
        if (got[0] === x && got[1] === y) break;
        await page.waitForTimeout(50);
      }
      assert.deepEqual(got, [x, y], `${mode}: the X pointer is where the console was clicked`);
    }
  }
});

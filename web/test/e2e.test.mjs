// End to end through the console: a real broker, a real host capturing a
// real Xvfb display, and headless Chromium driving the technician console.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { launch } from './browser.mjs';
import { ROOT, bin, openSession, start, startHost, startXvfb, startBroker, stopAll } from './procs.mjs';

const WIDTH = 1280;
const HEIGHT = 720;
const artifacts = join(ROOT, 'artifacts');
mkdirSync(artifacts, { recursive: true });

after(stopAll);

test('technician watches a live host from the console', { timeout: 120_000 }, async () => {
  const display = await startXvfb(WIDTH, HEIGHT);
  // A screen that changes every 50 ms, so frames keep coming.
  const painter = start(bin('xpattern'), ['-mode', 'counter', '-interval', '50'], { env: { DISPLAY: display }, readyLine: /ready/ });
  await painter.ready;
  const broker = await startBroker();
  const browser = await launch();
  try {
    const page = await browser.newPage();
    // Log in, create a session for a ticket, read its code, open it.
    const code = await openSession(page, broker, 'INC-4242');
    assert.match(code, /^\d{9,}$/, 'the code is nine or more digits');

    // The user runs the host with that code.
    const host = startHost(broker, code, display);
    await host.ready;

    await page.waitForSelector('[data-testid="conn-state"][data-state="live"]', { timeout: 30_000 });
    const video = page.getByTestId('remote-video');
    await page.waitForFunction(() => {
      const v = document.querySelector('[data-testid="remote-video"]');
      return v && v.videoWidth > 0 && v.getVideoPlaybackQuality().totalVideoFrames > 5;
    }, null, { timeout: 30_000 });
    const size = await video.evaluate((v) => [v.videoWidth, v.videoHeight]);
    assert.deepEqual(size, [WIDTH, HEIGHT], 'the video decodes at the display size');

    const frames = () => video.evaluate((v) => v.getVideoPlaybackQuality().totalVideoFrames);
    const before = await frames();
    await page.waitForTimeout(5000);
    const afterFive = await frames();
    assert.ok(afterFive - before > 25, `frames still arrive after 5 s (${before} → ${afterFive})`);

    // The picture is the host's live screen, not a frozen or black frame:
    // the painter changes the grey level every 50 ms.
    const meanGrey = () => video.evaluate((v) => {
      const c = document.createElement('canvas');
      c.width = 64; c.height = 36;
      const ctx = c.getContext('2d');
      ctx.drawImage(v, 0, 0, 64, 36);
      const d = ctx.getImageData(0, 0, 64, 36).data;
      let sum = 0;
      for (let i = 0; i < d.length; i += 4) sum += d[i];
      return sum / (d.length / 4);
    });
    const grey1 = await meanGrey();
    await page.waitForTimeout(400);
    const grey2 = await meanGrey();
    assert.notEqual(grey1, grey2, `the picture changes as the remote screen does (${grey1} → ${grey2})`);

    await page.getByTestId('display-size').waitFor();
    assert.match(await page.getByTestId('display-size').textContent(), /1280\s*[×x]\s*720/);
    await page.screenshot({ path: join(artifacts, 'console-live.png') });

    // The technician ends the session: the host exits cleanly.
    await page.getByTestId('end-session').click();
    await page.getByTestId('confirm-ok').click();
    const { code: exitCode } = await host.exited;
    assert.equal(exitCode, 0, `host exit code; stderr:\n${host.out.stderr}`);
    assert.match(host.out.stdout, /Session ended/);
    await page.getByTestId('session-ended').waitFor();
    await page.screenshot({ path: join(artifacts, 'console-ended.png') });
  } finally {
    await browser.close();
  }
});

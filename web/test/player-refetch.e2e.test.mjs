// A stretch of video the broker could not give for a moment (busy, or out
// of reach) plays once it can: seeking there again fetches it again,
// rather than showing the failure until the page is reloaded. A real host
// on Xvfb, a real broker recording it, and headless Chromium.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { launch } from './browser.mjs';
import { recordSession, ROOT, signIn, stopAll, until } from './procs.mjs';

const artifacts = join(ROOT, 'artifacts');
mkdirSync(artifacts, { recursive: true });
after(stopAll);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('a video segment the broker could not give plays when the supervisor seeks there again', { timeout: 120_000 }, async () => {
  const { broker, session, rec } = await recordSession({ ticket: 'INC-REFETCH' }, async ({ paint }) => {
    await paint('-mode', 'counter', '-interval', '200');
    await sleep(5000);
  });
  const seg = rec.manifest.parts.find((p) => p.kind === 'video');
  assert.ok(seg, `no video in ${JSON.stringify(rec.manifest.parts)}`);

  const browser = await launch();
  try {
    // From the start the broker answers for that segment that it is busy.
    const page = await browser.newPage();
    const part = `**/api/v1/recordings/${session.id}/parts/${seg.name}`;
    await page.route(part, (route) => route.fulfill({
      status: 503, contentType: 'application/json',
      body: JSON.stringify({ error: { code: 'unavailable', message: 'The broker is busy. Please try again.' } }),
    }));
    await signIn(page, broker, `/#/recording/${session.id}`);
    await page.waitForFunction(() => window.tether.player?.ready === true);
    const tl = await page.getByTestId('timeline').boundingBox();
    const duration = await page.evaluate(() => window.tether.player.duration);
    const at = (ms) => page.mouse.click(tl.x + tl.width * (ms / duration), tl.y + tl.height / 2);
    await at(seg.start_ms + seg.duration_ms / 2);
    const said = page.getByTestId('player-novideo').getByText('The broker is busy. Please try again.');
    await said.waitFor({ timeout: 5000 });
    await page.screenshot({ path: join(artifacts, 'player-segment-busy.png') });

    // The broker answers again: seeking into that stretch a few seconds
    // later shows its picture.
    await page.unroute(part);
    await page.waitForTimeout(2500);
    await at(seg.start_ms + seg.duration_ms / 3);
    await page.waitForFunction((name) => window.tether.player.segment === name && window.tether.player.frames > 0, seg.name, { timeout: 5000 })
      .catch(() => assert.fail('the segment that failed once is never fetched again'));
    await until('the picture to replace the failure', async () => !(await page.getByTestId('player-novideo').isVisible()), 5000);
    assert.ok(await page.getByTestId('player-video').isVisible());
    await page.screenshot({ path: join(artifacts, 'player-segment-back.png') });
  } finally {
    await browser.close();
  }
});

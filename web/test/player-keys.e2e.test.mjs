// The recording player as a supervisor on a slow link or on the keyboard
// finds it: while the recording loads it says so (not that there is no
// video), and keys pressed on the terminal transcript leave the transcript
// at the timeline's time. A real broker, an archive written by its
// recorder (a shell and file transfers) and headless Chromium.

import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { collectErrors, launch } from './browser.mjs';
import { openRecording, recordShellArchive, ROOT, signIn, startBroker, stopAll } from './procs.mjs';

const artifacts = join(ROOT, 'artifacts');
mkdirSync(artifacts, { recursive: true });
after(stopAll);

let broker;
let id;
before(async () => {
  broker = await startBroker();
  id = (await recordShellArchive(broker, 'INC-KEYS')).id;
});

test('while the recording loads, the player says so rather than that there is no video', { timeout: 60_000 }, async () => {
  const browser = await launch();
  try {
    const page = await browser.newPage();
    const errors = collectErrors(page);
    await signIn(page, broker);
    await page.getByTestId('nav-recordings').click();
    errors.length = 0; // the console's first look for a login answers 401
    // The broker's answer about the recording is held back, as on a slow link.
    let answer;
    const held = new Promise((resolve) => { answer = resolve; });
    await page.route(`**/api/v1/recordings/${id}`, async (route) => {
      await held;
      await route.continue();
    });
    await page.goto(`${broker.url}/#/recording/${id}`);
    const loading = page.getByTestId('player-loading');
    await loading.waitFor();
    await page.waitForTimeout(500);
    await page.screenshot({ path: join(artifacts, 'player-loading.png') });
    assert.equal(await loading.getAttribute('role'), 'status');
    assert.match(await loading.textContent(), /Loading the recording/);
    assert.equal(await page.getByTestId('player-novideo').isVisible(), false, 'the player says there is no video before it knows');

    answer();
    await page.waitForFunction(() => window.tether.player?.ready === true);
    assert.equal(await loading.count(), 0, 'the loading notice stays once the recording is in');
    // This one has no video: now that is known, the player says so.
    assert.ok(await page.getByTestId('player-novideo').getByText('No video here').isVisible());
    assert.deepEqual(errors.map(String), []);
  } finally {
    await browser.close();
  }
});

test('keys pressed on the terminal transcript leave it at the timeline\u2019s time', { timeout: 60_000 }, async () => {
  const browser = await launch();
  try {
    const { page, errors } = await openRecording(browser, broker, id);
    const transcript = () => page.getByTestId('shell-player').evaluate((el) => el.innerText.replaceAll('\n', ''));
    await page.locator('[data-testid="shell-player"] .ap-term-text').waitFor();
    await page.waitForTimeout(500);
    assert.doesNotMatch(await transcript(), /hello-from-shell/, 'at 0:00 the transcript already shows what came later');

    // Tab reaches the transcript (it can be read); its player's own keys
    // (Space plays, arrows seek, f goes full screen) do nothing there.
    await page.getByTestId('shell-tab').first().focus();
    await page.keyboard.press('Tab');
    assert.ok(await page.evaluate(() => document.activeElement?.closest('[data-testid="shell-player"]') !== null), 'Tab does not reach the transcript');
    assert.notEqual(await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle), 'none', 'the transcript shows no focus');
    for (const key of ['Space', 'ArrowRight', 'ArrowRight', 'End', 'f']) await page.keyboard.press(key);
    await page.waitForTimeout(1500);
    await page.screenshot({ path: join(artifacts, 'player-transcript-keys.png') });
    const p = await page.evaluate(() => window.tether.player);
    assert.equal(p.t, 0, 'the timeline moved');
    assert.equal(p.playing, false);
    assert.doesNotMatch(await transcript(), /hello-from-shell/, 'the transcript ran on without the timeline');
    assert.equal(await page.evaluate(() => document.fullscreenElement?.className ?? null), null, 'the transcript went full screen on its own');
    // Tab still moves on, to the events.
    await page.keyboard.press('Tab');
    assert.ok(await page.evaluate(() => document.activeElement?.closest('[data-testid="event-list"]') !== null), 'Tab is stuck in the transcript');
    assert.deepEqual(errors.map(String), []);
  } finally {
    await browser.close();
  }
});

// Finding one's way in the recording player: the events list follows the
// playhead when the technician seeks, and the timeline is a single Tab stop
// (its keys seek; the list reaches each event). A real broker, an archive
// written by its recorder (a shell and file transfers) and headless Chromium,
// in a window short enough for the events list to scroll.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { collectErrors, launch } from './browser.mjs';
import { api, openRecording, recordShellArchive, ROOT, startBroker, stopAll, signIn } from './procs.mjs';

const artifacts = join(ROOT, 'artifacts');
mkdirSync(artifacts, { recursive: true });
after(stopAll);

test('the events list follows a seek, and the timeline is one Tab stop', { timeout: 60_000 }, async () => {
  const broker = await startBroker();
  const session = await recordShellArchive(broker, 'INC-SEEK');
  const browser = await launch({ viewport: { width: 1440, height: 640 } });
  try {
    const page = await browser.newPage();
    const errors = collectErrors(page);
    await signIn(page, broker);
    await page.getByTestId('nav-recordings').click();
    errors.length = 0; // the console's first look for a login answers 401
    await page.goto(`${broker.url}/#/recording/${session.id}`);
    await page.waitForFunction(() => window.tether.player?.ready === true);
    const list = page.getByTestId('event-list');
    assert.ok(await list.evaluate((el) => el.scrollHeight > el.clientHeight + 50), 'the events list is too short to test scrolling');

    // A click near the end of the timeline: the current event shows in the list.
    await page.getByTestId('timeline').scrollIntoViewIfNeeded();
    const tl = await page.getByTestId('timeline').boundingBox();
    const scrollY = await page.evaluate(() => window.scrollY);
    await page.mouse.click(tl.x + tl.width * 0.98, tl.y + tl.height / 2);
    await page.waitForTimeout(300);
    const t = await page.evaluate(() => window.tether.player);
    assert.ok(Math.abs(t.t - t.duration * 0.98) < t.duration * 0.05, `the click went to ${t.t} of ${t.duration}`);
    const shown = () => list.evaluate((el) => {
      const row = el.querySelector('.is-current');
      if (!row) return 'no current event';
      const l = el.getBoundingClientRect();
      const r = row.getBoundingClientRect();
      return r.top >= l.top - 1 && r.bottom <= l.bottom + 1 ? 'shown' : `event ${row.dataset.index} at ${r.top}..${r.bottom}, the list shows ${l.top}..${l.bottom}`;
    });
    assert.equal(await shown(), 'shown', 'after the click the current event is out of sight');
    assert.equal(await page.evaluate(() => window.scrollY), scrollY, 'the page itself scrolled');

    // To the end and back by keyboard: the list follows.
    await page.getByTestId('timeline').focus();
    await page.keyboard.press('End');
    await page.waitForTimeout(200);
    assert.equal(await list.evaluate((el) => el.querySelector('.is-current')?.dataset.index), String(await page.getByTestId('event-row').count() - 1));
    assert.equal(await shown(), 'shown', 'at the end the last event is out of sight');
    await page.screenshot({ path: join(artifacts, 'player-seek-end.png') });
    await page.keyboard.press('Home');
    await page.waitForTimeout(200);
    assert.equal(await shown(), 'shown', 'back at the start the first event is out of sight');

    // One Tab stop: Tab from the timeline goes past all its markers.
    assert.ok(await page.getByTestId('timeline-marker').count() > 3);
    await page.keyboard.press('Tab');
    const next = await page.evaluate(() => document.activeElement?.dataset.testid ?? document.activeElement?.tagName);
    assert.notEqual(next, 'timeline-marker', 'Tab stops on each marker of the timeline');
    assert.equal(next, 'legend-item');
    assert.deepEqual(errors.map(String), []);
  } finally {
    await browser.close();
  }
});

test('Next and Previous event stop at each event in the list, however close together', { timeout: 60_000 }, async () => {
  const broker = await startBroker();
  // Consent, a terminal opening 150 ms later, and two file transfers 150 ms
  // apart, the second one's relayed bytes not what the user's computer hashed.
  const session = await recordShellArchive(broker, 'INC-STEP');
  const events = (await api(broker, 'GET', `/api/v1/recordings/${session.id}/events`)).body.events;
  const steps = events.map((e, i) => ({ ...e, i })).filter((e) => e.type !== 'input');
  assert.ok(steps.some((e, k) => k > 0 && e.t - steps[k - 1].t < 250), 'no two events less than 250 ms apart');
  const browser = await launch({ viewport: { width: 1440, height: 900 } });
  try {
    const { page, errors } = await openRecording(browser, broker, session.id);
    const at = () => page.evaluate(() => {
      const cur = document.querySelector('[data-testid="event-list"] .is-current');
      return { t: window.tether.player.t, index: cur ? Number(cur.dataset.index) : -1 };
    });
    const stops = [];
    for (const _ of steps) {
      await page.getByTestId('player-next').click();
      stops.push(await at());
    }
    assert.deepEqual(stops, steps.map((e) => ({ t: e.t, index: e.i })), 'Next event, from the start');
    await page.getByTestId('player-next').click();
    assert.equal((await at()).t, await page.evaluate(() => window.tether.player.duration), 'past the last event Next goes to the end');
    // Back by keyboard, one event at a time.
    await page.getByTestId('timeline').focus();
    const back = [];
    for (const _ of steps) {
      await page.keyboard.press('[');
      back.push(await at());
    }
    assert.deepEqual(back, steps.map((e) => ({ t: e.t, index: e.i })).reverse(), 'Previous event ([), from the end');
    await page.keyboard.press('PageUp');
    assert.equal((await at()).t, 0, 'before the first event Previous goes to the start');
    // The mismatched upload is stopped at: its row is the current one.
    const upload = steps.find((e) => e.type === 'file.transfer' && e.detail.relayed_sha256 !== e.detail.sha256);
    while ((await at()).index !== upload.i) {
      assert.ok((await at()).t <= upload.t, 'Next went past the upload');
      await page.keyboard.press(']');
    }
    assert.equal(await page.locator('[data-testid="event-list"] .is-current [data-testid="event-hash"][data-mismatch="true"]').count(), 1);
    await page.screenshot({ path: join(artifacts, 'player-step-upload.png') });

    // After a seek by hand, Next goes to the first event after the time
    // shown, and Previous to the last one before it.
    const mid = steps.find((e) => e.t > 500);
    await page.keyboard.press('Home');
    const tl = await page.getByTestId('timeline').boundingBox();
    const duration = await page.evaluate(() => window.tether.player.duration);
    await page.mouse.click(tl.x + tl.width * ((mid.t - 150) / duration), tl.y + tl.height / 2);
    const seeked = (await at()).t;
    assert.ok(seeked < mid.t, `the click went to ${seeked}, past ${mid.t}`);
    await page.getByTestId('player-next').click();
    const after = steps.find((e) => e.t > seeked);
    assert.deepEqual(await at(), { t: after.t, index: after.i }, `Next from ${seeked} ms`);
    await page.mouse.click(tl.x + tl.width * ((mid.t - 150) / duration), tl.y + tl.height / 2);
    const here = (await at()).t;
    const before = steps.findLast((e) => e.t < here);
    await page.getByTestId('player-prev').click();
    assert.deepEqual(await at(), { t: before.t, index: before.i }, 'Previous after a seek');
    // An event picked in the list is where the steps go on from.
    await page.locator(`[data-testid="event-row"][data-index="${steps[1].i}"] button`).click();
    await page.getByTestId('player-next').click();
    assert.deepEqual(await at(), { t: steps[2].t, index: steps[2].i }, 'Next after picking an event in the list');
    assert.deepEqual(errors.map(String), []);
  } finally {
    await browser.close();
  }
});

// Recordings through the real console: a real broker records a real
// session (host on Xvfb, the technician moving and clicking in the
// console), then a supervisor finds it, plays it in headless Chromium
// (the WebM video plays, the timeline has markers, speeds and seeking
// work), verifies it and downloads it. A second archive written by the
// broker's recorder with a shell and file transfers shows the transcript
// in asciinema-player, synced to the timeline.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { launch } from './browser.mjs';
import { api, bin, openSession, recordShellArchive, ROOT, start, startBroker, startHost, startXvfb, stopAll } from './procs.mjs';

after(stopAll);

const ARTIFACTS = join(ROOT, 'artifacts');

test('a recorded session plays, is searchable, verifies and downloads', { timeout: 180_000 }, async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  const display = await startXvfb(1024, 640);
  const pattern = start(bin('xpattern'), ['-mode', 'input'], { env: { DISPLAY: display }, readyLine: /ready/ });
  await pattern.ready;
  const broker = await startBroker();
  const browser = await launch();
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', (e) => errors.push(String(e)));

    // Record a session: view, take control, move and click for a while.
    const code = await openSession(page, broker, 'INC-PLAY-1');
    errors.length = 0; // the console's first look for a login answers 401
    const host = startHost(broker, code, display);
    await host.ready;
    await page.waitForSelector('[data-testid="conn-state"][data-state="live"]', { timeout: 30_000 });
    await page.waitForFunction(() => document.querySelector('[data-testid="remote-video"]')?.videoWidth > 0);
    await page.getByTestId('mode-control').click();
    await page.waitForFunction(() => window.tether.control?.enabled === true);
    const box = await page.getByTestId('remote-video').boundingBox();
    for (let i = 0; i < 60; i++) {
      await page.mouse.move(box.x + 40 + i * 8, box.y + 40 + (i % 20) * 10);
      if (i % 15 === 0) await page.mouse.click(box.x + 100 + i * 4, box.y + 120);
      await page.waitForTimeout(60);
    }
    const sessionId = await page.evaluate(() => window.tether.session?.id ?? location.hash.split('/').pop());

    // While it runs, the recordings list shows it live, with a way to watch.
    const list = await browser.newPage();
    await list.goto(broker.url + '/#/recordings');
    const liveRow = list.locator(`[data-testid="recording-row"][data-session-id="${sessionId}"]`);
    await liveRow.waitFor({ timeout: 15_000 });
    assert.equal(await liveRow.locator('[data-testid="recording-state"]').getAttribute('data-state'), 'recording');
    assert.equal(await liveRow.getByTestId('watch-live').getAttribute('href'), `#/session/${sessionId}`);
    await list.screenshot({ path: join(ARTIFACTS, 'recordings-live.png') });
    // Opened in the player, it is as long as it has run, not as its last event.
    await list.waitForTimeout(4000);
    const { started_at: startedAt } = (await api(broker, 'GET', '/api/v1/recordings?ticket=INC-PLAY-1')).body.recordings[0];
    await list.goto(`${broker.url}/#/recording/${sessionId}`);
    await list.waitForFunction(() => window.tether.player?.ready === true, null, { timeout: 15_000 });
    const liveFor = Date.now() - Date.parse(startedAt);
    const liveLength = await list.evaluate(() => window.tether.player.duration);
    assert.ok(Math.abs(liveLength - liveFor) < 2000, `the live recording is ${liveLength} ms long after ${liveFor} ms`);
    await list.close();
    const ended = await api(broker, 'POST', `/api/v1/sessions/${sessionId}/end`, {});
    assert.equal(ended.status, 200, JSON.stringify(ended.body));
    await host.exited;

    // A second archive with a shell and files, written by the recorder.
    const other = await recordShellArchive(broker, 'INC-SHELL');

    // A supervisor searches.
    await page.goto(broker.url + '/#/recordings');
    await page.getByTestId('recordings-table').waitFor({ timeout: 30_000 });
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="recording-row"]').length === 2);
    await page.getByTestId('filter-ticket').fill('PLAY');
    await page.getByTestId('filter-submit').click();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="recording-row"]').length === 1);
    await page.getByTestId('filter-ticket').fill('');
    await page.getByTestId('filter-shell').check();
    await page.waitForFunction((id) => {
      const rows = [...document.querySelectorAll('[data-testid="recording-row"]')];
      return rows.length === 1 && rows[0].dataset.sessionId === id;
    }, other.id);
    // The search and the row name the feature as the session page does.
    assert.equal(await page.locator('label', { has: page.getByTestId('filter-shell') }).innerText(), 'Terminal was used');
    assert.equal(await page.getByTestId('recording-row').locator('.chip-shell').innerText(), 'Terminal');
    await page.getByTestId('filter-shell').uncheck();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="recording-row"]').length === 2);
    await page.screenshot({ path: join(ARTIFACTS, 'recordings-search.png') });

    // Play the real session.
    await page.locator(`[data-testid="recording-row"][data-session-id="${sessionId}"]`).click();
    await page.waitForFunction(() => window.tether.player?.ready === true || window.tether.player?.error, null, { timeout: 15_000 })
      .catch(async (err) => { throw new Error(`${err.message}: at ${page.url()}, player ${JSON.stringify(await page.evaluate(() => window.tether.player))}, errors ${errors.join(" / ")}`); });
    assert.equal(await page.evaluate(() => window.tether.player.error), '');
    // The user's computer is named as the live session and the lists name it.
    assert.equal(await page.locator('[data-testid="event-row"][data-type="host.connected"] .event-summary').textContent(), `${hostname()} \u00b7 Linux`);
    // At 0:00, the picture or "No video here", not both.
    const shown = async () => [await page.getByTestId('player-video').isVisible(), await page.getByTestId('player-novideo').isVisible()];
    await page.waitForTimeout(500); // the first segment loads
    assert.equal((await shown()).filter(Boolean).length, 1, `video, no-video: ${await shown()}`);
    await page.screenshot({ path: join(ARTIFACTS, 'recording-player-start.png') });
    const markers = await page.evaluate(() => window.tether.player.markers);
    for (const cat of ['consent', 'permissions', 'input', 'session']) assert.ok(markers[cat] > 0, `no ${cat} markers: ${JSON.stringify(markers)}`);
    assert.ok(await page.getByTestId('timeline-marker').count() > 5);
    await page.getByTestId('player-play').click();
    await page.waitForFunction(() => {
      const v = document.querySelector('[data-testid="player-video"]');
      return v && v.width === 1024 && window.tether.player.frames > 0 && window.tether.player.playing;
    }, null, { timeout: 20_000 });
    const drawn = await page.evaluate(() => window.tether.player.frames);
    await page.waitForFunction((n) => window.tether.player.frames >= n + 5, drawn, { timeout: 5000 })
      .catch(async () => assert.fail(`only ${await page.evaluate(() => window.tether.player.frames) - drawn} video frames drawn in 5 s`));
    // The video shows the remote screen: black at first, then white once
    // the first click toggled the witness window.
    await page.evaluate(() => {
      window.lit = () => {
        const v = document.querySelector('[data-testid="player-video"]');
        const c = document.createElement('canvas');
        c.width = v.width; c.height = v.height;
        const g = c.getContext('2d');
        g.drawImage(v, 0, 0);
        const d = g.getImageData(v.width / 4, v.height / 4, 1, 1).data;
        return d[0] + d[1] + d[2];
      };
    });
    await page.waitForFunction(() => window.lit() > 600, null, { timeout: 15_000 })
      .catch(async () => assert.fail(`the recorded video never shows the click's white (${await page.evaluate(() => window.lit())})`));
    await page.screenshot({ path: join(ARTIFACTS, 'recording-player.png') });

    // 8× runs the clock faster; seeking moves it.
    await page.locator('[data-testid="player-speed"][data-speed="8"]').click();
    const t0 = await page.evaluate(() => window.tether.player.t);
    const seen = new Set();
    for (let i = 0; i < 20; i++) {
      seen.add(await page.evaluate(() => window.tether.player.segment));
      await page.waitForTimeout(50);
    }
    const t1 = await page.evaluate(() => window.tether.player.t);
    assert.ok(seen.size > 1 || t1 - t0 < 100, `playback stayed in ${[...seen]}`);
    assert.ok(t1 - t0 > 2000 || (await page.evaluate(() => !window.tether.player.playing)), `8× advanced ${t1 - t0} ms in a second`);
    if (await page.evaluate(() => window.tether.player.playing)) await page.getByTestId('player-play').click();
    const tl = await page.getByTestId('timeline').boundingBox();
    await page.mouse.click(tl.x + tl.width * 0.5, tl.y + tl.height / 2);
    const mid = await page.evaluate(() => window.tether.player);
    assert.ok(Math.abs(mid.t - mid.duration / 2) < mid.duration * 0.05, `seek to the middle went to ${mid.t} of ${mid.duration}`);
    // Next and previous event jump between markers.
    const before = await page.evaluate(() => window.tether.player.t);
    await page.getByTestId('player-next').click();
    const after = await page.evaluate(() => window.tether.player.t);
    assert.ok(after > before, `next event went from ${before} to ${after}`);
    await page.getByTestId('player-prev').click();
    assert.ok(await page.evaluate(() => window.tether.player.t) < after);
    // An event in the list seeks to it.
    await page.locator('[data-testid="event-row"][data-type="session.ended"] button').click();
    assert.ok(await page.evaluate(() => window.tether.player.t > 0));

    // Verify from the console.
    await page.getByTestId('verify-recording').click();
    await page.waitForSelector('[data-testid="verify-result"] [data-ok="true"]');
    assert.match(await page.getByTestId('verify-result').innerText(), /Verified: this recording has not been altered/);
    await page.screenshot({ path: join(ARTIFACTS, 'recording-verified.png') });
    // Download: a zip, audited.
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('download-recording').click()]);
    const zipPath = join(ARTIFACTS, 'recording.zip');
    await download.saveAs(zipPath);
    const out = execFileSync(bin('broker'), ['verify', '-data', broker.dataDir, zipPath]).toString();
    assert.match(out, /verified/);
    const trail = await api(broker, 'GET', `/api/v1/sessions/${sessionId}/events`);
    const types = trail.body.events.map((e) => e.type);
    for (const t of ['recording.played', 'recording.verified', 'recording.downloaded']) assert.ok(types.includes(t), `no ${t} in the trail`);

    // The shell recording: transcript and file markers.
    await page.goto(`${broker.url}/#/recording/${other.id}`);
    await page.waitForFunction(() => window.tether.player?.ready === true);
    const m2 = await page.evaluate(() => window.tether.player.markers);
    assert.ok(m2.shell >= 2 && m2.files === 2, `markers ${JSON.stringify(m2)}`);
    await page.getByTestId('shell-player').waitFor();
    assert.match(await page.getByTestId('shell-tab').first().textContent(), /^Terminal 1 · \d+:\d\d$/);
    // At the end of the timeline the transcript shows the command and its
    // output (lines joined: a long prompt wraps the command).
    await page.getByTestId('timeline').focus();
    await page.keyboard.press('End');
    await page.waitForFunction(() => /echo hello-from-shell[\s\S]*hello-from-shell/.test((document.querySelector('[data-testid="shell-player"]')?.innerText || '').replaceAll('\n', '')), null, { timeout: 15_000 });
    // At the start, before the command was typed, it does not.
    await page.keyboard.press('Home');
    await page.waitForFunction(() => !/hello-from-shell/.test((document.querySelector('[data-testid="shell-player"]')?.innerText || '').replaceAll('\n', '')), null, { timeout: 15_000 });
    await page.keyboard.press('End');
    await page.waitForFunction(() => /uname -s/.test((document.querySelector('[data-testid="shell-player"]')?.innerText || '').replaceAll('\n', '')));
    await page.screenshot({ path: join(ARTIFACTS, 'recording-shell.png'), fullPage: true });
    assert.deepEqual(errors.filter((e) => !/favicon/.test(e)), []);
  } finally {
    await browser.close();
  }
});

// A busy full-HD screen played at 8×: the picture keeps up with the
// timeline. A real host on a 1920x1080 Xvfb whose whole screen changes
// every 16 ms; the recording has a frame every 33 ms, which at 8× is more
// than the browser decodes and draws in time on a small machine. The
// timeline then waits for the picture rather than run ahead of it: the
// frame on screen is never more than one and a half seconds of the
// recording (a fifth of a second at 8×) behind the timeline, which the
// events list and the transcript follow, and never ahead of it.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch } from './browser.mjs';
import { openRecording, recordSession, stopAll } from './procs.mjs';

after(stopAll);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('a busy 1080p screen played at 8× keeps the picture with the timeline', { timeout: 150_000 }, async () => {
  const { broker, session, rec } = await recordSession({ ticket: 'INC-FAST', width: 1920, height: 1080 }, async ({ paint }) => {
    await paint('-mode', 'counter', '-interval', '16', '-bars');
    await sleep(12_000);
  });
  const video = rec.manifest.parts.filter((p) => p.kind === 'video');
  const frames = video.reduce((n, p) => n + p.frames, 0);
  assert.ok(frames > 250, `only ${frames} frames recorded: ${JSON.stringify(video)}`);

  const browser = await launch();
  try {
    const { page, errors } = await openRecording(browser, broker, session.id);
    await page.locator('[data-testid="player-speed"][data-speed="8"]').click();
    const tl = await page.getByTestId('timeline').boundingBox();
    const duration = await page.evaluate(() => window.tether.player.duration);
    await page.mouse.click(tl.x + tl.width * (video[0].start_ms / duration), tl.y + tl.height / 2);
    // On every animation frame while playing: the timeline's time and the
    // time of the frame on screen.
    await page.evaluate(() => {
      window.seen = [];
      const look = () => {
        const p = window.tether.player;
        if (p.playing) window.seen.push({ t: p.t, frame: p.frameTime });
        if (!window.stopLooking) requestAnimationFrame(look);
      };
      requestAnimationFrame(look);
    });
    await page.getByTestId('player-play').click();
    const end = video.at(-1).start_ms + video.at(-1).duration_ms;
    await page.waitForFunction((end) => window.tether.player.t >= end || !window.tether.player.playing, end, { timeout: 60_000 });
    const seen = await page.evaluate(() => {
      window.stopLooking = true;
      return window.seen;
    });
    // From the first frame drawn after the seek on.
    const from = seen.findIndex((x) => x.frame >= video[0].start_ms && x.frame <= x.t);
    assert.ok(from >= 0, `no frame drawn while playing: ${JSON.stringify(seen.slice(0, 5))}`);
    const played = seen.slice(from);
    const ahead = played.find((x) => x.frame > x.t);
    assert.ok(!ahead, `at ${Math.round(ahead?.t)} ms the picture was the frame of ${Math.round(ahead?.frame)} ms`);
    const behind = played.map((x) => x.t - x.frame).sort((a, b) => a - b);
    const worst = behind.at(-1);
    assert.ok(worst <= 1500, `the picture fell ${Math.round(worst)} ms behind the timeline (median ${Math.round(behind[behind.length >> 1])} ms)`);
    assert.ok(new Set(played.map((x) => x.frame)).size > 20, 'the picture hardly moved');
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

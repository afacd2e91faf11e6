// A recording with a long still screen, played in the console: a real host
// on Xvfb shares a screen that stays still for twelve seconds, then changes.
// The player goes through the stillness at the speed chosen, showing the
// still screen: Chromium on its own shows the change as soon as the frames
// before it have lasted about as long as frames usually do, and when few
// frames came before, ends the segment half-way and the timeline skipped.
// (The broker seals the segment once the screen has stayed still: the
// stillness is its last picture, then the stretch until the next segment.)
// A segment removed from the disk, or one that cannot be decoded, is
// named where its picture would be.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { launch } from './browser.mjs';
import { openRecording, recordSession, ROOT, stopAll } from './procs.mjs';

after(stopAll);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('a still screen plays for as long as it lasted, showing what was on screen', { timeout: 150_000 }, async () => {
  // Red, green, blue and white quadrants, still for twelve seconds; then a
  // small square in the white quarter changes every 100 ms.
  const { broker, session, rec } = await recordSession({ ticket: 'INC-STILL' }, async ({ paint }) => {
    await paint('-mode', 'pattern');
    await sleep(12_000);
    await paint('-mode', 'counter', '-interval', '100', '-geometry', '64x64+560+400');
    await sleep(3000);
  });
  // The stillness: from the segment that shows the still screen to the
  // next change (the broker seals a segment once the screen stays still,
  // and the player shows its last picture until the next one starts).
  const videos = rec.manifest.parts.filter((p) => p.kind === 'video').sort((a, b) => a.start_ms - b.start_ms);
  const still = videos.map((p, i) => ({ seg: p, start: p.start_ms, end: videos[i + 1]?.start_ms ?? p.start_ms + p.duration_ms }))
    .sort((a, b) => (b.end - b.start) - (a.end - a.start))[0];
  assert.ok(still.end - still.start > 10_000, `no stretch holds the still screen: ${JSON.stringify(rec.manifest.parts)}`);
  const seg = still.seg;

  const browser = await launch();
  try {
    const { page, errors } = await openRecording(browser, broker, session.id);
    // The bottom-right corner of the picture shown: white, until the square.
    await page.evaluate(() => {
      window.corner = () => {
        const v = document.querySelector('[data-testid="player-video"]');
        const c = document.createElement('canvas');
        c.width = 64;
        c.height = 48;
        const g = c.getContext('2d');
        g.drawImage(v, 0, 0, 64, 48);
        const [r, gr, b] = g.getImageData(59, 44, 1, 1).data;
        return r > 200 && gr > 200 && b > 200 ? 'white' : `rgb(${r},${gr},${b})`;
      };
    });

    // From the segment's start, at 2×.
    await page.locator('[data-testid="player-speed"][data-speed="2"]').click();
    const tl = await page.getByTestId('timeline').boundingBox();
    const duration = await page.evaluate(() => window.tether.player.duration);
    await page.mouse.click(tl.x + tl.width * ((seg.start_ms + 100) / duration), tl.y + tl.height / 2);
    await page.getByTestId('player-play').click();
    const end = still.end;
    let prev = { t: await page.evaluate(() => window.tether.player.t), at: Date.now() };
    const corners = [];
    while (prev.t < end - 1500) {
      await page.waitForTimeout(250);
      const now = { t: await page.evaluate(() => window.tether.player.t), at: Date.now() };
      const ran = now.t - prev.t;
      assert.ok(ran <= 2 * (now.at - prev.at) + 1000,
        `the timeline went from ${Math.round(prev.t)} to ${Math.round(now.t)} ms in ${now.at - prev.at} ms at 2×: it skipped the still screen (it ends at ${end})`);
      // In the second half of the stillness the screen still shows what it did.
      if (now.t > still.start + (end - still.start) * 0.6 && now.t < end - 1500) corners.push(await page.evaluate(() => `${window.corner()} at ${Math.round(window.tether.player.t)} ms`));
      prev = now;
      assert.ok(await page.evaluate(() => window.tether.player.playing), `playback stopped at ${now.t}`);
    }
    mkdirSync(join(ROOT, 'artifacts'), { recursive: true });
    await page.screenshot({ path: join(ROOT, 'artifacts', 'player-still-screen.png') });
    assert.ok(corners.length > 0);
    assert.ok(corners.every((c) => c.startsWith('white')), `while the screen was still, the player showed the picture that came after: ${corners} (${JSON.stringify(seg)})`);
    assert.deepEqual(errors, []);

    // A segment someone removed from the disk: where its picture would be,
    // the player says so, in the broker's words.
    rmSync(join(broker.dataDir, 'recordings', session.id, seg.name));
    await page.reload();
    await page.waitForFunction(() => window.tether.player?.ready === true, null, { timeout: 15_000 });
    await page.mouse.click(tl.x + tl.width * ((seg.start_ms + 1000) / duration), tl.y + tl.height / 2);
    await page.getByTestId('player-novideo').getByText('The part is missing from the archive; run verify.').waitFor({ timeout: 5000 });
    await page.screenshot({ path: join(ROOT, 'artifacts', 'player-segment-missing.png') });

    // One whose keyframe was damaged cannot be decoded: the player says so
    // over that segment.
    const others = rec.manifest.parts.filter((p) => p.kind === 'video' && p.name !== seg.name);
    assert.ok(others.length > 0, `one video segment only: ${JSON.stringify(rec.manifest.parts)}`);
    const damaged = join(broker.dataDir, 'recordings', session.id, others.at(-1).name);
    const bytes = readFileSync(damaged);
    const sync = bytes.indexOf(Buffer.from([0x9d, 0x01, 0x2a])); // the keyframe's start code
    assert.ok(sync > 0);
    bytes.fill(0, sync, sync + 3);
    writeFileSync(damaged, bytes);
    await page.reload();
    await page.waitForFunction(() => window.tether.player?.ready === true, null, { timeout: 15_000 });
    await page.mouse.click(tl.x + tl.width * ((others.at(-1).start_ms + 100) / duration), tl.y + tl.height / 2);
    await page.getByTestId('player-novideo').getByText(`The video of this stretch (${others.at(-1).name}) is damaged and cannot be played. Verify integrity checks the whole archive.`).waitFor({ timeout: 5000 });
    await page.screenshot({ path: join(ROOT, 'artifacts', 'player-segment-undecodable.png') });
  } finally {
    await browser.close();
  }
});

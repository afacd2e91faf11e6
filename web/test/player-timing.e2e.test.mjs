// What happened a fraction of a second apart shows in the player when it
// happened. A real host on Xvfb, with a technician's Terminal open through
// `viewer shell`: every 200 to 700 ms a command clicks the screen from
// black to white or back and prints a line, so the recording has a
// Terminal command event and a line of output close together, again and
// again. Played at 1× in headless Chromium, each command shows in the
// events list, and each line in the transcript, within a video frame
// (40 ms) of its recorded time: the transcript followed the timeline only
// five times a second, so a line came up to a fifth of a second late.
// Between two clicks the video shows the colour the first gave, also over
// a still screen of several seconds, played or paused: there the player
// showed the picture before the last click's.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { launch } from './browser.mjs';
import { api, bin, openRecording, recordSession, ROOT, start, stopAll, until } from './procs.mjs';

after(stopAll);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const FRAME_MS = 40; // one frame of 25 fps video
// The screen stays still for two to three seconds three times, each
// after two clicks a moment apart, so that a still starts with the
// second's frame whether or not a new segment started at the first.
const GAPS = [450, 200, 700, 180, 2500, 300, 600, 150, 3000, 250, 550, 350, 160, 2000, 650, 400, 500, 220];
const STILLS = GAPS.flatMap((gap, i) => (gap >= 2000 ? [i] : []));
const colourAfter = (n) => (n % 2 ? 'white' : 'black');

test('Terminal commands and their output a fraction of a second apart each show at their recorded time', { timeout: 180_000 }, async () => {
  let shell;
  const { broker, session, rec } = await recordSession({ ticket: 'INC-TIMING' }, async ({ broker, session, paint }) => {
    // Black, white at each click.
    await paint('-mode', 'input');
    const quote = (a) => `'${a}'`;
    shell = start('script', ['-qfec', [bin('viewer'), '-broker', broker.url, '-ca', broker.ca, '-api-key', broker.admin.api_key, 'shell', '-session', session.id].map(quote).join(' '), '/dev/null'],
      { env: { TERM: 'xterm' }, stdin: 'pipe' });
    shell.child.stdin.on('error', () => {});
    const type = (line) => shell.child.stdin.write(line + '\r');
    type('echo shell-$((6*7))');
    await until('the Terminal to open', () => shell.out.stdout.includes('shell-42'), 30_000);
    await sleep(1500);
    for (const [i, gap] of GAPS.entries()) {
      type(`xdotool click 1; printf 'out-%s\\n' ${i + 1}`);
      await sleep(gap);
    }
    await until('the last line of output', () => shell.out.stdout.includes(`out-${GAPS.length}`));
    await sleep(1500);
  });
  shell.child.kill('SIGTERM');

  const cast = rec.manifest.parts.find((p) => p.kind === 'shell');
  const { events } = (await api(broker, 'GET', `/api/v1/recordings/${session.id}/events`)).body;
  const commands = events.filter((e) => e.type === 'shell.command' && e.detail.command.startsWith('xdotool'));
  assert.equal(commands.length, GAPS.length, JSON.stringify(commands));

  const browser = await launch();
  try {
    const { page, errors } = await openRecording(browser, broker, session.id);
    await page.getByTestId('shell-player').locator('.ap-term').waitFor({ timeout: 15_000 });
    // Before the terminal opened, its empty box says when it opens.
    const note = page.getByTestId('shell-note');
    const opens = Math.floor(cast.start_ms / 1000);
    assert.ok(cast.start_ms > 0, 'the terminal opened after the recording started');
    assert.equal(await note.textContent(), opens > 0
      ? `Terminal 1 has not opened yet: it opens at ${Math.floor(opens / 60)}:${String(opens % 60).padStart(2, '0')}.`
      : 'Terminal 1 has not opened yet.');
    assert.equal(await note.isVisible(), true);
    mkdirSync(join(ROOT, 'artifacts'), { recursive: true });
    await page.screenshot({ path: join(ROOT, 'artifacts', 'player-shell-note.png'), fullPage: true });

    // When each line of output was written, from the transcript itself.
    const lines = await page.evaluate(async (name) => {
      const res = await fetch(`/api/v1/recordings/${location.hash.split('/').pop()}/parts/${name}`);
      return (await res.text()).trim().split('\n').slice(1).map((l) => JSON.parse(l));
    }, cast.name);
    const outputs = GAPS.map((_, i) => {
      const line = lines.find(([, kind, data]) => kind === 'o' && data.includes(`out-${i + 1}\r\n`));
      return cast.start_ms + line[0] * 1000;
    });

    // Every frame, once it is drawn (the transcript draws in an animation
    // frame callback of its own), the timeline's time, the current event,
    // the last line of output the transcript shows and the colour of the
    // video's picture.
    await page.evaluate(() => {
      window.seen = [];
      const canvas = document.createElement('canvas');
      canvas.width = 8;
      canvas.height = 6;
      const g = canvas.getContext('2d', { willReadFrequently: true });
      window.colour = () => {
        g.drawImage(document.querySelector('[data-testid="player-video"]'), 0, 0, 8, 6);
        const [r, gr, b] = g.getImageData(4, 3, 1, 1).data;
        if (r > 200 && gr > 200 && b > 200) return 'white';
        return r < 50 && gr < 50 && b < 50 ? 'black' : `rgb(${r},${gr},${b})`;
      };
      const look = () => setTimeout(() => {
        const text = document.querySelector('[data-testid="shell-player"]').innerText;
        window.seen.push({
          t: window.tether.player.t,
          event: Number(document.querySelector('.event-row.is-current')?.dataset.index ?? -1),
          out: Math.max(0, ...[...text.matchAll(/out-(\d+)/g)].map((m) => Number(m[1]))),
          colour: window.colour(),
          frame: window.tether.player.frameTime,
        });
        if (!window.stopLooking) requestAnimationFrame(look);
      });
      requestAnimationFrame(look);
    });
    const tl = await page.getByTestId('timeline').boundingBox();
    const duration = await page.evaluate(() => window.tether.player.duration);
    await page.mouse.click(tl.x + tl.width * ((commands[0].t - 1000) / duration), tl.y + tl.height / 2);
    await page.getByTestId('player-play').click();
    await page.waitForFunction((end) => window.tether.player.t > end || !window.tether.player.playing, outputs.at(-1) + 500, { timeout: 60_000 });
    await page.screenshot({ path: join(ROOT, 'artifacts', 'player-timing.png'), fullPage: true });
    assert.equal(await note.isVisible(), false, 'the note goes once the terminal is open');
    const seen = await page.evaluate(() => {
      window.stopLooking = true;
      return window.seen;
    });

    // The frame on screen is never one recorded after the timeline's time.
    const early = seen.find((x) => x.frame > x.t);
    assert.ok(!early, `at ${early?.t} ms the player showed the frame recorded at ${early?.frame} ms`);

    // Each showed between two looks: the first look that shows it must
    // not come before its time, and the one before must not come after.
    const check = (what, at, shows) => {
      const i = seen.findIndex(shows);
      assert.ok(i > 0, `${what} (at ${Math.round(at)} ms) never showed`);
      const [from, to] = [seen[i - 1].t, seen[i].t];
      // Within a frame: the video's, or the page's when a busy machine
      // draws it less often (what is shown is read a frame ahead).
      const slack = Math.max(FRAME_MS, to - from);
      assert.ok(to >= at - slack && from <= at + slack,
        `${what}, recorded at ${Math.round(at)} ms, showed between ${Math.round(from)} and ${Math.round(to)} ms of the timeline`);
    };
    for (const [i, e] of commands.entries()) {
      check(`Terminal command ${i + 1} in the events list`, e.t, (x) => x.event >= events.indexOf(e));
      check(`the line out-${i + 1} in the transcript`, outputs[i], (x) => x.out >= i + 1);
    }

    // The picture: from a moment after each click's line was printed
    // until the next click's command, the colour that click gave shows;
    // over a still screen too, and never the next one's before its click.
    // The moment: the host captures a change at most a frame after it,
    // and a busy machine may be slow to draw it (a recording's segment is
    // placed by its fastest-arriving frame).
    const LATE_MS = 250;
    const changes = seen.filter((x, i) => i === 0 || x.colour !== seen[i - 1].colour).map((x) => `${x.colour} at ${Math.round(x.t)}`);
    const story = `clicks at ${commands.map((e, i) => `${Math.round(e.t)}-${Math.round(outputs[i])}`).join(', ')}; the player showed ${changes.join(', ')}`;
    for (const [i, e] of commands.entries()) {
      const until = commands[i + 1]?.t ?? outputs[i] + 500;
      const wrong = seen.find((x) => x.t > outputs[i] + LATE_MS && x.t < until - FRAME_MS && x.colour !== colourAfter(i + 1));
      assert.ok(!wrong, `after click ${i + 1} (${Math.round(e.t)}-${Math.round(outputs[i])} ms) the screen was ${colourAfter(i + 1)} until ${Math.round(until)} ms, but at ${Math.round(wrong?.t)} ms the player showed ${wrong?.colour}: ${story}`);
    }

    // Paused in the middle of a still screen, the player shows what the
    // last click before it left on the screen.
    for (const i of STILLS) {
      const still = (commands[i].t + commands[i + 1].t) / 2;
      await page.mouse.click(tl.x + tl.width * (still / duration), tl.y + tl.height / 2);
      await page.waitForTimeout(500);
      await page.screenshot({ path: join(ROOT, 'artifacts', `player-timing-still-${i + 1}.png`), fullPage: true });
      const paused = await page.evaluate(() => ({ t: window.tether.player.t, colour: window.colour() }));
      assert.equal(paused.colour, colourAfter(i + 1), `paused at ${Math.round(paused.t)} ms, in the still screen after click ${i + 1}: ${story}`);
    }
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

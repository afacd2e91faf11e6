// Input-to-pixel latency through the real console: headless Chromium
// clicks on the remote video in Control mode, the input witness
// (testdata/xpattern -mode input) toggles its window between black and
// white, and the page times the click (performance.now() in a capturing
// pointerdown listener, before the console's own) until the first video
// frame whose pixels show the new colour (read back in
// requestVideoFrameCallback with lib.mjs's readGrey). Clicks are paced
// 150-250 ms apart, jittered, each after the previous one was seen, so
// frames never pipeline.
//
// The witness stamps its lines (-stamp), so each sample splits into:
//   input    pointerdown in the page → button press seen by the X client
//   paint    press → new colour reached the X server
//   host     colour on screen → browser received the frame's last packet
//            (damage, frame pacing, capture, encode, send, broker relay)
//   decode   received → frame presented (decode, jitter buffer, render)
//   read     presented → pixels read in the page: waiting for the next
//            rendering step (vsync) that runs the callback, then drawing
//            the square's pixels (readback)
//
// With --window WxH the witness is a window of that size in the middle of
// the screen instead of the whole screen, like a button or a menu that
// changes: the host then encodes only that part.
//
//   node web/bench/click.mjs --size 1280x720 --samples 200

import { writeFileSync } from 'node:fs';
import {
  log, main, median, openConsole, options, parseSize, percentile, receiveSide, result, sleep, stamped,
  startPattern, startXvfb, takeControl, videoStats,
} from './lib.mjs';

const opt = options({ size: '1280x720', samples: 200, warmup: 10, fps: 0, dump: '', window: '' });
const { width, height } = parseSize(opt.size);
// The witness's rectangle on the screen.
const win = opt.window ? parseSize(opt.window) : { width, height };
win.x = Math.floor((width - win.width) / 2);
win.y = Math.floor((height - win.height) / 2);

main(async () => {
  const display = await startXvfb(width, height);
  const geometry = opt.window ? ['-geometry', `${win.width}x${win.height}+${win.x}+${win.y}`] : [];
  const witness = await startPattern(display, ['-mode', 'input', '-stamp', ...geometry]);
  const hostArgs = opt.fps ? ['-fps', String(opt.fps)] : [];
  const { page } = await openConsole(display, { width, height, hostArgs });
  await takeControl(page);
  log(`live at ${width}x${height}; clicking ${opt.warmup} + ${opt.samples} times`);

  // Where to click and where to look, in remote pixels: apart, so that the
  // cursor drawn into the picture is never in the sampled square.
  const at = await page.evaluate(({ w, h, win }) => {
    const v = document.querySelector('[data-testid="remote-video"]');
    const r = v.getBoundingClientRect();
    const scale = Math.min(r.width / w, r.height / h);
    const left = r.left + (r.width - w * scale) / 2;
    const top = r.top + (r.height - h * scale) / 2;
    return { x: left + (win.x + win.width * 0.25) * scale, y: top + (win.y + win.height * 0.75) * scale };
  }, { w: width, h: height, win });

  await page.evaluate(({ sx, sy }) => {
    const video = document.querySelector('[data-testid="remote-video"]');
    const b = { clicks: [], pending: null, results: [], frames: 0, colour: null };
    window.bench = b;
    window.addEventListener('pointerdown', (e) => {
      if (e.button !== 0) return;
      const t = performance.now();
      b.clicks.push(t);
      b.pending = { t, from: b.colour };
    }, true);
    const onFrame = async (now, meta) => {
      video.requestVideoFrameCallback(onFrame);
      const entry = performance.now();
      const grey = await window.readGrey(video, sx, sy, 16, 16);
      const t = performance.now();
      const lum = grey.reduce((a, v) => a + v, 0) / grey.length;
      const colour = lum >= 192 ? 'white' : lum <= 63 ? 'black' : null;
      b.frames += 1;
      if (b.pending && colour && b.pending.from && colour !== b.pending.from) {
        b.results.push({
          click: b.pending.t, read: t, entry, now, presentation: meta.presentationTime,
          expected: meta.expectedDisplayTime, receive: meta.receiveTime ?? null,
          processing: meta.processingDuration ?? null,
        });
        b.pending = null;
      }
      if (colour) b.colour = colour;
    };
    video.requestVideoFrameCallback(onFrame);
  }, { sx: (Math.round(win.x + win.width * 0.75) - 8) & ~1, sy: (Math.round(win.y + win.height * 0.25) - 8) & ~1 });
  // The pointer goes to the click point first and stays there, so that a
  // click is only a press: no cursor movement to capture with it. The
  // move also makes a frame, so the page learns the colour before the
  // first click: a still screen sends none.
  await page.mouse.move(at.x, at.y);
  await page.waitForFunction(() => window.bench.colour !== null, null, { timeout: 10_000 });
  await sleep(500);
  const timeOrigin = await page.evaluate(() => performance.timeOrigin);

  let misses = 0;
  let missesInARow = 0;
  let statsFrom = null;
  for (let i = 0; i < opt.warmup + opt.samples; i++) {
    if (i === opt.warmup) {
      statsFrom = await videoStats(page);
      await page.evaluate(() => { window.bench.results = []; });
    }
    const before = await page.evaluate(() => window.bench.results.length);
    const t0 = Date.now();
    await page.mouse.click(at.x, at.y);
    try {
      await page.waitForFunction((n) => window.bench.results.length > n, before, { timeout: 2000 });
      missesInARow = 0;
    } catch {
      misses += 1;
      missesInARow += 1;
      const presses = witness.lines.filter((l) => /^button 1 down /.test(l)).length;
      log(`click ${i}: new colour not seen within 2 s (the X client saw ${presses} presses for ${i + 1} clicks)`);
      if (missesInARow === 3) {
        throw new Error(`3 clicks in a row never showed on the console; the X client saw ${presses} presses for ${i + 1} clicks, so the host stopped sending the screen's changes`);
      }
      await sleep(1000);
      await page.evaluate(() => { window.bench.pending = null; });
    }
    await sleep(Math.max(30, t0 + 150 + Math.random() * 100 - Date.now()));
  }
  const statsTo = await videoStats(page);
  const { results, clicks } = await page.evaluate(() => ({ results: window.bench.results, clicks: window.bench.clicks }));

  // Split each sample with the witness's stamps (wall clock, microseconds).
  const lines = stamped(witness.lines);
  const downs = lines.filter((l) => /^button 1 down /.test(l.text));
  const colours = lines.filter((l) => /^colour /.test(l.text));
  const wall = (t) => timeOrigin + t;
  const parts = { input: [], paint: [], host: [], decode: [], read: [], vsync: [], readback: [] };
  let di = 0;
  const rows = [];
  for (const r of results) {
    const c = wall(r.click);
    while (di < downs.length && downs[di].at < c - 2) di++;
    const down = downs[di];
    const colour = down && colours.find((l) => l.at >= down.at);
    if (!down || !colour || down.at > c + 1000) continue;
    parts.input.push(down.at - c);
    parts.paint.push(colour.at - down.at);
    if (r.receive !== null) {
      parts.host.push(wall(r.receive) - colour.at);
      parts.decode.push(r.presentation - r.receive);
    }
    parts.read.push(r.read - r.presentation);
    parts.vsync.push(r.entry - r.presentation);
    parts.readback.push(r.read - r.entry);
    rows.push({
      at: c, total: r.read - r.click, input: down.at - c, paint: colour.at - down.at,
      host: r.receive === null ? null : wall(r.receive) - colour.at,
      decode: r.receive === null ? null : r.presentation - r.receive, read: r.read - r.presentation,
      callback: r.entry - r.presentation, readback: r.read - r.entry, nowMinusPres: r.now - r.presentation, expMinusPres: r.expected - r.presentation,
    });
    di++;
  }

  if (opt.dump) writeFileSync(opt.dump, JSON.stringify(rows, null, 1));
  const lat = results.map((r) => r.read - r.click);
  const rs = receiveSide(statsFrom, statsTo);
  log(`clicks ${clicks.length}, samples ${lat.length}, misses ${misses}; latency min ${Math.min(...lat).toFixed(1)} p50 ${median(lat).toFixed(1)} p95 ${percentile(lat, 95).toFixed(1)} max ${Math.max(...lat).toFixed(1)} ms`);
  for (const [k, v] of Object.entries(parts)) {
    log(`  ${k.padEnd(7)} p50 ${median(v).toFixed(2)}  p95 ${percentile(v, 95).toFixed(2)}  (n=${v.length})`);
  }
  log(`  receive side per frame: decode ${rs.decode.toFixed(2)} ms, processing ${rs.processing.toFixed(2)} ms, jitter buffer ${rs.jitterBuffer.toFixed(2)} ms, ${(rs.bytesPerFrame / 1024).toFixed(1)} KB over ${rs.frames} frames`);
  if (lat.length < opt.samples * 0.9) throw new Error(`only ${lat.length} of ${opt.samples} clicks were seen`);

  const what = opt.window ? `${width}x${height}/window-${win.width}x${win.height}` : `${width}x${height}`;
  result(`BenchmarkConsoleClickToPixel/${what}`, lat.length, {
    'p50-ms': median(lat),
    'p95-ms': percentile(lat, 95),
    'max-ms': Math.max(...lat),
    misses,
  });
  result(`BenchmarkConsoleClickBreakdown/${what}`, parts.input.length, {
    'input-p50-ms': median(parts.input),
    'paint-p50-ms': median(parts.paint),
    'host-p50-ms': median(parts.host),
    'host-p95-ms': percentile(parts.host, 95),
    'decode-p50-ms': median(parts.decode),
    'read-p50-ms': median(parts.read),
    'vsync-p50-ms': median(parts.vsync),
    'readback-p50-ms': median(parts.readback),
    'decode-per-frame-ms': rs.decode,
    'jitterbuffer-per-frame-ms': rs.jitterBuffer,
    'frame-KB': rs.bytesPerFrame / 1024,
  });
}, { limitMs: 240_000 });

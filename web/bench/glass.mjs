// Glass-to-glass latency through the real console: testdata/xpattern
// -mode counter -bars -stamp repaints the screen every --interval ms and
// shows the paint's counter as black and white bars (see
// testdata/xpattern/bars.go), logging the wall-clock time each paint
// reached the X server. The page reads the bars back in
// requestVideoFrameCallback and notes its own wall clock
// (performance.timeOrigin + performance.now(), the same machine's clock);
// latency is read time minus paint time, per frame shown. Capture,
// encode, the broker, decode and rendering are all inside it.
//
//   node web/bench/glass.mjs --size 1280x720 --seconds 30 --interval 16

import {
  log, main, median, openConsole, options, parseSize, percentile, receiveSide, result, sleep, stamped,
  startPattern, startXvfb, videoStats,
} from './lib.mjs';

const opt = options({ size: '1280x720', seconds: 30, interval: 16, fps: 0 });
const { width, height } = parseSize(opt.size);
const BITS = 16; // BarBits in testdata/xpattern/bars.go

main(async () => {
  const display = await startXvfb(width, height);
  const painter = await startPattern(display, ['-mode', 'counter', '-bars', '-stamp', '-interval', String(opt.interval)]);
  const hostArgs = opt.fps ? ['-fps', String(opt.fps)] : [];
  const { page } = await openConsole(display, { width, height, hostArgs });
  log(`live at ${width}x${height}; reading the counter for ${opt.seconds} s`);

  await page.evaluate((bits) => {
    const video = document.querySelector('[data-testid="remote-video"]');
    const b = { frames: 0, unreadable: 0, seen: [], last: -1, on: false };
    window.bench = b;
    // The bars fill two rows, each an eighth of the height; one line
    // through the middle of each row is read, and each bar's centre
    // picked from it.
    const onFrame = async (now, meta) => {
      video.requestVideoFrameCallback(onFrame);
      if (!b.on) return;
      const vw = video.videoWidth & ~1;
      const vh = video.videoHeight;
      const [upper, lower] = await Promise.all([
        window.readGrey(video, 0, (vh / 16) & ~1, vw, 2),
        window.readGrey(video, 0, (3 * vh / 16) & ~1, vw, 2),
      ]);
      const t = performance.now();
      b.frames += 1;
      const bw = Math.floor(video.videoWidth / bits);
      let value = 0;
      for (let i = 0; i < bits; i++) {
        const x = i * bw + (bw >> 1);
        const up = upper[x];
        const low = lower[x];
        if (up >= 160 && low <= 95) value = value * 2 + 1;
        else if (up <= 95 && low >= 160) value *= 2;
        else {
          b.unreadable += 1;
          return;
        }
      }
      if (value === b.last) return; // the same paint, shown again
      b.last = value;
      b.seen.push({ value, read: t, presentation: meta.presentationTime, receive: meta.receiveTime ?? null });
    };
    video.requestVideoFrameCallback(onFrame);
  }, BITS);

  await sleep(2000); // past the first keyframe and the encoder's start-up
  const timeOrigin = await page.evaluate(() => performance.timeOrigin);
  const clockSkew = await page.evaluate(() => Date.now() - (performance.timeOrigin + performance.now()));
  const from = await videoStats(page);
  await page.evaluate(() => { window.bench.on = true; });
  await sleep(opt.seconds * 1000);
  await page.evaluate(() => { window.bench.on = false; });
  const to = await videoStats(page);
  const b = await page.evaluate(() => window.bench);

  // Paint times by the counter's low 16 bits; a value is repainted only
  // every 65536 paints, far longer than a run.
  const paints = new Map();
  for (const l of stamped(painter.lines)) {
    const m = /^paint (\d+)$/.exec(l.text);
    if (m) paints.set(Number(m[1]) % (1 << BITS), l.at);
  }
  const lat = [];
  const host = [];
  let unknown = 0;
  for (const s of b.seen) {
    const painted = paints.get(s.value);
    const read = timeOrigin + s.read;
    if (painted === undefined || painted > read) {
      unknown += 1;
      continue;
    }
    lat.push(read - painted);
    if (s.receive !== null) host.push(timeOrigin + s.receive - painted);
  }
  const rs = receiveSide(from, to);
  log(`frames ${b.frames}, distinct paints seen ${b.seen.length}, unreadable ${b.unreadable}, unknown ${unknown}, clock skew Date.now()-timeOrigin-now ${clockSkew.toFixed(2)} ms`);
  log(`latency min ${Math.min(...lat).toFixed(1)} p50 ${median(lat).toFixed(1)} p95 ${percentile(lat, 95).toFixed(1)} max ${Math.max(...lat).toFixed(1)} ms; paint→received p50 ${median(host).toFixed(1)} p95 ${percentile(host, 95).toFixed(1)}`);
  log(`receive side per frame: decode ${rs.decode.toFixed(2)} ms, jitter buffer ${rs.jitterBuffer.toFixed(2)} ms, ${rs.frames} frames decoded`);
  if (lat.length < 50) throw new Error(`only ${lat.length} frames could be timed`);

  result(`BenchmarkConsoleGlassToGlass/${width}x${height}`, lat.length, {
    'p50-ms': median(lat),
    'p95-ms': percentile(lat, 95),
    'received-p50-ms': median(host),
    'fps': b.seen.length / opt.seconds,
    'unreadable-frames': b.unreadable,
    'decode-per-frame-ms': rs.decode,
    'jitterbuffer-per-frame-ms': rs.jitterBuffer,
  });
}, { limitMs: 60_000 + opt.seconds * 1000 * 2 });

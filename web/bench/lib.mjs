// What the console benchmarks share: the real programs (a private Xvfb,
// test X clients, bin/broker, bin/host), headless Chromium on the real
// console, getStats figures, percentiles and the result lines
// internal/bench parses.
//
// Results go to stdout as `go test -bench` lines only:
//   BenchmarkName/WxH  N  value unit  value unit ...
// Progress and diagnostics go to stderr.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { launch } from '../test/browser.mjs';

export const ROOT = resolve(import.meta.dirname, '../..');

const procs = new Set();
const dirs = new Set();
const browsers = new Set();

export function log(...args) {
  process.stderr.write(`${new Date().toISOString().slice(11, 23)} ${args.join(' ')}\n`);
}

// TETHER_BIN names another directory of built binaries (default bin/).
export function bin(name) {
  const p = join(process.env.TETHER_BIN || join(ROOT, 'bin'), name);
  if (!existsSync(p)) throw new Error(`${p} is missing: run \`make bench\` (it builds bin/ first)`);
  return p;
}

/** Command-line options as --name value pairs, with defaults. */
export function options(defaults) {
  const o = { ...defaults };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, '');
    if (!(k in defaults)) throw new Error(`unknown option ${argv[i]}; known: ${Object.keys(defaults).join(', ')}`);
    o[k] = typeof defaults[k] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
  }
  return o;
}

export function parseSize(s) {
  const m = /^(\d+)x(\d+)$/.exec(s);
  if (!m) throw new Error(`size ${s}: want WxH`);
  return { width: Number(m[1]), height: Number(m[2]) };
}

/**
 * Runs a program; `lines` holds its stdout lines as they come, `ready`
 * resolves at the first stdout line matching readyLine.
 */
export function start(cmd, args, { env = {}, readyLine, timeoutMs = 15000, name = cmd, stdin = 'ignore' } = {}) {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: [stdin, 'pipe', 'pipe'] });
  const p = { name, child, lines: [], stderr: '', exited: null, ready: null };
  procs.add(p);
  p.exited = new Promise((res) => child.on('exit', (code, signal) => { procs.delete(p); res({ code, signal }); }));
  let partial = '';
  const waiters = [];
  child.stdout.on('data', (d) => {
    p.onData?.(String(d));
    const parts = (partial + d).split('\n');
    partial = parts.pop();
    for (let l of parts) {
      l = l.replace(/\r$/, ''); // a pty ends lines in CR LF
      p.lines.push(l);
      for (const w of waiters) w(l);
    }
  });
  child.stderr.on('data', (d) => {
    p.stderr += d;
    if (p.stderr.length > 1 << 20) p.stderr = p.stderr.slice(-(1 << 19));
  });
  p.ready = !readyLine ? Promise.resolve() : new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`${name}: no line matching ${readyLine} after ${timeoutMs} ms\n${p.stderr}`)), timeoutMs);
    waiters.push((l) => { if (readyLine.test(l)) { clearTimeout(timer); res(); } });
    p.exited.then(({ code, signal }) => { clearTimeout(timer); rej(new Error(`${name} exited (${code ?? signal}) before it was ready:\n${p.stderr}`)); });
  });
  p.ready.catch(() => {});
  return p;
}

/** Stops one program: SIGTERM, then SIGKILL after graceMs. */
export async function stop(p, graceMs = 3000) {
  if (!procs.has(p)) return p.exited;
  p.child.kill('SIGTERM');
  const t = setTimeout(() => p.child.kill('SIGKILL'), graceMs);
  const r = await p.exited;
  clearTimeout(t);
  return r;
}

/** Stops every program started here and removes temporary directories. */
export async function stopAll() {
  await Promise.all([...browsers].map((b) => b.close().catch(() => {})));
  browsers.clear();
  await Promise.all([...procs].map((p) => stop(p)));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs.clear();
}

export function tempDir(prefix) {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.add(d);
  return d;
}

/** A private Xvfb on a free display number; resolves to ":N". */
export async function startXvfb(width, height) {
  for (let n = 260; n < 330; n++) {
    if (existsSync(`/tmp/.X11-unix/X${n}`) || existsSync(`/tmp/.X${n}-lock`)) continue;
    const p = start('Xvfb', [`:${n}`, '-displayfd', '1', '-screen', '0', `${width}x${height}x24`, '-noreset', '-nolisten', 'tcp'],
      { readyLine: /^\d+$/, name: `Xvfb :${n}` });
    try {
      await p.ready;
    } catch {
      await stop(p);
      continue;
    }
    if (p.lines[0] === String(n)) return `:${n}`;
    await stop(p);
  }
  throw new Error('no free X display in :260..:329');
}

async function freePort(udp) {
  if (udp) {
    const sock = createSocket('udp4');
    await new Promise((res) => sock.bind(0, '127.0.0.1', res));
    const { port } = sock.address();
    sock.close();
    return port;
  }
  const srv = createServer();
  await new Promise((res) => srv.listen(0, '127.0.0.1', res));
  const { port } = srv.address();
  await new Promise((res) => srv.close(res));
  return port;
}

/** bin/broker on loopback with a fresh data directory. */
export async function startBroker() {
  const data = tempDir('tether-bench-broker-');
  const port = await freePort(false);
  const udp = await freePort(true);
  const p = start(bin('broker'), ['-addr', `127.0.0.1:${port}`, '-udp', String(udp), '-data', data], { readyLine: /Console: /, name: 'broker' });
  await p.ready;
  const admin = JSON.parse(readFileSync(join(data, 'initial-admin.json'), 'utf8'));
  return { ...p, url: `https://localhost:${port}`, ca: join(data, 'certs', 'ca.pem'), admin };
}

/** testdata/xpattern on display; resolves once it printed "ready". */
export async function startPattern(display, args) {
  const p = start(bin('xpattern'), args, { env: { DISPLAY: display }, readyLine: /^ready$/, name: `xpattern ${args.join(' ')}` });
  await p.ready;
  return p;
}

/**
 * Headless Chromium on the console: logs in, creates a session, opens it,
 * runs bin/host on display with its code and waits for live video of the
 * display's size. Resolves to { browser, page, host }.
 */
export async function openConsole(display, { width, height, hostArgs = [], viewport } = {}) {
  const broker = await startBroker();
  const browser = await launch(viewport ? { viewport } : {});
  browsers.add(browser);
  const page = await browser.newPage();
  await page.addInitScript(installReadGrey);
  await page.goto(`${broker.url}/`);
  await page.getByTestId('login-username').fill(broker.admin.user);
  await page.getByTestId('login-password').fill(broker.admin.password);
  await page.getByTestId('login-submit').click();
  await page.getByTestId('new-session').click();
  await page.getByTestId('new-session-ticket').fill('BENCH-1');
  await page.getByTestId('new-session-submit').click();
  const codeEl = page.getByTestId('session-code');
  await codeEl.waitFor();
  const code = await codeEl.getAttribute('data-code');
  await page.getByTestId('open-session').click();
  await page.getByTestId('conn-state').waitFor();
  const host = startHost(broker, code, display, hostArgs);
  await host.ready;
  await page.waitForSelector('[data-testid="conn-state"][data-state="live"]', { timeout: 30_000 });
  await page.waitForFunction(([w, h]) => {
    const v = document.querySelector('[data-testid="remote-video"]');
    return v && v.videoWidth === w && v.videoHeight === h && v.getVideoPlaybackQuality().totalVideoFrames > 0;
  }, [width, height], { timeout: 30_000 }).catch(async (err) => {
    const seen = await page.evaluate(() => {
      const v = document.querySelector('[data-testid="remote-video"]');
      return v ? `${v.videoWidth}x${v.videoHeight}, ${v.getVideoPlaybackQuality().totalVideoFrames} frames` : 'no video element';
    });
    throw new Error(`no video of ${width}x${height} (${seen}): ${err.message}\nhost:\n${host.lines.slice(-30).join('\n')}`);
  });
  return { broker, browser, page, host };
}

/**
 * Installed in every console page: window.readGrey(video, x, y, w, h)
 * resolves to the grey level (0..255) of each pixel of a rectangle of the
 * video's current frame, row by row. When the decoder's frame is YUV in
 * memory it copies just that rectangle's luma through WebCodecs; else it
 * draws the rectangle into a canvas and reads it back, which converts the
 * whole frame and costs several ms at 1920x1080 in software rendering.
 * x, y, w and h must be even (4:2:0 chroma comes in 2x2 blocks).
 */
function installReadGrey() {
  const canvas = document.createElement('canvas');
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  window.readGrey = async (video, x, y, width, height) => {
    const grey = new Uint8Array(width * height);
    const frame = new VideoFrame(video);
    try {
      if (/^(I420|I420A|NV12)$/.test(frame.format)) {
        const rect = { x, y, width, height };
        const buf = new Uint8Array(frame.allocationSize({ rect }));
        const [{ offset, stride }] = await frame.copyTo(buf, { rect });
        for (let r = 0; r < height; r++) {
          for (let c = 0; c < width; c++) {
            grey[r * width + c] = (buf[offset + r * stride + c] - 16) * 255 / 219; // studio range; clamped by the array
          }
        }
        return grey;
      }
    } finally {
      frame.close();
    }
    canvas.width = width;
    canvas.height = height;
    ctx.drawImage(video, x, y, width, height, 0, 0, width, height);
    const d = ctx.getImageData(0, 0, width, height).data;
    for (let i = 0; i < grey.length; i++) grey[i] = (d[4 * i] + d[4 * i + 1] + d[4 * i + 2]) / 3;
    return grey;
  };
}

/**
 * Runs bin/host on a terminal (util-linux `script` gives it a pty), as a
 * user who started it from a shell, and allows everything it asks for.
 */
export function startHost(broker, code, display, args = []) {
  // For diagnosis: TETHER_BENCH_HOST_LOG=FILE runs the host with -v and
  // writes what it printed to FILE when it exits.
  const hostLog = process.env.TETHER_BENCH_HOST_LOG;
  if (hostLog) args = ['-v', ...args];
  const quote = (s) => `'${String(s).replaceAll("'", "'\\''")}'`;
  const cmd = [bin('host'), '-broker', broker.url, '-ca', broker.ca, ...args, code].map(quote).join(' ');
  const host = start('script', ['-qfec', cmd, '/dev/null'], { env: { DISPLAY: display }, readyLine: /Connected/, name: 'host', stdin: 'pipe' });
  host.child.stdin.on('error', () => {});
  if (hostLog) host.exited.then(() => writeFileSync(hostLog, host.lines.join('\n')));
  // Each question ends in "Allow? " (no newline; the log may follow on
  // the same line): answer every one, even one split across reads.
  const prompt = 'Allow? ';
  let tail = '';
  host.onData = (d) => {
    const text = tail + d;
    for (let i = text.indexOf(prompt); i >= 0; i = text.indexOf(prompt, i + 1)) {
      if (i + prompt.length > tail.length) host.child.stdin.write('all\n');
    }
    tail = text.slice(-(prompt.length - 1));
  };
  return host;
}

/** Switches the console to Control and waits for the broker's grant. */
export async function takeControl(page) {
  await page.getByTestId('mode-control').click();
  await page.waitForFunction(() => window.tether.control?.enabled === true, null, { timeout: 10_000 });
}

/**
 * The video receiver's counters and the selected candidate pair's, from
 * the console's RTCPeerConnection.
 */
export async function videoStats(page) {
  return page.evaluate(async () => {
    const report = await window.tether.viewer.pc.getStats();
    let video = null;
    let pair = null;
    const byId = new Map();
    let pairId = '';
    report.forEach((s) => {
      byId.set(s.id, s);
      if (s.type === 'inbound-rtp' && s.kind === 'video' && (!video || s.bytesReceived > video.bytesReceived)) video = s;
      if (s.type === 'transport' && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
    });
    if (pairId) pair = byId.get(pairId);
    const pick = (o, keys) => Object.fromEntries(keys.map((k) => [k, o?.[k] ?? 0]));
    return {
      t: performance.now(),
      video: pick(video, ['bytesReceived', 'headerBytesReceived', 'packetsReceived', 'framesReceived', 'framesDecoded',
        'keyFramesDecoded', 'totalDecodeTime', 'totalProcessingDelay', 'jitterBufferDelay', 'jitterBufferEmittedCount',
        'totalInterFrameDelay', 'framesDropped', 'packetsLost', 'nackCount', 'pliCount', 'firCount']),
      transport: pick(pair, ['bytesReceived', 'bytesSent', 'currentRoundTripTime']),
    };
  });
}

/** Per-frame receive-side figures between two videoStats samples, in ms. */
export function receiveSide(a, b) {
  const d = (k) => b.video[k] - a.video[k];
  const per = (k, n) => (d(n) > 0 ? (1000 * d(k)) / d(n) : NaN);
  return {
    frames: d('framesDecoded'),
    decode: per('totalDecodeTime', 'framesDecoded'),
    processing: per('totalProcessingDelay', 'framesDecoded'),
    jitterBuffer: per('jitterBufferDelay', 'jitterBufferEmittedCount'),
    bytesPerFrame: d('framesDecoded') > 0 ? d('bytesReceived') / d('framesDecoded') : NaN,
  };
}

export function percentile(values, p) {
  if (!values.length) return NaN;
  const s = [...values].sort((x, y) => x - y);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i];
}

export const median = (v) => percentile(v, 50);

const fmt = (v) => (Number.isFinite(v) ? (Math.abs(v) >= 100 ? v.toFixed(1) : v.toFixed(2)) : 'NaN');

/** Prints one result line: name, count, then value-unit pairs. */
export function result(name, n, figures) {
  const pairs = Object.entries(figures).map(([unit, v]) => `${fmt(v)} ${unit}`);
  process.stdout.write(`${name}\t${n}\t${pairs.join('\t')}\n`);
}

/** Stamped lines of xpattern -stamp: [{ text, at }] with `at` in ms since the epoch. */
export function stamped(lines) {
  const out = [];
  for (const l of lines) {
    const m = /^(.*) @(\d+)$/.exec(l);
    if (m) out.push({ text: m[1], at: Number(m[2]) / 1000 });
  }
  return out;
}

export const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

/**
 * Runs a benchmark body with a hard time limit, stopping every program
 * on the way out, on SIGINT/SIGTERM too. Exits non-zero on failure.
 */
export function main(body, { limitMs }) {
  const die = (why) => {
    log(why);
    stopAll().finally(() => process.exit(1));
  };
  process.on('SIGINT', () => die('interrupted'));
  process.on('SIGTERM', () => die('terminated'));
  const limit = setTimeout(() => die(`time limit of ${limitMs / 1000} s reached`), limitMs);
  body().then(async () => {
    clearTimeout(limit);
    await stopAll();
    process.exit(0);
  }, (err) => {
    clearTimeout(limit);
    die(err?.stack ?? String(err));
  });
}

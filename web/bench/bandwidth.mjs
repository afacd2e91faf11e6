// Bandwidth the console receives, from its RTCPeerConnection's getStats()
// over a fixed window, for three screens, each in a session of its own
// (view only, nothing else on the display):
//   still   testdata/xpattern -mode pattern: nothing changes
//   typing  an xterm that xdotool types into at about 8 characters a second
//   full    testdata/xpattern -mode counter -interval 16: every pixel
//           changes every 16 ms
// kbit/s counts the video's RTP payload, headers and padding
// (inbound-rtp bytesReceived + headerBytesReceived); transport-kbit/s is
// everything on the selected candidate pair (RTCP, data channels too).
//
//   node web/bench/bandwidth.mjs --size 1920x1080 --seconds 20

import {
  log, main, openConsole, options, parseSize, result, sleep, start, startPattern, startXvfb, stopAll, videoStats,
} from './lib.mjs';

const opt = options({ size: '1920x1080', seconds: 20, settle: 3 });
const { width, height } = parseSize(opt.size);

// About 8 characters a second, as a person types.
const TYPE_DELAY_MS = 125;
const TEXT = 'The quick brown fox jumps over the lazy dog while the printer spools page 42. ';

function xdotool(display, args) {
  const p = start('xdotool', args, { env: { DISPLAY: display }, name: `xdotool ${args[0]}` });
  return p.exited.then(({ code }) => {
    if (code !== 0) throw new Error(`xdotool ${args.join(' ')} exited ${code}: ${p.stderr}`);
  });
}

async function measure(page, name) {
  const a = await videoStats(page);
  await sleep(opt.seconds * 1000);
  const b = await videoStats(page);
  const s = (b.t - a.t) / 1000;
  const rtp = (b.video.bytesReceived + b.video.headerBytesReceived - a.video.bytesReceived - a.video.headerBytesReceived) * 8 / 1000 / s;
  const payload = (b.video.bytesReceived - a.video.bytesReceived) * 8 / 1000 / s;
  const transport = (b.transport.bytesReceived - a.transport.bytesReceived) * 8 / 1000 / s;
  const frames = b.video.framesReceived - a.video.framesReceived;
  const keyframes = b.video.keyFramesDecoded - a.video.keyFramesDecoded;
  const plis = b.video.pliCount - a.video.pliCount;
  log(`${name}: ${rtp.toFixed(2)} kbit/s video RTP (${payload.toFixed(2)} payload), ${transport.toFixed(2)} kbit/s transport, ${frames} frames in ${s.toFixed(1)} s`);
  result(`BenchmarkConsoleBandwidth/${name}`, 1, {
    'kbit/s': rtp,
    'payload-kbit/s': payload,
    'transport-kbit/s': transport,
    frames,
    fps: frames / s,
    keyframes,
    'keyframe-requests': plis,
  });
}

// Each screen gets its own display, session and browser, set up before
// the host starts: nothing but the screen under test changes.
async function screen(name, client) {
  const display = await startXvfb(width, height);
  await client(display);
  const { page } = await openConsole(display, { width, height });
  log(`${name}: live at ${width}x${height}`);
  await sleep(opt.settle * 1000); // past the settle frames after the first picture
  return page;
}

main(async () => {
  let page = await screen('still', (display) => startPattern(display, ['-mode', 'pattern']));
  await measure(page, 'still');
  await stopAll();

  let display;
  page = await screen('typing', async (d) => {
    display = d;
    start('xterm', ['-geometry', '160x48+0+0', '-fa', 'DejaVu Sans Mono', '-fs', '11', '-e', 'cat'], { env: { DISPLAY: d }, name: 'xterm' });
    await sleep(1000);
    // No window manager: the keyboard focus follows the pointer.
    await xdotool(d, ['mousemove', '200', '200']);
  });
  const chars = Math.ceil(((opt.seconds + 2 * opt.settle) * 1000) / TYPE_DELAY_MS);
  const typing = xdotool(display, ['type', '--delay', String(TYPE_DELAY_MS), TEXT.repeat(Math.ceil(chars / TEXT.length)).slice(0, chars)]);
  await sleep(opt.settle * 1000);
  await measure(page, 'typing');
  await typing;
  await stopAll();

  page = await screen('full', (d) => startPattern(d, ['-mode', 'counter', '-interval', '16']));
  await measure(page, 'full');
}, { limitMs: 120_000 + opt.seconds * 3 * 1000 + opt.settle * 9 * 1000 });

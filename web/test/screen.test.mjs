// The recorded screen's WebM reading, checked in Node on
// web/console/screen.js itself: the frames of the video track with their
// times, from clusters of known and unknown size, blocks simple and in
// groups, a negative block offset, another track's blocks left out, and a
// file cut short.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseWebM } from '../console/screen.js';

// An EBML element: id as written, then its size as an 8-byte number (as
// the broker writes them), or "unknown" (all ones) for a parent written
// as it went.
const el = (id, body, { unknown = false } = {}) => {
  const size = unknown ? [0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff] : [0x01, 0, 0, 0, 0, 0, 0, 0];
  if (!unknown) {
    for (let i = 7, n = body.length; i > 0; i--, n = Math.floor(n / 256)) size[i] = n % 256;
  }
  return [...id, ...size, ...body];
};
const uint = (id, v, width = 4) => el(id, Array.from({ length: width }, (_, i) => Math.floor(v / 256 ** (width - 1 - i)) % 256));
const block = (id, track, offset, payload) => el(id, [0x80 | track, (offset >> 8) & 0xff, offset & 0xff, id[0] === 0xa3 && !(payload[0] & 1) ? 0x80 : 0, ...payload]);
const simple = (track, offset, payload) => block([0xa3], track, offset, payload);

const KEY = [0x50, 0x2a, 0x00, 0x9d, 0x01, 0x2a]; // a VP8 keyframe's first bytes (bit 0 clear)
const DELTA = [0x31, 0x07, 0x00]; // an interframe's (bit 0 set)

function file() {
  const head = el([0x1a, 0x45, 0xdf, 0xa3], [...el([0x42, 0x82], [...Buffer.from('webm')])]);
  const info = el([0x15, 0x49, 0xa9, 0x66], uint([0x2a, 0xd7, 0xb1], 1_000_000));
  const tracks = el([0x16, 0x54, 0xae, 0x6b], [
    ...el([0xae], [...uint([0xd7], 2, 1), ...uint([0x83], 2, 1), ...el([0x86], [...Buffer.from('A_OPUS')])]),
    ...el([0xae], [...uint([0xd7], 1, 1), ...uint([0x83], 1, 1), ...el([0x86], [...Buffer.from('V_VP8')]),
      ...el([0xe0], [...uint([0xb0], 640, 2), ...uint([0xba], 480, 2)])]),
  ]);
  const first = el([0x1f, 0x43, 0xb6, 0x75], [
    ...uint([0xe7], 1000, 8),
    ...simple(1, 0, KEY),
    ...simple(2, 10, [1, 2, 3]), // audio
    ...simple(1, 40, DELTA),
  ]);
  const second = el([0x1f, 0x43, 0xb6, 0x75], [
    ...uint([0xe7], 2000, 8),
    ...simple(1, -5, DELTA),
    ...el([0xa0], block([0xa1], 1, 300, KEY)),
  ], { unknown: true });
  return [...head, ...el([0x18, 0x53, 0x80, 0x67], [...info, ...tracks, ...first, ...second], { unknown: true })];
}

test('the video track\'s frames come with their times and kinds', () => {
  const { width, height, frames } = parseWebM(new Uint8Array(file()).buffer);
  assert.deepEqual({ width, height }, { width: 640, height: 480 });
  assert.deepEqual(frames.map((f) => [f.ms, f.key, [...f.data]]), [
    [1000, true, KEY],
    [1040, false, DELTA],
    [1995, false, DELTA],
    [2300, true, KEY],
  ]);
});

test('a file cut short gives the frames before the cut', () => {
  const whole = file();
  for (const cut of [whole.length - 1, whole.length - KEY.length - 4]) {
    const { frames } = parseWebM(new Uint8Array(whole.slice(0, cut)).buffer);
    assert.deepEqual(frames.map((f) => f.ms), [1000, 1040, 1995], `cut at ${cut} of ${whole.length}`);
  }
  assert.deepEqual(parseWebM(new ArrayBuffer(0)).frames, []);
  assert.deepEqual(parseWebM(new Uint8Array([0x1a, 0x45, 0xdf]).buffer).frames, []);
});

test('a timecode scale other than a millisecond is followed', () => {
  const bytes = file();
  // The scale's value: 1,000,000 ns; make it 500,000 (0x0007a120).
  const at = bytes.findIndex((b, i) => b === 0x2a && bytes[i + 1] === 0xd7 && bytes[i + 2] === 0xb1) + 3 + 8;
  bytes.splice(at, 4, 0x00, 0x07, 0xa1, 0x20);
  assert.deepEqual(parseWebM(new Uint8Array(bytes).buffer).frames.map((f) => f.ms), [500, 520, 997.5, 1150]);
});

// The console's input wire format and remote-coordinate geometry, checked
// in Node on web/console/input.js itself: exact bytes for each message kind
// (the same vectors internal/protocol decodes with the host's decoder), the
// letterbox and 1:1 mappings, text splitting and wheel notches.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import * as input from '../console/input.js';

const {
  WheelAccumulator, describeInput, encodeKey, encodeText, encodeWheel, pictureRect, splitText, toRemote, validKeyCode,
} = input;

const bytes = (buf) => [...new Uint8Array(buf)];

// Each vector: an encoder call, the bytes it must produce, and the event
// the host decodes from them (TestConsoleInputVectors).
const vectors = JSON.parse(readFileSync(new URL('../../internal/protocol/testdata/console-input.json', import.meta.url)));

test('every kind encodes to the bytes the host decodes', () => {
  assert.ok(vectors.length >= 10);
  for (const { encode: [name, ...args], bytes: want, event } of vectors) {
    const buf = input[name](...args);
    assert.deepEqual(bytes(buf), want, `${name}(${args.join(', ')})`);
    // The console's own reading of a message (its debug log) agrees with the host's.
    const seen = describeInput(buf);
    for (const [field, value] of Object.entries({ x: event.X, y: event.Y, button: event.Button, dx: event.DX, dy: event.DY, code: event.Code, text: event.Text })) {
      if (field in seen) assert.equal(seen[field], value ?? 0, `${name} ${field}`);
    }
    if ('down' in seen) assert.equal(seen.down, event.Down ?? false, `${name} down`);
  }
});

test('limits: at most 100 notches, 64 bytes of text', () => {
  assert.deepEqual(bytes(encodeWheel(0, 250)), [3, 0, 0, 0, 100]);
  assert.throws(() => encodeText('x'.repeat(65)));
});

test('key codes: letters and digits only, at most 32', () => {
  for (const ok of ['KeyA', 'ShiftLeft', 'Digit1', 'BracketLeft', 'F5', 'MetaLeft', 'NumpadEnter', 'IntlBackslash']) {
    assert.equal(validKeyCode(ok), true, ok);
  }
  for (const bad of ['', 'Unidentified', 'Key A', 'Ä', 'x'.repeat(33), undefined]) {
    assert.equal(validKeyCode(bad), false, String(bad));
  }
  assert.throws(() => encodeKey('Unidentified', true));
});

test('text splits into chunks of at most 64 bytes, whole characters, no control characters', () => {
  const chunks = splitText(`${'€'.repeat(30)}\r\nok\u0007`);
  assert.deepEqual(chunks.map((c) => Buffer.byteLength(c)), [63, 30]);
  assert.equal(chunks.join(''), `${'€'.repeat(30)}\nok`);
  assert.deepEqual(splitText('\u0000\u001b'), []);
  assert.throws(() => encodeText('x'.repeat(65)));
});

// A stand-in for the <video> element: its box and its picture size.
const video = (left, top, width, height, vw, vh) => ({
  videoWidth: vw,
  videoHeight: vh,
  getBoundingClientRect: () => ({ left, top, width, height }),
});

test('fit mode: letterbox bars are not the remote screen', () => {
  // A 1920x1080 picture in a 1440x840 box at (0, 60): scale 0.75, 15 px bars above and below.
  const r = pictureRect(video(0, 60, 1440, 840, 1920, 1080));
  assert.deepEqual(r, { left: 0, top: 75, width: 1440, height: 810, scale: 0.75, remoteWidth: 1920, remoteHeight: 1080 });
  assert.deepEqual(toRemote(r, 915, 522), { x: 1220, y: 596 });
  assert.equal(toRemote(r, 700, 70), null, 'on the bar above');
  assert.equal(toRemote(r, 700, 885), null, 'on the bar below');
  assert.deepEqual(toRemote(r, 700, 70, true), { x: 933, y: 0 }, 'clamped while a button is held');
  assert.deepEqual(toRemote(r, 1439.9, 884.9), { x: 1919, y: 1079 }, 'never past w-1, h-1');

  // Pillarbox: a 4:3 picture in a wide box.
  const p = pictureRect(video(100, 0, 1600, 900, 1024, 768));
  assert.equal(p.left, 100 + (1600 - 1200) / 2);
  assert.equal(toRemote(p, 200, 450), null);
  assert.deepEqual(toRemote(p, 400, 0), { x: 85, y: 0 });
});

test('1:1 mode: the element is the picture, scrolled', () => {
  // Scrolled by (300, 150) inside a stage at (0, 60): the element starts at (-300, -90).
  const r = pictureRect(video(-300, -90, 1920, 1080, 1920, 1080));
  assert.equal(r.scale, 1);
  assert.deepEqual(toRemote(r, 640, 440), { x: 940, y: 530 });
});

test('no picture yet: no coordinates', () => {
  assert.equal(pictureRect(video(0, 0, 800, 600, 0, 0)), null);
  assert.equal(toRemote(null, 1, 1), null);
});

test('wheel: a line a notch, a page three, pixels 120 a notch rounded to the nearest; a pause or a turn forgets the rest', () => {
  let now = 0;
  const w = new WheelAccumulator(() => now);
  // One notch of a mouse wheel in Chromium at 100%, 125%, 80%, 67% and
  // 200% zoom is one notch, one after another as quickly as they come.
  for (const px of [120, 96, 150, 179, 60]) assert.deepEqual(w.add(0, px, 0), [0, 1], `${px} px`);
  assert.deepEqual(w.add(0, -96, 0), [0, -1], 'up as down');
  assert.deepEqual(w.add(0, 250, 0), [0, 2], 'two notches in one event, at 100%');
  assert.deepEqual(w.add(0, 192, 0), [0, 2], 'two notches in one event, at 125%');
  assert.deepEqual(w.add(0, 3, 1), [0, 3]);
  assert.deepEqual(w.add(0, 1, 2), [0, 3], 'a page is three notches');
  // A touchpad's small steps add up to half a notch.
  assert.deepEqual(w.add(0, 25, 0), [0, 0]);
  assert.deepEqual(w.add(0, 25, 0), [0, 0]);
  assert.deepEqual(w.add(0, 25, 0), [0, 1]);
  assert.deepEqual(w.add(0, 25, 0), [0, 0], 'the notch took the rest along');
  assert.deepEqual(w.add(0, -40, 0), [0, 0], 'turning drops the 25 px');
  assert.deepEqual(w.add(0, -40, 0), [0, -1]);
  assert.deepEqual(w.add(-40, 0, 0), [0, 0]);
  now += 1000;
  assert.deepEqual(w.add(-40, 0, 0), [0, 0], 'after a pause the 40 px are gone');
  assert.deepEqual(w.add(-20, 0, 0), [-1, 0]);
});

// The `input` data channel's wire format, and the geometry that turns a
// pointer position on the page into a pixel of the remote display.
//
// Every message is one binary frame, big-endian, whose first byte is the kind
// (internal/protocol/input.go is the other side):
//   1 move         x u16, y u16
//   2 button       button u8 (0 left, 1 middle, 2 right, 3 back, 4 forward), down u8, x u16, y u16
//   3 wheel        dx i16, dy i16 (notches, positive = right / down, |n| <= 100)
//   4 key          down u8, len u8, code (KeyboardEvent.code, ASCII letters and digits, <= 32 bytes)
//   5 text         len u8, UTF-8 (<= 64 bytes, no control characters but tab and newline)
//   6 release-all  no body
//
// Nothing here touches the DOM beyond reading an element's box, so the
// functions can be checked on their own.

export const MOVE = 1;
export const BUTTON = 2;
export const WHEEL = 3;
export const KEY = 4;
export const TEXT = 5;
export const RELEASE_ALL = 6;

export const MAX_KEY_CODE = 32;
export const MAX_TEXT = 64;
export const MAX_WHEEL = 100;

const KIND_NAMES = { [MOVE]: 'move', [BUTTON]: 'button', [WHEEL]: 'wheel', [KEY]: 'key', [TEXT]: 'text', [RELEASE_ALL]: 'release-all' };

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

const u16 = (v) => Math.min(Math.max(Math.round(v), 0), 0xffff);

export function encodeMove(x, y) {
  const v = new DataView(new ArrayBuffer(5));
  v.setUint8(0, MOVE);
  v.setUint16(1, u16(x));
  v.setUint16(3, u16(y));
  return v.buffer;
}

export function encodeButton(button, down, x, y) {
  const v = new DataView(new ArrayBuffer(7));
  v.setUint8(0, BUTTON);
  v.setUint8(1, button);
  v.setUint8(2, down ? 1 : 0);
  v.setUint16(3, u16(x));
  v.setUint16(5, u16(y));
  return v.buffer;
}

export function encodeWheel(dx, dy) {
  const v = new DataView(new ArrayBuffer(5));
  v.setUint8(0, WHEEL);
  v.setInt16(1, Math.max(-MAX_WHEEL, Math.min(MAX_WHEEL, dx)));
  v.setInt16(3, Math.max(-MAX_WHEEL, Math.min(MAX_WHEEL, dy)));
  return v.buffer;
}

/** True for a KeyboardEvent.code the host accepts ("KeyA", "ShiftLeft", "F5"). */
export function validKeyCode(code) {
  return typeof code === 'string' && /^[A-Za-z0-9]{1,32}$/.test(code) && code !== 'Unidentified';
}

export function encodeKey(code, down) {
  if (!validKeyCode(code)) throw new RangeError(`not a key code: ${code}`);
  const b = new Uint8Array(3 + code.length);
  b[0] = KEY;
  b[1] = down ? 1 : 0;
  b[2] = code.length;
  for (let i = 0; i < code.length; i++) b[3 + i] = code.charCodeAt(i);
  return b.buffer;
}

/** One text message; `text` must already be a chunk from splitText. */
export function encodeText(text) {
  const bytes = utf8.encode(text);
  if (!bytes.length || bytes.length > MAX_TEXT) throw new RangeError(`text of ${bytes.length} bytes`);
  const b = new Uint8Array(2 + bytes.length);
  b[0] = TEXT;
  b[1] = bytes.length;
  b.set(bytes, 2);
  return b.buffer;
}

export function encodeReleaseAll() {
  return new Uint8Array([RELEASE_ALL]).buffer;
}

/**
 * Cuts typed text into chunks the host accepts: at most 64 UTF-8 bytes each,
 * never inside a character, CR/CRLF turned into LF, and other control
 * characters dropped.
 */
export function splitText(text) {
  const clean = String(text ?? '').replace(/\r\n?/g, '\n')
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '');
  const chunks = [];
  let cur = '';
  let curBytes = 0;
  for (const ch of clean) {
    const n = utf8.encode(ch).length;
    if (curBytes + n > MAX_TEXT) {
      chunks.push(cur);
      cur = '';
      curBytes = 0;
    }
    cur += ch;
    curBytes += n;
  }
  if (cur) chunks.push(cur);
  return chunks;
}

/** A readable form of one input message, for tests and diagnostics. */
export function describeInput(buf) {
  const b = new Uint8Array(buf);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const kind = KIND_NAMES[b[0]] ?? `unknown(${b[0]})`;
  switch (b[0]) {
    case MOVE: return { kind, x: v.getUint16(1), y: v.getUint16(3) };
    case BUTTON: return { kind, button: b[1], down: b[2] === 1, x: v.getUint16(3), y: v.getUint16(5) };
    case WHEEL: return { kind, dx: v.getInt16(1), dy: v.getInt16(3) };
    case KEY: return { kind, down: b[1] === 1, code: String.fromCharCode(...b.subarray(3, 3 + b[2])) };
    case TEXT: return { kind, text: utf8Decoder.decode(b.subarray(2, 2 + b[1])) };
    default: return { kind };
  }
}

// ---- Geometry ----------------------------------------------------------------

/**
 * Where the picture of `video` is drawn, in client (viewport) pixels: the
 * element's box with object-fit: contain letterboxing taken out. In 1:1 mode
 * the element is exactly the picture's size and its box already includes the
 * scroll offset, so the same sum holds. Null until the first frame.
 */
export function pictureRect(video) {
  const vw = video.videoWidth;
  const vh = video.videoHeight;
  if (!vw || !vh) return null;
  const r = video.getBoundingClientRect();
  if (!(r.width > 0 && r.height > 0)) return null;
  const scale = Math.min(r.width / vw, r.height / vh);
  const width = vw * scale;
  const height = vh * scale;
  return {
    left: r.left + (r.width - width) / 2,
    top: r.top + (r.height - height) / 2,
    width,
    height,
    scale, // client px per remote px
    remoteWidth: vw,
    remoteHeight: vh,
  };
}

/**
 * The remote pixel under a client position: floor((client - picture origin)
 * / scale), in [0, w-1] × [0, h-1]. Outside the picture (on a letterbox bar)
 * it is null, unless `clamp` asks for the nearest edge pixel instead.
 */
export function toRemote(rect, clientX, clientY, clamp = false) {
  if (!rect) return null;
  const fx = (clientX - rect.left) / rect.scale;
  const fy = (clientY - rect.top) / rect.scale;
  const inside = fx >= 0 && fy >= 0 && fx < rect.remoteWidth && fy < rect.remoteHeight;
  if (!inside && !clamp) return null;
  return {
    x: Math.min(Math.max(Math.floor(fx), 0), rect.remoteWidth - 1),
    y: Math.min(Math.max(Math.floor(fy), 0), rect.remoteHeight - 1),
  };
}

// ---- Wheel -----------------------------------------------------------------

const PIXELS_PER_NOTCH = 120;
const LINES_PER_NOTCH = 1;
const NOTCHES_PER_PAGE = 3;
const WHEEL_IDLE_MS = 400;

/**
 * Turns WheelEvent deltas into whole notches. A line is one notch, a page
 * three. Pixel deltas count 120 px a notch (a mouse wheel's notch in
 * Chromium at 100% zoom), rounded to the nearest notch: the browser's zoom
 * divides the pixels a notch makes (96 at 125%, 150 at 80%) and each must
 * still be one notch, neither none nor two. Less than half a notch (a
 * touchpad's small steps) adds up; a notch sent takes that rest along. A
 * rest is forgotten after a pause, and when the direction turns, so that
 * it never fires much later.
 *
 * Not scaled by devicePixelRatio: Chromium gives a notch the same pixels
 * on a high-density screen, and only the zoom changes them.
 */
export class WheelAccumulator {
  constructor(now = () => performance.now()) {
    this.now = now;
    this.x = 0;
    this.y = 0;
    this.last = 0;
  }

  /** Adds one event's deltas; returns [dx, dy] whole notches to send now. */
  add(deltaX, deltaY, deltaMode) {
    const t = this.now();
    if (t - this.last > WHEEL_IDLE_MS) this.x = this.y = 0;
    this.last = t;
    const unit = deltaMode === 1 ? 1 / LINES_PER_NOTCH : deltaMode === 2 ? NOTCHES_PER_PAGE : 1 / PIXELS_PER_NOTCH;
    const step = (acc, d) => {
      const v = d * unit;
      if (Math.sign(v) && Math.sign(acc) && Math.sign(v) !== Math.sign(acc)) acc = 0;
      acc += v;
      // Halves away from zero, both ways (Math.round(-0.5) is 0).
      const whole = Math.sign(acc) * Math.round(Math.abs(acc)) || 0; // never -0
      return [whole ? 0 : acc, whole];
    };
    let dx;
    let dy;
    [this.x, dx] = step(this.x, deltaX);
    [this.y, dy] = step(this.y, deltaY);
    return [dx, dy];
  }
}

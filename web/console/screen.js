// The recorded screen: a recording's video segments drawn on a canvas, each
// frame at its recorded time.
//
// A <video> element schedules frames by their average spacing. A remote
// screen sends a frame only when something changed, so its frames come a
// few milliseconds or several seconds apart, and Chromium showed a change
// up to a tenth of a second before it happened, or after. Here each frame
// is decoded with WebCodecs and the picture is always the last frame
// recorded at or before the time asked for: never early, and late only by
// its decoding and the next animation frame. A player running faster than
// the decoder (a busy screen at 8×) asks behind() and waits for it.

// The WebM (Matroska) elements read.
const SEGMENT = 0x18538067;
const INFO = 0x1549a966;
const TIMECODE_SCALE = 0x2ad7b1;
const TRACKS = 0x1654ae6b;
const TRACK_ENTRY = 0xae;
const TRACK_NUMBER = 0xd7;
const TRACK_TYPE = 0x83;
const CODEC_ID = 0x86;
const VIDEO = 0xe0;
const PIXEL_WIDTH = 0xb0;
const PIXEL_HEIGHT = 0xba;
const CLUSTER = 0x1f43b675;
const TIMECODE = 0xe7;
const SIMPLE_BLOCK = 0xa3;
const BLOCK_GROUP = 0xa0;
const BLOCK = 0xa1;
// Elements whose children are read; any other's body is skipped whole.
const PARENTS = new Set([SEGMENT, INFO, TRACKS, TRACK_ENTRY, VIDEO, CLUSTER, BLOCK_GROUP]);

/**
 * The VP8 frames of a WebM file's video track, in order, each with its time
 * in milliseconds. A file cut short gives the frames before the cut.
 * @returns {{ width: number, height: number, frames: { ms: number, key: boolean, data: Uint8Array }[] }}
 */
export function parseWebM(buffer) {
  const b = new Uint8Array(buffer);
  // An EBML number: an id keeps its length marker, a size does not.
  const vint = (at, keepMarker) => {
    if (at >= b.length || b[at] === 0) return null;
    const len = Math.clz32(b[at]) - 23;
    if (at + len > b.length) return null;
    let v = keepMarker ? b[at] : b[at] & (0xff >> len);
    let allOnes = v === 0xff >> len;
    for (let i = 1; i < len; i++) {
      v = v * 256 + b[at + i];
      allOnes &&= b[at + i] === 0xff;
    }
    return { v, len, unknown: !keepMarker && allOnes };
  };
  const uint = (at, end) => {
    let v = 0;
    for (let i = at; i < end; i++) v = v * 256 + b[i];
    return v;
  };

  let scale = 1e6; // ns per tick
  let cluster = 0;
  const tracks = [];
  const blocks = [];
  for (let at = 0; at < b.length;) {
    const id = vint(at, true);
    const size = id && vint(at + id.len, false);
    if (!size) break;
    const body = at + id.len + size.len;
    // A parent of unknown size (a file written as it went) holds the rest.
    if (PARENTS.has(id.v)) {
      if (id.v === TRACK_ENTRY) tracks.push({});
      at = body;
      continue;
    }
    const end = body + size.v;
    if (size.unknown || end > b.length) break;
    const track = tracks[tracks.length - 1];
    switch (id.v) {
      case TIMECODE_SCALE: scale = uint(body, end) || 1e6; break;
      case TRACK_NUMBER: track && (track.number = uint(body, end)); break;
      case TRACK_TYPE: track && (track.type = uint(body, end)); break;
      case CODEC_ID: track && (track.codec = new TextDecoder().decode(b.subarray(body, end)).replace(/\0+$/, '')); break;
      case PIXEL_WIDTH: track && (track.width = uint(body, end)); break;
      case PIXEL_HEIGHT: track && (track.height = uint(body, end)); break;
      case TIMECODE: cluster = uint(body, end); break;
      case SIMPLE_BLOCK:
      case BLOCK: {
        const number = vint(body, false);
        if (!number || body + number.len + 3 > end) break;
        const head = body + number.len;
        const offset = (b[head] << 24 >> 16) | b[head + 1]; // signed 16-bit
        const laced = b[head + 2] & 0x06;
        if (!laced) blocks.push({ track: number.v, ticks: cluster + offset, data: b.subarray(head + 3, end) });
        break;
      }
    }
    at = end;
  }
  const video = tracks.find((t) => t.type === 1 && (!t.codec || t.codec === 'V_VP8')) || { number: 1 };
  const frames = blocks.filter((x) => x.track === video.number && x.data.length > 0).map((x) => ({
    ms: (x.ticks * scale) / 1e6,
    key: (x.data[0] & 1) === 0, // a VP8 keyframe (RFC 6386 9.1)
    data: x.data,
  }));
  return { width: video.width || 0, height: video.height || 0, frames };
}

/** The index of the last frame at or before ms, or -1. */
function frameAt(frames, ms) {
  let lo = 0;
  let hi = frames.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (frames[mid].ms <= ms) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}

// Frames handed to the decoder ahead of its output, at most: past it, the
// rest wait for it to catch up (at 8× a busy screen outruns it).
const MAX_QUEUED = 16;

// How often the picture is drawn while the decoder catches up, in ms.
const CATCH_UP_EVERY = 100;

// How long a segment the broker could not give stays failed, in ms: the
// picture asked for on every animation frame while playing does not ask
// the broker as often.
const REFETCH_AFTER_MS = 2000;

// damaged is what a supervisor is told about a segment that cannot be
// decoded; the decoder's own words go to the browser's console.
function damaged(clip, err) {
  console.warn(`decode ${clip.name}:`, err);
  return new Error(`The video of this stretch (${clip.name}) is damaged and cannot be played. Verify integrity checks the whole archive.`);
}

/** Draws recorded video segments on a canvas; see the top of the file. */
export class RecordedScreen {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {(name: string) => Promise<ArrayBuffer>} fetchPart
   * @param {{ onFrame?: (name: string, ms: number) => void, onError?: (err: Error, name: string) => void }} [hooks]
   */
  constructor(canvas, fetchPart, { onFrame = () => {}, onError = () => {} } = {}) {
    this.canvas = canvas;
    this.g = canvas.getContext('2d');
    this.fetchPart = fetchPart;
    this.onFrame = onFrame;
    this.onError = onError;
    this.clips = new Map(); // segment name -> Promise of parseWebM's result
    this.want = null; // { name, ms }: what should be on screen
    this.decoder = null;
    this.clip = null; // the clip the decoder is on
    this.sent = -1; // the last frame given to the decoder
    this.out = -1; // the last frame it gave back
    this.from = -1; // the first frame to draw: where the decoder was asked to go
    this.target = -1; // the last frame to draw, the one wanted now
    this.drawn = null; // { clip, index }: the frame on screen
    this.pending = null; // { clip, frame, index }: the decoded frame to draw next
    this.painting = false; // a draw is due at the next animation frame
    this.paintedAt = 0; // when the last one was (performance.now())
  }

  /** Starts loading a segment, to show later without a wait. */
  prefetch(name) {
    this.load(name);
  }

  // load returns a segment's frames, fetched once: the three used last
  // are kept. One the broker could not give (out of reach, busy) is
  // fetched again when asked for a while later, so that seeking or playing
  // on tries again; one that cannot be read stays failed.
  load(name) {
    let clip = this.clips.get(name);
    if (clip?.failedAt && performance.now() - clip.failedAt > REFETCH_AFTER_MS) clip = null;
    if (!clip) {
      const fetched = this.fetchPart(name);
      const c = fetched.then((buf) => ({ name, ...parseWebM(buf) }));
      fetched.catch(() => { c.failedAt = performance.now(); });
      c.catch(() => {}); // its users see the failure
      clip = c;
    }
    this.clips.delete(name);
    this.clips.set(name, clip);
    while (this.clips.size > 3) this.clips.delete(this.clips.keys().next().value);
    return clip;
  }

  /**
   * How far the picture is behind the one asked for, in ms of the
   * recording: the time of the first frame due and not drawn yet. Zero
   * while the decoder keeps up (or is not at work).
   */
  behind() {
    const { want, drawn, clip } = this;
    if (!want || !this.decoder || clip?.name !== want.name) return 0;
    return this.lateAfter(drawn?.clip === clip ? drawn.index : this.from - 1);
  }

  // lateAfter is how late the picture is with frame i of the decoder's
  // clip the newest one drawn: since when the frame after it is due.
  lateAfter(i) {
    return i >= this.target ? 0 : Math.max(0, this.want.ms - this.clip.frames[i + 1].ms);
  }

  /** Shows what segment name showed ms after its start. */
  show(name, ms) {
    this.want = { name, ms };
    this.pump();
  }

  async pump() {
    const want = this.want;
    if (!want) return;
    let clip;
    try {
      clip = await this.load(want.name);
    } catch (err) {
      if (this.want === want) this.onError(err, want.name);
      return;
    }
    if (this.want !== want) return; // asked for something else meanwhile
    if (clip.broken) {
      this.onError(clip.broken, clip.name);
      return;
    }
    const j = Math.max(0, frameAt(clip.frames, want.ms));
    if (!clip.frames.length) return;
    const shown = this.pending ?? this.drawn; // the newest frame on its way to the screen
    if (shown?.clip === clip && shown.index === j) {
      this.target = j; // what is still decoding stays off the screen
      return;
    }
    if (this.clip !== clip || !this.decoder || j <= this.out) this.restart(clip, j);
    this.target = j;
    while (this.decoder && this.sent < j && this.decoder.decodeQueueSize < MAX_QUEUED) {
      const f = clip.frames[++this.sent];
      try {
        this.decoder.decode(new EncodedVideoChunk({ type: f.key ? 'key' : 'delta', timestamp: this.sent, data: f.data }));
      } catch (err) { // a keyframe that is not one
        this.decoder.close();
        this.decoder = null;
        this.broken(clip, damaged(clip, err));
      }
    }
  }

  // restart starts a new decoder at the keyframe at or before frame j.
  restart(clip, j) {
    this.decoder?.close();
    this.decoder = null;
    this.pending?.frame.close();
    this.pending = null;
    this.clip = clip;
    let k = j;
    while (k >= 0 && !clip.frames[k].key) k--;
    if (k < 0) return; // no keyframe to start from
    if (typeof VideoDecoder === 'undefined') {
      this.broken(clip, new Error('This browser cannot play the recorded video: it has no WebCodecs. A current Chrome, Edge, Firefox or Safari can.'));
      return;
    }
    const decoder = new VideoDecoder({
      output: (frame) => {
        if (decoder === this.decoder) this.output(clip, frame);
        else frame.close();
      },
      error: (err) => {
        if (decoder !== this.decoder) return;
        this.decoder = null;
        this.broken(clip, damaged(clip, err));
      },
    });
    decoder.addEventListener('dequeue', () => decoder === this.decoder && this.pump());
    try {
      decoder.configure({ codec: 'vp8', optimizeForLatency: true });
    } catch (err) {
      this.broken(clip, damaged(clip, err));
      return;
    }
    this.decoder = decoder;
    this.sent = this.out = k - 1;
    this.from = j;
  }

  // broken gives a segment up: it is not decoded again.
  broken(clip, err) {
    clip.broken = err;
    this.onError(err, clip.name);
  }

  // output draws a decoded frame: the one wanted, or while the decoder
  // catches up with a moving target, one on the way to it (not those
  // between a keyframe and the frame sought).
  output(clip, frame) {
    this.out = frame.timestamp;
    if (frame.timestamp < this.from || frame.timestamp > this.target) {
      frame.close();
      return;
    }
    // Drawn at the next animation frame, the newest one only: a decoder
    // catching up gives frames faster than a screen shows them, and each
    // draw of a big picture costs milliseconds.
    this.pending?.frame.close();
    this.pending = { clip, frame, index: frame.timestamp };
    if (!this.painting) {
      this.painting = true;
      requestAnimationFrame(() => this.paint());
    }
  }

  paint() {
    this.painting = false;
    const p = this.pending;
    if (!p) return;
    // Catching up (a busy screen at a high speed), a picture every tenth
    // of a second will do: the decoder needs the time more.
    const late = p.clip === this.clip ? this.lateAfter(p.index) : 0;
    if (late > CATCH_UP_EVERY && performance.now() - this.paintedAt < CATCH_UP_EVERY) {
      this.painting = true;
      requestAnimationFrame(() => this.paint());
      return;
    }
    this.pending = null;
    this.paintedAt = performance.now();
    const { clip, frame } = p;
    const { canvas } = this;
    if (canvas.width !== frame.displayWidth || canvas.height !== frame.displayHeight) {
      canvas.width = frame.displayWidth;
      canvas.height = frame.displayHeight;
    }
    this.g.drawImage(frame, 0, 0, canvas.width, canvas.height);
    this.drawn = { clip, index: frame.timestamp };
    frame.close();
    this.onFrame(clip.name, clip.frames[this.drawn.index].ms);
  }

  close() {
    this.want = null;
    this.decoder?.close();
    this.decoder = null;
    this.pending?.frame.close();
    this.pending = null;
    this.clips.clear();
  }
}

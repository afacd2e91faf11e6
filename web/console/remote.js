// Remote control from the session view: pointer, wheel and keyboard on the
// remote screen become messages on the `input` data channel (see input.js).
//
// Rules the host and broker can rely on:
// - Nothing is sent unless the broker has granted control.
// - Pointer moves are coalesced to one per animation frame; buttons, wheel
//   and keys are sent at once, in the order they happened, each preceded by
//   any move still pending, except buttons: a button event carries its own
//   position, which replaces a pending move, and the host moves the
//   pointer there before pressing or releasing.
// - Right after another display is asked for, the picture still shows the
//   one before: no pointer event is sent until the new display's first
//   frame, of its size, is in the picture.
// - Keys are physical (KeyboardEvent.code), modifiers included, with a
//   repeated key-down for auto-repeat. Characters without a physical key
//   travel as text.
// - Release-all goes out whenever the remote screen may stop seeing our
//   key-ups: focus leaves it, the page is hidden or unloaded, control ends.

import {
  WheelAccumulator, describeInput, encodeButton, encodeKey, encodeMove, encodeReleaseAll, encodeText,
  encodeWheel, MAX_WHEEL, pictureRect, RELEASE_ALL, splitText, toRemote, validKeyCode,
} from './input.js';

// PointerEvent.buttons bits → protocol buttons.
const BUTTON_BITS = [
  [1, 0], // left
  [4, 1], // middle
  [2, 2], // right
  [8, 3], // back
  [16, 4], // forward
];

const MODIFIER_KEYS = new Set(['Control', 'Alt', 'Shift', 'Meta', 'AltGraph', 'OS']);
const MODIFIER_CODES = /^(Shift|Control|Alt|Meta|OS)(Left|Right)$|^(CapsLock|NumLock|ScrollLock|Fn|FnLock)$/;
const IS_MAC = /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent);
const PASTE_READ_MS = 1500;

/** Whether RTP time ts is at or after from, on a clock that wraps at 2^32. */
const atOrAfter = (ts, from) => ((ts - from) >>> 0) < 2 ** 31;

export class RemoteInput {
  /**
   * @param {object} o
   * @param {HTMLElement} o.stage    focusable element that takes the keyboard
   * @param {HTMLElement} o.surface  element under the picture that takes the pointer
   * @param {HTMLVideoElement} o.video
   * @param {(desc: object) => void} [o.onSent] after each message
   * @param {(paste: {current: () => boolean, sent: boolean}) => Promise<void>} [o.onPaste]
   *   runs before Ctrl/Cmd+V is forwarded; paste.current() turns false once
   *   the wait is over (V went out, or was left out); it sets paste.sent
   *   once the text is on its way to the remote clipboard
   * @param {() => void} [o.onPasteUnconfirmed] the remote did not confirm the
   *   text in time, and V was left out
   * @param {(switching: boolean) => void} [o.onSwitching] a display asked
   *   for is not shown yet (true), or is, or none is awaited (false)
   * @param {() => void} [o.onReleaseChord] Ctrl+Alt+Shift pressed
   * @param {(captured: boolean) => void} [o.onCapture] keyboard capture starts/stops
   */
  constructor(o) {
    this.stage = o.stage;
    this.surface = o.surface;
    this.video = o.video;
    this.cb = o;
    this.channel = null;
    this.enabled = false;
    this.buttons = 0; // PointerEvent.buttons bits the remote holds down
    this.pressed = new Set(); // key codes the remote holds down
    this.pendingMove = null;
    this.lastMove = null;
    this.raf = 0;
    this.awaited = null; // the display asked for, until its picture shows (see awaitDisplay)
    this.hold = null; // messages queued while Ctrl+V reads the clipboard
    this.released = false; // the last message sent was a release-all
    this.endHold = () => {}; // sends what a paste in progress holds back
    this.wheel = new WheelAccumulator();
    this.stats = { sent: 0, lastSent: null };
    this.captured = false;
    this.listeners = [];

    const on = (target, type, fn, opts) => {
      target.addEventListener(type, fn, opts);
      this.listeners.push(() => target.removeEventListener(type, fn, opts));
    };
    const s = this.surface;
    on(s, 'pointerdown', (e) => this.onPointerDown(e));
    on(s, 'pointermove', (e) => this.onPointerMove(e));
    on(s, 'pointerup', (e) => this.onPointerUp(e));
    on(s, 'pointercancel', () => this.releaseButtons());
    on(s, 'lostpointercapture', () => this.releaseButtons());
    on(s, 'wheel', (e) => this.onWheel(e), { passive: false });
    on(s, 'contextmenu', (e) => this.enabled && e.preventDefault());
    // Back/forward buttons would navigate the console away.
    on(s, 'mouseup', (e) => this.enabled && e.button > 2 && e.preventDefault());
    on(s, 'auxclick', (e) => this.enabled && e.preventDefault());
    on(s, 'dragstart', (e) => e.preventDefault());
    on(this.video, 'resize', () => this.pictureReady());

    const st = this.stage;
    on(st, 'keydown', (e) => this.onKeyDown(e));
    on(st, 'keyup', (e) => this.onKeyUp(e));
    on(st, 'compositionend', (e) => this.enabled && this.sendText(e.data));
    on(st, 'focus', () => this.updateCapture());
    on(st, 'blur', () => {
      this.releaseAll();
      this.updateCapture();
    });
    on(document, 'visibilitychange', () => document.hidden && this.releaseAll());
    on(window, 'pagehide', () => this.releaseAll());
  }

  /** The input data channel to send on (a new one after each reconnection). */
  attach(channel) {
    this.channel = channel;
    this.released = false;
    this.setAwaited(null); // a switch asked for on the connection before is not coming
    this.forget();
  }

  /**
   * Control granted (true) or not. Turning it off releases everything first,
   * unless `release` is false: when the broker took control away, input
   * would only be dropped (and the broker releases the host's keys itself).
   */
  setEnabled(on, { release = true } = {}) {
    if (on === this.enabled) return;
    if (!on && release) this.releaseAll();
    if (!on) {
      cancelAnimationFrame(this.raf);
      this.raf = 0;
      if (this.hold) this.hold.length = 0; // a paste in progress is abandoned
      this.hold = null;
      this.endHold = () => {};
      // The broker drops a switch asked for as control ends: none is coming.
      this.setAwaited(null);
      this.forget();
    }
    this.enabled = on;
    this.surface.classList.toggle('is-controlled', on);
    this.updateCapture();
  }

  destroy() {
    this.releaseAll();
    cancelAnimationFrame(this.raf);
    for (const off of this.listeners) off();
    this.listeners = [];
  }

  /** Sends a key combination: downs in order, then ups in reverse. */
  sendCombo(codes) {
    if (!this.enabled) return false;
    this.flushMove();
    for (const c of codes) this.send(encodeKey(c, true));
    for (const c of [...codes].reverse()) this.send(encodeKey(c, false));
    return true;
  }

  /**
   * Tells the remote to let go of every key and button it holds for us.
   * Right after another release-all (nothing sent in between) it would say
   * the same again, so it is skipped.
   */
  releaseAll() {
    if (!this.enabled) return;
    cancelAnimationFrame(this.raf);
    this.raf = 0;
    this.pendingMove = null;
    this.endHold(); // a paste still reading the clipboard goes out first, then is released
    if (!this.released) this.send(encodeReleaseAll());
    this.forget();
  }

  /**
   * Another display was asked for ({ index, width, height }). Until its
   * picture shows, the picture is the display before, and a position on it
   * would land elsewhere on the new one: the pointer waits for the new
   * display's picture. One of another size shows by its size; one of the
   * same size by its frames' RTP time, from the time the host says (a host
   * that does not say: the first frame after it says it switched).
   */
  awaitDisplay(display) {
    const shown = pictureRect(this.video);
    const sameSize = shown?.remoteWidth === display.width && shown?.remoteHeight === display.height;
    const a = {
      index: display.index, width: display.width, height: display.height, sameSize,
      switched: false, // the host said it shows this display
      from: undefined, // the RTP time from which its frames show it
      seen: undefined, // the RTP time of the frame presented last
      framed: false, // a frame of this display was presented
    };
    this.setAwaited(a);
    this.pendingMove = null;
    this.buttons = 0; // the host lets go of them when it switches
    const watch = (now, meta) => {
      if (this.awaited !== a) return;
      a.seen = meta?.rtpTimestamp;
      if (a.switched && (a.from === undefined || a.seen === undefined || atOrAfter(a.seen, a.from))) a.framed = true;
      if (!this.pictureReady()) this.video.requestVideoFrameCallback(watch);
    };
    this.video.requestVideoFrameCallback?.(watch);
  }

  /**
   * The host says which display it shows, and the RTP time from which its
   * frames show it (0 when it does not say). When that is not the display
   * asked for, it kept the one shown (or another came), and none is awaited.
   */
  displayShown(index, from) {
    const a = this.awaited;
    if (!a) return;
    if (a.index !== index) {
      this.setAwaited(null);
      return;
    }
    a.switched = true;
    if (Number.isInteger(from) && from > 0) a.from = from;
    // Its first frame may be on screen already; if not, the host sends a
    // keyframe at once, but a browser that does not give frames' RTP time
    // may not say when: a second at most.
    if (a.from !== undefined && a.seen !== undefined && atOrAfter(a.seen, a.from)) a.framed = true;
    setTimeout(() => {
      a.framed = true;
      this.pictureReady();
    }, 1000);
    this.pictureReady();
  }

  /**
   * Whether the picture shown is the display asked for last (or none is
   * awaited); once it is, none is.
   */
  pictureReady() {
    const a = this.awaited;
    if (!a) return true;
    const rect = pictureRect(this.video);
    if (rect?.remoteWidth !== a.width || rect?.remoteHeight !== a.height) return false;
    if (a.sameSize && !a.framed) return false;
    this.setAwaited(null);
    return true;
  }

  setAwaited(a) {
    this.awaited = a;
    this.cb.onSwitching?.(a !== null);
  }

  // ---- sending -------------------------------------------------------------

  forget() {
    this.buttons = 0;
    this.pressed.clear();
    this.pendingMove = null;
    this.lastMove = null;
    this.wheel = new WheelAccumulator();
  }

  send(buf) {
    if (!this.enabled) return; // nothing leaves without control
    if (this.hold) {
      this.hold.push(buf);
      return;
    }
    const ch = this.channel;
    if (!ch || ch.readyState !== 'open') return;
    try {
      ch.send(buf);
    } catch {
      return; // the channel closed under us; a reconnection brings a new one
    }
    this.released = new Uint8Array(buf)[0] === RELEASE_ALL;
    this.stats.sent += 1;
    this.stats.lastSent = describeInput(buf);
    this.cb.onSent?.(this.stats.lastSent);
  }

  flushMove() {
    const p = this.pendingMove;
    this.pendingMove = null;
    if (p && (p.x !== this.lastMove?.x || p.y !== this.lastMove?.y)) {
      this.lastMove = p;
      this.send(encodeMove(p.x, p.y));
    }
  }

  sendText(text) {
    if (!text) return;
    this.flushMove();
    for (const chunk of splitText(text)) this.send(encodeText(chunk));
  }

  // ---- pointer ---------------------------------------------------------------

  /** Remote position of a pointer event; clamped to the edge if `clamp`. */
  position(e, clamp) {
    // The scrollbars of the 1:1 view are not part of the picture.
    const s = this.surface.getBoundingClientRect();
    if (!clamp && (e.clientX - s.left >= this.surface.clientWidth || e.clientY - s.top >= this.surface.clientHeight)) return null;
    if (!this.pictureReady()) return null;
    return toRemote(pictureRect(this.video), e.clientX, e.clientY, clamp);
  }

  onPointerDown(e) {
    if (!this.enabled) return;
    e.preventDefault(); // no text selection, no middle-click autoscroll
    this.stage.focus({ preventScroll: true });
    if (this.position(e, false)) this.surface.setPointerCapture?.(e.pointerId);
    this.syncButtons(e);
  }

  onPointerUp(e) {
    if (!this.enabled) return;
    e.preventDefault();
    this.syncButtons(e);
  }

  onPointerMove(e) {
    if (!this.enabled) return;
    if (e.button >= 0) this.syncButtons(e); // a chorded button changed
    const p = this.position(e, this.buttons !== 0);
    if (!p) return;
    this.pendingMove = p;
    if (!this.raf) {
      this.raf = requestAnimationFrame(() => {
        this.raf = 0;
        this.flushMove();
      });
    }
  }

  /**
   * Sends the presses and releases between what the remote holds and what
   * e.buttons says. A press counts only over the picture; a release is
   * always sent (clamped to the edge) for a button the remote holds.
   */
  syncButtons(e) {
    const now = (e.buttons ?? 0) & 31;
    const changed = now ^ this.buttons;
    if (!changed) return;
    const inside = this.position(e, false);
    const clamped = this.position(e, true);
    for (const [bit, button] of BUTTON_BITS) {
      if (!(changed & bit)) continue;
      const down = (now & bit) !== 0;
      const p = down ? inside : clamped;
      if (!p) continue;
      this.sendButton(button, down, p);
      this.buttons ^= bit;
    }
  }

  sendButton(button, down, p) {
    this.pendingMove = null;
    this.lastMove = p;
    this.send(encodeButton(button, down, p.x, p.y));
  }

  releaseButtons() {
    if (!this.enabled || !this.buttons) return;
    const p = this.lastMove ?? { x: 0, y: 0 };
    for (const [bit, button] of BUTTON_BITS) {
      if (this.buttons & bit) this.sendButton(button, false, p);
    }
    this.buttons = 0;
  }

  onWheel(e) {
    if (!this.enabled) return;
    e.preventDefault();
    const p = this.position(e, false);
    if (!p) return;
    this.pendingMove = p; // the wheel scrolls what is under the pointer
    this.flushMove();
    let [dx, dy] = this.wheel.add(e.deltaX, e.deltaY, e.deltaMode);
    while (dx || dy) {
      const sx = Math.max(-MAX_WHEEL, Math.min(MAX_WHEEL, dx));
      const sy = Math.max(-MAX_WHEEL, Math.min(MAX_WHEEL, dy));
      this.send(encodeWheel(sx, sy));
      dx -= sx;
      dy -= sy;
    }
  }

  // ---- keyboard --------------------------------------------------------------

  updateCapture() {
    const captured = this.enabled && document.activeElement === this.stage && document.hasFocus();
    if (captured === this.captured) return;
    this.captured = captured;
    this.stage.classList.toggle('is-captured', captured);
    this.cb.onCapture?.(captured);
  }

  onKeyDown(e) {
    if (!this.enabled || e.target !== this.stage) return;
    e.preventDefault();
    e.stopPropagation();
    if (e.ctrlKey && e.altKey && e.shiftKey && MODIFIER_KEYS.has(e.key)) {
      this.releaseAll();
      this.cb.onReleaseChord?.();
      return;
    }
    if (e.isComposing || e.keyCode === 229) return; // an IME at work: compositionend brings the text
    const code = e.code;
    if (!validKeyCode(code)) {
      // No physical key (virtual keyboards, some layouts' dead ends): the character itself.
      if (e.key && [...e.key].length === 1 && !e.ctrlKey && !e.metaKey) this.sendText(e.key);
      return;
    }
    this.flushMove();
    if (code === 'KeyV' && (e.ctrlKey || e.metaKey) && !e.altKey && !e.repeat && !this.hold && this.cb.onPaste) {
      this.pasteThenPress(code);
      return;
    }
    this.pressed.add(code);
    this.send(encodeKey(code, true));
  }

  onKeyUp(e) {
    if (!this.enabled || e.target !== this.stage) return;
    e.preventDefault();
    e.stopPropagation();
    const code = e.code;
    if (!validKeyCode(code)) return;
    if (this.pressed.delete(code)) {
      this.flushMove();
      this.send(encodeKey(code, false));
    }
    // macOS sends no key-up for keys released while Cmd is down: release them with Cmd.
    if (IS_MAC && (code === 'MetaLeft' || code === 'MetaRight')) {
      for (const c of [...this.pressed]) {
        if (MODIFIER_CODES.test(c)) continue;
        this.pressed.delete(c);
        this.send(encodeKey(c, false));
      }
    }
  }

  /**
   * Ctrl/Cmd+V: first let the page put the technician's clipboard on the
   * remote one, then press V. Whatever happens meanwhile is queued in order.
   * The wait is short: a clipboard not read by then is not pasted, and the
   * remote pastes its own. A text already sent is another matter: V
   * pressed before the remote confirmed it would paste whatever its
   * clipboard held before, so V is left out.
   */
  pasteThenPress(code) {
    const queue = [];
    this.hold = queue;
    this.pressed.add(code);
    this.send(encodeKey(code, true));
    let released = false;
    const paste = { current: () => !released, sent: false };
    const release = (press) => {
      if (released) return;
      released = true;
      if (this.hold !== queue) return; // abandoned as control ended
      this.endHold = () => {};
      this.hold = null;
      if (!press) this.pressed.delete(code); // nor is its key-up sent later
      const v = [encodeKey(code, true), encodeKey(code, false)].map((b) => new Uint8Array(b).join());
      for (const buf of queue) if (press || !v.includes(new Uint8Array(buf).join())) this.send(buf);
    };
    const expire = () => {
      const unconfirmed = !released && this.hold === queue && paste.sent;
      release(!paste.sent);
      if (unconfirmed) this.cb.onPasteUnconfirmed?.();
    };
    this.endHold = expire;
    setTimeout(expire, PASTE_READ_MS);
    Promise.resolve()
      .then(() => this.cb.onPaste(paste))
      .catch(() => {})
      .then(() => release(true));
  }
}

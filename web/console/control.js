// Remote control for the session view: the toolbar (View only / Control,
// keys the browser keeps for itself, display, clipboard, scale, live
// figures, full screen), the heads-up elements over the remote screen, and
// the `control` data channel that carries their messages:
//
//   {"type":"control","enabled":bool,"reason"?,"turn"?} ⇄ ask for / give up control; broker says what holds
//   {"type":"clipboard","text":"…","id"?}          ⇄ set (→, numbered) / announce (←) a clipboard
//   {"type":"clipboard.set","id":n,"reason"?}      ← text n is on the remote clipboard, or why not
//   {"type":"clipboard","reason":"…"}             ← the remote one could not be shared, and why
//   {"type":"clipboard.request"}                   → ask for the remote clipboard; the answer
//                                                    comes to this page alone, with "fetched":true
//   {"type":"displays","displays":[…],"current":n,"shown_from"?}
//                                                  ← the host's monitors; the video shows
//                                                    n from RTP time shown_from on
//   {"type":"display.select","index":n}            → show another monitor
//   {"type":"input.dropped","count":n,"reason"?}   ← the broker refused input
// Unknown types are ignored.
//
// What the user allows (session.js hands it over through setPermissions)
// decides what is offered: Control needs the `control` grant, the
// clipboard the `clipboard` grant (and Control to set the remote one), and
// nothing while the user has paused. The broker enforces the same; it does
// not say so on this channel when it takes control away, so the grants do.
// One place at a time controls the user's computer: when another tab, a
// viewer command or a colleague takes control, the broker says so here,
// with why, and that stays on the picture until the technician takes
// control back or can no longer. The broker numbers each taking of control
// (turn): back after a reconnection, the page asks with the turn it had and
// gets control back only if nobody took it meanwhile; if someone did, it
// stays in View only and says who, as when control moves while it watches.

import { RemoteInput } from './remote.js';
import { StatsMonitor } from './stats.js';
import { copyText, formatBytes, h, icon, kbd, popover } from './ui.js';

export const MAX_CLIPBOARD = 64 * 1024; // bytes of UTF-8, as internal/protocol
// As internal/protocol's MaxControlSize: JSON writes a control character
// in 6 bytes, so text within MAX_CLIPBOARD may still not fit.
const MAX_CONTROL_MESSAGE = MAX_CLIPBOARD * 4;
const CONTROL_ANSWER_MS = 5000;
const DROPPED_TOAST_EVERY_MS = 5000;
const DROPPED_TOAST_MS = 2600;
const HINT_MS = 3800;
const QUIET_DROPS_MS = 2000;
const REGAIN_CONTROL_MS = 400;

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

// Keys a browser or the technician's own OS would act on.
const KEY_COMBOS = [
  { id: 'key-ctrl-alt-del', label: 'Security screen', keys: ['Ctrl', 'Alt', 'Del'], codes: ['ControlLeft', 'AltLeft', 'Delete'] },
  { id: 'key-super', label: 'Windows key', keys: ['Win'], codes: ['MetaLeft'] },
  { id: 'key-ctrl-esc', label: 'Start menu', keys: ['Ctrl', 'Esc'], codes: ['ControlLeft', 'Escape'] },
  { id: 'key-alt-tab', label: 'Switch window', keys: ['Alt', 'Tab'], codes: ['AltLeft', 'Tab'] },
  { id: 'key-alt-f4', label: 'Close window', keys: ['Alt', 'F4'], codes: ['AltLeft', 'F4'] },
  { id: 'key-print', label: 'Print screen', keys: ['PrtSc'], codes: ['PrintScreen'] },
];

const prefs = {
  get(key, fallback) {
    try {
      return localStorage.getItem(`tether.${key}`) ?? fallback;
    } catch {
      return fallback;
    }
  },
  set(key, value) {
    try {
      localStorage.setItem(`tether.${key}`, value);
    } catch {
      // Private mode: the preference lasts for this page only.
    }
  },
};

/**
 * Makes items, in order, one stop for Tab within container: the one
 * focused last (at first the first) takes the Tab stop, and Left, Right,
 * Home and End move the focus among those that can take it now (not
 * hidden, not disabled). Call update() when that may have changed.
 */
function rovingFocus(container, items) {
  let current = items[0];
  const usable = (el) => !el.disabled && el.closest('[hidden]') === null;
  const update = () => {
    if (!usable(current)) current = items.find(usable) ?? current;
    for (const el of items) el.tabIndex = el === current ? 0 : -1;
  };
  container.addEventListener('focusin', (e) => {
    if (!items.includes(e.target)) return;
    current = e.target;
    update();
  });
  container.addEventListener('keydown', (e) => {
    if (!items.includes(e.target) || e.altKey || e.ctrlKey || e.metaKey || e.shiftKey) return;
    const on = items.filter(usable);
    const i = on.indexOf(e.target);
    const to = { ArrowLeft: on[(i - 1 + on.length) % on.length], ArrowRight: on[(i + 1) % on.length], Home: on[0], End: on.at(-1) }[e.key];
    if (!to) return;
    e.preventDefault();
    to.focus();
  });
  update();
  return { update };
}

/** A toolbar icon button with a tooltip (data-tip, shown by CSS) and a label. */
function toolButton(iconName, label, attrs = {}) {
  return h('button', {
    type: 'button', class: 'tool-btn', 'aria-label': label, 'data-tip': label, ...attrs,
  }, icon(iconName, 18));
}

/**
 * Builds the remote-control toolbar and heads-up display and wires them to
 * the stage. Returns { toolbar, hud, attach(channels), setLive(bool),
 * setPermissions(p), controlling(), destroy() }.
 *
 * @param {object} o
 * @param {HTMLElement} o.stage    focusable element taking the keyboard (data-testid remote-stage)
 * @param {HTMLElement} o.surface  scroll container under the picture, taking the pointer
 * @param {HTMLVideoElement} o.video
 * @param {() => RTCPeerConnection|null} o.getPc
 * @param {(perm: string) => boolean} [o.onRequest] asks the user for a permission; true if asked
 * @param {(display: {name?: string, width: number, height: number}|null) => void} [o.onDisplay]
 *   the remote display shown now, each time the host says which
 */
export function mountRemoteControl({ stage, surface, video, getPc, onRequest = () => false, onDisplay = () => {} }) {
  const state = {
    live: false,
    channel: null, // control RTCDataChannel
    enabled: false, // what the broker says holds
    pending: null, // true/false while our request waits for an answer
    wanted: false, // the technician wants control (asked again after a reconnection)
    turn: 0, // the broker's number for the time this page took control
    resuming: false, // the pending request takes control back only if nobody took it meanwhile
    answerTimer: 0,
    remoteClip: null, // { text, at }
    displays: [],
    current: 0,
    scale: prefs.get('scale', 'fit') === 'actual' ? 'actual' : 'fit',
    stats: prefs.get('stats', '0') === '1',
    // What the user allows, from session.js.
    perms: { known: false, control: false, clipboard: false, paused: false, pending: false, asking: [], canAsk: false },
    controlOnGrant: false, // take control as soon as the user allows it
    resumeControl: false, // take control back when the user resumes
    focusOnControl: false, // the technician clicked Control: the keyboard goes to the remote screen
  };
  // dropped counts the input the broker said it refused, toast or not.
  const exposed = { enabled: false, pending: false, reason: '', dropped: 0 };
  window.tether.control = exposed;

  // ---- toolbar: mode ---------------------------------------------------------

  const modeView = h('button', {
    type: 'button', class: 'seg-btn', 'data-testid': 'mode-view', 'aria-pressed': 'true',
    'data-tip': 'Watch without sending input',
  }, icon('eye', 16), h('span', { class: 'seg-label', text: 'View only' }));
  const modeControl = h('button', {
    type: 'button', class: 'seg-btn seg-btn-control', 'data-testid': 'mode-control', 'aria-pressed': 'false',
    'data-tip': 'Use the remote mouse and keyboard',
  }, icon('pointer', 16), h('span', { class: 'seg-label', text: 'Control' }));
  const segmented = h('div', { class: 'segmented', role: 'group', 'aria-label': 'Input mode' }, modeView, modeControl);
  const requestCtl = h('button', {
    type: 'button', class: 'request-btn', 'data-testid': 'request-perm', 'data-perm': 'control', hidden: true,
    'data-tip': 'Ask the user to allow mouse and keyboard',
  }, icon('hand', 16), h('span', { class: 'request-btn-label', text: 'Request control' }));
  requestCtl.addEventListener('click', () => {
    if (requestCtl.getAttribute('aria-disabled') === 'true') return;
    if (onRequest('control')) state.controlOnGrant = true;
    render();
  });

  // ---- toolbar: keys ---------------------------------------------------------

  const keysBtn = h('button', {
    type: 'button', class: 'tool-btn tool-btn-wide', 'data-testid': 'keys-menu', 'aria-label': 'Send keys',
    'data-tip': 'Send keys your computer keeps for itself',
  }, icon('keyboard', 18), icon('chevronDown', 14));
  const keysMenu = h('div', { class: 'popover menu', id: 'keys-menu-list', role: 'menu', 'aria-label': 'Send keys' },
    h('div', { class: 'popover-heading', text: 'Send to the remote computer' }),
    KEY_COMBOS.map((k) => h('button', {
      type: 'button', class: 'menu-item', role: 'menuitem', 'data-testid': k.id, tabindex: '-1',
      onclick: () => sendCombo(k),
    }, h('span', { class: 'menu-label', text: k.label }), kbd(...k.keys))));
  const keys = popover(keysBtn, keysMenu, { menu: true });

  // ---- toolbar: display ------------------------------------------------------

  const picker = h('select', { class: 'display-select', 'data-testid': 'display-picker', 'aria-label': 'Remote display' });
  const pickerWrap = h('label', { class: 'display-picker', hidden: true, 'data-tip': 'Show another display' },
    icon('monitor', 16), picker, icon('chevronDown', 14));

  // ---- toolbar: clipboard ----------------------------------------------------

  const clipBtn = toolButton('clipboard', 'Clipboard', { 'data-testid': 'clipboard-open' });
  const clipDot = h('span', { class: 'tool-dot', hidden: true, 'aria-hidden': 'true' });
  clipBtn.append(clipDot);
  const remoteText = h('pre', { class: 'clip-remote', 'data-testid': 'clipboard-remote', tabindex: '0', 'aria-label': 'Remote clipboard' });
  const remoteMeta = h('span', { class: 'clip-meta' });
  const copyBtn = h('button', { type: 'button', class: 'btn btn-primary btn-sm', 'data-testid': 'clipboard-copy', disabled: true },
    icon('download', 14), h('span', { text: 'Copy to my clipboard' }));
  const fetchBtn = h('button', {
    type: 'button', class: 'btn btn-on-dark btn-sm', 'data-testid': 'clipboard-request',
    'aria-label': 'Fetch again from the remote clipboard',
  }, icon('refresh', 14), h('span', { text: 'Fetch again' }));
  const sendText = h('textarea', {
    class: 'clip-input', 'data-testid': 'clipboard-send-text', rows: '4', spellcheck: 'false',
    placeholder: 'Type or paste text for the remote clipboard', 'aria-label': 'Text to send',
  });
  const sendCount = h('span', { class: 'clip-meta tabular', 'data-testid': 'clipboard-send-count', text: `0 B of ${formatBytes(MAX_CLIPBOARD)}` });
  const sendBtn = h('button', { type: 'button', class: 'btn btn-primary btn-sm', 'data-testid': 'clipboard-send' },
    icon('send', 14), h('span', { text: 'Send to remote' }));
  const clipError = h('p', { class: 'clip-error', 'data-testid': 'clipboard-error', role: 'alert', hidden: true });
  const sendHint = h('span', { class: 'clip-tip', 'data-testid': 'clipboard-panel-hint', text: 'Ctrl+V on the remote screen pastes your own clipboard there.' });
  const clipAskText = h('p', { class: 'clip-ask-text' });
  const clipAskBtn = h('button', { type: 'button', class: 'btn btn-primary btn-sm', 'data-testid': 'request-perm', 'data-perm': 'clipboard' },
    icon('hand', 14), h('span', { text: 'Request clipboard access' }));
  clipAskBtn.addEventListener('click', () => {
    if (clipAskBtn.getAttribute('aria-disabled') === 'true') return;
    onRequest('clipboard');
    render();
  });
  const clipAsk = h('section', { class: 'clip-section clip-ask', 'data-testid': 'clipboard-not-allowed' },
    h('span', { class: 'clip-ask-icon', 'aria-hidden': 'true' }, icon('clipboard', 20)),
    h('h2', { class: 'clip-ask-title', text: 'Clipboard sharing is off' }),
    clipAskText,
    clipAskBtn);
  const clipMain = h('div', { class: 'clip-main' },
    h('section', { class: 'clip-section' },
      h('div', { class: 'clip-head' },
        h('h2', { class: 'clip-title' }, icon('monitor', 14), 'Remote clipboard'),
        remoteMeta),
      remoteText,
      h('div', { class: 'clip-actions' }, fetchBtn, copyBtn)),
    h('section', { class: 'clip-section' },
      h('div', { class: 'clip-head' },
        h('h2', { class: 'clip-title' }, icon('send', 14), 'Send to the remote clipboard'),
        sendCount),
      sendText,
      clipError,
      h('div', { class: 'clip-actions' },
        sendHint,
        sendBtn)));
  const clipPanel = h('div', { class: 'popover clip-panel', id: 'clipboard-panel', role: 'dialog', 'aria-label': 'Clipboard' }, clipAsk, clipMain);
  const clip = popover(clipBtn, clipPanel, {
    onOpen: () => {
      clipDot.hidden = true;
      if (!state.remoteClip && canClipboard()) requestClipboard();
    },
    // The top of the panel; Tab goes on down through it in reading order.
    initialFocus: () => (canClipboard() ? remoteText : clipAskBtn),
  });
  // Like the keys menu, the panel closes when the focus moves on past it
  // (not on a click inside it that lands on nothing focusable).
  clipPanel.addEventListener('focusout', (e) => {
    const to = e.relatedTarget;
    if (to && !clipPanel.contains(to) && to !== clipBtn) clip.close(false);
  });

  // ---- toolbar: view ---------------------------------------------------------

  const fitBtn = h('button', { type: 'button', class: 'tool-btn', 'data-testid': 'fit-toggle' });
  const statsBtn = toolButton('activity', 'Live figures', { 'data-testid': 'stats-toggle', 'aria-pressed': 'false' });
  const fullBtn = toolButton('maximize', 'Full screen', { 'data-testid': 'fullscreen' });

  const sep = () => h('span', { class: 'tool-sep', 'aria-hidden': 'true' });
  const toolbar = h('div', { class: 'viewer-tools', role: 'toolbar', 'aria-label': 'Remote control' },
    segmented,
    requestCtl,
    sep(),
    h('div', { class: 'popover-anchor' }, keysBtn, keysMenu),
    pickerWrap,
    h('div', { class: 'popover-anchor' }, clipBtn, clipPanel),
    sep(),
    fitBtn, statsBtn, fullBtn);

  // One stop for Tab: the arrow keys, Home and End move along the toolbar
  // (the WAI-ARIA toolbar pattern); what its popovers hold keeps Tab.
  const roving = rovingFocus(toolbar, [modeView, modeControl, requestCtl, keysBtn, picker, clipBtn, fitBtn, statsBtn, fullBtn]);

  // ---- heads-up display over the stage ---------------------------------------

  const fig = (label, unit) => {
    const value = h('span', { class: 'fig-value', text: '–' });
    const el = h('div', { class: 'fig' }, h('span', { class: 'fig-label', text: label }), value, unit ? h('span', { class: 'fig-unit', text: unit }) : null);
    return { el, value };
  };
  const fFps = fig('FPS');
  const fKbps = fig('Bitrate', 'kbit/s');
  const fRtt = fig('RTT', 'ms');
  const fRes = fig('Video');
  const statsOverlay = h('div', { class: 'hud-stats', 'data-testid': 'stats-overlay', hidden: true, role: 'group', 'aria-label': 'Live figures' },
    fFps.el, fKbps.el, fRtt.el, fRes.el);
  const captureHint = h('div', { class: 'hud-pill hud-hint', 'data-testid': 'capture-hint', role: 'status', hidden: true });
  // While the remote screen holds the keyboard, Tab, Alt+Tab and the rest
  // go to the remote computer: this stays on the picture all that time and
  // says how to get the keyboard back. It lies on the user's screen (its
  // corner, in full screen or 1:1): a click there is for what it covers.
  // The stage's own label says the same to a screen reader.
  const capturedTag = h('div', {
    class: 'hud-captured', 'data-testid': 'keyboard-captured', hidden: true, 'aria-hidden': 'true',
  }, icon('keyboard', 13), h('span', { text: 'Keyboard captured' }), h('span', { class: 'hud-captured-sep', 'aria-hidden': 'true', text: '\u00b7' }),
  kbd('Ctrl', 'Alt', 'Shift'), h('span', { text: 'to release' }));
  const notice = h('div', { class: 'hud-pill hud-notice', 'data-testid': 'control-notice', role: 'alert', hidden: true });
  // Control moved to another window or person: no flash, since the
  // technician may be looking elsewhere (at the window that took it).
  const moved = h('div', { class: 'hud-pill hud-notice', 'data-testid': 'control-moved', role: 'alert', hidden: true });
  const inputToast = h('div', { class: 'hud-pill hud-toast', 'data-testid': 'input-toast', role: 'status', hidden: true });
  // In full screen the toolbar is out of sight: a bar that peeks from the top edge.
  const fsMode = h('span', { class: 'fs-mode' });
  const fsExit = h('button', { type: 'button', class: 'fs-exit', 'data-testid': 'fullscreen-exit' },
    icon('minimize', 15), h('span', { text: 'Exit full screen' }));
  const fsBar = h('div', { class: 'fs-bar' }, fsMode, fsExit);
  fsExit.addEventListener('click', () => document.exitFullscreen().catch(() => {}));
  const hud = h('div', { class: 'stage-hud' },
    fsBar,
    h('div', { class: 'hud-top' }, captureHint, notice, moved),
    statsOverlay,
    h('div', { class: 'hud-bottom' }, inputToast),
    capturedTag);

  // ---- input -----------------------------------------------------------------

  const input = new RemoteInput({
    stage,
    surface,
    video,
    onSent: (desc) => {
      inputStats.sent = input.stats.sent;
      inputStats.lastSent = desc;
      inputStats.log.push(desc);
      if (inputStats.log.length > 200) inputStats.log.splice(0, inputStats.log.length - 200);
    },
    onPaste: pasteLocalClipboard,
    onPasteUnconfirmed: () => showNotice('The remote computer did not confirm your clipboard in time, so nothing was pasted. Press Ctrl+V again.'),
    onReleaseChord: releaseKeyboard,
    onSwitching: (switching) => picker.setAttribute('aria-busy', String(switching)),
    onCapture: (captured) => {
      capturedTag.hidden = !captured;
      if (captured) captureHint.hidden = true;
      lockKeyboard();
    },
  });
  /**
   * Gives the keyboard back to the console: focus goes to the mode switch
   * next to it (the arrow keys carry on along the toolbar), not to nowhere.
   */
  function releaseKeyboard() {
    // In full screen the toolbar is out of sight: the bar at the top edge.
    (document.fullscreenElement === stage ? fsExit : modeControl).focus({ preventScroll: true });
    if (document.activeElement === stage) stage.blur();
    flashPill(captureHint, [icon('lock', 14), 'Keyboard released'], HINT_MS / 2);
  }
  const inputStats = { sent: 0, lastSent: null, log: [] };
  window.tether.input = inputStats;

  // ---- control state ---------------------------------------------------------

  const canControl = () => state.perms.control && !state.perms.paused;
  // The broker gives supervisors no control, whatever the user allows.
  const supervisor = window.tether.user?.role === 'supervisor';
  const canClipboard = () => state.perms.clipboard && !state.perms.paused;

  /** Why Control cannot be taken, or '' when it can. */
  function controlBlocked() {
    if (supervisor) return 'Supervisors watch only';
    if (state.perms.paused) return 'The user paused the session';
    if (!state.perms.known) return 'Waiting for the user to allow access';
    if (!state.perms.control) return 'The user has not allowed control';
    return '';
  }

  function render() {
    const open = state.channel?.readyState === 'open' && state.live;
    const blocked = controlBlocked();
    modeView.setAttribute('aria-pressed', String(!state.enabled));
    modeControl.setAttribute('aria-pressed', String(state.enabled));
    modeControl.classList.toggle('is-pending', state.pending === true);
    modeView.classList.toggle('is-pending', state.pending === false);
    modeView.disabled = !open;
    modeControl.disabled = !open || (!!blocked && !state.enabled);
    modeControl.dataset.tip = blocked || 'Use the remote mouse and keyboard';
    if (blocked) modeControl.setAttribute('aria-description', blocked);
    else modeControl.removeAttribute('aria-description');
    // Asking for control: offered once the user has answered the first
    // question, while control is not allowed; not while paused, nor while
    // the user answers another question.
    const askingControl = state.perms.asking.includes('control');
    requestCtl.hidden = supervisor || !open || !state.perms.known || state.perms.control || state.perms.paused
      || (state.perms.pending && !askingControl);
    // aria-disabled, not disabled: the focus stays on the button while the
    // user answers (a disabled button would drop it to the page).
    requestCtl.setAttribute('aria-disabled', String(askingControl || !state.perms.canAsk));
    requestCtl.classList.toggle('is-asking', askingControl);
    requestCtl.replaceChildren(
      askingControl ? h('span', { class: 'mini-spinner', 'aria-hidden': 'true' }) : icon('hand', 16),
      h('span', { class: 'request-btn-label', text: askingControl ? 'Asking the user\u2026' : 'Request control' }));
    requestCtl.dataset.tip = askingControl ? 'The user is deciding on their computer' : 'Ask the user to allow mouse and keyboard';
    keysBtn.disabled = !state.enabled;
    keysBtn.dataset.tip = state.enabled ? 'Send keys your computer keeps for itself' : 'Switch to Control to send keys';
    if (!state.enabled) keys.close(false);
    // Reading the remote clipboard needs the clipboard grant; setting it
    // needs Control too. Switching displays needs Control.
    const clipOk = open && canClipboard();
    clipBtn.disabled = !open;
    clipBtn.dataset.tip = clipOk ? 'Clipboard'
      : supervisor ? 'Clipboard \u00b7 supervisors watch only'
        : state.perms.paused ? 'Clipboard \u00b7 paused by the user' : 'Clipboard \u00b7 not allowed yet';
    clipBtn.classList.toggle('is-locked', open && !clipOk);
    const askHadFocus = document.activeElement === clipAskBtn;
    clipAsk.hidden = clipOk;
    clipMain.hidden = !clipOk;
    if (askHadFocus && clipOk) remoteText.focus({ preventScroll: true });
    const askingClip = state.perms.asking.includes('clipboard');
    clipAskText.textContent = supervisor ? 'Supervisors watch only: the clipboard is for the technicians who work the session.'
      : state.perms.paused
      ? 'The user paused the session. The clipboard is back when they resume.'
      : askingClip ? 'Waiting for the user to answer on their computer\u2026'
        : state.perms.pending ? 'The user is answering another request. Ask again once they have.'
          : 'The user has not allowed clipboard sharing. Ask them, and you can copy text from their computer and paste text to it.';
    clipAskBtn.hidden = supervisor || state.perms.paused || state.perms.clipboard;
    clipAskBtn.setAttribute('aria-disabled', String(askingClip || !state.perms.canAsk));
    clipAskBtn.lastChild.textContent = askingClip ? 'Asking the user\u2026' : 'Request clipboard access';
    const usable = open && state.enabled;
    if (!open) clip.close(false);
    picker.disabled = !usable;
    pickerWrap.dataset.tip = usable ? 'Show another display' : 'Switch to Control to change displays';
    renderSendBtn();
    fetchBtn.disabled = !clipOk;
    sendHint.textContent = state.enabled
      ? 'Ctrl+V on the remote screen pastes your own clipboard there.'
      : 'Switch to Control to send text to the remote clipboard.';
    stage.dataset.mode = state.enabled ? 'control' : 'view';
    roving.update();
    stage.setAttribute('aria-label', state.enabled
      ? 'Remote screen, in control. Keyboard and mouse go to the remote computer; press Ctrl+Alt+Shift to release the keyboard.'
      : 'Remote screen, view only');
    exposed.enabled = state.enabled;
    exposed.pending = state.pending !== null;
    fsMode.dataset.mode = state.enabled ? 'control' : 'view';
    fsMode.replaceChildren(icon(state.enabled ? 'pointer' : 'eye', 14), state.enabled ? 'In control' : 'View only');
  }

  function sendControl(msg) {
    const ch = state.channel;
    if (!ch || ch.readyState !== 'open') return false;
    const text = JSON.stringify(msg);
    try {
      ch.send(text);
    } catch {
      return false;
    }
    return true;
  }

  /**
   * Asks for control (on) or gives it up. With turn, control comes back
   * only if nobody took it since this page had it with that turn. With
   * focus, the keyboard goes to the remote screen once control holds.
   */
  function requestControl(on, turn = 0, { focus = false } = {}) {
    state.wanted = on;
    state.focusOnControl = on && focus;
    if (!on) {
      // The release-all and this request travel on different channels: the
      // broker may see the request first and drop the release (it releases
      // the host's keys itself then). Not worth a toast.
      quietDropsUntil = performance.now() + QUIET_DROPS_MS;
      // Stop sending at once; the broker's answer only confirms.
      input.setEnabled(false);
      unlockKeyboard();
    }
    if (!sendControl({ type: 'control', enabled: on, ...(turn ? { turn } : {}) })) {
      if (!on) applyControl(false, '');
      render();
      return;
    }
    state.pending = on;
    state.resuming = on && turn !== 0;
    clearTimeout(state.answerTimer);
    state.answerTimer = setTimeout(() => {
      if (state.pending === null) return;
      state.pending = null;
      if (on) showNotice('The broker did not answer the request for control. Try again.');
      else applyControl(false, '');
      render();
    }, CONTROL_ANSWER_MS);
    render();
  }

  function applyControl(enabled, reason, { quiet = false, turn = 0 } = {}) {
    const asked = state.pending;
    const resuming = asked === true && state.resuming;
    const was = state.enabled;
    clearTimeout(state.answerTimer);
    state.pending = null;
    state.resuming = false;
    state.enabled = enabled;
    exposed.reason = reason;
    // Our own "View only" already released everything; the broker's word
    // alone means input would be dropped anyway.
    input.setEnabled(enabled && state.live, { release: false });
    const focusWanted = state.focusOnControl;
    state.focusOnControl = false;
    if (enabled) {
      state.wanted = true;
      if (turn) state.turn = turn;
      notice.hidden = true;
      moved.hidden = true;
      // Control the technician clicked for takes the keyboard. Control
      // that comes by itself (the user's yes, the end of a pause or of a
      // reconnection) finds the technician perhaps typing elsewhere, in a
      // terminal or the clipboard box: that stays where it is.
      if (asked === true && (focusWanted || keyboardFree())) stage.focus({ preventScroll: true });
      else if (asked === true) flashPill(captureHint, [icon('pointer', 14), 'You are in control. Click the screen to type there.'], HINT_MS);
    } else {
      unlockKeyboard();
      if (asked === true || was) {
        state.wanted = false;
        if (quiet) notice.hidden = true;
        else if (reason && ((was && asked === null) || resuming)) {
          // Taken by another window or person, now or while this page was
          // reconnecting: what this page still had on the way is refused,
          // which is no news.
          quietDropsUntil = performance.now() + QUIET_DROPS_MS;
          notice.hidden = true;
          moved.replaceChildren(icon('info', 14), h('span', { text: reason }));
          moved.hidden = false;
        } else if (reason) showNotice(reason);
        else if (asked === true) showNotice('Control was not granted.');
        else if (was && asked !== false) showNotice('Control ended. You are viewing only.');
      }
    }
    lockKeyboard();
    render();
  }

  /** Nothing else on the page has the keyboard: it may go to the remote screen. */
  function keyboardFree() {
    const el = document.activeElement;
    return !el || el === document.body || el === stage || el === modeControl || el === requestCtl;
  }

  modeControl.addEventListener('click', () => {
    if (!state.enabled && state.pending !== true) requestControl(true, 0, { focus: true });
    else if (state.enabled) stage.focus({ preventScroll: true });
  });
  modeView.addEventListener('click', () => {
    if (state.enabled || state.pending === true) requestControl(false);
  });

  function sendCombo(k) {
    keys.close(false);
    if (input.sendCombo(k.codes)) stage.focus({ preventScroll: true });
  }

  // ---- control channel -------------------------------------------------------

  function onMessage(e) {
    let raw = e.data;
    if (raw instanceof ArrayBuffer) raw = utf8Decoder.decode(raw);
    if (typeof raw !== 'string' || raw.length > MAX_CONTROL_MESSAGE) return;
    let m;
    try {
      m = JSON.parse(raw);
    } catch {
      return;
    }
    if (!m || typeof m !== 'object' || typeof m.type !== 'string') return;
    switch (m.type) {
      case 'control':
        applyControl(m.enabled === true, typeof m.reason === 'string' ? m.reason : '', { turn: Number.isInteger(m.turn) ? m.turn : 0 });
        break;
      case 'clipboard':
        // No text and no reason: the user's clipboard is empty.
        if (typeof m.reason === 'string' && m.reason) setRemoteClipboard('', m.reason);
        else setRemoteClipboard(typeof m.text === 'string' ? m.text : '');
        break;
      case 'clipboard.set':
        clipAnswer(m.id, typeof m.reason === 'string' ? m.reason : '');
        break;
      case 'displays':
        if (Array.isArray(m.displays)) setDisplays(m.displays, Number.isInteger(m.current) ? m.current : 0, m.shown_from);
        break;
      case 'input.dropped':
        inputDropped(Number(m.count) || 1, typeof m.reason === 'string' ? m.reason : '');
        break;
      default:
        break; // unknown: newer broker or host
    }
  }

  function attach({ control, input: inputChannel }) {
    const old = state.channel;
    if (old) old.removeEventListener('message', onMessage);
    state.channel = control;
    clearTimeout(state.answerTimer);
    state.pending = null;
    state.resuming = false;
    state.enabled = false;
    input.setEnabled(false, { release: false });
    input.attach(inputChannel);
    const onOpen = () => {
      if (state.channel !== control) return;
      render();
      // Back after a reconnection, or allowed before the channel opened:
      // ask for control once the channel has settled.
      if (!state.wanted && !state.controlOnGrant) return;
      setTimeout(() => {
        if (state.channel === control) regainControl();
      }, REGAIN_CONTROL_MS);
    };
    const onClose = () => {
      if (state.channel !== control) return;
      state.pending = null;
      state.enabled = false;
      input.setEnabled(false, { release: false });
      render();
    };
    control.addEventListener('message', onMessage);
    control.addEventListener('open', onOpen);
    control.addEventListener('close', onClose);
    if (control.readyState === 'open') onOpen();
    render();
  }

  // ---- clipboard ---------------------------------------------------------------

  /**
   * Shows what the remote clipboard holds now; with a reason, the host
   * could not share it (too large), and what was shown before goes: it is
   * no longer what the user copied.
   */
  function setRemoteClipboard(text, reason = '') {
    state.remoteClip = { text, at: new Date() };
    remoteText.textContent = text;
    remoteText.classList.toggle('is-empty', !text);
    if (reason) remoteText.textContent = reason;
    else if (!text) remoteText.textContent = 'The remote clipboard is empty.';
    copyBtn.disabled = !text;
    const time = state.remoteClip.at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
    remoteMeta.textContent = reason ? time : `${formatBytes(utf8.encode(text).length)} · ${time}`;
    if (!clip.isOpen()) clipDot.hidden = false;
  }
  remoteText.textContent = 'Nothing received yet. Copy something on the remote computer, or fetch its clipboard.';
  remoteText.classList.add('is-empty');

  function requestClipboard() {
    sendControl({ type: 'clipboard.request' });
  }

  // Each text for the user's clipboard carries an id, and its answer
  // (clipboard.set) brings the id back, from the host that set the text or
  // from the broker that refused it: each text waits here for its own. An
  // answer without an id (a host from before ids) is the oldest text's, as
  // the host answers in order. One not come in time is taken as lost and
  // leaves the line.
  const clipAnswers = new Map(); // id → answer(reason)
  let clipID = 0;

  function clipAnswer(id, reason) {
    const answer = Number.isInteger(id) && id > 0 ? clipAnswers.get(id) : clipAnswers.values().next().value;
    answer?.(reason);
  }

  /**
   * Sends text to the remote clipboard; resolves to '' once the host says
   * it is there, or to a sentence that says why not.
   */
  function sendClipboard(text) {
    const bytes = utf8.encode(text).length;
    const msg = { type: 'clipboard', text, id: ++clipID };
    if (bytes > MAX_CLIPBOARD) {
      return Promise.resolve(`This text is ${bytes.toLocaleString()} bytes; the remote clipboard takes at most ${MAX_CLIPBOARD.toLocaleString()} bytes (${formatBytes(MAX_CLIPBOARD)}). Send a shorter piece.`);
    }
    if (utf8.encode(JSON.stringify(msg)).length > MAX_CONTROL_MESSAGE) {
      return Promise.resolve('This text has too many control characters (such as the escapes of a coloured log) to be sent. Send a shorter piece, or the text without them.');
    }
    if (!sendControl(msg)) return Promise.resolve('Not connected to the remote computer right now.');
    return new Promise((resolve) => {
      const answer = (reason) => {
        clearTimeout(timer);
        clipAnswers.delete(msg.id);
        resolve(reason);
      };
      const timer = setTimeout(answer, CONTROL_ANSWER_MS, 'The remote computer did not confirm the text. Try again.');
      clipAnswers.set(msg.id, answer);
    });
  }

  /**
   * Send needs Control, and some text: sending nothing would empty the
   * user's clipboard.
   */
  function renderSendBtn() {
    const ready = state.channel?.readyState === 'open' && state.live && canClipboard() && state.enabled;
    const empty = sendText.value === '';
    sendBtn.disabled = !ready || empty;
    const why = !ready ? 'Switch to Control to send text to the remote clipboard'
      : empty ? 'Type or paste the text to send first' : '';
    if (why) sendBtn.dataset.tip = why;
    else delete sendBtn.dataset.tip;
  }

  function updateCount() {
    const bytes = utf8.encode(sendText.value).length;
    // Near the limit, in bytes: rounded, a text just under it and one
    // just over would both read "64.0 KiB of 64 KiB".
    sendCount.textContent = bytes <= MAX_CLIPBOARD - 1024
      ? `${formatBytes(bytes)} of ${formatBytes(MAX_CLIPBOARD)}`
      : `${bytes.toLocaleString()} of ${MAX_CLIPBOARD.toLocaleString()} bytes${bytes > MAX_CLIPBOARD ? ': too long' : ''}`;
    sendCount.classList.toggle('is-over', bytes > MAX_CLIPBOARD);
    clipError.hidden = true;
    resetSendBtn();
    renderSendBtn();
  }
  sendText.addEventListener('input', updateCount);
  sendText.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      sendBtn.click();
    }
  });

  // "Sent" once the host says the text is on the user's clipboard: it may
  // not be (no clipboard program there), and then the panel says why.
  let sentTimer = 0;
  sendBtn.addEventListener('click', async () => {
    clipError.hidden = true;
    const reason = await sendClipboard(sendText.value);
    if (reason) {
      clipError.textContent = reason;
      clipError.hidden = false;
      return;
    }
    clearTimeout(sentTimer);
    sendBtn.classList.add('is-done');
    sendBtn.replaceChildren(icon('check', 14), h('span', { text: 'Sent' }));
    sentTimer = setTimeout(resetSendBtn, 1600);
  });
  // "Sent" is about the text sent: an edit ends it.
  function resetSendBtn() {
    clearTimeout(sentTimer);
    if (!sendBtn.classList.contains('is-done')) return;
    sendBtn.classList.remove('is-done');
    sendBtn.replaceChildren(icon('send', 14), h('span', { text: 'Send to remote' }));
  }

  let copiedTimer = 0;
  copyBtn.addEventListener('click', async () => {
    const ok = await copyText(state.remoteClip?.text ?? '');
    clearTimeout(copiedTimer);
    copyBtn.replaceChildren(icon(ok ? 'check' : 'alert', 14), h('span', { text: ok ? 'Copied' : 'Copy failed' }));
    copiedTimer = setTimeout(() => copyBtn.replaceChildren(icon('download', 14), h('span', { text: 'Copy to my clipboard' })), 1600);
  });
  fetchBtn.addEventListener('click', requestClipboard);

  /**
   * Ctrl/Cmd+V on the remote screen: the technician's clipboard goes first.
   * When it cannot be read (the browser does not let the page, or the read
   * took too long), the remote computer pastes its own clipboard: the
   * technician is told so, since that may be something else entirely.
   * When it was sent but the remote did not confirm it in time, nothing is
   * pasted (remote.js leaves V out, and onPasteUnconfirmed says so).
   */
  async function pasteLocalClipboard(paste) {
    if (!canClipboard()) return;
    const notRead = 'Your clipboard could not be read, so the remote computer pasted its own. Allow clipboard access for this site.';
    if (!navigator.clipboard?.readText) {
      showNotice(notRead);
      return;
    }
    let text;
    try {
      const perm = await navigator.permissions?.query({ name: 'clipboard-read' }).catch(() => null);
      if (perm?.state === 'denied') {
        showNotice(notRead);
        return;
      }
      text = await navigator.clipboard.readText();
    } catch {
      showNotice(notRead);
      return;
    }
    if (!paste.current()) {
      showNotice('Your clipboard was not read in time, so the remote computer pasted its own. Press Ctrl+V again.');
      return;
    }
    // Nothing to paste (empty, or an image): the remote pastes its own.
    if (!text) return;
    // V goes out once the host says the text is on the user's clipboard:
    // pressed earlier, it would paste what was there before.
    paste.sent = true;
    const reason = await sendClipboard(text);
    if (reason && paste.current()) showNotice(`Your clipboard was not pasted. ${reason}`);
  }

  // ---- displays ----------------------------------------------------------------

  function setDisplays(list, current, shownFrom) {
    state.displays = list
      .filter((d) => d && Number.isInteger(d.index) && d.width > 0 && d.height > 0)
      .slice(0, 16);
    state.current = current;
    picker.replaceChildren(...state.displays.map((d, i) => h('option', {
      value: String(d.index),
      text: `${d.name || `Display ${i + 1}`} · ${d.width} × ${d.height}${d.primary ? ' · main' : ''}`,
    })));
    picker.value = String(current);
    pickerWrap.hidden = state.displays.length < 2;
    roving.update();
    input.displayShown(current, shownFrom);
    onDisplay(state.displays.find((d) => d.index === current) ?? null);
  }
  picker.addEventListener('change', () => {
    const display = state.displays.find((d) => d.index === Number(picker.value));
    if (display && sendControl({ type: 'display.select', index: display.index })) input.awaitDisplay(display);
  });

  // ---- input dropped -----------------------------------------------------------

  let droppedAt = -Infinity;
  let droppedTimer = 0;
  let quietDropsUntil = 0;
  function inputDropped(count, reason) {
    exposed.dropped += count;
    const now = performance.now();
    if (now < quietDropsUntil) return;
    if (!inputToast.hidden) {
      inputToast.dataset.count = String(Number(inputToast.dataset.count || 0) + count);
      return;
    }
    if (now - droppedAt < DROPPED_TOAST_EVERY_MS) return;
    droppedAt = now;
    inputToast.dataset.count = String(count);
    inputToast.replaceChildren(icon('info', 14), h('span', { text: reason || 'Your input did not reach the remote computer.' }));
    inputToast.hidden = false;
    clearTimeout(droppedTimer);
    droppedTimer = setTimeout(() => {
      inputToast.hidden = true;
    }, DROPPED_TOAST_MS);
  }

  // ---- heads-up pills --------------------------------------------------------

  const pillTimers = new Map();
  function flashPill(el, content, ms) {
    el.replaceChildren(...content);
    el.hidden = false;
    el.classList.remove('is-fading');
    clearTimeout(pillTimers.get(el));
    pillTimers.set(el, setTimeout(() => {
      el.classList.add('is-fading');
      pillTimers.set(el, setTimeout(() => {
        el.hidden = true;
        el.classList.remove('is-fading');
      }, 300));
    }, ms));
  }

  function showNotice(text) {
    flashPill(notice, [icon('info', 14), h('span', { text })], 6000);
  }

  // ---- scale -------------------------------------------------------------------

  function applyScale() {
    const actual = state.scale === 'actual';
    stage.classList.toggle('is-actual', actual);
    fitBtn.dataset.mode = actual ? 'actual' : 'fit';
    fitBtn.setAttribute('aria-pressed', String(actual));
    const label = actual ? 'Actual size (1:1) — click to fit to window' : 'Fit to window — click for actual size (1:1)';
    fitBtn.setAttribute('aria-label', label);
    fitBtn.dataset.tip = actual ? 'Actual size · 1:1' : 'Fit to window';
    fitBtn.replaceChildren(icon(actual ? 'actual' : 'fit', 18));
    sizeVideo();
  }
  function sizeVideo() {
    // One remote pixel on one pixel of the technician's screen: a CSS
    // pixel is devicePixelRatio of those (1.5 on a laptop at 150%, or
    // zoomed). CSSOM, not a style attribute: the CSP allows no inline styles.
    const actual = state.scale === 'actual' && video.videoWidth > 0;
    const ratio = window.devicePixelRatio || 1;
    video.style.width = actual ? `${video.videoWidth / ratio}px` : '';
    video.style.height = actual ? `${video.videoHeight / ratio}px` : '';
  }
  // The ratio changes with the browser's zoom, and on a screen of another
  // density: each change is watched for by a query of the ratio as it is.
  let ratioQuery = null;
  function watchRatio() {
    ratioQuery?.removeEventListener('change', onRatio);
    ratioQuery = window.matchMedia(`(resolution: ${window.devicePixelRatio || 1}dppx)`);
    ratioQuery.addEventListener('change', onRatio);
  }
  function onRatio() {
    sizeVideo();
    watchRatio();
  }
  watchRatio();
  fitBtn.addEventListener('click', () => {
    state.scale = state.scale === 'actual' ? 'fit' : 'actual';
    prefs.set('scale', state.scale);
    applyScale();
  });
  video.addEventListener('resize', sizeVideo);

  // ---- live figures ------------------------------------------------------------

  const monitor = new StatsMonitor(getPc, (f) => {
    const show = (figure, v, attr) => {
      figure.value.textContent = v === null ? '–' : v.toLocaleString();
      statsOverlay.dataset[attr] = v === null ? '' : String(v);
    };
    show(fFps, f.fps, 'fps');
    show(fKbps, f.kbps, 'kbps');
    show(fRtt, f.rtt, 'rtt');
    const w = f.width ?? video.videoWidth;
    const hgt = f.height ?? video.videoHeight;
    fRes.value.textContent = w && hgt ? `${w}×${hgt}${f.codec ? ` ${f.codec}` : ''}` : '–';
    statsOverlay.dataset.rttLevel = f.rtt === null ? '' : f.rtt < 80 ? 'good' : f.rtt < 200 ? 'fair' : 'poor';
  });
  function applyStats() {
    statsOverlay.hidden = !state.stats;
    statsBtn.setAttribute('aria-pressed', String(state.stats));
    if (state.stats && state.live) monitor.start();
    else monitor.stop();
  }
  statsBtn.addEventListener('click', () => {
    state.stats = !state.stats;
    prefs.set('stats', state.stats ? '1' : '0');
    applyStats();
  });

  // ---- full screen and keyboard lock -----------------------------------------

  fullBtn.addEventListener('click', () => {
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    else stage.requestFullscreen?.().then(() => stage.focus({ preventScroll: true }), () => {});
  });
  const onFullscreen = () => {
    const full = document.fullscreenElement === stage;
    fullBtn.replaceChildren(icon(full ? 'minimize' : 'maximize', 18));
    fullBtn.setAttribute('aria-label', full ? 'Exit full screen' : 'Full screen');
    fullBtn.dataset.tip = full ? 'Exit full screen' : 'Full screen';
    clearTimeout(fsPeekTimer);
    fsBar.classList.toggle('is-peek', full);
    if (full) fsPeekTimer = setTimeout(() => fsBar.classList.remove('is-peek'), 2500);
    lockKeyboard();
  };
  let fsPeekTimer = 0;
  document.addEventListener('fullscreenchange', onFullscreen);

  // In full screen, Keyboard Lock lets Esc, Alt+Tab, the Windows key and
  // friends reach the remote computer too (Chromium; elsewhere a no-op).
  let locked = false;
  function lockKeyboard() {
    const want = state.enabled && document.fullscreenElement === stage;
    if (want && !locked && navigator.keyboard?.lock) {
      locked = true;
      navigator.keyboard.lock().catch(() => {
        locked = false;
      });
    } else if (!want) {
      unlockKeyboard();
    }
  }
  function unlockKeyboard() {
    if (!locked) return;
    locked = false;
    navigator.keyboard?.unlock?.();
  }

  // ---- what the user allows ------------------------------------------------------

  /** Takes control if the technician wants it and the user allows it. */
  function regainControl() {
    const open = state.channel?.readyState === 'open' && state.live;
    if (!open || !canControl() || state.enabled || state.pending !== null) return;
    if (!state.wanted && !state.controlOnGrant) return;
    // Allowed just now at the technician's request: theirs to take. Back
    // after a reconnection (or a pause): only if nobody took it meanwhile.
    const resume = !state.controlOnGrant;
    state.controlOnGrant = false;
    requestControl(true, resume ? state.turn : 0);
  }

  /**
   * The user's current grants: { known, control, clipboard, paused,
   * pending, asking: [perm asked for from here], canAsk }.
   */
  function setPermissions(p) {
    const before = state.perms;
    state.perms = {
      known: !!p.known, control: !!p.control, clipboard: !!p.clipboard, paused: !!p.paused, pending: !!p.pending,
      asking: Array.isArray(p.asking) ? p.asking : [], canAsk: !!p.canAsk,
    };
    if (!canControl()) moved.hidden = true;
    if (!canControl() && (state.enabled || state.pending === true)) {
      // The broker has stopped taking our input: stop sending it. A pause
      // is not a "no": control comes back with the resume.
      const back = state.perms.paused && state.perms.control;
      applyControl(false, '', { quiet: true });
      state.resumeControl = back;
    }
    if (before.asking.includes('control') && !state.perms.asking.includes('control') && !state.perms.control) {
      state.controlOnGrant = false; // declined
    }
    if (canControl()) {
      if (!before.control || before.paused) {
        // Control is back: why input did not reach the user is over.
        inputToast.hidden = true;
        clearTimeout(droppedTimer);
      }
      if (state.resumeControl) state.wanted = true;
      state.resumeControl = false;
      regainControl();
    } else if (!state.perms.paused) {
      state.resumeControl = false;
    }
    if (!canClipboard()) clipDot.hidden = true;
    render();
  }

  // ---- lifecycle ---------------------------------------------------------------

  function setLive(live) {
    state.live = live;
    // Cut off, nothing typed or clicked may wait on the way and reach the
    // user's computer late, once the connection is back: input stops, and
    // what was held is let go.
    input.setEnabled(live && state.enabled);
    if (!live) {
      moved.hidden = true;
      keys.close(false);
      clip.close(false);
    }
    applyStats();
    render();
    if (live) regainControl();
  }

  applyScale();
  applyStats();
  render();

  return {
    toolbar,
    hud,
    attach,
    setLive,
    setPermissions,
    /** The technician is in control, or is taking it back after a reconnection. */
    controlling: () => state.enabled || state.wanted,
    destroy() {
      clearTimeout(state.answerTimer);
      clearTimeout(droppedTimer);
      clearTimeout(sentTimer);
      clearTimeout(copiedTimer);
      clearTimeout(fsPeekTimer);
      for (const t of pillTimers.values()) clearTimeout(t);
      monitor.stop();
      const had = state.enabled;
      input.destroy(); // release-all first, while control still holds
      if (had) sendControl({ type: 'control', enabled: false });
      unlockKeyboard();
      document.removeEventListener('fullscreenchange', onFullscreen);
      ratioQuery.removeEventListener('change', onRatio);
      keys.close(false);
      clip.close(false);
    },
  };
}

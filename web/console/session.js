// Session view: the user's screen, live, with the session's state, what
// the user allows (consent.js), remote control of it (control.js) and the
// session's activity (activity.js).

import * as api from './api.js';
import {
  codeGroups, confirmDialog, describeHost, errorBox, formatBytes, formatDuration, formatSize, h, icon, modal, shortId, toast, toastsInto,
} from './ui.js';
import { mountActivity } from './activity.js';
import { createConsent } from './consent.js';
import { mountRemoteControl } from './control.js';
import { mountFiles } from './files.js';
import { mountShell } from './shell.js';
import { ViewerConnection } from './viewer.js';
import { observerBanner } from './observers.js';

const CONN_LABELS = {
  connecting: 'Connecting',
  waiting: 'Waiting for the user',
  live: 'Live',
  reconnecting: 'Reconnecting',
  ended: 'Ended',
};

// As the broker's limit on closing notes (broker/webhook MaxClosingNotes).
const MAX_CLOSING_NOTES = 8 * 1024;
const utf8 = new TextEncoder();

/** A time of day to the second, as the technician's clock shows it. */
const clockTime = (ms) => new Date(ms).toLocaleTimeString([], { hour: 'numeric', minute: '2-digit', second: '2-digit' });

// Reasons the broker may give for an end; anything else is shown as sent.
const END_REASONS = {
  ended_by_technician: 'The session was ended from the console.',
  technician: 'The session was ended from the console.',
  ended_by_user: 'The user ended the session.',
  user: 'The user ended the session.',
  host_ended: 'The user ended the session.',
  consent_denied: 'The user declined the session.',
  consent_revoked: 'The user revoked access to their computer.',
  host_disconnected: 'The user\u2019s computer disconnected.',
  host_lost: 'The user\u2019s computer stopped responding.',
  code_expired: 'The support code expired before the user joined.',
  expired: 'The session expired.',
  timeout: 'The session timed out.',
  idle_timeout: 'The session timed out after a period of inactivity.',
  broker_shutdown: 'The broker was shut down.',
  shutdown: 'The broker was shut down.',
};

function describeReason(reason) {
  if (!reason) return 'The session is over.';
  if (END_REASONS[reason]) return END_REASONS[reason];
  if (/\s/.test(reason)) return reason; // already a sentence
  const text = reason.replace(/[_-]+/g, ' ');
  return `${text.charAt(0).toUpperCase()}${text.slice(1)}.`;
}

// ---- side panel width --------------------------------------------------------

// The technician sets how wide the side panels are, with the bar between
// the picture and the panel: one width for every panel, kept for the next
// visit. Each panel has its own width until then (style.css).
const PANEL_WIDTH_KEY = 'tether.panelWidth';
const PANEL_MIN = 280; // px: narrower, a path or a shell line no longer fits
const STAGE_SHARE = 0.4; // the picture keeps at least this share of the width
const PANEL_STEP = 16; // px per arrow key; four times that with Shift

function savedPanelWidth() {
  try {
    return Number(localStorage.getItem(PANEL_WIDTH_KEY)) || 0;
  } catch {
    return 0;
  }
}

function savePanelWidth(width) {
  try {
    if (width) localStorage.setItem(PANEL_WIDTH_KEY, String(width));
    else localStorage.removeItem(PANEL_WIDTH_KEY);
  } catch {
    // Private mode: the width lasts for this page only.
  }
}

/**
 * The bar between the remote screen and the open one of panels, in body.
 * Dragged, or moved with the arrow keys, Home and End once focused, it
 * sets the panel's width (the CSS variable --panel-w on body); a double
 * click goes back to the panel's own width. Its value is the remote
 * screen's width, which Left narrows. Returns { el, update(), destroy() }:
 * update() once a panel opened or closed.
 */
function panelDivider(body, panels) {
  const el = h('div', {
    class: 'panel-divider', role: 'separator', tabindex: '0', hidden: true,
    'aria-orientation': 'vertical', 'aria-label': 'Resize the side panel', 'data-testid': 'panel-divider',
    title: 'Drag to resize \u00b7 double-click for the usual width',
  });
  let wanted = savedPanelWidth(); // px; 0: the panel's own width
  let drag = null; // { x, width, moved } while the mouse holds the bar

  const openPanel = () => panels.find((p) => !p.hidden);
  /** The widths a panel may take in the body as wide as it is now. */
  const limits = () => [PANEL_MIN, Math.max(PANEL_MIN, Math.floor(body.clientWidth * (1 - STAGE_SHARE)))];
  const clamp = (width) => {
    const [min, max] = limits();
    return Math.round(Math.min(max, Math.max(min, width)));
  };

  function update() {
    const panel = openPanel();
    el.hidden = !panel;
    if (!panel) return;
    // Clamped again for the window as it is now; what was chosen is kept
    // for a wider one.
    if (wanted) body.style.setProperty('--panel-w', `${clamp(wanted)}px`);
    else body.style.removeProperty('--panel-w');
    const total = body.clientWidth;
    const [min, max] = limits();
    const width = Math.round(panel.getBoundingClientRect().width);
    el.setAttribute('aria-valuemin', String(total - max));
    el.setAttribute('aria-valuemax', String(total - min));
    el.setAttribute('aria-valuenow', String(total - width));
    el.setAttribute('aria-valuetext', `Remote screen ${total - width} pixels, side panel ${width} pixels wide`);
  }

  function setWidth(width) {
    wanted = clamp(width);
    update();
  }

  el.addEventListener('pointerdown', (e) => {
    const panel = openPanel();
    if (!panel || e.button !== 0) return;
    e.preventDefault(); // no text selection on the way
    el.setPointerCapture(e.pointerId);
    drag = { x: e.clientX, width: panel.getBoundingClientRect().width, moved: false };
    body.classList.add('is-resizing');
  });
  el.addEventListener('pointermove', (e) => {
    if (!drag || (e.clientX === drag.x && !drag.moved)) return;
    drag.moved = true;
    setWidth(drag.width + drag.x - e.clientX);
  });
  const endDrag = () => {
    if (!drag) return;
    // A click alone chooses nothing: each panel keeps its own width.
    if (drag.moved) savePanelWidth(wanted);
    drag = null;
    body.classList.remove('is-resizing');
  };
  el.addEventListener('pointerup', endDrag);
  el.addEventListener('pointercancel', endDrag);
  el.addEventListener('lostpointercapture', endDrag);
  el.addEventListener('dblclick', () => {
    wanted = 0;
    savePanelWidth(0);
    update();
  });
  el.addEventListener('keydown', (e) => {
    const panel = openPanel();
    if (!panel || e.altKey || e.ctrlKey || e.metaKey) return; // the browser's shortcuts, such as Alt+Left
    const width = panel.getBoundingClientRect().width;
    const step = e.shiftKey ? 4 * PANEL_STEP : PANEL_STEP;
    const [min, max] = limits();
    const to = { ArrowLeft: width + step, ArrowRight: width - step, Home: max, End: min }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    setWidth(to);
    savePanelWidth(wanted);
  });
  window.addEventListener('resize', update);

  return {
    el,
    update,
    destroy: () => window.removeEventListener('resize', update),
  };
}

/** Mounts the session view into root. Returns an unmount function. */
export function mountSession(root, { id, navigate }) {
  let info = null; // the session object from the API, once loaded
  let host = null; // { hostname, os, width, height, max_file }
  let shownDisplay = null; // { name, width, height } of the user's monitor shown, once the host says
  let connState = 'connecting';
  let endReason = '';
  let fatalError = null;
  let hasFrames = false;
  // The user said no to this viewer while the session goes on for the
  // others: this page is done, the session is not.
  let letGo = false;
  // The broker cut this page off (its login ended, an administrator changed
  // the account) while the session goes on for the others.
  let cutOff = false;
  let conn = null;
  let alive = true;
  let tickTimer = 0;
  // When the session went live (the user first let a technician in), on
  // the broker's clock: the session's live_at, so that the timer counts
  // the session's time, not this page's, after a reload as for a colleague
  // who joins late. Until the broker has said, when this page saw that yes.
  let liveSince = 0;
  // Since when the broker has heard nothing from the user's computer
  // (frozen, or its network dropped); 0 while it answers. A still screen
  // sends no video at all, so the picture alone cannot tell.
  let hostSilentSince = 0;
  // Since when the page has been cut off from the broker, and how many
  // times it has tried to reach it again.
  let reconnectingSince = 0;
  let retries = 0;

  window.tether.session = id;
  window.tether.state = connState;

  // ---- top bar -------------------------------------------------------------

  const title = h('h1', { class: 'viewer-title', title: `Session ${id}`, text: `Session ${shortId(id)}` });
  const subtitle = h('span', { class: 'viewer-subtitle mono', title: id, text: id });
  const badgeLabel = h('span', { text: CONN_LABELS[connState] });
  const badge = h('span', {
    id: 'conn-state', class: 'conn-badge', 'data-testid': 'conn-state', 'data-state': connState,
    role: 'status', 'aria-live': 'polite',
  }, h('span', { class: 'badge-dot', 'aria-hidden': 'true' }), badgeLabel);
  const timer = h('span', { class: 'viewer-timer tabular', hidden: true, title: 'Time live' });
  const hostChip = h('span', { class: 'viewer-meta-item', hidden: true, 'data-testid': 'host-info' });
  const sizeChip = h('span', { class: 'viewer-meta-item tabular', hidden: true, 'data-testid': 'display-size', title: 'Remote display size' });
  const meta = h('div', { class: 'viewer-meta' }, hostChip, sizeChip, subtitle);

  const back = h('a', { href: '#/sessions', class: 'viewer-back', 'aria-label': 'Back to sessions', 'data-tip': 'Back to sessions' }, icon('back', 18));
  const endBtn = h('button', {
    type: 'button', class: 'btn btn-danger btn-sm', 'data-testid': 'end-session', 'data-tip': 'End the session and disconnect the user',
  }, icon('power', 15), h('span', { class: 'end-label', text: 'End session' }));
  // Cut off from the broker, the page cannot end the session (nothing would
  // reach it): the button says so beside it rather than seem to work, and
  // works again once the broker answers.
  const endNote = h('span', {
    class: 'end-unavailable', id: 'end-unavailable', 'data-testid': 'end-unavailable', hidden: true,
    text: 'The session cannot be ended while the broker is not answering.',
  });
  // Supervisors watch; ending is for those who work the session.
  const scopes = window.tether.user?.scopes;
  const mayEnd = scopes?.length ? scopes.includes('sessions:write') : true;
  endBtn.hidden = !mayEnd;
  // The session's technician, or an admin, brings a colleague in or hands
  // the session over; a colleague invited in may not (the broker says so).
  const teamBtn = h('button', {
    type: 'button', class: 'tool-btn tool-btn-label', 'data-testid': 'bring-in', hidden: true,
    'data-tip': 'Invite a colleague, or hand the session over',
  }, icon('user', 17), h('span', { class: 'tool-btn-text', text: 'Colleague\u2026' }));
  const supervisor = window.tether.user?.role === 'supervisor';
  // What a viewer the user said no to was refused: supervisors only watch.
  const refusedWhat = supervisor ? 'watch' : 'join';

  // ---- consent and activity --------------------------------------------------

  const consent = createConsent({
    send: (perms) => conn?.requestPermissions(perms) ?? false,
    onChange: onConsent,
    watchOnly: supervisor,
  });
  // One side panel at a time: opening one closes the others.
  const closeOthers = (keep) => (on) => {
    if (on) {
      if (keep !== files) files.setOpen(false);
      if (keep !== shell) shell.setOpen(false);
      if (keep !== activity && activity.isOpen()) activity.button.click();
    }
    divider.update();
  };
  const activity = mountActivity({ sessionId: id, me: window.tether.user?.username, onToggle: (on) => closeOthers(activity)(on) });
  // Opened from its button, the panel takes the focus, as Files and Terminal do.
  activity.panel.tabIndex = -1;
  activity.button.addEventListener('click', () => {
    if (activity.isOpen()) activity.panel.focus({ preventScroll: true });
  });
  const files = mountFiles({ sessionId: id, getPc: () => conn?.pc ?? null, getHost: () => host, onRequest: (perm) => consent.request([perm]), onToggle: (on) => closeOthers(files)(on) });
  const shell = mountShell({ getPc: () => conn?.pc ?? null, onRequest: (perm) => consent.request([perm]), onToggle: (on) => closeOthers(shell)(on) });

  // ---- stage ---------------------------------------------------------------

  const video = h('video', {
    class: 'remote-video', autoplay: true, muted: true, playsinline: true, disablepictureinpicture: true,
    'data-testid': 'remote-video', 'aria-hidden': 'true',
  });
  video.muted = true; // the attribute alone does not mute a script-created element
  const overlay = h('div', { class: 'stage-overlay', 'data-testid': 'stage-overlay' });
  // The surface scrolls in 1:1 mode and takes the pointer; the stage around
  // it takes the keyboard and keeps the heads-up elements in place.
  const surface = h('div', { class: 'stage-surface' }, video);
  const stage = h('div', {
    class: 'stage', tabindex: '0', 'data-testid': 'remote-stage', role: 'application',
    'aria-roledescription': 'remote screen', 'aria-label': 'Remote screen',
  }, surface);

  const remote = mountRemoteControl({
    stage, surface, video, getPc: () => conn?.pc ?? null, onRequest: (perm) => consent.request([perm]),
    onDisplay: (d) => {
      shownDisplay = d;
      renderChips();
    },
  });
  const observers = observerBanner(window.tether.user);
  // The user's answers and the console's own notices share the stage's
  // corner, one above the other.
  const notices = h('div', { class: 'stage-notices', 'data-testid': 'stage-notices' }, consent.toast);
  const releaseToasts = toastsInto(notices);
  stage.append(remote.hud, overlay, notices, observers.el);

  // Supervisors only watch: the broker gives them no files and no shell,
  // whatever the user would allow, so they are not offered.
  consent.barActions.append(...(supervisor ? [] : [files.button, shell.button]), activity.button);

  // The picture and the open side panel share the body; the bar between
  // them sets how.
  const panels = [files.panel, shell.panel, activity.panel];
  const body = h('main', { class: 'viewer-body' });
  const divider = panelDivider(body, panels);
  body.append(stage, divider.el, ...panels);

  const viewer = h('div', { class: 'viewer' });
  root.replaceChildren(viewer);
  viewer.append(
    // The bar and the permissions under it are the page's banner: all of
    // it is in a landmark, the picture and its panels in main.
    h('header', { class: 'viewer-top' },
      h('div', { class: 'viewer-bar' },
        h('div', { class: 'viewer-bar-left' },
          back,
          h('div', { class: 'viewer-heading' },
            h('div', { class: 'viewer-title-row' }, title, badge, timer),
            meta)),
        remote.toolbar,
        h('div', { class: 'viewer-bar-right' }, endNote, teamBtn, endBtn)),
      consent.bar),
    body);

  // A file dropped anywhere on the page is sent as if dropped on the Files
  // panel (which takes its own drops), or the technician is told why not.
  viewer.addEventListener('drop', (e) => {
    const list = [...(e.dataTransfer?.files ?? [])];
    if (!list.length || files.panel.contains(e.target)) return;
    e.preventDefault();
    if (supervisor) {
      toast('Supervisors watch: files cannot be sent from here.', 'error', 6000);
    } else if (connState === 'ended') {
      toast('The session is over: nothing can be sent.', 'error', 6000);
    } else if (!files.sendDropped(list)) {
      files.setOpen(true); // it says how to ask for Files, or why not
      toast(`${list.length === 1 ? list[0].name : `${list.length} files`}: not sent. The user has not allowed Files now; ask for it in the Files panel, then drop again.`, 'error', 8000);
    }
  });

  // ---- behaviour -----------------------------------------------------------

  function setConnState(state) {
    if (state !== 'reconnecting') reconnectingSince = 0;
    else if (!reconnectingSince) reconnectingSince = Date.now();
    connState = state;
    window.tether.state = state;
    // Shells and transfers cut off now were cut by the technician's own
    // connection, not by the user.
    if (state === 'reconnecting' || state === 'live') {
      shell.setConnected(state === 'live');
      files.setConnected(state === 'live');
    }
    renderBadge();
    renderEnd();
    // Nothing to control before the first picture or after the end.
    remote.toolbar.hidden = !(state === 'live' || state === 'reconnecting');
    remote.setLive(state === 'live');
    consent.setHostHere(state === 'live');
    // The overlay first: at the end it takes the focus the End button had,
    // before the panels, ending, offer theirs (gone a moment later).
    renderOverlay();
    renderChips();
    if (state === 'ended') {
      shell.end('The session ended.');
      files.end('the session ended');
      consent.setEnded();
      activity.refresh();
    }
  }

  function renderEnd() {
    endBtn.hidden = connState === 'ended' || !mayEnd;
    const me = window.tether.user;
    teamBtn.hidden = endBtn.hidden || !info || (info.technician !== me?.username && me?.role !== 'admin');
    const cutOff = connState === 'reconnecting';
    endNote.hidden = endBtn.hidden || !cutOff;
    // aria-disabled, not disabled: it keeps the focus and stays described.
    if (cutOff) {
      endBtn.setAttribute('aria-disabled', 'true');
      endBtn.setAttribute('aria-describedby', 'end-unavailable');
    } else {
      endBtn.removeAttribute('aria-disabled');
      endBtn.removeAttribute('aria-describedby');
    }
    endBtn.dataset.tip = cutOff ? '' : 'End the session and disconnect the user';
  }

  function renderBadge() {
    // Connected to the user's computer, but nothing to see yet: not "Live".
    const unseen = connState === 'live' && !consent.has('view');
    const silent = connState === 'live' && !!hostSilentSince;
    const label = letGo ? 'Declined' : cutOff && connState === 'ended' ? 'Disconnected' : silent ? 'Not responding' : unseen ? 'Connected' : CONN_LABELS[connState] ?? connState;
    // A session that cannot be opened has no state to show: the stage says why.
    badge.hidden = !!fatalError;
    consent.bar.hidden = !!fatalError;
    badgeLabel.textContent = label;
    badge.dataset.state = letGo ? 'declined' : silent ? 'silent' : connState;
    badge.dataset.seen = String(!unseen);
    document.title = `${fatalError ? 'Can\u2019t open' : label} · ${info?.ticket?.id || `Session ${shortId(id)}`} · Tether`;
  }

  function onConsent(c) {
    renderBadge();
    remote.setPermissions({
      known: c.known,
      control: c.granted.includes('control'),
      clipboard: c.granted.includes('clipboard'),
      paused: c.paused,
      pending: c.pending,
      asking: c.asking ?? [],
      canAsk: consent.canAsk(),
    });
    // Once the session is over nothing is allowed, whatever was granted.
    const over = connState === 'ended';
    files.setAllowed(!over && c.granted.includes('files') && !c.paused, { paused: !over && c.paused });
    shell.setAllowed(!over && c.granted.includes('shell') && !c.paused, { paused: !over && c.paused });
    files.setAsking(consent.isAsking('files'), consent.canAsk());
    shell.setAsking(consent.isAsking('shell'), consent.canAsk());
    stage.classList.toggle('is-paused', c.paused);
    stage.classList.toggle('is-unseen', c.known && !c.granted.includes('view'));
    renderOverlay();
  }

  function renderChips() {
    const desc = describeHost(host);
    hostChip.hidden = !desc;
    hostChip.textContent = desc;
    // The size of the user's monitor shown (the host's first one until it
    // says which); the stream may be smaller while bandwidth ramps up.
    const shown = shownDisplay ?? host;
    const display = formatSize(shown?.width, shown?.height);
    const stream = formatSize(video.videoWidth, video.videoHeight);
    sizeChip.hidden = !(display || stream);
    sizeChip.textContent = display || stream;
    sizeChip.title = stream && stream !== display
      ? `Remote display ${display || 'size unknown'} · receiving ${stream}`
      : 'Remote display size';
    timer.hidden = !liveSince || connState === 'ended';
    if (liveSince) timer.textContent = formatDuration(api.serverNow() - liveSince);
  }

  /** The focus was on something that is gone or disabled now (or nowhere). */
  function focusLost() {
    const el = document.activeElement;
    return !el || el === document.body || el.disabled || !el.getClientRects().length;
  }

  /**
   * A dialog closed: if the session ended meanwhile (the overlay could not
   * take the focus past the dialog), the focus goes from the button that
   * opened it, gone now, to the overlay's way on.
   */
  function afterDialog() {
    if (!overlay.hidden && focusLost()) overlay.querySelector('.overlay-actions .btn')?.focus({ preventScroll: true });
  }

  function renderOverlay() {
    stage.dataset.state = connState;
    const silent = connState === 'live' && !!hostSilentSince;
    stage.classList.toggle('is-silent', silent);
    const show = (kind, ...children) => {
      overlay.hidden = false;
      overlay.className = `stage-overlay stage-overlay-${kind}`;
      overlay.replaceChildren(h('div', { class: 'overlay-panel' }, ...children));
    };
    const showPanel = (kind, panel) => {
      overlay.hidden = false;
      overlay.className = `stage-overlay stage-overlay-${kind}`;
      overlay.replaceChildren(panel);
    };

    if (connState === 'ended' && letGo) {
      // Not an end: the others go on working with the user.
      show('ended',
        h('div', { class: 'overlay-icon overlay-icon-ended overlay-icon-refused' }, icon('shieldX', 26)),
        h('h2', { class: 'overlay-title', 'data-testid': 'let-go', text: `Not allowed to ${refusedWhat}` }),
        h('p', { class: 'overlay-text', 'data-testid': 'let-go-reason', text: `The user did not let you ${refusedWhat}. The session goes on.` }),
        h('div', { class: 'overlay-actions' }, h('a', { href: '#/sessions', class: 'btn btn-primary' }, icon('back', 15), 'Back to sessions')));
      if (focusLost()) overlay.querySelector('.btn')?.focus({ preventScroll: true });
      return;
    }
    if (connState === 'ended' && cutOff) {
      const again = h('button', { type: 'button', class: 'btn btn-primary', 'data-testid': 'connect-again' }, icon('refresh', 15), 'Connect again');
      again.addEventListener('click', () => location.reload());
      show('ended',
        h('div', { class: 'overlay-icon overlay-icon-ended' }, icon('alert', 26)),
        h('h2', { class: 'overlay-title', 'data-testid': 'cut-off', text: 'You were disconnected' }),
        h('p', { class: 'overlay-text', 'data-testid': 'ended-reason', text: describeReason(endReason) }),
        h('p', { class: 'overlay-meta', text: 'The session goes on for the user and anyone else in it.' }),
        h('div', { class: 'overlay-actions' }, again,
          h('a', { href: '#/sessions', class: 'btn btn-secondary' }, icon('back', 15), 'Back to sessions')));
      if (focusLost()) again.focus({ preventScroll: true });
      return;
    }
    if (connState === 'ended') {
      const backBtn = h('a', { href: '#/sessions', class: 'btn btn-primary' }, icon('back', 15), 'Back to sessions');
      const heading = fatalError ? 'Can\u2019t open this session' : 'Session ended';
      const text = fatalError ? fatalError.message : describeReason(endReason);
      // Ended because the user said no, or did not answer: nothing was shared.
      const refused = !fatalError && !hasFrames && !!consent.state.declined;
      const seen = liveSince && hasFrames;
      show('ended',
        h('div', { class: `overlay-icon overlay-icon-ended${refused ? ' overlay-icon-refused' : ''}` }, icon(fatalError ? 'alert' : refused ? 'shieldX' : 'power', 26)),
        h('h2', { class: 'overlay-title', 'data-testid': 'session-ended', text: heading }),
        h('p', { class: 'overlay-text', 'data-testid': 'ended-reason', text }),
        refused ? h('p', { class: 'overlay-meta', text: 'Nothing was shared. Create a new session if the user wants to try again.' }) : null,
        seen ? h('p', { class: 'overlay-meta', text: `Watched for ${formatDuration((Date.parse(info?.ended_at ?? '') || api.serverNow()) - liveSince)}` }) : null,
        h('div', { class: 'overlay-actions' }, backBtn,
          seen ? h('a', { href: `#/recording/${encodeURIComponent(id)}`, class: 'btn btn-secondary', 'data-testid': 'open-recording' }, icon('history', 15), 'Open recording') : null));
      // The End button, the toolbar and the panels' actions are gone:
      // the way on is back to the sessions.
      if (focusLost()) backBtn.focus({ preventScroll: true });
      return;
    }
    if (connState === 'waiting') {
      const code = info?.code ? String(info.code).replace(/\s+/g, '') : '';
      const expires = Date.parse(info?.code_expires_at ?? '');
      const codeValid = code && (!expires || expires > api.serverNow());
      show('waiting',
        h('div', { class: 'overlay-icon overlay-icon-waiting' }, icon('monitor', 26)),
        h('h2', { class: 'overlay-title', text: host ? 'The user\u2019s screen is not shared right now' : 'Waiting for the user to join' }),
        h('p', { class: 'overlay-text', text: host
          ? 'The host disconnected or paused sharing. The screen comes back here when it reconnects.'
          : 'Ask the user to run Tether host with the support code. Their screen appears here as soon as they allow the session.' }),
        codeValid ? h('div', { class: 'overlay-code', 'data-testid': 'overlay-code', 'data-code': code },
          codeGroups(code).map((g) => h('span', { class: 'code-group', text: g }))) : null,
        h('div', { class: 'overlay-progress', 'aria-hidden': 'true' }, h('span')));
      return;
    }
    if (connState === 'reconnecting') {
      // Once a new try has failed, the broker itself is gone (stopped, or
      // out of reach), not a moment's interruption: say so.
      const gone = retries >= 2;
      show('reconnecting',
        h('span', { class: 'spinner spinner-light', 'aria-hidden': 'true' }),
        h('h2', { class: 'overlay-title', 'data-testid': 'reconnecting', text: gone ? 'The broker is not answering' : 'Connection interrupted' }),
        h('p', { class: 'overlay-text', 'data-testid': 'reconnecting-since', text: `Cut off from the broker since ${clockTime(reconnectingSince)}. Trying again\u2026 The picture resumes by itself when it answers.` }),
        gone ? h('p', { class: 'overlay-meta', text: 'If the broker was restarted meanwhile, the session ended with it: this page says so as soon as the broker answers.' }) : null);
      return;
    }
    if (silent) {
      // The last picture stays, dimmed: it is what the user's computer
      // showed when it stopped answering, not what it shows now.
      show('silent',
        h('span', { class: 'spinner spinner-light', 'aria-hidden': 'true' }),
        h('h2', { class: 'overlay-title', 'data-testid': 'host-silent', text: 'The user\u2019s computer is not responding' }),
        h('p', { class: 'overlay-text', 'data-testid': 'host-silent-since', text: `Nothing has come from it since ${clockTime(hostSilentSince)}. The picture is the last one received.` }),
        // The broker drops input meanwhile rather than deliver it late.
        h('p', { class: 'overlay-text', 'data-testid': 'host-silent-input', text: 'Your mouse and keyboard are paused until it answers: nothing you click or type meanwhile reaches it.' }),
        h('p', { class: 'overlay-meta', text: 'Waiting for it to answer again: it may be frozen or very busy, or its network may have dropped.' }));
      return;
    }
    // What the user allows, once the broker is connected to them.
    const c = consent.state;
    if (c.known && (connState === 'live' || connState === 'connecting')) {
      if (c.pending && !c.granted.includes('view')) {
        showPanel('consent', consent.pendingPanel(host?.hostname ? `the user at ${host.hostname}` : 'the user'));
        return;
      }
      if (!c.granted.includes('view')) {
        showPanel('consent', consent.noViewPanel());
        return;
      }
      if (c.paused) {
        showPanel('paused', consent.pausedPanel());
        return;
      }
    }
    if (connState === 'connecting' || !hasFrames) {
      show('connecting',
        h('span', { class: 'spinner spinner-light', 'aria-hidden': 'true' }),
        h('h2', { class: 'overlay-title', text: connState === 'live' ? 'Starting video\u2026' : 'Connecting\u2026' }),
        h('p', { class: 'overlay-text', text: connState === 'live'
          ? 'Waiting for the first picture from the user\u2019s screen.'
          : 'Setting up a secure connection through the broker.' }));
      return;
    }
    overlay.hidden = true;
    overlay.replaceChildren();
  }

  function applyInfo(s) {
    info = { ...api.createdCode(id), ...s };
    if (s.ticket?.id) {
      title.textContent = s.ticket.id;
      subtitle.textContent = `Session ${shortId(s.id || id)}`;
    } else {
      subtitle.textContent = shortId(s.id || id);
    }
    if (s.host) host = s.host;
    if (Array.isArray(s.permissions)) consent.setRequested(s.permissions);
    const live = Date.parse(s.live_at ?? '');
    if (live) liveSince = live;
    renderChips();
    renderEnd();
  }

  video.addEventListener('resize', renderChips);
  video.addEventListener('loadeddata', () => {
    hasFrames = true;
    renderOverlay();
    renderChips();
  });

  // Ending asks first, and takes closing notes for the ticket. A failure
  // keeps the dialog open with what was written.
  endBtn.addEventListener('click', () => {
    if (endBtn.getAttribute('aria-disabled') === 'true') return; // the note beside it says why
    const notes = h('textarea', { id: 'end-notes', class: 'input textarea', rows: '4', 'data-testid': 'end-notes', placeholder: 'e.g. Printer driver reinstalled; test page printed.' });
    const count = h('span', { class: 'field-hint tabular', 'data-testid': 'end-notes-count' });
    const counted = () => {
      const bytes = utf8.encode(notes.value.trim()).length;
      count.textContent = `${formatBytes(bytes)} of ${formatBytes(MAX_CLOSING_NOTES)}`;
      count.classList.toggle('is-over', bytes > MAX_CLOSING_NOTES);
    };
    counted();
    notes.addEventListener('input', counted);
    const error = errorBox({ notes });
    const cancel = h('button', { type: 'button', class: 'btn btn-secondary', text: 'Cancel' });
    const ok = h('button', { type: 'button', class: 'btn btn-danger', 'data-testid': 'confirm-ok', text: 'End session' });
    const m = modal({
      title: 'End this session?',
      description: 'The user\u2019s screen stops being shared and the host program disconnects. The recording is kept.',
      content: h('div', { class: 'stack' }, error.el, h('div', { class: 'field' },
        h('label', { for: 'end-notes', class: 'label' }, 'Closing notes ', h('span', { class: 'label-hint', text: '(optional)' })), notes,
        h('div', { class: 'field-hint-row' }, h('span', { class: 'field-hint', text: 'What was done, for the ticket: sent with the end of the session.' }), count))),
      footer: [cancel, ok],
      testid: 'end-session-dialog',
      size: 'md',
      onClose: afterDialog,
    });
    cancel.addEventListener('click', () => m.close());
    // On Cancel: an Enter pressed once too often keeps the session going.
    cancel.focus();
    ok.addEventListener('click', async () => {
      if (!alive) return;
      if (connState === 'reconnecting') {
        // Cut off while the dialog was open.
        error.show({ message: 'The session was not ended: the broker is not answering. Try again once the connection is back.' });
        return;
      }
      ok.disabled = true;
      try {
        const s = await api.endSession(id, notes.value.trim());
        m.close();
        if (s) applyInfo(s);
        endReason = endReason || 'ended_by_technician';
        conn?.markEnded(endReason);
      } catch (err) {
        if (!alive) return;
        ok.disabled = false;
        error.show({ ...err, message: `The session was not ended. ${err.message}` });
      }
    });
  });

  // A colleague joins beside the technician (the user is asked before
  // they see anything), or takes the session over (the technician is cut
  // off from it, unless an admin).
  teamBtn.addEventListener('click', () => {
    const username = h('input', { id: 'bring-in-user', class: 'input', autocomplete: 'off', spellcheck: 'false', placeholder: 'e.g. tom', 'data-testid': 'bring-in-username' });
    const error = errorBox({ username });
    const cancel = h('button', { type: 'button', class: 'btn btn-secondary', text: 'Cancel' });
    const handOver = h('button', { type: 'button', class: 'btn btn-secondary', 'data-testid': 'hand-over', text: 'Hand over' });
    const invite = h('button', { type: 'submit', form: 'bring-in-form', class: 'btn btn-primary', 'data-testid': 'invite', text: 'Invite' });
    const admin = window.tether.user?.role === 'admin';
    const form = h('form', { id: 'bring-in-form', class: 'stack', novalidate: true },
      error.el,
      h('div', { class: 'field' }, h('label', { for: 'bring-in-user', class: 'label', text: 'Colleague\u2019s username' }), username,
        h('p', { class: 'field-hint', text: 'A technician or an admin. Invite: they join beside you, and the user is asked before they see anything. Hand over: the session becomes theirs' + (admin ? '.' : ', and you are cut off from it.') })));
    const m = modal({ title: 'Bring in a colleague', content: form, footer: [cancel, handOver, invite], testid: 'bring-in-dialog', size: 'md', onClose: afterDialog });
    cancel.addEventListener('click', () => m.close());
    username.focus();
    const send = async (over) => {
      const name = username.value.trim();
      if (!name) {
        error.show({ fields: [{ field: 'username', message: 'Enter the username of the colleague.' }] });
        return;
      }
      if (over && !admin && !await confirmDialog({
        title: `Hand the session over to ${name}?`,
        message: `It becomes ${name}\u2019s, and you are cut off from it at once: this page, its recording and its trail included.`,
        confirmLabel: 'Hand over',
      })) return;
      invite.disabled = handOver.disabled = true;
      try {
        await api.bringIn(id, name, { handOver: over });
        m.close();
        toast(over ? `The session is ${name}\u2019s now.` : `${name} is invited: the session is in their list, and the user is asked before they see anything.`, 'success', 8000);
      } catch (err) {
        invite.disabled = handOver.disabled = false;
        error.show(err);
      }
    };
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      send(false);
    });
    handOver.addEventListener('click', () => send(true));
  });

  function recheck() {
    api.getSession(id).then((s) => {
      if (!alive) return;
      applyInfo(s);
      if (s.state === 'ended') conn?.markEnded(s.end_reason || '');
    }, (err) => {
      if (alive && err.status === 404) {
        fatalError = { code: err.code, message: err.message };
        conn?.close();
        setConnState('ended');
      }
    });
  }

  function startConnection() {
    conn = new ViewerConnection({
      session: id,
      onState: setConnState,
      onHost(h2) {
        host = h2;
        renderChips();
        if (connState === 'waiting') renderOverlay();
      },
      onChannels(ch) {
        remote.attach(ch);
        files.reconnected();
      },
      onHostSilent(since) {
        if (since === hostSilentSince) return;
        hostSilentSince = since;
        renderBadge();
        renderOverlay();
      },
      onObservers: (list) => observers.update(list),
      onPermissions(p) {
        consent.apply(p);
        activity.refresh(); // the broker recorded what happened
        if (p.granted.length && !liveSince) {
          // The user's first yes: live from now, to the second the broker
          // recorded once it says.
          liveSince = api.serverNow();
          renderChips();
          api.getSession(id).then((s) => { if (alive) applyInfo(s); }, () => {});
        }
      },
      // A new signaling connection is a new viewer to the broker: the user
      // is asked again, and grants start from nothing.
      onWelcome() {
        retries = 0;
        // Before the grants are forgotten: not the user's doing.
        shell.setConnected(false);
        files.setConnected(false);
        consent.reset();
      },
      onStream(stream) {
        if (video.srcObject !== stream) {
          hasFrames = false;
          video.srcObject = stream;
        }
        video.play().catch(() => {}); // autoplay of a muted video is allowed; just in case
      },
      onEnded(reason, how) {
        // The user's "no" is clearer than the broker's short close reason.
        endReason = endReason || (how?.refused && consent.state.declined) || reason;
        cutOff = !!how?.cutOff;
        if (cutOff) {
          consent.setEnded('You are no longer connected to this session.');
          files.end('you are no longer connected to this session');
          shell.end('You are no longer connected to this session.');
          renderBadge();
        }
        if (how?.refused) {
          letGo = true;
          consent.setEnded(`The user did not let you ${refusedWhat}.`);
          renderBadge();
        }
        video.srcObject = null;
        renderOverlay();
        // The broker's refusal does not say why; the session's record does
        // (a broker restarted mid-session ended it, and says so).
        if (how?.missed) {
          api.getSession(id).then((s) => {
            if (!alive || !s.end_reason) return;
            endReason = s.end_reason;
            renderOverlay();
          }, () => {});
        }
      },
      onRetry(attempt) {
        retries = attempt;
        if (connState === 'reconnecting') renderOverlay();
        // A socket that keeps failing may mean the login expired or the
        // session ended meanwhile: the REST API says which (401 → login).
        if (attempt === 2 || attempt % 5 === 0) recheck();
      },
      onError(err, fatal) {
        if (fatal) {
          fatalError = err;
          setConnState('ended');
          window.tether.state = 'ended';
        } else if (!consent.takeError(err)) {
          toast(err.message, 'error');
        }
      },
    });
    window.tether.viewer = conn; // for tests: conn.pc, conn.state
    conn.start();
  }

  // Load the session first so that an ended or unknown session does not dial.
  setConnState('connecting');
  api.getSession(id).then((s) => {
    if (!alive) return;
    applyInfo(s);
    if (s.state === 'ended') {
      endReason = s.end_reason || '';
      setConnState('ended');
      return;
    }
    renderOverlay();
    startConnection();
  }, (err) => {
    if (!alive || err.status === 401) return;
    if (err.status === 404 || err.status === 403) {
      fatalError = { code: err.code, message: err.message };
      setConnState('ended');
      return;
    }
    startConnection(); // the API hiccupped; signaling may still work
  });

  // Leaving the page would drop what only this page holds: control of the
  // user's computer, a transfer under way, an open shell. Not while the
  // technician only watches, nor once the session is over.
  function wouldDrop() {
    if (connState === 'ended') return [];
    return [
      remote.controlling() ? 'gives up control of the user\u2019s computer' : '',
      shell.anyOpen() ? 'closes the open terminal' : '',
      files.busy() ? 'stops the file transfer under way' : '',
    ].filter(Boolean);
  }

  // Closing or reloading the tab: the browser asks first.
  function onBeforeUnload(e) {
    if (!wouldDrop().length) return;
    e.preventDefault();
    e.returnValue = ''; // older browsers ask only when this is set
  }
  window.addEventListener('beforeunload', onBeforeUnload);

  // Going back to the list drops as much, so the page asks as the browser
  // would for the tab: a technician off to start the next session must not
  // lose a terminal or a transfer without a word. askLeave resolves true to
  // leave; it is null when there is nothing to ask (app.js asks it too, for
  // the browser's Back button).
  let leaving = null;
  let mayLeave = false;
  function askLeave() {
    if (leaving) return leaving;
    const drops = mayLeave ? [] : wouldDrop();
    if (!drops.length) return null;
    const what = drops.length > 1 ? `${drops.slice(0, -1).join(', ')} and ${drops.at(-1)}` : drops[0];
    leaving = confirmDialog({
      title: 'Leave this session?',
      message: `Going back to the sessions list ${what}. The session itself goes on: you can open it again from the list.`,
      confirmLabel: 'Leave',
      testid: 'leave-session-dialog',
    }).then((ok) => {
      leaving = null;
      mayLeave = ok && alive;
      return mayLeave;
    });
    return leaving;
  }
  back.addEventListener('click', async (e) => {
    const asking = askLeave();
    if (!asking) return;
    e.preventDefault();
    if (await asking) navigate('#/sessions');
  });

  let codeExpired = false;
  tickTimer = setInterval(() => {
    if (liveSince && connState !== 'ended') renderChips();
    consent.tick();
    // Hide the code in the waiting panel once it can no longer be used.
    const expired = Date.parse(info?.code_expires_at ?? '') <= api.serverNow();
    if (expired !== codeExpired) {
      codeExpired = expired;
      if (connState === 'waiting') renderOverlay();
    }
  }, 1000);

  const unmount = () => {
    alive = false;
    releaseToasts();
    window.removeEventListener('beforeunload', onBeforeUnload);
    clearInterval(tickTimer);
    consent.destroy();
    activity.destroy();
    files.destroy();
    shell.destroy();
    remote.destroy();
    divider.destroy();
    if (document.fullscreenElement === stage) document.exitFullscreen().catch(() => {});
    conn?.close();
    video.srcObject = null;
    document.querySelectorAll('dialog.modal').forEach((d) => d.remove());
  };
  unmount.askLeave = askLeave;
  return unmount;
}

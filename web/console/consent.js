// The user's consent in the session view: what the user allows right now,
// as the broker reports it in `permissions` messages, shown as chips in the
// header (with a way to ask for more), a status line that says what the
// user is being asked while they answer, a toast for every answer, and the
// panels the stage shows while the user has not let the technician see, or
// has paused.
//
// The user's computer enforces all of it; the console only makes it plain.

import { formatDuration, h, icon } from './ui.js';
import { labelPerms, ourWords, permInfo, sortPerms } from './permissions.js';

const TOAST_MS = 6500;

/** "Asked just now", "Asked 12 s ago", "Asked 3 min ago". */
function askedAgo(ms) {
  const s = Math.floor(ms / 1000);
  if (s < 5) return 'Asked just now';
  if (s < 60) return `Asked ${s} s ago`;
  if (s < 3600) return `Asked ${Math.floor(s / 60)} min ago`;
  return `Asked ${formatDuration(ms)} ago`;
}

/**
 * @param {object} o
 * @param {(perms: string[]) => boolean} o.send  sends permission.request; false when not connected
 * @param {(state: object, prev: object) => void} o.onChange
 * @param {boolean} [o.watchOnly]  a supervisor: the broker lets them see, nothing more
 */
export function createConsent({ send, onChange, watchOnly = false }) {
  const st = {
    known: false, // a permissions message has arrived
    granted: [],
    paused: false,
    pending: false, // the user is being asked
    message: '',
    requested: watchOnly ? ['view'] : [], // what the session asks for, and what was asked for since
    asking: null, // what this console asked for, until the user answers
    askedAt: 0, // when the current question was put (local ms)
    pausedAt: 0,
    hostHere: false, // the user's computer is connected: questions can be put
    ended: false,
    endedText: '', // why nothing is allowed any more, for the status line
    declined: '', // the user's "no" to the first question, for the end panel
  };
  const exposed = { granted: [], paused: false, pending: false, message: '' };
  window.tether.permissions = exposed;

  // ---- header chips ----------------------------------------------------------

  const strip = h('div', { class: 'perm-strip', role: 'group', 'aria-label': 'What the user allows', 'data-testid': 'perm-strip' });

  function canAsk() {
    return st.hostHere && st.known && !st.pending && !st.asking && !st.ended;
  }

  function isAsking(id) {
    if (st.asking) return st.asking.includes(id);
    return st.pending && !st.granted.includes(id) && st.requested.includes(id);
  }

  function chip(id) {
    const p = permInfo(id);
    const granted = st.granted.includes(id);
    const asking = !granted && isAsking(id);
    const attrs = {
      'data-testid': 'perm-chip', 'data-perm': id, 'data-granted': String(granted && !st.ended),
    };
    if (st.ended) {
      return h('span', { ...attrs, class: 'perm-chip is-muted', 'data-tip': `${p.label}: ${st.endedText.replace(/\.$/, '').toLowerCase()}` },
        icon(p.icon, 14), h('span', { class: 'perm-chip-label', text: p.label }));
    }
    if (granted) {
      return h('span', {
        ...attrs, class: `perm-chip is-granted${st.paused ? ' is-paused' : ''}`,
        'data-tip': st.paused ? `${p.label}: allowed, paused by the user` : `${p.label}: allowed by the user`,
      }, icon(p.icon, 14), h('span', { class: 'perm-chip-label', text: p.label }),
      // What the check mark and the colour say, for a screen reader.
      h('span', { class: 'visually-hidden', text: st.paused ? ': allowed, paused by the user' : ': allowed' }),
      h('span', { class: 'perm-chip-check', 'aria-hidden': 'true' }, icon('check', 12)));
    }
    const ask = canAsk();
    const btn = h('button', {
      ...attrs, type: 'button', class: `perm-chip is-muted${asking ? ' is-asking' : ''}`,
      disabled: !ask,
      'aria-label': asking ? `${p.label}: waiting for the user` : `${p.label}: not allowed. Ask the user`,
      'data-tip': asking ? 'Waiting for the user to answer'
        : !st.known ? `${p.label}: requested, not answered yet`
          : ask ? `${p.label} is not allowed \u2014 click to ask the user` : `${p.label} is not allowed`,
    }, icon(p.icon, 14), h('span', { class: 'perm-chip-label', text: p.label }),
    asking ? h('span', { class: 'perm-chip-dot', 'aria-hidden': 'true' })
      : ask ? h('span', { class: 'perm-chip-action', 'aria-hidden': 'true' }, icon('plus', 12)) : null);
    btn.addEventListener('click', () => request([id]));
    return btn;
  }

  function renderChips() {
    const shown = sortPerms(st.requested, st.granted, st.asking ?? []);
    strip.classList.toggle('is-paused', st.paused);
    strip.replaceChildren(...shown.map(chip));
    if (!shown.length) strip.append(h('span', { class: 'perm-none', text: 'Nothing requested yet' }));
    renderStatus();
  }

  // ---- the consent bar under the header ----------------------------------------

  const statusEl = h('div', { class: 'consent-status', 'data-testid': 'consent-status', role: 'status' });
  const barActions = h('div', { class: 'consent-bar-actions' });
  const bar = h('div', { class: 'consent-bar', 'data-testid': 'consent-bar' },
    h('div', { class: 'consent-bar-left' },
      h('span', { class: 'consent-bar-label' }, icon('shield', 14), h('span', { class: 'consent-bar-label-text', text: 'Permissions' })),
      strip),
    statusEl,
    barActions);
  let statusAt = 0; // when the last message arrived
  let lastKind = ''; // what it was: granted, revoked, … (see TOAST_KINDS)

  function renderStatus() {
    let kind = 'idle';
    let text;
    let title = '';
    let since = 0;
    if (st.ended) {
      text = st.endedText; // the stage says more
      kind = 'ended';
    } else if (!st.known) {
      text = st.hostHere ? 'Connecting to the user\u2026' : 'The user is asked when they join.';
    } else if (st.paused) {
      text = 'Paused by the user';
      kind = 'paused';
      since = st.pausedAt;
    } else if (st.pending) {
      // The one place a question in progress is announced (with the ask
      // button that put it, and the chip): no banner, no toast.
      const asked = labelPerms(askedPerms());
      text = asked ? `Waiting for the user to allow ${asked}` : 'Waiting for the user to answer';
      // The question is on the user's screen, where the user's computer
      // takes no one's mouse or keyboard but the user's until they answer.
      if (st.granted.includes('control')) {
        text = `${asked ? `Asking the user for ${asked}` : 'Asking the user'} \u00b7 input held`;
        title = `${text}: the question is on the user's screen, and until they answer it your mouse and keyboard do nothing there, so that only they can.`;
      }
      kind = 'pending';
      since = st.askedAt;
    } else {
      text = st.message || (st.granted.length ? `The user allows ${labelPerms(st.granted)}.` : 'The user has allowed nothing.');
      kind = 'answer';
    }
    const time = h('span', { class: 'consent-status-time tabular' });
    if (since) {
      time.dataset.since = kind === 'paused' ? 'paused' : 'asked';
      elapsedEls.add(time);
    } else if (statusAt && kind === 'answer') {
      time.textContent = new Date(statusAt).toLocaleTimeString([], { hour: 'numeric', minute: '2-digit' });
      time.classList.add('is-clock');
    }
    // Narrow windows leave out the clock, and may ellipsise the line.
    statusEl.title = `${title || text}${time.classList.contains('is-clock') ? ` (${time.textContent})` : ''}`;
    statusEl.dataset.kind = kind;
    statusEl.dataset.tone = kind === 'answer' ? lastKind : '';
    statusEl.replaceChildren(...[
      kind === 'pending' ? h('span', { class: 'mini-spinner', 'aria-hidden': 'true' })
        : kind === 'paused' ? icon('pause', 13) : h('span', { class: 'consent-status-dot', 'aria-hidden': 'true' }),
      h('span', { class: 'consent-status-text', text }),
      time.textContent || since ? time : null,
    ].filter(Boolean));
    if (since) tick();
  }

  // ---- toast -----------------------------------------------------------------

  const toastText = h('span', { class: 'consent-toast-text' });
  const toastIcon = h('span', { class: 'consent-toast-icon', 'aria-hidden': 'true' });
  const toastClose = h('button', { type: 'button', class: 'consent-toast-close', 'aria-label': 'Dismiss' }, icon('x', 14));
  const toastEl = h('div', {
    class: 'consent-toast', 'data-testid': 'consent-toast', role: 'status', 'aria-live': 'polite', hidden: true,
  }, toastIcon, h('div', { class: 'consent-toast-body' }, h('span', { class: 'consent-toast-title', text: 'Consent' }), toastText), toastClose);
  let toastTimer = 0;
  toastClose.addEventListener('click', () => {
    toastEl.hidden = true;
  });

  const TOAST_KINDS = {
    granted: ['shieldCheck', 'Access allowed'],
    partial: ['shieldHalf', 'Partly allowed'],
    declined: ['shieldX', 'Declined'],
    revoked: ['shieldX', 'Permission revoked'],
    paused: ['pause', 'Session paused'],
    resumed: ['play', 'Session resumed'],
    pending: ['hourglass', 'Asking the user'],
    info: ['shield', 'Consent'],
  };

  function showToast(message, kind) {
    const [ic, title] = TOAST_KINDS[kind] ?? TOAST_KINDS.info;
    toastEl.dataset.kind = kind;
    toastIcon.replaceChildren(icon(ic, 16));
    toastEl.querySelector('.consent-toast-title').textContent = title;
    toastText.textContent = message;
    toastEl.hidden = false;
    // Restart the entrance animation for a message that replaces another.
    toastEl.classList.remove('is-in');
    void toastEl.offsetWidth;
    toastEl.classList.add('is-in');
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => {
      toastEl.hidden = true;
    }, TOAST_MS);
  }

  function kindOf(prev) {
    const gained = st.granted.filter((p) => !prev.granted.includes(p));
    const lost = prev.granted.filter((p) => !st.granted.includes(p));
    if (st.pending) return 'pending';
    if (st.paused && !prev.paused) return 'paused';
    if (!st.paused && prev.paused) return 'resumed';
    if (lost.length) return 'revoked';
    if (st.granted.length === 0 || (prev.pending && !gained.length)) return 'declined';
    const asked = prev.asking ?? st.requested;
    if (gained.length && asked.some((p) => !st.granted.includes(p))) return 'partial';
    if (gained.length) return 'granted';
    return 'info';
  }

  const elapsedEls = new Set();


  // ---- behaviour -------------------------------------------------------------

  /** What the user is being asked for right now. */
  function askedPerms() {
    if (st.asking) return st.asking;
    const open = st.requested.filter((p) => !st.granted.includes(p));
    return open.length ? open : st.requested;
  }

  function snapshot() {
    return { ...st, granted: [...st.granted], requested: [...st.requested], asking: st.asking && [...st.asking] };
  }

  function publish() {
    exposed.granted = [...st.granted];
    exposed.paused = st.paused;
    exposed.pending = st.pending;
    exposed.message = st.message;
  }

  function changed(prev) {
    publish();
    renderChips();
    onChange(st, prev);
  }

  /** Applies a `permissions` message from the broker. */
  function apply(p) {
    const prev = snapshot();
    st.known = true;
    st.granted = sortPerms(p.granted);
    st.paused = p.paused === true;
    st.pending = p.pending === true;
    st.message = ourWords(p.message || '');
    statusAt = Date.now();
    if (st.pending && !prev.pending && !st.asking) st.askedAt = Date.now();
    if (!st.pending) st.asking = null;
    if (st.paused && !prev.paused) st.pausedAt = Date.now();
    st.requested = sortPerms(st.requested, st.granted);
    if (!st.pending) st.declined = st.granted.length === 0 ? st.message : '';
    // The first question hides the stage behind its own panel, which says
    // as much; everything else is worth a toast.
    const firstAsk = st.pending && !st.granted.includes('view');
    lastKind = kindOf(prev);
    // A question in progress is said by the status line; a toast would
    // only repeat it.
    if (st.message && !firstAsk && lastKind !== 'pending') showToast(st.message, lastKind);
    changed(prev);
  }

  /** Asks the user for `perms` (those not granted yet). True if sent. */
  function request(perms) {
    if (!canAsk()) return false;
    const want = sortPerms(perms).filter((p) => !st.granted.includes(p) && (!watchOnly || p === 'view'));
    if (!want.length) return false;
    if (!send(want)) {
      showToast('Not connected to the broker right now. Try again in a moment.', 'info');
      return false;
    }
    const prev = snapshot();
    st.asking = want;
    st.askedAt = Date.now();
    st.requested = sortPerms(st.requested, want);
    changed(prev);
    return true;
  }

  /**
   * A non-fatal broker error: if it answers our request (the user is still
   * answering another one, the host is gone), show it as such. True if taken.
   */
  function takeError(err) {
    if (!st.asking || st.pending || err?.code !== 'bad_message') return false;
    const prev = snapshot();
    st.asking = null;
    showToast(err.message, 'info');
    changed(prev);
    return true;
  }

  /** Forgets the grants: the broker starts afresh with this viewer. */
  function reset() {
    if (!st.known && !st.asking) return;
    const prev = snapshot();
    Object.assign(st, { known: false, granted: [], paused: false, pending: false, message: '', asking: null });
    changed(prev);
  }

  /** The permissions the session asks for (from the REST API). */
  function setRequested(perms) {
    if (watchOnly) return; // asked to see, whatever the session asks for
    const prev = snapshot();
    st.requested = sortPerms(st.requested, perms);
    changed(prev);
  }

  /** The user's computer is connected (questions can be put) or not. */
  function setHostHere(here) {
    if (st.hostHere === here) return;
    const prev = snapshot();
    st.hostHere = here;
    if (!here) st.asking = null;
    changed(prev);
  }

  /**
   * Nothing is allowed any more: the session is over, or (status says so)
   * the user let this viewer go while the session goes on.
   */
  function setEnded(status = 'The session is over.') {
    if (st.ended && st.endedText === status) return;
    const prev = snapshot();
    st.ended = true;
    st.endedText = status;
    st.asking = null;
    st.pending = false;
    toastEl.hidden = true;
    changed(prev);
  }

  /** Updates the "Asked 12 s ago" and "paused for 0:12" figures; call once a second. */
  function tick() {
    for (const el of elapsedEls) {
      // Drop figures that were shown and are gone; new ones are not in yet.
      if (el.isConnected) el.dataset.shown = '1';
      else if (el.dataset.shown) {
        elapsedEls.delete(el);
        continue;
      }
      const from = el.dataset.since === 'paused' ? st.pausedAt : st.askedAt;
      if (!from) el.textContent = '';
      else el.textContent = el.dataset.since === 'paused' ? formatDuration(Date.now() - from) : askedAgo(Date.now() - from);
    }
  }

  /** The stage panel while the user decides whether to let the technician in. */
  function pendingPanel(who) {
    const asked = askedPerms();
    const elapsed = h('span', { class: 'tabular' });
    elapsedEls.add(elapsed);
    const panel = h('div', { class: 'overlay-panel consent-panel', 'data-testid': 'consent-pending', 'data-variant': 'overlay' },
      h('div', { class: 'consent-orbit', 'aria-hidden': 'true' },
        h('span', { class: 'consent-orbit-ring' }),
        h('span', { class: 'consent-orbit-core' }, icon('shield', 26))),
      h('h2', { class: 'overlay-title', text: `Waiting for ${who} to allow access\u2026` }),
      h('p', { class: 'overlay-text', text: 'The user sees your name and what you ask for, and allows or declines each one. Nothing is shared until they answer.' }),
      h('ul', { class: 'consent-asks', 'aria-label': 'Requested' }, asked.map((id) => {
        const p = permInfo(id);
        return h('li', { class: 'consent-ask', 'data-perm': id },
          h('span', { class: `consent-ask-icon perm-tone-${id}` }, icon(p.icon, 16)),
          h('span', { class: 'consent-ask-text' },
            h('span', { class: 'consent-ask-label', text: p.label }),
            h('span', { class: 'consent-ask-desc', text: p.desc })),
          h('span', { class: 'consent-ask-state' }, h('span', { class: 'perm-chip-dot', 'aria-hidden': 'true' }), 'Asked'));
      })),
      h('p', { class: 'overlay-meta consent-meta' }, icon('clock', 13), elapsed));
    tick();
    return panel;
  }

  /** The stage panel while the user has paused the session. */
  function pausedPanel() {
    const elapsed = h('span', { class: 'tabular', dataset: { since: 'paused' } });
    elapsedEls.add(elapsed);
    const panel = h('div', { class: 'overlay-panel consent-panel', 'data-testid': 'consent-paused' },
      h('div', { class: 'overlay-icon overlay-icon-paused' }, icon('pause', 26)),
      h('h2', { class: 'overlay-title', text: 'The user paused sharing' }),
      h('p', { class: 'overlay-text', text: 'Their screen, mouse and keyboard are off limits until they resume. The picture comes back here by itself.' }),
      h('p', { class: 'overlay-meta consent-meta' }, icon('clock', 13), h('span', { text: 'Paused for ' }), elapsed));
    tick();
    return panel;
  }

  /** The stage panel when the user does not (or no longer) let the technician see. */
  function noViewPanel() {
    const ask = h('button', {
      type: 'button', class: 'btn btn-primary', 'data-testid': 'request-perm', 'data-perm': 'view', disabled: !canAsk(),
    }, icon('eye', 15), 'Ask to see the screen');
    ask.addEventListener('click', () => request(['view']));
    return h('div', { class: 'overlay-panel consent-panel', 'data-testid': 'consent-noview' },
      h('div', { class: 'overlay-icon' }, icon('eyeOff', 26)),
      h('h2', { class: 'overlay-title', text: 'The user is not sharing their screen' }),
      h('p', { class: 'overlay-text', text: st.message || 'The user has not allowed you to see their screen.' }),
      h('div', { class: 'overlay-actions' }, ask));
  }

  renderChips();
  publish();

  return {
    bar,
    barActions,
    strip,
    toast: toastEl,
    state: st,
    has: (p) => st.granted.includes(p),
    /** Granted and not paused. */
    can: (p) => st.granted.includes(p) && !st.paused,
    canAsk,
    isAsking,
    apply,
    request,
    takeError,
    reset,
    setRequested,
    setHostHere,
    setEnded,
    tick,
    pendingPanel,
    pausedPanel,
    noViewPanel,
    destroy() {
      clearTimeout(toastTimer);
    },
  };
}

// Sessions screen: create a support session, share its code, list sessions.

import * as api from './api.js';
import {
  codeGroups, copyButton, errorBox, formatDateTime, formatDuration, formatOS, formatSize,
  h, holdUntilRetry, icon, modal, shortId, stateBadge, timeAgo,
} from './ui.js';
import { DEFAULT_PERMISSIONS, PERMISSIONS, permChips, sortPerms } from './permissions.js';

const REFRESH_MS = 5000;
// Ended sessions come a page at a time; waiting and live ones are few and
// always listed in full, a broker page (at most 500) at a time.
const ENDED_PAGE = 100;
const MAX_PAGE = 500;

/**
 * Whether s ended because its code ran out: the user never joined (no
 * live_at) and the broker says so (end_cause), or, for a session ended
 * before causes were kept, it ended at the code's expiry.
 */
function codeExpired(s, expiresAt = s.code_expires_at) {
  if (s?.state !== 'ended' || s.live_at) return false;
  if (s.end_cause) return s.end_cause === 'code_expired';
  const ended = Date.parse(s.ended_at);
  const expiry = Date.parse(expiresAt);
  return Number.isFinite(ended) && Number.isFinite(expiry) && ended >= expiry;
}

// How far along a session is: a session seen in two lists while it moved on
// is taken in the later state.
const STATE_RANK = { waiting: 0, active: 1, ended: 2 };

// The last session this technician created, kept while the console is open so
// the code is still there after a look at another screen. Memory only.
let latest = null; // { session, deadline (local ms), dismissed }

/** Forgets the last code: someone else signs in. */
export function forgetLatestCode() {
  latest = null;
}

function canCreate(user) {
  // Older brokers (and the test double) send no scopes: trust the role.
  return user?.scopes?.length ? user.scopes.includes('sessions:create') : user?.role !== 'supervisor';
}

// The broker names a ticket's fields as its API does (ticket.id); an error
// about one reads in the form's words.
const TICKET_WORDS = { 'ticket.id': 'the ticket reference', 'ticket.system': 'the ticket system', 'ticket.title': 'the ticket title' };

function inFormWords(err) {
  const say = (m) => m.replace(/\bticket\.(id|system|title)\b/g, (name, _, at) => (at === 0
    ? TICKET_WORDS[name][0].toUpperCase() + TICKET_WORDS[name].slice(1)
    : TICKET_WORDS[name]));
  return { message: say(err.message ?? ''), fields: err.fields?.map((f) => ({ ...f, message: say(f.message) })) };
}

/** Mounts the sessions screen into main. Returns an unmount function. */
export function mountSessions(main, { navigate, user }) {
  let sessions = null; // null until the first load: waiting, live and the newest ended ones
  let endedWanted = ENDED_PAGE; // how many ended sessions to list
  let endedMore = false; // whether the broker has ended sessions older than those listed
  let latestSeen = null; // the latest session as last fetched, when the list does not have it
  let refreshSeq = 0;
  let filter = 'all';
  let loadError = '';
  let refreshTimer = 0;
  let tickTimer = 0;
  let alive = true;

  const codeSlot = h('div', { class: 'code-slot' });
  const listSlot = h('div', { class: 'card table-card' });
  // Filters are plain toggle buttons (aria-pressed): Tab moves between them
  // and Enter or Space picks one, without the arrow keys of a tab list.
  const filterSlot = h('div', { class: 'tabs', role: 'group', 'aria-label': 'Filter sessions' });
  const olderBtn = h('button', { type: 'button', class: 'btn btn-secondary btn-sm', 'data-testid': 'show-older' },
    h('span', { text: 'Show older sessions' }));
  olderBtn.addEventListener('click', () => showOlder());
  const olderNote = h('span', { class: 'muted', 'data-testid': 'older-note' });
  const olderBar = h('div', { class: 'list-more' }, olderNote, olderBtn);
  const updatedText = h('span', { text: 'Auto-refreshing' });
  const updated = h('span', { class: 'live-hint' }, h('span', { class: 'live-dot', 'aria-hidden': 'true' }), updatedText);

  const newBtn = h('button', { type: 'button', class: 'btn btn-primary', 'data-testid': 'new-session' },
    icon('plus', 16), 'New support session');
  newBtn.addEventListener('click', () => openNewSession());
  const claimBtn = h('button', { type: 'button', class: 'btn btn-secondary', 'data-testid': 'enter-code' },
    icon('keyboard', 16), 'Enter a user\u2019s code');
  claimBtn.addEventListener('click', () => openClaim());

  main.replaceChildren(
    h('header', { class: 'page-header' },
      h('div', {},
        h('h1', { class: 'page-title', text: 'Support sessions' }),
        h('p', { class: 'page-subtitle', text: canCreate(user)
          ? 'Create a one-time code for a user, then watch their screen once they join and consent.'
          : 'Watch the sessions technicians work. The user is asked before you see anything.' })),
      // Supervisors watch: they neither create sessions nor take codes.
      h('div', { class: 'page-actions' }, canCreate(user) ? [claimBtn, newBtn] : null)),
    codeSlot,
    h('section', { class: 'section', 'aria-labelledby': 'sessions-heading' },
      h('div', { class: 'section-header' },
        h('h2', { class: 'section-title', id: 'sessions-heading', text: 'Recent sessions' }),
        filterSlot,
        updated),
      listSlot));

  // ---- New session ---------------------------------------------------------

  function openNewSession() {
    const ticket = h('input', {
      id: 'new-session-ticket', type: 'text', class: 'input', maxlength: '128',
      placeholder: 'e.g. INC-1234', autocomplete: 'off', spellcheck: 'false',
      'data-testid': 'new-session-ticket',
    });
    const error = errorBox({ 'ticket.id': ticket });
    const cancel = h('button', { type: 'button', class: 'btn btn-secondary', text: 'Cancel' });
    const create = h('button', { type: 'submit', form: 'new-session-form', class: 'btn btn-primary', 'data-testid': 'new-session-submit' },
      h('span', { text: 'Create session' }));
    const picker = permissionPicker();
    const form = h('form', { id: 'new-session-form', class: 'stack', novalidate: true },
      error.el,
      h('div', { class: 'field' },
        h('label', { for: 'new-session-ticket', class: 'label' }, 'Ticket reference ', h('span', { class: 'label-hint', text: '(optional)' })),
        ticket,
        h('p', { class: 'field-hint', text: 'Links the session and its recording to the helpdesk ticket.' })),
      picker.el);

    const m = modal({
      title: 'New support session',
      description: 'You\u2019ll get a one-time code to give the user. It works once and expires after a few minutes.',
      content: form,
      footer: [cancel, create],
      testid: 'new-session-dialog',
      size: 'md',
    });
    cancel.addEventListener('click', () => m.close());
    ticket.focus();

    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      if (create.disabled) return;
      create.disabled = true;
      create.classList.add('is-loading');
      create.firstChild.textContent = 'Creating…';
      try {
        const s = await api.createSession(ticket.value.trim(), picker.value());
        const validFor = Date.parse(s.code_expires_at) - Date.parse(s.created_at);
        const deadline = Number.isFinite(validFor) && validFor > 0
          ? Date.now() + validFor // immune to clock skew between browser and broker
          : Date.parse(s.code_expires_at) - (api.serverNow() - Date.now());
        latest = { session: s, deadline, total: validFor > 0 ? validFor : 0, dismissed: false };
        error.hide();
        m.close();
        renderCode();
        codeSlot.querySelector('[data-testid="copy-code"]')?.focus();
        refresh();
      } catch (err) {
        error.show(inFormWords(err));
        create.disabled = false;
        create.classList.remove('is-loading');
        create.firstChild.textContent = 'Create session';
      }
    });
  }

  // ---- A code the user reads out ----------------------------------------------

  /**
   * The user started the host without a code and reads out the one it
   * shows. The technician attaches the ticket before connecting.
   */
  function openClaim() {
    const field = (id, label, attrs, hint, optional = false) => {
      const input = h('input', { id, type: 'text', class: 'input', autocomplete: 'off', spellcheck: 'false', 'data-testid': id, ...attrs });
      return {
        input,
        el: h('div', { class: 'field' },
          h('label', { for: id, class: 'label' }, label, optional ? h('span', { class: 'label-hint', text: ' (optional)' }) : null),
          input, hint ? h('p', { class: 'field-hint', text: hint }) : null),
      };
    };
    const code = field('claim-code', 'Code the user reads out', { inputmode: 'numeric', placeholder: '482 193 075', maxlength: '11', class: 'input input-code input-code-lg' },
      'Nine digits, shown by the Tether host on the user\u2019s computer.');
    const ticket = field('claim-ticket', 'Ticket', { maxlength: '128', placeholder: 'e.g. INC-1234', required: true }, 'Required: the user\u2019s code names no ticket to file the session under.');
    const system = field('claim-system', 'Ticket system', { maxlength: '64', placeholder: 'e.g. servicenow' }, null, true);
    const title = field('claim-title', 'Ticket title', { maxlength: '256', placeholder: 'e.g. Printer offline' }, null, true);
    const error = errorBox({ code: code.input, 'ticket.id': ticket.input, 'ticket.system': system.input, 'ticket.title': title.input });
    error.el.dataset.testid = 'claim-error';
    const cancel = h('button', { type: 'button', class: 'btn btn-secondary', text: 'Cancel' });
    const connect = h('button', { type: 'submit', form: 'claim-form', class: 'btn btn-primary', 'data-testid': 'claim-submit' },
      h('span', { text: 'Connect' }));
    const picker = permissionPicker();
    const form = h('form', { id: 'claim-form', class: 'stack', novalidate: true },
      error.el, code.el, h('div', { class: 'field-row' }, ticket.el, system.el), title.el, picker.el);
    const m = modal({
      title: 'Enter a user\u2019s code',
      description: 'For a user who started the Tether host themselves. Nothing is shared until they allow it on their computer.',
      content: form,
      footer: [cancel, connect],
      testid: 'claim-dialog',
      size: 'md',
    });
    cancel.addEventListener('click', () => m.close());
    code.input.focus();
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      if (connect.disabled) return;
      const digits = code.input.value.replace(/[\s-]+/g, '');
      const fields = [];
      if (!/^\d{9}$/.test(digits)) fields.push({ field: 'code', message: 'The code is nine digits.' });
      if (!ticket.input.value.trim()) fields.push({ field: 'ticket.id', message: 'Attach the ticket this session is for.' });
      if (fields.length) {
        error.show({ fields });
        return;
      }
      connect.disabled = true;
      connect.firstChild.textContent = 'Connecting…';
      const t = { id: ticket.input.value.trim() };
      if (system.input.value.trim()) t.system = system.input.value.trim();
      if (title.input.value.trim()) t.title = title.input.value.trim();
      try {
        const s = await api.claimCode(digits, t, picker.value());
        m.close();
        navigate(`#/session/${encodeURIComponent(s.id)}`);
      } catch (err) {
        error.show(inFormWords(err));
        connect.firstChild.textContent = 'Connect';
        if (!holdUntilRetry(connect, err)) connect.disabled = false;
      }
    });
  }

  /**
   * The permissions to ask the user for: View always, Control and Clipboard
   * unless unticked, File transfer and Shell when ticked.
   */
  function permissionPicker() {
    const boxes = PERMISSIONS.map((p) => {
      const always = p.id === 'view';
      const box = h('input', {
        type: 'checkbox', class: 'perm-check', name: 'permissions', value: p.id,
        id: `perm-${p.id}`, 'data-testid': 'perm-option', 'data-perm': p.id,
        'aria-labelledby': `perm-${p.id}-label`, 'aria-describedby': `perm-${p.id}-desc`,
        checked: DEFAULT_PERMISSIONS.includes(p.id), disabled: always,
      });
      box.checked = DEFAULT_PERMISSIONS.includes(p.id);
      const row = h('label', { class: `perm-option${always ? ' is-locked' : ''}`, for: `perm-${p.id}` },
        box,
        h('span', { class: `perm-option-icon perm-tone-${p.id}`, 'aria-hidden': 'true' }, icon(p.icon, 17)),
        h('span', { class: 'perm-option-text' },
          h('span', { class: 'perm-option-label', id: `perm-${p.id}-label`, text: p.label }),
          h('span', { class: 'perm-option-desc', id: `perm-${p.id}-desc`, text: p.desc })),
        always ? h('span', { class: 'perm-option-tag', text: 'Always' }) : null);
      return { id: p.id, box, row };
    });
    const el = h('fieldset', { class: 'field perm-picker', 'data-testid': 'perm-picker' },
      h('legend', { class: 'label', text: 'Ask the user for' }),
      h('div', { class: 'perm-options' }, boxes.map((b) => b.row)),
      h('p', { class: 'field-hint' }, icon('shield', 14),
        h('span', { text: 'The user allows or declines each one on their computer. You can ask for more during the session.' })));
    return {
      el,
      value: () => boxes.filter((b) => b.box.checked || b.id === 'view').map((b) => b.id),
    };
  }

  // ---- The fresh code --------------------------------------------------------

  function latestState() {
    if (!latest) return 'none';
    const listed = sessions?.find((s) => s.id === latest.session.id)
      ?? (latestSeen?.id === latest.session.id ? latestSeen : null);
    const state = listed?.state ?? latest.session.state;
    if (state === 'active') return 'active';
    // A code that ran out ends its session at once: it stays "Code expired",
    // with nothing shared to look back at.
    if (state === 'ended') return codeExpired(listed, latest.session.code_expires_at) ? 'expired' : 'ended';
    return latest.deadline - Date.now() <= 0 ? 'expired' : 'waiting';
  }

  function renderCode() {
    if (!latest || latest.dismissed) {
      codeSlot.replaceChildren();
      return;
    }
    const s = latest.session;
    const code = String(s.code ?? '').replace(/\s+/g, '');
    // The broker's address as users reach it (-public-addr), which may not
    // be the one this console was opened at.
    const broker = s.join_url ? s.join_url.replace(/\/join\/[^/]*$/, '') : location.origin;
    // With the broker's development certificate the host trusts it only
    // given that CA's file; the host from the join link has it built in.
    const needsCA = s.needs_dev_ca === true;
    const command = `host -broker ${broker}${needsCA ? ' -ca ca.pem' : ''} ${code}`;
    const joinUrl = s.join_url || `${broker}/join/${code}`;
    const state = latestState();
    const requested = sortPerms(s.permissions);

    const dismiss = h('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Dismiss', title: 'Dismiss' }, icon('x', 18));
    dismiss.addEventListener('click', () => {
      latest.dismissed = true;
      clearInterval(tickTimer);
      renderCode();
    });
    const open = h('a', { href: `#/session/${encodeURIComponent(s.id)}`, class: 'btn btn-primary', 'data-testid': 'open-session' },
      'Open session', icon('arrowRight', 15));

    const status = {
      waiting: h('span', { class: 'badge badge-waiting' }, h('span', { class: 'badge-dot' }), 'Waiting for the user'),
      active: h('span', { class: 'badge badge-active' }, h('span', { class: 'badge-dot' }), 'User connected'),
      ended: h('span', { class: 'badge badge-ended' }, h('span', { class: 'badge-dot' }), 'Session ended'),
      expired: h('span', { class: 'badge badge-ended' }, h('span', { class: 'badge-dot' }), 'Code expired'),
    }[state];

    // Once the code is used, has run out or the session is over, the card
    // follows the session: nothing is left to copy or read out.
    if (state !== 'waiting') {
      renderSettled(s, state, dismiss);
      return;
    }

    const expiry = h('span', { class: 'expiry-text', 'data-testid': 'code-expiry' });
    const bar = h('span', { class: 'expiry-bar-fill' });
    const usable = state === 'waiting';

    codeSlot.replaceChildren(h('section', {
      class: `card code-card is-${state}`, 'aria-label': 'New support session', 'data-testid': 'code-card',
    },
    h('div', { class: 'code-card-head' },
      h('div', { class: 'code-card-title' },
        h('h2', { class: 'section-title', text: 'Support code ready' }),
        s.ticket?.id ? h('span', { class: 'chip chip-ticket', title: s.ticket.id }, icon('ticket', 13), h('span', { class: 'ticket', text: s.ticket.id })) : null,
        status),
      h('div', { class: 'code-card-actions' }, open, dismiss)),
    h('div', { class: 'code-card-body' },
      h('div', { class: 'code-block' },
        h('div', { class: 'eyebrow', text: 'One-time code' }),
        // Read out digit by digit: in groups, a screen reader says numbers.
        h('div', { class: 'code', 'data-testid': 'session-code', 'data-code': code },
          h('span', { class: 'visually-hidden', text: `Support code ${code.split('').join(' ')}` }),
          codeGroups(code).map((g) => h('span', { class: 'code-group', 'aria-hidden': 'true', text: g }))),
        h('div', { class: 'code-meta' },
          usable ? copyButton(() => code, { label: 'Copy code', testid: 'copy-code' }) : null,
          h('div', { class: 'expiry' },
            h('span', { class: 'expiry-row' }, icon('clock', 14), expiry),
            h('span', { class: 'expiry-bar', 'aria-hidden': 'true' }, bar))),
        h('p', { class: 'code-hint', text: 'Read it out digit by digit. It works once, for this session only.' })),
      h('div', { class: 'share-block' },
        requested.length ? h('div', { class: 'share-item' },
          h('div', { class: 'eyebrow', text: 'The user will be asked to allow' }),
          h('div', { class: 'code-perms', 'data-testid': 'code-perms' }, permChips(requested))) : null,
        h('div', { class: 'share-item' },
          h('div', { class: 'eyebrow', text: 'Ask the user to run' }),
          h('div', { class: 'command' },
            icon('terminal', 15),
            h('code', { 'data-testid': 'host-command', text: command }),
            copyButton(() => command, { label: 'Copy', className: 'btn btn-on-dark btn-sm' })),
          h('p', { class: 'share-hint', 'data-testid': 'host-command-hint', text: needsCA
            ? 'If the user already has Tether installed, they can run this instead of using the link. This is a test broker: the user also needs its ca.pem (from certs in the broker\u2019s data folder) in the folder where they run this.'
            : 'If the user already has Tether installed, they can run this instead of using the link.' })),
        h('div', { class: 'share-item' },
          h('div', { class: 'eyebrow', text: 'Or send the join link' }),
          h('div', { class: 'link-row' },
            icon('link', 15),
            h('a', { href: joinUrl, target: '_blank', rel: 'noopener', class: 'join-link', 'data-testid': 'join-link', text: joinUrl }),
            copyButton(() => joinUrl, { label: 'Copy' }))),
        h('p', { class: 'share-note' },
          'Nothing is shared until the user enters the code and allows each permission on their computer. They can revoke any of them, pause or end the session at any time.')))));

    function tick() {
      const left = latest.deadline - Date.now();
      const st = latestState();
      if (st === 'active') {
        expiry.textContent = 'Code used \u2014 the user has joined';
        bar.style.width = '0%';
      } else if (st === 'ended') {
        expiry.textContent = 'This session has ended';
        bar.style.width = '0%';
      } else if (left <= 0) {
        expiry.textContent = 'Expired \u2014 create a new session for a fresh code';
        bar.style.width = '0%';
      } else {
        expiry.textContent = `Expires in ${formatDuration(left)}`;
        bar.style.width = latest.total ? `${Math.min(100, (left / latest.total) * 100)}%` : '100%';
        expiry.parentElement.parentElement.classList.toggle('is-soon', left < 60_000);
      }
      if (st !== state) renderCode(); // the state changed: redraw once
    }
    tick();
    clearInterval(tickTimer);
    tickTimer = setInterval(tick, 1000);
  }

  /**
   * The card once the code has served: the user joined (open the session),
   * the code ran out (make a new one) or the session is over.
   */
  function renderSettled(s, state, dismiss) {
    const ticket = s.ticket?.id ?? '';
    const heading = {
      active: 'Connected',
      expired: 'Code expired',
      ended: 'Session ended',
    }[state];
    const text = {
      active: 'The user has joined with the code. Open the session to see their screen once they allow it.',
      expired: 'The user did not join in time. Create a new session for a fresh code.',
      ended: 'This session is over. Its recording keeps what was shared.',
    }[state];
    let action = null;
    if (state === 'active') {
      action = h('a', { href: `#/session/${encodeURIComponent(s.id)}`, class: 'btn btn-primary', 'data-testid': 'open-session' },
        'Open session', icon('arrowRight', 15));
    } else if (state === 'expired') {
      action = h('button', { type: 'button', class: 'btn btn-primary', 'data-testid': 'code-card-new' }, icon('plus', 16), 'New support session');
      action.addEventListener('click', () => openNewSession());
    } else if (state === 'ended') {
      action = h('a', { href: `#/recording/${encodeURIComponent(s.id)}`, class: 'btn btn-secondary', 'data-testid': 'open-recording' },
        icon('history', 15), 'Open recording');
    }
    codeSlot.replaceChildren(h('section', {
      class: `card code-card code-card-settled is-${state}`, 'aria-label': 'Latest support session', 'data-testid': 'code-card', 'data-state': state,
    },
    h('div', { class: 'code-card-head' },
      h('div', { class: 'code-card-title' },
        h('h2', { class: 'section-title code-card-heading', 'data-testid': 'code-card-title', title: ticket ? `${heading} \u2014 ${ticket}` : null },
          h('span', { class: `badge-dot code-card-dot is-${state}`, 'aria-hidden': 'true' }),
          h('span', {}, ticket ? `${heading} \u2014 ` : heading, ticket ? h('span', { class: 'ticket', text: ticket }) : null))),
      h('div', { class: 'code-card-actions' }, action, dismiss)),
    h('p', { class: 'code-card-note', 'data-testid': 'code-card-note', text })));
    clearInterval(tickTimer);
    // Keep following the session: the user joins, or it ends.
    if (state !== 'ended') {
      tickTimer = setInterval(() => {
        if (latestState() !== state) renderCode();
      }, 1000);
    }
  }

  // ---- The list ------------------------------------------------------------

  const FILTERS = [
    ['all', 'All'],
    ['waiting', 'Waiting'],
    ['active', 'Live'],
    ['ended', 'Ended'],
  ];

  // The tabs are built once and updated in place, so the one with the
  // keyboard focus keeps it across refreshes.
  const tabs = FILTERS.map(([key, label]) => {
    const count = h('span', { class: 'tab-count', hidden: true });
    const tab = h('button', { type: 'button', class: 'tab', 'data-filter': key, 'aria-pressed': 'false' }, label, count);
    tab.addEventListener('click', () => {
      filter = key;
      renderFilters();
      renderList();
    });
    return { key, tab, count };
  });
  filterSlot.replaceChildren(...tabs.map((t) => t.tab));

  // Waiting and live sessions are counted in full; ended ones as far as
  // listed, with a "+" when the broker has older ones.
  function counts() {
    const n = (state) => sessions.filter((s) => s.state === state).length;
    const more = endedMore ? '+' : '';
    return { all: `${sessions.length}${more}`, waiting: String(n('waiting')), active: String(n('active')), ended: `${n('ended')}${more}` };
  }

  function renderFilters() {
    const c = sessions ? counts() : null;
    for (const { key, tab, count } of tabs) {
      tab.classList.toggle('is-active', filter === key);
      tab.setAttribute('aria-pressed', filter === key ? 'true' : 'false');
      count.hidden = !c;
      if (c && count.textContent !== c[key]) count.textContent = c[key];
    }
  }

  function renderList() {
    const focus = focusedInList();
    drawList();
    restoreFocus(focus);
  }

  // Where the keyboard focus is in the list: a row (by session id) or a
  // control, so a redraw can put it back.
  function focusedInList() {
    const el = document.activeElement;
    if (!el || !listSlot.contains(el)) return null;
    const tr = el.closest('[data-session-id]');
    if (tr) {
      const rows = [...listSlot.querySelectorAll('[data-session-id]')];
      return { id: tr.dataset.sessionId, index: rows.indexOf(tr) };
    }
    return { el };
  }

  function restoreFocus(focus) {
    if (!focus || listSlot.contains(document.activeElement)) return;
    let target = focus.el?.isConnected && !focus.el.disabled ? focus.el : null;
    if (focus.id) {
      const rows = [...listSlot.querySelectorAll('[data-session-id]')];
      // The row itself, or one in its place when it left this filter.
      target = rows.find((r) => r.dataset.sessionId === focus.id) ?? rows[Math.min(focus.index, rows.length - 1)];
    }
    (target ?? tabs.find((t) => t.key === filter).tab).focus({ preventScroll: true });
  }

  // Puts nodes into parent in order, leaving those already in place alone:
  // an element that is not moved keeps the focus.
  function place(parent, nodes) {
    let at = parent.firstChild;
    for (const node of nodes) {
      if (node === at) at = at.nextSibling;
      else parent.insertBefore(node, at);
    }
    while (at) {
      const next = at.nextSibling;
      at.remove();
      at = next;
    }
  }

  function drawList() {
    if (sessions === null) {
      listSlot.replaceChildren(loadError ? errorState() : skeleton());
      return;
    }
    const rows = sessions.filter((s) => filter === 'all' || s.state === filter);
    const stale = loadError
      ? h('div', { class: 'alert alert-error alert-inline', role: 'alert' }, icon('alert', 16), h('span', { text: `Showing the last list: ${loadError}` }))
      : null;
    const older = endedMore && (filter === 'all' || filter === 'ended') ? olderBar : null;
    if (older) {
      const ended = sessions.filter((s) => s.state === 'ended').length;
      olderNote.textContent = `Showing the newest ${ended} ended sessions.`;
    }
    if (rows.length === 0) {
      const label = FILTERS.find(([key]) => key === filter)[1].toLowerCase();
      listSlot.replaceChildren(sessions.length === 0 && !endedMore ? emptyState() : h('div', { class: 'empty empty-compact' },
        h('p', { class: 'empty-text', text: `No ${label} sessions right now.` })));
      return;
    }
    let table = listSlot.querySelector('[data-testid="sessions-table"]');
    if (!table) {
      table = h('table', { class: 'table', 'data-testid': 'sessions-table' },
        h('thead', {}, h('tr', {},
          h('th', { scope: 'col', text: 'Session' }),
          h('th', { scope: 'col', text: 'Ticket' }),
          h('th', { scope: 'col', text: 'Host' }),
          h('th', { scope: 'col', text: 'Permissions' }),
          h('th', { scope: 'col', text: 'State' }),
          h('th', { scope: 'col', text: 'Created' }),
          h('th', { scope: 'col', class: 'col-action' }, h('span', { class: 'visually-hidden', text: 'Open' })))),
        h('tbody', {}));
    }
    // Rows are keyed by session id: one that reads the same stays put.
    const tbody = table.tBodies[0];
    const shown = new Map([...tbody.rows].map((tr) => [tr.dataset.sessionId, tr]));
    place(tbody, rows.map((s) => {
      const fresh = row(s);
      const old = shown.get(s.id);
      return old && old.outerHTML === fresh.outerHTML ? old : fresh;
    }));
    place(listSlot, [stale, table, older].filter(Boolean));
  }

  function row(s) {
    const href = `#/session/${encodeURIComponent(s.id)}`;
    const host = s.host;
    const size = formatSize(host?.width, host?.height);
    const tr = h('tr', { class: 'row-link', tabindex: '0', 'data-testid': 'session-row', 'data-session-id': s.id, 'data-state': s.state },
      h('td', {}, h('a', { href, class: 'mono session-id', title: s.id, text: shortId(s.id), tabindex: '-1' })),
      h('td', {}, s.ticket?.id
        ? [h('span', { class: 'ticket', text: s.ticket.id, title: [s.ticket.id, s.ticket.system, s.ticket.title].filter(Boolean).join(' \u00b7 ') }),
          s.ticket.title ? h('div', { class: 'cell-sub muted ticket-title', text: s.ticket.title }) : null]
        : h('span', { class: 'muted', text: 'No ticket' }),
      s.initiated_by === 'user' ? h('div', { class: 'cell-sub muted', 'data-testid': 'user-initiated', text: 'Code from the user' }) : null),
      h('td', {}, host?.hostname || host?.os
        ? h('div', { class: 'host-cell' },
          h('span', { class: 'host-name', text: host.hostname || 'Unknown host' }),
          h('span', { class: 'host-meta', text: [formatOS(host.os), size].filter(Boolean).join(' · ') }))
        : h('span', { class: 'muted nowrap', text: s.state === 'waiting' ? 'Not connected yet' : '—' })),
      permsCell(s),
      h('td', {}, codeExpired(s)
        ? h('span', { class: 'badge badge-ended', 'data-state': 'expired' }, h('span', { class: 'badge-dot', 'aria-hidden': 'true' }), 'Code expired')
        : stateBadge(s.state),
      sessionLength(s),
      s.state === 'ended' && s.end_reason
        ? h('div', { class: 'cell-sub muted end-reason', 'data-testid': 'end-reason', text: s.end_reason })
        : null),
      h('td', { class: 'nowrap' }, h('span', { title: formatDateTime(s.created_at), text: timeAgo(s.created_at) })),
      h('td', { class: 'col-action' }, h('span', { class: 'row-chevron', 'aria-hidden': 'true' }, icon('chevron', 16))));
    tr.addEventListener('click', (e) => {
      if (e.target.closest('a')) return; // the link navigates by itself
      navigate(href);
    });
    tr.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') navigate(href);
    });
    return tr;
  }

  // What the user allows the technicians in the session now; what the
  // session asks for while the user's computer is not in it.
  function permsCell(s) {
    const now = s.now;
    const perms = sortPerms(now ? now.allowed : s.permissions);
    const says = now ? 'Allowed now:' : 'Asks for';
    const note = !now ? 'asked'
      : now.paused ? 'paused by the user'
        : perms.length ? 'allowed now' : 'nothing allowed now';
    return h('td', { 'data-testid': 'session-perms', 'data-perms': perms.join(','), 'data-now': now ? (now.paused ? 'paused' : 'allowed') : null },
      perms.length ? permChips(perms, { compact: true, testid: null, says }) : null,
      h('div', { class: `cell-sub muted${now?.paused ? ' is-paused' : ''}`, text: note }));
  }

  // How long the user has been in the session ("for 12 min"), or was
  // ("lasted 1 h 05 min"); nothing before they let anyone in.
  function sessionLength(s) {
    const from = Date.parse(s.live_at);
    const to = s.state === 'ended' ? Date.parse(s.ended_at) : api.serverNow();
    if (Number.isNaN(from) || Number.isNaN(to)) return null;
    const min = Math.floor(Math.max(0, to - from) / 60000);
    const length = min < 1 ? 'under a minute' : min < 60 ? `${min} min` : `${Math.floor(min / 60)} h ${String(min % 60).padStart(2, '0')} min`;
    return h('div', {
      class: 'cell-sub muted nowrap', 'data-testid': 'session-length',
      title: 'From when the user let a technician in',
      text: `${s.state === 'ended' ? 'lasted' : 'for'} ${length}`,
    });
  }

  function skeleton() {
    return h('div', { class: 'skeleton-list', role: 'status' },
      h('span', { class: 'visually-hidden', text: 'Loading sessions\u2026' }),
      [0, 1, 2, 3].map(() => h('div', { class: 'skeleton-row' },
        [0, 1, 2, 3, 4].map(() => h('span', { class: 'skeleton' })))));
  }

  function emptyState() {
    // Supervisors watch what technicians start: nothing to create here.
    if (!canCreate(user)) {
      return h('div', { class: 'empty', 'data-testid': 'sessions-empty' },
        h('div', { class: 'empty-icon' }, icon('monitor', 28)),
        h('h3', { class: 'empty-title', text: 'No support sessions yet' }),
        h('p', { class: 'empty-text', text: 'Sessions appear here as technicians start them. Open a live one to watch, once the user allows it.' }));
    }
    const btn = h('button', { type: 'button', class: 'btn btn-primary' }, icon('plus', 16), 'New support session');
    btn.addEventListener('click', () => openNewSession());
    return h('div', { class: 'empty', 'data-testid': 'sessions-empty' },
      h('div', { class: 'empty-icon' }, icon('monitor', 28)),
      h('h3', { class: 'empty-title', text: 'No support sessions yet' }),
      h('p', { class: 'empty-text', text: 'Create a session to get a one-time code. When the user enters it and agrees, their screen appears here.' }),
      btn);
  }

  function errorState() {
    const retry = h('button', { type: 'button', class: 'btn btn-secondary', text: 'Try again' });
    retry.addEventListener('click', () => refresh());
    return h('div', { class: 'empty' },
      h('div', { class: 'empty-icon empty-icon-error' }, icon('alert', 28)),
      h('h3', { class: 'empty-title', text: 'Couldn\u2019t load sessions' }),
      h('p', { class: 'empty-text', text: loadError }),
      retry);
  }

  // Every session in state, page after page.
  async function fetchAll(state) {
    const out = [];
    for (;;) {
      const page = await api.listSessions({ state, limit: MAX_PAGE, after: out.at(-1)?.id });
      out.push(...page);
      if (page.length < MAX_PAGE) return out;
    }
  }

  // The newest wanted ended sessions, and whether there are older ones:
  // one more than wanted is asked for, to know.
  async function fetchEnded(wanted) {
    const out = [];
    while (out.length <= wanted) {
      const limit = Math.min(MAX_PAGE, wanted + 1 - out.length);
      const page = await api.listSessions({ state: 'ended', limit, after: out.at(-1)?.id });
      out.push(...page);
      if (page.length < limit) break;
    }
    return { list: out.slice(0, wanted), more: out.length > wanted };
  }

  async function refresh() {
    const seq = ++refreshSeq;
    try {
      const [waiting, live, ended] = await Promise.all([fetchAll('waiting'), fetchAll('active'), fetchEnded(endedWanted)]);
      // A session that moved on between the requests is in two lists.
      const byId = new Map();
      for (const s of [...waiting, ...live, ...ended.list]) {
        const had = byId.get(s.id);
        if (!had || (STATE_RANK[s.state] ?? 0) >= (STATE_RANK[had.state] ?? 0)) byId.set(s.id, s);
      }
      const list = [...byId.values()];
      if (latest && !latest.dismissed && !byId.has(latest.session.id)) {
        // Older than the ended sessions listed: look it up by itself.
        latestSeen = await api.getSession(latest.session.id).catch(() => latestSeen);
      }
      if (!alive || seq !== refreshSeq) return;
      list.sort((a, b) => (Date.parse(b.created_at) || 0) - (Date.parse(a.created_at) || 0));
      sessions = list;
      endedMore = ended.more;
      loadError = '';
    } catch (err) {
      if (!alive || seq !== refreshSeq || err.status === 401) return;
      loadError = err.message;
    }
    // A list the broker does not give is not being refreshed: no pulsing
    // green dot then, but what the page is doing about it.
    updated.classList.toggle('is-stale', !!loadError);
    updatedText.textContent = loadError ? 'Reconnecting' : 'Auto-refreshing';
    renderFilters();
    renderList();
  }

  // Lists the next page of ended sessions; later refreshes keep them.
  let loadingOlder = false;
  async function showOlder() {
    if (loadingOlder) return;
    const ended = sessions.filter((s) => s.state === 'ended');
    const last = ended.at(-1)?.id;
    // Busy, not disabled: a disabled button would drop the keyboard focus.
    loadingOlder = true;
    olderBtn.setAttribute('aria-busy', 'true');
    olderBtn.firstChild.textContent = 'Loading\u2026';
    endedWanted = ended.length + ENDED_PAGE;
    await refresh();
    loadingOlder = false;
    olderBtn.removeAttribute('aria-busy');
    olderBtn.firstChild.textContent = 'Show older sessions';
    // With nothing older left the button goes: the keyboard goes on at
    // the first of the sessions it brought.
    if (!olderBtn.isConnected && listSlot.contains(document.activeElement) === false) {
      const rows = [...listSlot.querySelectorAll('[data-session-id]')];
      rows[rows.findIndex((r) => r.dataset.sessionId === last) + 1]?.focus();
    }
  }

  renderFilters();
  renderList();
  renderCode();
  refresh();
  refreshTimer = setInterval(() => {
    if (!document.hidden) refresh();
  }, REFRESH_MS);

  return () => {
    alive = false;
    clearInterval(refreshTimer);
    clearInterval(tickTimer);
    document.querySelectorAll('dialog.modal').forEach((d) => d.remove());
  };
}

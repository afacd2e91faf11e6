// The session's activity panel: the broker's audit trail for this session
// (GET /api/v1/sessions/{id}/events), newest first, each event as a
// sentence with who did it and when. Refreshed on demand (a consent
// change), and every 10 s while the panel is open.

import * as api from './api.js';
import { formatBytes, formatDateTime, formatOS, h, icon } from './ui.js';
import { listPerms, ourWords, terminalName } from './permissions.js';

const REFRESH_MS = 10_000;
const DEBOUNCE_MS = 250;

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit', second: '2-digit' });

const list = (perms) => listPerms(perms) || 'nothing';
const possessive = (name) => `${name}\u2019s`;

/** Who did it, for people: a technician's name, "The user", "Tether". */
function actorName(actor) {
  if (actor === 'user') return 'The user';
  if (actor === 'broker' || !actor) return 'Tether';
  return actor;
}

/**
 * One audit event as { text, tone, icon }. tone colours the marker:
 * good, bad, warn, ask, neutral.
 */
export function describeEvent(e) {
  const d = e.detail && typeof e.detail === 'object' ? e.detail : {};
  const who = actorName(e.actor);
  const viewer = typeof d.viewer === 'string' && d.viewer ? d.viewer : '';
  switch (e.type) {
    case 'consent.requested':
      return { text: `The user was asked to allow ${list(d.permissions)}${viewer && viewer !== e.actor ? ` for ${viewer}` : ''}`, tone: 'ask', icon: 'hourglass' };
    case 'consent.granted': {
      const granted = Array.isArray(d.granted) ? d.granted : [];
      if (d.remembered === true) {
        return { text: `${viewer || 'The technician'} came back: still allowed ${list(granted)}`, tone: 'good', icon: 'shieldCheck' };
      }
      const refused = (Array.isArray(d.requested) ? d.requested : []).filter((p) => !granted.includes(p));
      return refused.length
        ? { text: `The user allowed ${list(granted)}; declined ${list(refused)}`, tone: 'warn', icon: 'shieldHalf' }
        : { text: `The user allowed ${list(granted)}`, tone: 'good', icon: 'shieldCheck' };
    }
    case 'consent.denied':
      return { text: `The user declined ${viewer ? `${possessive(viewer)} request` : 'the request'} for ${list(d.requested)}`, tone: 'bad', icon: 'shieldX' };
    case 'consent.not_shown':
      return { text: `The question could not be shown to the user${viewer ? ` (${possessive(viewer)} request)` : ''}`, tone: 'warn', icon: 'shield' };
    case 'consent.timeout':
      return { text: `The user did not answer ${viewer ? `${possessive(viewer)} request` : 'the request'} in time`, tone: 'bad', icon: 'clock' };
    case 'consent.changed': {
      const change = typeof d.change === 'string' && d.change ? d.change : d.paused ? 'paused the session' : 'changed what is allowed';
      const tone = /resum/.test(change) ? 'good' : /paus/.test(change) ? 'warn' : 'bad';
      return { text: `The user ${ourWords(change)}`, tone, icon: /paus/.test(change) ? 'pause' : /resum/.test(change) ? 'play' : 'shieldX' };
    }
    case 'permission.requested':
      return { text: `${who} asked for ${list(d.permissions)}`, tone: 'ask', icon: 'hand' };
    case 'host.connected': {
      const where = [d.hostname, formatOS(d.os)].filter((x) => typeof x === 'string' && x).join(', ');
      return { text: `The user\u2019s computer connected${where ? ` (${where})` : ''}`, tone: 'neutral', icon: 'monitor' };
    }
    case 'viewer.disconnected':
      return { text: `${typeof d.user === 'string' ? d.user : 'A technician'} was cut off: ${typeof d.reason === 'string' ? d.reason : 'access withdrawn'}`, tone: 'bad', icon: 'lock' };
    case 'viewer.joined':
      return { text: `${who} opened the session${typeof d.role === 'string' && d.role ? ` as ${d.role}` : ''}`, tone: 'neutral', icon: 'user' };
    case 'message.refused': {
      const n = Number(d.count) || 1;
      const reason = typeof d.reason === 'string' && d.reason ? `: ${d.reason.replace(/\.$/, '')}` : '';
      return { text: `Blocked ${n > 1 ? `${n} messages` : 'a message'} from ${who}${reason}`, tone: 'bad', icon: 'lock' };
    }
    case 'file.transfer': {
      const name = typeof d.name === 'string' ? d.name : 'a file';
      const size = Number(d.size) >= 0 ? ` (${formatBytes(Number(d.size))})` : '';
      return d.direction === 'download'
        ? { text: `${who} fetched ${name}${size} from the user’s computer`, tone: 'neutral', icon: 'download' }
        : { text: `${who} sent ${name}${size} to the user’s computer`, tone: 'neutral', icon: 'send' };
    }
    case 'file.refused': {
      const what = typeof d.name === 'string' && d.name ? d.name : typeof d.path === 'string' && d.path ? d.path : 'a file';
      const reason = typeof d.reason === 'string' && d.reason ? `: ${d.reason.replace(/\.$/, '')}` : '';
      return { text: `The user’s computer refused to ${d.direction === 'download' ? 'send' : 'receive'} ${what}${reason}`, tone: 'bad', icon: 'lock' };
    }
    case 'file.interrupted': {
      const name = typeof d.name === 'string' && d.name ? d.name : 'a file';
      const moved = Number(d.relayed_bytes) >= 0 && Number(d.size) >= 0 ? ` after ${formatBytes(Number(d.relayed_bytes))} of ${formatBytes(Number(d.size))}` : '';
      const why = typeof d.reason === 'string' && d.reason ? `: ${d.reason.charAt(0).toLowerCase()}${d.reason.slice(1).replace(/\.$/, '')}` : '';
      return d.direction === 'download'
        ? { text: `Fetching ${name} from the user’s computer stopped${moved}${why}`, tone: 'warn', icon: 'download' }
        : { text: `Sending ${name} to the user’s computer stopped${moved}${why}`, tone: 'warn', icon: 'send' };
    }
    case 'shell.opened':
      return { text: `${who} opened ${terminalName(d.channel)}`, tone: 'warn', icon: 'terminal' };
    case 'shell.closed':
      return { text: `${who}’s ${terminalName(d.channel)} ${d.code !== undefined ? `ended${d.code ? ` with exit code ${d.code}` : ''}` : 'closed'}`, tone: 'neutral', icon: 'terminal' };
    case 'shell.command':
      return { text: `${who} ran: ${typeof d.command === 'string' ? d.command : ''}`, tone: 'neutral', icon: 'terminal' };
    case 'session.created': {
      const tech = typeof d.technician === 'string' && d.technician ? d.technician : '';
      const self = tech === e.actor;
      return { text: d.initiated_by === 'user' ? `${who} took the user’s code` : `${who} created the session${tech && !self ? ` for ${tech}` : ''}`, tone: 'neutral', icon: 'plus' };
    }
    case 'session.ended': {
      const reason = typeof d.reason === 'string' && d.reason ? d.reason.replace(/_/g, ' ').replace(/\.$/, '') : '';
      return { text: `The session ended${reason ? `: ${reason.charAt(0).toLowerCase()}${reason.slice(1)}` : ''}`, tone: 'neutral', icon: 'power' };
    }
    default: {
      const text = String(e.type || 'event').replace(/[._]+/g, ' ');
      return { text: `${who}: ${text}`, tone: 'neutral', icon: 'info' };
    }
  }
}

/**
 * Builds the activity panel and its toggle button.
 * Returns { button, panel, refresh(), isOpen(), destroy() }.
 */
export function mountActivity({ sessionId, me, onToggle }) {
  let open = false;
  let events = null; // null until the first load
  let error = '';
  let timer = 0;
  let debounce = 0;
  let loading = false;
  let again = false;
  let alive = true;

  const dot = h('span', { class: 'tool-dot', hidden: true, 'aria-hidden': 'true' });
  const button = h('button', {
    type: 'button', class: 'tool-btn tool-btn-label', 'data-testid': 'activity-open', 'aria-pressed': 'false',
    'aria-controls': 'activity-panel', 'data-tip': 'Session activity and consent history',
  }, icon('history', 17), h('span', { class: 'tool-btn-text', text: 'Activity' }), dot);

  const listEl = h('ol', { class: 'activity-list' });
  const status = h('div', { class: 'activity-status', role: 'status' });
  const refreshBtn = h('button', { type: 'button', class: 'icon-btn icon-btn-dark', 'aria-label': 'Refresh', 'data-tip': 'Refresh' }, icon('refresh', 15));
  const closeBtn = h('button', { type: 'button', class: 'icon-btn icon-btn-dark', 'aria-label': 'Close activity' }, icon('x', 16));
  const panel = h('aside', {
    class: 'activity-panel', id: 'activity-panel', 'data-testid': 'activity-panel', hidden: true,
    'aria-label': 'Session activity',
  },
  h('header', { class: 'activity-head' },
    h('div', {},
      h('h2', { class: 'activity-title', text: 'Session activity' }),
      h('p', { class: 'activity-sub', text: 'Consent and access, as the broker recorded it' })),
    h('div', { class: 'activity-actions' }, refreshBtn, closeBtn)),
  status,
  // Its rows hold nothing to focus: the list itself takes the keyboard, to scroll.
  h('div', { class: 'activity-scroll', tabindex: '0', role: 'region', 'aria-label': 'Events, newest first' }, listEl));

  function render() {
    status.replaceChildren();
    status.hidden = true;
    if (events === null) {
      if (error) {
        status.hidden = false;
        status.replaceChildren(icon('alert', 15), h('span', { text: error }));
      } else {
        listEl.replaceChildren(...[0, 1, 2].map(() => h('li', { class: 'activity-skeleton' }, h('span'), h('span'))));
      }
      return;
    }
    if (error) {
      status.hidden = false;
      status.replaceChildren(icon('alert', 15), h('span', { text: `Showing the last list: ${error}` }));
    }
    if (events.length === 0) {
      listEl.replaceChildren(h('li', { class: 'activity-empty' },
        h('span', { class: 'activity-empty-icon' }, icon('history', 20)),
        h('span', { text: 'Nothing has happened yet. Requests, answers and changes the user makes appear here.' })));
      return;
    }
    const rows = [...events].reverse().map((e) => {
      const d = describeEvent(e);
      const at = Date.parse(e.at);
      const isUser = e.actor === 'user';
      const isBroker = e.actor === 'broker';
      const actor = isUser ? 'User' : isBroker ? 'Tether' : e.actor === me ? `${e.actor} (you)` : e.actor;
      return h('li', { class: `activity-row tone-${d.tone}`, 'data-testid': 'activity-row', 'data-type': e.type, 'data-actor': e.actor },
        h('span', { class: 'activity-marker', 'aria-hidden': 'true' }, icon(d.icon, 14)),
        h('div', { class: 'activity-body' },
          h('p', { class: 'activity-text', text: d.text }),
          h('p', { class: 'activity-meta' },
            h('span', { class: `activity-actor${isUser ? ' is-user' : isBroker ? ' is-broker' : ''}` },
              icon(isUser ? 'user' : isBroker ? 'server' : 'user', 11), actor),
            h('time', {
              class: 'tabular', datetime: e.at, title: Number.isNaN(at) ? null : formatDateTime(e.at),
              text: Number.isNaN(at) ? '' : timeFmt.format(at),
            }))));
    });
    listEl.replaceChildren(...rows);
  }

  async function load() {
    if (loading) {
      again = true;
      return;
    }
    loading = true;
    refreshBtn.classList.add('is-spinning');
    try {
      const list = await api.sessionEvents(sessionId);
      if (!alive) return;
      events = list;
      error = '';
    } catch (err) {
      if (!alive) return;
      error = err.status === 404 ? 'The activity of this session is not available.' : err.message;
    } finally {
      loading = false;
      refreshBtn.classList.remove('is-spinning');
    }
    render();
    if (again) {
      again = false;
      load();
    }
  }

  /** Loads the trail again soon, if the panel is open; else marks it unread. */
  function refresh() {
    if (!open) {
      dot.hidden = false;
      return;
    }
    clearTimeout(debounce);
    debounce = setTimeout(load, DEBOUNCE_MS);
  }

  function setOpen(on) {
    if (open === on) return;
    open = on;
    panel.hidden = !on;
    button.setAttribute('aria-pressed', String(on));
    button.classList.toggle('is-open', on);
    clearInterval(timer);
    if (on) {
      dot.hidden = true;
      render();
      load();
      timer = setInterval(() => {
        if (!document.hidden) load();
      }, REFRESH_MS);
    }
    onToggle?.(on);
  }

  button.addEventListener('click', () => setOpen(!open));
  closeBtn.addEventListener('click', () => {
    setOpen(false);
    button.focus({ preventScroll: true });
  });
  refreshBtn.addEventListener('click', () => load());
  panel.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      e.stopPropagation();
      setOpen(false);
      button.focus({ preventScroll: true });
    }
  });

  return {
    button,
    panel,
    refresh,
    isOpen: () => open,
    destroy() {
      alive = false;
      clearInterval(timer);
      clearTimeout(debounce);
    },
  };
}

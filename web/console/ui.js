// Small DOM helpers, icons and formatters shared by the screens.

import { serverNow } from './api.js';

/**
 * Builds an element. attrs: plain attributes, plus `class`, `dataset`,
 * `text`, and `on<event>` handlers. Children may be nodes, strings or
 * null/false (skipped).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

/**
 * After a 429 that says when to try again (err.retryAfter, seconds), keeps
 * button disabled and counting down ("Try again in 12s") until then, and
 * puts its label back. Returns false, doing nothing, for any other error:
 * the caller enables the button itself.
 */
export function holdUntilRetry(button, err) {
  if (err?.status !== 429 || !(err.retryAfter > 0)) return false;
  const label = [...button.childNodes];
  let left = err.retryAfter;
  const show = () => button.replaceChildren(`Try again in ${left}s`);
  button.disabled = true;
  show();
  const timer = setInterval(() => {
    left -= 1;
    if (left > 0 && button.isConnected) {
      show();
      return;
    }
    clearInterval(timer);
    button.replaceChildren(...label);
    button.disabled = false;
  }, 1000);
  return true;
}

let fieldErrorSeq = 0;
let hintSeq = 0;

/**
 * Ties each field's hint (the line under its input) to the input, so that
 * a screen reader reads it with the input rather than only if the user
 * goes looking below it.
 */
export function linkHints(root) {
  for (const field of root.querySelectorAll('.field')) {
    const input = field.querySelector('input:not([type="checkbox"]):not([type="radio"]), select, textarea');
    const hint = field.querySelector(':scope > .field-hint, :scope > .field-hint-row > .field-hint');
    if (!input || !hint || input.hasAttribute('aria-describedby')) continue;
    hint.id ||= `field-hint-${++hintSeq}`;
    input.setAttribute('aria-describedby', hint.id);
  }
}

/**
 * The broker's errors for a form: an alert to put above it, and marks on
 * its inputs. `inputs` maps the API's field names to the form's inputs (or
 * to a group of checkboxes): an error about one of them shows right under
 * it, the input is marked invalid until edited, and the first one marked
 * gets focus. Errors about other fields, or about none, stay in the alert.
 */
export function errorBox(inputs = {}) {
  const text = h('span', {});
  const el = h('div', { class: 'alert alert-error', role: 'alert', hidden: true, 'data-testid': 'form-error' }, icon('alert', 16), text);
  const marks = new Map(); // input → { message, describedBy }

  const unmark = (input) => {
    const mark = marks.get(input);
    if (!mark) return;
    marks.delete(input);
    mark.message.remove();
    input.classList.remove('is-invalid');
    input.removeAttribute('aria-invalid');
    if (mark.describedBy) input.setAttribute('aria-describedby', mark.describedBy);
    else input.removeAttribute('aria-describedby');
  };
  const mark = (input, field, messages) => {
    const id = input.id ? `${input.id}-error` : `field-error-${++fieldErrorSeq}`;
    // A group of checkboxes is not what takes the focus (its first box is,
    // which the message does not describe): its message is announced as it
    // shows. The broker's sentences may start with the API's field name
    // (“username must…”): each starts with a capital here.
    const group = !input.matches('input, select, textarea');
    const message = h('p', { id, class: 'field-error', role: group ? 'alert' : null, 'data-testid': 'field-error', 'data-field': field },
      icon('alert', 14), h('span', { text: messages.map((m) => m.charAt(0).toUpperCase() + m.slice(1)).join(' ') }));
    const describedBy = input.getAttribute('aria-describedby');
    marks.set(input, { message, describedBy });
    input.classList.add('is-invalid');
    input.setAttribute('aria-invalid', 'true');
    input.setAttribute('aria-describedby', describedBy ? `${describedBy} ${id}` : id);
    // Under the input; under the whole row when a button sits beside it.
    (input.closest('.inline-form') ?? input).after(message);
  };
  for (const input of Object.values(inputs)) {
    if (!input) continue;
    input.addEventListener('input', () => unmark(input));
    input.addEventListener('change', () => unmark(input));
  }
  const clear = () => {
    el.hidden = true;
    for (const input of [...marks.keys()]) unmark(input);
  };

  return {
    el,
    show(err) {
      clear();
      const fields = err.fields ?? [];
      const byInput = new Map(); // input → [field, messages]
      const rest = [];
      for (const f of fields) {
        const input = inputs[f.field];
        if (!input) rest.push(f);
        else if (byInput.has(input)) byInput.get(input)[1].push(f.message);
        else byInput.set(input, [f.field, [f.message]]);
      }
      for (const [input, [field, messages]] of byInput) mark(input, field, messages);
      if (!fields.length || rest.length) {
        text.replaceChildren(rest.length > 1
          ? h('span', {}, 'Please fix:', h('ul', { class: 'error-list' }, rest.map((f) => h('li', { text: f.message }))))
          : rest[0]?.message ?? err.message);
        el.hidden = false;
      }
      const first = [...byInput.keys()].sort((a, b) => (a.compareDocumentPosition(b) & Node.DOCUMENT_POSITION_FOLLOWING ? -1 : 1))[0];
      (first?.matches('input, select, textarea') ? first : first?.querySelector('input:not(:disabled), select, textarea'))?.focus();
    },
    hide: clear,
  };
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

// Stroke icons on a 24px grid, drawn for this console.
const ICONS = {
  plus: 'M12 5v14M5 12h14',
  copy: 'M9 9h10a1 1 0 0 1 1 1v10a1 1 0 0 1-1 1H9a1 1 0 0 1-1-1V10a1 1 0 0 1 1-1zM5 15H4a1 1 0 0 1-1-1V4a1 1 0 0 1 1-1h10a1 1 0 0 1 1 1v1',
  check: 'M5 12.5l4.5 4.5L19 7.5',
  x: 'M6 6l12 12M18 6L6 18',
  logout: 'M15 4h3a2 2 0 0 1 2 2v12a2 2 0 0 1-2 2h-3M10 17l-5-5 5-5M5 12h11',
  back: 'M19 12H5M11 18l-6-6 6-6',
  chevron: 'M9 6l6 6-6 6',
  monitor: 'M4 4h16a1 1 0 0 1 1 1v10a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V5a1 1 0 0 1 1-1zM8 20h8M12 16v4',
  sessions: 'M4 4h16a1 1 0 0 1 1 1v10a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V5a1 1 0 0 1 1-1zM8 20h8M12 16v4M8.5 10l2.5 2.5L15.5 8',
  clock: 'M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18zM12 7v5l3 2',
  link: 'M10 14a4.5 4.5 0 0 0 6.4 0l3-3a4.5 4.5 0 0 0-6.4-6.4l-1 1M14 10a4.5 4.5 0 0 0-6.4 0l-3 3a4.5 4.5 0 0 0 6.4 6.4l1-1',
  terminal: 'M4 5h16a1 1 0 0 1 1 1v12a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V6a1 1 0 0 1 1-1zM7 10l3 2.5L7 15M12.5 15H17',
  alert: 'M12 3l9.5 17h-19zM12 10v4M12 17.2v.1',
  maximize: 'M4 9V4h5M20 9V4h-5M4 15v5h5M20 15v5h-5',
  minimize: 'M9 4v5H4M15 4v5h5M9 20v-5H4M15 20v-5h5',
  eye: 'M2 12s3.5-7 10-7 10 7 10 7-3.5 7-10 7S2 12 2 12zM12 9a3 3 0 1 0 0 6 3 3 0 0 0 0-6z',
  ticket: 'M3 8a2 2 0 0 0 0 4 2 2 0 0 1 0 4v2a1 1 0 0 0 1 1h16a1 1 0 0 0 1-1v-2a2 2 0 0 1 0-4 2 2 0 0 0 0-4V6a1 1 0 0 0-1-1H4a1 1 0 0 0-1 1zM14 5v3M14 11v2M14 16v3',
  power: 'M12 3v8M6.3 6.3a8 8 0 1 0 11.4 0',
  open: 'M14 4h6v6M20 4l-9 9M18 14v5a1 1 0 0 1-1 1H5a1 1 0 0 1-1-1V7a1 1 0 0 1 1-1h5',
  arrowRight: 'M5 12h14M13 6l6 6-6 6',
  search: 'M10.5 4a6.5 6.5 0 1 0 0 13 6.5 6.5 0 0 0 0-13zM20 20l-4.9-4.9',
  pointer: 'M5.5 4.5l13 5.6-5.7 1.9-2 5.8z',
  keyboard: 'M3 6h18a1 1 0 0 1 1 1v10a1 1 0 0 1-1 1H3a1 1 0 0 1-1-1V7a1 1 0 0 1 1-1zM6 10h.01M9.5 10h.01M13 10h.01M16.5 10h.01M8 14h8',
  clipboard: 'M9 3.5h6a1 1 0 0 1 1 1V6a1 1 0 0 1-1 1H9a1 1 0 0 1-1-1V4.5a1 1 0 0 1 1-1zM16 5h2a1 1 0 0 1 1 1v14a1 1 0 0 1-1 1H6a1 1 0 0 1-1-1V6a1 1 0 0 1 1-1h2M9 12h6M9 16h4',
  activity: 'M3 12h4l3-7 4 14 3-7h4',
  fit: 'M4 9V5a1 1 0 0 1 1-1h4M15 4h4a1 1 0 0 1 1 1v4M20 15v4a1 1 0 0 1-1 1h-4M9 20H5a1 1 0 0 1-1-1v-4M9 9l-3-3M15 9l3-3M15 15l3 3M9 15l-3 3',
  actual: 'M5 9.5L7.5 8v9M16.5 9.5L19 8v9M12 10.5v.01M12 14.5v.01',
  chevronDown: 'M6 9l6 6 6-6',
  send: 'M5 12h14M13 6l6 6-6 6',
  refresh: 'M20 12a8 8 0 1 1-2.34-5.66M20 4v5h-5',
  download: 'M12 4v11M7 10l5 5 5-5M5 20h14',
  info: 'M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18zM12 11v5M12 7.6v.01',
  lock: 'M6 11h12a1 1 0 0 1 1 1v8a1 1 0 0 1-1 1H6a1 1 0 0 1-1-1v-8a1 1 0 0 1 1-1zM8 11V8a4 4 0 1 1 8 0v3',
  file: 'M7 3h7l5 5v12a1 1 0 0 1-1 1H7a1 1 0 0 1-1-1V4a1 1 0 0 1 1-1zM14 3v5h5',
  folder: 'M3 7.5A1.5 1.5 0 0 1 4.5 6H9l2 2h8.5A1.5 1.5 0 0 1 21 9.5v8a1.5 1.5 0 0 1-1.5 1.5h-15A1.5 1.5 0 0 1 3 17.5z',
  shield: 'M12 3l7.5 3v5.5c0 4.6-3.2 8.3-7.5 9.5-4.3-1.2-7.5-4.9-7.5-9.5V6z',
  shieldCheck: 'M12 3l7.5 3v5.5c0 4.6-3.2 8.3-7.5 9.5-4.3-1.2-7.5-4.9-7.5-9.5V6zM8.8 12.2l2.2 2.2 4.3-4.4',
  shieldX: 'M12 3l7.5 3v5.5c0 4.6-3.2 8.3-7.5 9.5-4.3-1.2-7.5-4.9-7.5-9.5V6zM9.5 9.5l5 5M14.5 9.5l-5 5',
  shieldHalf: 'M12 3l7.5 3v5.5c0 4.6-3.2 8.3-7.5 9.5-4.3-1.2-7.5-4.9-7.5-9.5V6zM12 3v18',
  hand: 'M8 12.5V6a1.5 1.5 0 0 1 3 0v5M11 10.5V4.5a1.5 1.5 0 0 1 3 0v6M14 10.5V6a1.5 1.5 0 0 1 3 0v7.5A7.5 7.5 0 0 1 9.5 21h-.3a6 6 0 0 1-4.8-2.4l-2-2.7a1.6 1.6 0 0 1 2.4-2.1L8 16',
  pause: 'M9 5v14M15 5v14',
  play: 'M7.5 5v14l11-7z',
  history: 'M3.5 12a8.5 8.5 0 1 0 2.5-6M3.5 4v4.5H8M12 8v4.5l3 2',
  user: 'M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zM4.5 20.5a7.5 7.5 0 0 1 15 0',
  server: 'M5 4h14a1 1 0 0 1 1 1v4a1 1 0 0 1-1 1H5a1 1 0 0 1-1-1V5a1 1 0 0 1 1-1zM5 14h14a1 1 0 0 1 1 1v4a1 1 0 0 1-1 1H5a1 1 0 0 1-1-1v-4a1 1 0 0 1 1-1zM8 7h.01M8 17h.01',
  eyeOff: 'M3 3l18 18M10.6 5.1A10 10 0 0 1 12 5c6.5 0 10 7 10 7a17 17 0 0 1-2.6 3.6M6.6 6.6C3.6 8.5 2 12 2 12s3.5 7 10 7a9.6 9.6 0 0 0 5.4-1.6M9.9 9.9a3 3 0 0 0 4.2 4.2',
  hourglass: 'M6.5 3h11M6.5 21h11M7.5 3v3.5a4.5 4.5 0 0 0 9 0V3M7.5 21v-3.5a4.5 4.5 0 0 1 9 0V21',
};

const SVG_NS = 'http://www.w3.org/2000/svg';

/** An inline stroke icon. */
export function icon(name, size = 16) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('width', size);
  svg.setAttribute('height', size);
  svg.setAttribute('fill', 'none');
  svg.setAttribute('stroke', 'currentColor');
  svg.setAttribute('stroke-width', '2');
  svg.setAttribute('stroke-linecap', 'round');
  svg.setAttribute('stroke-linejoin', 'round');
  svg.setAttribute('aria-hidden', 'true');
  svg.classList.add('icon');
  const path = document.createElementNS(SVG_NS, 'path');
  path.setAttribute('d', ICONS[name] ?? '');
  svg.append(path);
  return svg;
}

/** The Tether mark and word, as in the sidebar and on the login page. */
export function brand(size = 28) {
  const mark = document.createElementNS(SVG_NS, 'svg');
  mark.setAttribute('viewBox', '0 0 32 32');
  mark.setAttribute('width', size);
  mark.setAttribute('height', size);
  mark.setAttribute('aria-hidden', 'true');
  mark.classList.add('brand-mark');
  mark.innerHTML =
    '<rect width="32" height="32" rx="8" fill="currentColor"/>' +
    '<path d="M10.5 21.5C13 15 19 17 21.5 10.5" fill="none" stroke="#c7d2fe" stroke-width="2.2" stroke-linecap="round"/>' +
    '<circle cx="10" cy="22" r="4" fill="#fff"/><circle cx="22" cy="10" r="4" fill="#fff"/>';
  return h('span', { class: 'brand' }, mark, h('span', { class: 'brand-name', text: 'Tether' }));
}

/** Splits a support code into 3-digit groups: "482193075" → ["482","193","075"]. */
export function codeGroups(code) {
  const digits = String(code ?? '').replace(/\s+/g, '');
  return digits.match(/.{1,3}/g) ?? [];
}

/** "482 193 075" */
export function formatCode(code) {
  return codeGroups(code).join(' ');
}

/**
 * The first characters of a session id, enough to tell sessions apart:
 * "s_X2NM7Etz7kra-4iF" → "X2NM7Etz", a UUID → its first block.
 */
export function shortId(id) {
  const s = String(id ?? '').replace(/^[a-z]{1,4}_/, '');
  return s.slice(0, 8);
}

const relFmt = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

/** "just now", "3 min ago", "yesterday". */
export function timeAgo(iso) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '—';
  const s = Math.round((t - serverNow()) / 1000);
  const abs = Math.abs(s);
  if (abs < 45) return 'just now';
  if (abs < 3600) return relFmt.format(Math.round(s / 60), 'minute');
  if (abs < 86400) return relFmt.format(Math.round(s / 3600), 'hour');
  return relFmt.format(Math.round(s / 86400), 'day');
}

const dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

export function formatDateTime(iso) {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? '' : dateFmt.format(t);
}

/** Milliseconds → "9:05" or "1:02:03". */
export function formatDuration(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const hh = Math.floor(total / 3600);
  const mm = Math.floor((total % 3600) / 60);
  const ss = String(total % 60).padStart(2, '0');
  return hh ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

const OS_NAMES = { linux: 'Linux', windows: 'Windows', darwin: 'macOS', freebsd: 'FreeBSD' };

/** A host's OS for people: "linux" → "Linux"; descriptive names pass through. */
export function formatOS(os) {
  return OS_NAMES[String(os ?? '').toLowerCase()] ?? (os || '');
}

/** "WS-ACCT-042 · Windows 11" from a session's host, or ''. */
export function describeHost(host) {
  if (!host) return '';
  return [host.hostname, formatOS(host.os)].filter(Boolean).join(' · ');
}

/** "1920 × 1080", or '' when unknown. */
export function formatSize(width, height) {
  return width > 0 && height > 0 ? `${width} × ${height}` : '';
}

const STATE_LABELS = {
  waiting: 'Waiting',
  active: 'Live',
  ended: 'Ended',
};

/** A pill showing a session's state. */
export function stateBadge(state) {
  const s = STATE_LABELS[state] ? state : 'unknown';
  return h('span', { class: `badge badge-${s}`, dataset: { state: s } },
    h('span', { class: 'badge-dot', 'aria-hidden': 'true' }),
    STATE_LABELS[state] ?? (state || 'Unknown'));
}

/** Copies text, with a fallback for pages served over plain http. */
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // Permission refused: try the old way.
    }
  }
  const area = h('textarea', { class: 'visually-hidden', readonly: true });
  area.value = text;
  document.body.append(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand('copy');
  } catch {
    ok = false;
  }
  area.remove();
  return ok;
}

/** A button that copies `getText()` and says so for a moment. */
export function copyButton(getText, { label = 'Copy', testid, className = 'btn btn-secondary btn-sm' } = {}) {
  const text = h('span', { text: label });
  const btn = h('button', { type: 'button', class: `${className} copy-btn`, 'data-testid': testid },
    icon('copy', 14), text);
  let timer = 0;
  btn.addEventListener('click', async () => {
    const ok = await copyText(getText());
    btn.replaceChildren(icon(ok ? 'check' : 'alert', 14), h('span', { text: ok ? 'Copied' : 'Copy failed' }));
    btn.classList.toggle('is-copied', ok);
    clearTimeout(timer);
    timer = setTimeout(() => {
      btn.replaceChildren(icon('copy', 14), text);
      btn.classList.remove('is-copied');
    }, 1600);
  });
  return btn;
}

let toastHost = null;
let toastCorner = null; // where the page wants its notices, if not the window's corner

/**
 * Shows toasts in el instead of the window's corner until the returned
 * function is called. The session view puts them on the remote screen,
 * under the user's answers rather than on top of them, and where they stay
 * in sight when the screen goes full screen (the rest of the page is not
 * drawn then).
 */
export function toastsInto(el) {
  toastCorner = el;
  return () => {
    if (toastCorner === el) toastCorner = null;
  };
}

/** A short notice in the corner. kind: 'info' | 'error' | 'success'. */
export function toast(message, kind = 'info', ms = 4000) {
  const parent = toastCorner?.isConnected ? toastCorner : document.body;
  if (!toastHost || toastHost.parentNode !== parent) {
    toastHost = h('div', { class: 'toasts', role: 'status', 'aria-live': 'polite' });
    parent.append(toastHost);
  }
  const host = toastHost;
  // The same notice again (a second try that failed alike) is the one
  // shown, kept longer, not another under it.
  let el = [...host.children].find((t) => toastTimers.has(t) && t.textContent === message && t.classList.contains(`toast-${kind}`));
  if (!el) {
    el = h('div', { class: `toast toast-${kind}` }, icon(kind === 'error' ? 'alert' : 'check', 16), h('span', { text: message }));
    host.append(el);
  }
  const shown = el;
  clearTimeout(toastTimers.get(shown));
  toastTimers.set(shown, setTimeout(() => {
    toastTimers.delete(shown); // leaving: a new one takes its place
    shown.classList.add('is-leaving');
    setTimeout(() => {
      shown.remove();
      // A corner left behind (the page changed) goes once it is empty.
      if (host !== toastHost && !host.childElementCount) host.remove();
    }, 250);
  }, ms));
}

/** Each toast shown, until it starts to leave: its timer. */
const toastTimers = new WeakMap();

const openModals = new Set(); // each open modal's dismiss()
let modalSeq = 0;

/**
 * Dismisses every open dialog, as its X would: a dialog belongs to the
 * page it was opened on, and must not stay over the next one (after the
 * browser's Back button, say). Returns false if one would not close (it
 * asks first, as the new API key's does while the key is not copied).
 */
export function dismissModals() {
  for (const dismiss of [...openModals]) {
    if (!dismiss()) return false;
  }
  return true;
}

/**
 * A modal dialog built on <dialog>. Returns { dialog, body, close }.
 * `onClose` runs once however the dialog is dismissed. `canClose`, if
 * given, is asked before the X, Escape or a click outside dismisses it;
 * returning false keeps it open (the browser lets a second Escape through).
 */
export function modal({ title, description, content, footer, onClose, canClose, testid, size = 'sm' }) {
  const closeBtn = h('button', { type: 'button', class: 'icon-btn modal-close', 'aria-label': 'Close' }, icon('x', 18));
  const body = h('div', { class: 'modal-body' }, content);
  // Ids of its own: a question may open over another dialog.
  const id = `modal-${++modalSeq}`;
  const dialog = h('dialog', {
    class: `modal modal-${size}`, 'data-testid': testid, 'aria-labelledby': `${id}-title`, 'aria-describedby': description ? `${id}-desc` : null,
  },
    h('div', { class: 'modal-header' },
      h('div', {},
        h('h2', { class: 'modal-title', id: `${id}-title`, text: title }),
        description ? h('p', { class: 'modal-description', id: `${id}-desc`, text: description }) : null),
      closeBtn),
    body,
    footer ? h('div', { class: 'modal-footer' }, footer) : null);
  linkHints(body);

  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    openModals.delete(dismiss);
    if (dialog.open) dialog.close();
    dialog.remove();
    onClose?.();
  };
  const dismiss = () => {
    if (canClose && !canClose()) return false;
    close();
    return true;
  };
  openModals.add(dismiss);
  closeBtn.addEventListener('click', dismiss);
  dialog.addEventListener('cancel', (e) => {
    if (canClose && !canClose()) e.preventDefault();
  });
  dialog.addEventListener('close', close);
  // A click on the backdrop (outside the panel) dismisses.
  dialog.addEventListener('mousedown', (e) => {
    if (e.target === dialog) dismiss();
  });
  document.body.append(dialog);
  dialog.showModal();
  return { dialog, body, close };
}

/**
 * Asks before doing something that cannot be undone. Resolves true to go
 * ahead. Focus starts on Cancel when the action is destructive, so that an
 * Enter pressed once too often (say, after the click that opened the
 * dialog) does not end or delete anything.
 */
export function confirmDialog({ title, message, confirmLabel, danger = true, testid = 'confirm-dialog', confirmTestid = 'confirm-ok' }) {
  return new Promise((resolve) => {
    let answer = false;
    const cancel = h('button', { type: 'button', class: 'btn btn-secondary', text: 'Cancel' });
    const ok = h('button', {
      type: 'button',
      class: danger ? 'btn btn-danger' : 'btn btn-primary',
      'data-testid': confirmTestid,
      text: confirmLabel,
    });
    const m = modal({
      title,
      description: message,
      testid,
      footer: [cancel, ok],
      onClose: () => resolve(answer),
    });
    cancel.addEventListener('click', () => m.close());
    ok.addEventListener('click', () => {
      answer = true;
      m.close();
    });
    (danger ? cancel : ok).focus();
  });
}

/** Key caps for a combination: kbd('Ctrl', 'Alt', 'Del'). */
export function kbd(...keys) {
  return h('span', { class: 'kbd-combo' }, keys.map((k) => h('kbd', { class: 'kbd', text: k })));
}

/**
 * Opens `panel` from `button` as a popover: the button toggles it, a click
 * outside or Escape closes it (focus goes back to the button). With
 * `menu: true` the panel is a menu: arrow keys, Home and End move between
 * its [role="menuitem"] buttons and focus starts on the first one.
 * Returns { open, close, toggle, isOpen }.
 */
export function popover(button, panel, { menu = false, onOpen, onClose, initialFocus } = {}) {
  let isOpen = false;
  panel.hidden = true;
  button.setAttribute('aria-expanded', 'false');
  if (panel.id) button.setAttribute('aria-controls', panel.id);
  button.setAttribute('aria-haspopup', menu ? 'menu' : 'dialog');

  const items = () => [...panel.querySelectorAll('[role="menuitem"]:not([disabled])')];
  const outside = (e) => {
    if (!panel.contains(e.target) && !button.contains(e.target)) close(false);
  };
  const onKey = (e) => {
    if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      close(true);
      return;
    }
    if (!menu) return;
    const list = items();
    const i = list.indexOf(document.activeElement);
    let next = -1;
    if (e.key === 'ArrowDown') next = (i + 1) % list.length;
    else if (e.key === 'ArrowUp') next = (i - 1 + list.length) % list.length;
    else if (e.key === 'Home') next = 0;
    else if (e.key === 'End') next = list.length - 1;
    else if (e.key === 'Tab') close(false);
    if (next >= 0 && list.length) {
      e.preventDefault();
      list[next].focus();
    }
  };

  function open() {
    if (isOpen) return;
    isOpen = true;
    panel.hidden = false;
    button.setAttribute('aria-expanded', 'true');
    button.classList.add('is-open');
    document.addEventListener('pointerdown', outside, true);
    panel.addEventListener('keydown', onKey);
    onOpen?.();
    const first = initialFocus?.() ?? (menu ? items()[0] : null);
    first?.focus({ preventScroll: true });
  }

  function close(returnFocus = false) {
    if (!isOpen) return;
    isOpen = false;
    panel.hidden = true;
    button.setAttribute('aria-expanded', 'false');
    button.classList.remove('is-open');
    document.removeEventListener('pointerdown', outside, true);
    panel.removeEventListener('keydown', onKey);
    if (returnFocus) button.focus({ preventScroll: true });
    onClose?.();
  }

  button.addEventListener('click', () => (isOpen ? close(false) : open()));
  button.addEventListener('keydown', (e) => {
    if (menu && (e.key === 'ArrowDown' || e.key === 'ArrowUp') && !isOpen) {
      e.preventDefault();
      open();
    }
  });
  return { open, close, toggle: () => (isOpen ? close(false) : open()), isOpen: () => isOpen };
}

/** "12 B", "3.4 KiB", "64 KiB", "2 GiB", "1.1 MiB". */
export function formatBytes(n) {
  if (!Number.isFinite(n)) return '';
  if (n < 1024) return `${Math.round(n)} B`; // a rate may have a fraction
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1023.95 && u < units.length - 1) { // what would read "1024.0"
    v /= 1024;
    u++;
  }
  // A size just over a limit reads "64.0 KiB", not the limit's "64 KiB".
  return `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[u]}`;
}

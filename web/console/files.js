// File transfer with the user's computer: a browser of the folder the
// user shares (their home by default), downloads from it, and uploads
// into their Downloads/Tether folder. Everything rides one data channel
// labelled "files" through the broker, one transfer at a time: JSON
// requests and answers as strings, file data as 64 KiB binary chunks, with
// back-pressure on the channel's buffered amount; folders are listed on a
// second channel, "files-browse", so that they can be browsed while a file
// is on its way. Each file is verified by
// SHA-256 end to end; a transfer cut by a reconnect resumes where it
// stopped.

import { formatBytes, h, icon, toast } from './ui.js';

const CHUNK = 64 * 1024;
const HIGH_WATER = 4 * 1024 * 1024;
const LOW_WATER = 1024 * 1024;
// The browser hashes an upload in memory before it starts, and holds a
// download in memory until it is verified.
const MAX_BROWSER_FILE = 2 * 1024 * 1024 * 1024;

/** A size as a screen reader should say it: "182 bytes", "3.0 MiB". */
const spokenSize = (n) => (Number.isFinite(n) && n < 1024 ? `${n} ${n === 1 ? 'byte' : 'bytes'}` : formatBytes(n));

/**
 * Folders, then files; hidden ones (a leading dot: settings and caches the
 * technician rarely wants) after all the others; by name within each.
 */
function byKind(a, b) {
  const rank = (e) => (e.name.startsWith('.') ? 2 : 0) + (e.dir ? 0 : 1);
  return rank(a) - rank(b) || a.name.localeCompare(b.name, undefined, { numeric: true, sensitivity: 'base' });
}

const dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const timeFmt = new Intl.DateTimeFormat(undefined, { timeStyle: 'short' });
const dayFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
const dayYearFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });

/**
 * A file's date as short as it can be told apart: the time today, the
 * day this year, the day and year before; the name takes the room.
 */
function shortDate(ms) {
  const d = new Date(ms);
  const now = new Date();
  if (d.toDateString() === now.toDateString()) return timeFmt.format(d);
  return (d.getFullYear() === now.getFullYear() ? dayFmt : dayYearFmt).format(d);
}
const hex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, '0')).join('');

/**
 * Builds the files panel and its toggle button.
 * opts.sessionId names the session (for the command that sends what the
 * console cannot); opts.getPc() returns the current RTCPeerConnection (or null);
 * opts.getHost() the user's computer as the broker describes it (or null);
 * opts.onRequest(perm) asks the user for a permission; opts.onToggle(open).
 * Returns { button, panel, setAllowed(bool, { paused }), setOpen(bool), isOpen(), reconnected(), end(why), destroy() }.
 */
export function mountFiles({ sessionId, getPc, getHost, onRequest, onToggle }) {
  let open = false;
  let allowed = false;
  let paused = false; // not allowed because the user paused the session
  // The technician's connection dropped: transfers cut now, and the grant
  // the broker forgets with it, are not the user's doing.
  let dropped = false;
  let cwd = '.';
  let entries = null;
  let listNote = ''; // what the host says about the listing: a long folder cut short
  let listError = '';
  let sink = null; // receives binary chunks of a download
  let onWritten = null; // told how much of the upload under way the user's computer has written
  let busy = false; // a transfer is being carried out
  let listing = false; // a listing is asked for
  // Counts grants and new connections: a transfer interrupted while one
  // arrived (the channel the broker refused before the grant closes after
  // it) tries again instead of waiting for a grant that already came.
  let chances = 0;
  let pendingList = null; // a listing asked for while another was
  const queue = []; // transfers waiting their turn, and the one under way
  let current = null; // the transfer pump is carrying out
  let over = ''; // why nothing more can be transferred, once the session is over for this page
  const transfers = []; // every transfer shown, newest first
  let alive = true;

  const button = h('button', {
    type: 'button', class: 'tool-btn tool-btn-label', 'data-testid': 'files-open', 'aria-pressed': 'false',
    'aria-controls': 'files-panel', 'data-tip': 'Send and fetch files',
  }, icon('folder', 17), h('span', { class: 'tool-btn-text', text: 'Files' }));

  const fileInput = h('input', { type: 'file', multiple: true, hidden: true, 'data-testid': 'files-input' });
  const uploadBtn = h('button', {
    type: 'button', class: 'btn btn-primary btn-sm', 'data-testid': 'files-upload', 'aria-describedby': 'files-dest',
  }, icon('send', 14), 'Send files');
  // Said before sending, not only in the result: where the user will find them.
  const destText = h('span', {});
  const dest = h('p', { class: 'files-dest', id: 'files-dest', 'data-testid': 'files-dest' }, icon('download', 13), destText);
  const refreshBtn = h('button', { type: 'button', class: 'icon-btn icon-btn-dark', 'aria-label': 'Refresh', 'data-tip': 'Refresh' }, icon('refresh', 15));
  const closeBtn = h('button', { type: 'button', class: 'icon-btn icon-btn-dark', 'aria-label': 'Close files' }, icon('x', 16));
  const crumbs = h('nav', { class: 'files-crumbs', 'aria-label': 'Folder', 'data-testid': 'files-crumbs' });
  const listEl = h('ul', { class: 'files-list', 'data-testid': 'files-list', 'aria-label': 'Files on the user\u2019s computer' });
  const transfersEl = h('ul', { class: 'transfers', 'data-testid': 'transfers', 'aria-label': 'Transfers' });
  const transfersHead = h('h3', { class: 'side-section', text: 'Transfers', hidden: true });
  const dropText = h('span', {});
  const drop = h('div', { class: 'files-drop', 'aria-hidden': 'true' }, icon('send', 22), dropText);
  const empty = h('div', { class: 'side-empty', 'data-testid': 'files-empty', hidden: true });
  const browser = h('div', { class: 'files-browser' },
    h('div', { class: 'files-toolbar' }, crumbs, uploadBtn, fileInput),
    dest,
    h('div', { class: 'files-scroll' }, listEl));
  const panel = h('aside', { class: 'side-panel files-panel', id: 'files-panel', 'data-testid': 'files-panel', hidden: true, 'aria-label': 'Files' },
    h('header', { class: 'activity-head side-head' },
      h('div', {},
        h('h2', { class: 'activity-title', text: 'Files' }),
        h('p', { class: 'activity-sub', text: 'On the user\u2019s computer. Every transfer is verified and recorded.' })),
      h('div', { class: 'activity-actions' }, refreshBtn, closeBtn)),
    empty, browser,
    h('div', { class: 'transfers-wrap' }, transfersHead, transfersEl),
    drop);

  // ---- channel -----------------------------------------------------------------

  /**
   * A channel to the user's computer labelled label, opened on demand on
   * the current connection; the host answers one request at a time on
   * each. Binary data (a download's chunks) and progress come on "files".
   */
  function link(label) {
    const l = {
      dc: null, // the channel
      pc: null, // the connection it belongs to
      waiter: null, // { resolve, reject } for the next JSON answer
    };

    l.channel = () => {
      const pc = getPc();
      if (!pc || pc.connectionState === 'closed' || pc.connectionState === 'failed') return null;
      if (l.dc && l.pc === pc && (l.dc.readyState === 'open' || l.dc.readyState === 'connecting')) return l.dc;
      l.pc = pc;
      const dc = pc.createDataChannel(label, { ordered: true });
      l.dc = dc;
      dc.binaryType = 'arraybuffer';
      dc.bufferedAmountLowThreshold = LOW_WATER;
      dc.onmessage = (e) => {
        if (l.dc !== dc) return; // forgotten: late data belongs to nobody
        if (typeof e.data !== 'string') {
          if (l === files) sink?.(new Uint8Array(e.data));
          return;
        }
        let msg;
        try { msg = JSON.parse(e.data); } catch { return; }
        if (msg.type === 'progress') { // how much of an upload the user's computer has written
          if (l === files) onWritten?.(msg.offset ?? 0);
          return;
        }
        // The host confirms a cancel after the transfer has already let the
        // next request go: the confirmation answers the cancelled transfer,
        // never that request (which would fail with "The transfer was
        // cancelled." and leave its own answer to nobody).
        if (msg.type === 'error' && msg.code === 'cancelled' && l.waiter?.request) return;
        const w = l.waiter;
        l.waiter = null;
        if (w) w.resolve(msg);
        else if (msg.type === 'error' && msg.code !== 'cancelled') toast(msg.message || 'The transfer failed.', 'error');
      };
      dc.onclose = () => {
        if (l.dc === dc) l.forget(allowed ? 'The connection was interrupted.' : 'The user has not allowed Files.');
      };
      return dc;
    };

    // forget drops the channel at once: what waits on it fails, and what it
    // still delivers is ignored. A revoke does not wait for the channel's
    // closing handshake, which takes as long as the data still in flight.
    l.forget = (reason) => {
      l.dc = null;
      const w = l.waiter;
      l.waiter = null;
      w?.reject(new Error(reason));
      if (l === files) sink?.(null);
    };

    /** Forgets the channel, and closes it. */
    l.close = (reason) => {
      const old = l.dc;
      if (!old) return;
      l.forget(reason);
      old.close();
    };

    l.ready = async () => {
      const ch = l.channel();
      if (!ch) throw new Error('Not connected to the user\u2019s computer.');
      if (ch.readyState === 'open') return ch;
      await new Promise((res, rej) => {
        ch.addEventListener('open', res, { once: true });
        ch.addEventListener('close', () => rej(new Error(allowed ? 'The connection for files closed.' : 'The user has not allowed Files.')), { once: true });
      });
      return ch;
    };

    // request sends a JSON message and waits for the host's answer.
    l.request = async (msg) => {
      const ch = await l.ready();
      const answer = new Promise((resolve, reject) => { l.waiter = { resolve, reject, request: true }; });
      ch.send(JSON.stringify(msg));
      return answer;
    };

    // next waits for the next JSON message without sending.
    l.next = () => new Promise((resolve, reject) => { l.waiter = { resolve, reject }; });

    return l;
  }
  const files = link('files'); // transfers
  const browse = link('files-browse'); // listings

  async function drain(ch) {
    while (ch.bufferedAmount > HIGH_WATER) {
      if (ch.readyState !== 'open') throw new Error('The connection was interrupted.');
      await new Promise((res) => {
        const t = setTimeout(res, 250);
        ch.addEventListener('bufferedamountlow', () => { clearTimeout(t); res(); }, { once: true });
      });
    }
  }

  // ---- browsing ------------------------------------------------------------------

  async function list(path = cwd) {
    if (listing) { // the host answers one request at a time: list after
      pendingList = path;
      return;
    }
    listing = true;
    listError = '';
    const from = cwd;
    try {
      const msg = await browse.request({ type: 'list', path });
      if (msg.type === 'listing') {
        cwd = msg.path || '.';
        entries = msg.entries ?? [];
        listNote = typeof msg.message === 'string' ? msg.message : '';
      } else {
        listError = msg.message || 'The folder could not be listed.';
      }
    } catch (err) {
      listError = err.message;
    } finally {
      listing = false;
    }
    renderList(from);
    if (pendingList !== null) {
      const p = pendingList;
      pendingList = null;
      list(p);
    }
  }

  function renderCrumbs() {
    renderPlaces();
    const parts = cwd === '.' ? [] : cwd.split('/');
    const crumb = (label, path, current) => h('button', {
      type: 'button', class: `files-crumb${current ? ' is-current' : ''}`, 'aria-current': current ? 'location' : null, text: label,
      onclick: () => list(path),
    });
    const root = getHost()?.files_root;
    const items = [crumb(!root || root === '~' ? 'Home' : root, '.', parts.length === 0)];
    parts.forEach((p, i) => {
      items.push(h('span', { class: 'files-crumb-sep', 'aria-hidden': 'true', text: '/' }));
      items.push(crumb(p, parts.slice(0, i + 1).join('/'), i === parts.length - 1));
    });
    crumbs.replaceChildren(...items);
  }

  function renderList(from = cwd) {
    // The rows are built anew: a focus among them (a folder opened with
    // Enter, a crumb) moves to the same row if it is still there, to the
    // folder it came from when going up, or else to the first row,
    // instead of dropping to the page.
    const had = browser.contains(document.activeElement) && document.activeElement !== uploadBtn ? document.activeElement : null;
    const inside = cwd === '.' ? '' : `${cwd}/`;
    const cameFrom = from !== cwd && from.startsWith(inside) ? from.slice(inside.length).split('/')[0] : undefined;
    const hadName = had?.dataset.name ?? cameFrom;
    renderRows();
    if (!had || !open) return;
    const again = hadName && [...listEl.querySelectorAll('[data-testid="files-entry"]')].find((el) => el.dataset.name === hadName);
    (again ?? listEl.querySelector('button') ?? crumbs.querySelector('.is-current'))?.focus({ preventScroll: true });
  }

  function renderRows() {
    renderCrumbs();
    if (listError) {
      listEl.replaceChildren(h('li', { class: 'files-error', 'data-testid': 'files-error' }, icon('alert', 15), h('span', { text: listError })));
      return;
    }
    if (!entries) {
      listEl.replaceChildren(...[0, 1, 2, 3].map(() => h('li', { class: 'activity-skeleton' }, h('span'), h('span'))));
      return;
    }
    const rows = [];
    if (cwd !== '.') {
      const up = cwd.includes('/') ? cwd.slice(0, cwd.lastIndexOf('/')) : '.';
      rows.push(h('li', {}, h('button', { type: 'button', class: 'files-row', 'data-testid': 'files-up', onclick: () => list(up) },
        h('span', { class: 'files-icon' }, icon('back', 15)), h('span', { class: 'files-name', text: 'Parent folder' }))));
    }
    if (entries.length === 0) rows.push(h('li', { class: 'files-note', text: 'This folder is empty.' }));
    if (listNote) rows.push(h('li', { class: 'files-note', 'data-testid': 'files-cut', text: listNote }));
    for (const e of [...entries].sort(byKind)) {
      const path = cwd === '.' ? e.name : `${cwd}/${e.name}`;
      const isDir = e.dir;
      const kind = isDir ? 'dir' : e.kind;
      const meta = isDir ? 'Folder' : kind === 'special' ? 'Special file' : kind === 'link' ? 'Link' : spokenSize(e.size);
      const date = e.mtime ? shortDate(e.mtime * 1000) : '';
      // What a click does, then all the row shows, in its order ("Download
      // .profile, 182 bytes, 14:05"): the name holds what is seen, for
      // those who click by saying it.
      const shown = [e.name, isDir || kind === 'special' || kind === 'link' ? meta.toLowerCase() : meta, date].filter(Boolean).join(', ');
      const row = h('button', {
        type: 'button', class: `files-row kind-${kind}`, 'data-testid': 'files-entry', 'data-name': e.name, 'data-kind': kind,
        title: isDir ? `Open ${e.name}` : kind === 'special' ? 'Devices, pipes and sockets cannot be fetched' : `Download ${e.name}`,
        'aria-label': isDir ? `Open ${shown}` : kind === 'special' ? `${shown}, cannot be downloaded` : `Download ${shown}`,
      },
      h('span', { class: 'files-icon' }, icon(isDir ? 'folder' : kind === 'special' ? 'lock' : kind === 'link' ? 'link' : 'file', 15)),
      // Spaces between the words, as read out of the page (not laid out: a
      // grid leaves them out).
      h('span', { class: 'files-name', text: e.name }), ' ',
      h('span', { class: 'files-meta tabular', text: meta }), ' ',
      h('span', { class: 'files-date tabular', text: date, title: e.mtime ? dateFmt.format(e.mtime * 1000) : null }),
      !isDir && kind !== 'special' ? h('span', { class: 'files-action', 'aria-hidden': 'true' }, icon('download', 15)) : null);
      row.addEventListener('click', () => {
        if (isDir) list(path);
        else if (kind !== 'special') download(path, e.name, e.size);
      });
      rows.push(h('li', {}, row));
    }
    listEl.replaceChildren(...rows);
  }

  // ---- transfers -----------------------------------------------------------------

  function addTransfer(t) {
    t.done = t.done ?? 0;
    t.state = 'queued';
    t.started = 0;
    const bar = h('span', { class: 'transfer-fill' });
    const pct = h('span', { class: 'transfer-pct tabular' });
    const note = h('span', { class: 'transfer-note' });
    const cancel = h('button', { type: 'button', class: 'icon-btn icon-btn-dark transfer-cancel', 'aria-label': `Cancel ${t.name}`, 'data-testid': 'transfer-cancel' }, icon('x', 14));
    cancel.addEventListener('click', () => cancelTransfer(t));
    t.el = h('li', { class: 'transfer', 'data-testid': 'transfer', 'data-direction': t.direction, 'data-name': t.name, tabindex: '-1' },
      h('span', { class: 'transfer-icon' }, icon(t.direction === 'upload' ? 'send' : 'download', 15)),
      h('div', { class: 'transfer-body' },
        h('div', { class: 'transfer-line' }, h('span', { class: 'transfer-name', text: t.name }), pct),
        h('div', { class: 'transfer-bar', role: 'progressbar', 'aria-label': `${t.name} progress`, 'aria-valuemin': '0', 'aria-valuemax': '100' }, bar),
        note),
      cancel);
    Object.assign(t, { bar, pct, note, cancelBtn: cancel });
    transfers.unshift(t);
    transfersEl.prepend(t.el);
    transfersHead.hidden = false;
    render(t);
    queue.push(t);
    pump();
  }

  function render(t) {
    const frac = t.size > 0 ? Math.min(1, t.done / t.size) : t.state === 'done' ? 1 : 0;
    t.bar.style.width = `${(frac * 100).toFixed(1)}%`;
    t.bar.parentElement.setAttribute('aria-valuenow', String(Math.round(frac * 100)));
    t.el.dataset.state = t.state;
    t.pct.textContent = { done: 'Done', failed: 'Failed', cancelled: 'Cancelled', ended: 'Stopped' }[t.state] ?? `${Math.floor(frac * 100)}%`;
    const secs = t.started ? (performance.now() - t.started) / 1000 : 0;
    const rate = secs > 0.2 ? ` \u00b7 ${formatBytes((t.done - (t.from ?? 0)) / secs)}/s` : '';
    const notes = {
      queued: 'Waiting\u2026',
      hashing: 'Computing SHA-256\u2026',
      running: `${formatBytes(t.done)} of ${formatBytes(t.size)}${rate}`,
      verifying: 'Verifying SHA-256\u2026',
      interrupted: allowed
        ? `Interrupted at ${formatBytes(t.done)}: resumes when the connection is back`
        : dropped
          ? `Interrupted at ${formatBytes(t.done)}: your connection to the session dropped; resumes once it is back and the user allows Files again`
        // A pause is a moment's break: the user's computer keeps the part
        // it received, and the transfer goes on by itself once they resume.
        : paused
          ? `Stopped at ${formatBytes(t.done)}: the user paused the session; the ${t.direction === 'upload' ? 'upload' : 'download'} carries on from where it stopped once they resume`
        // The user's computer removes a part it received when they take
        // Files back; a fetch keeps here what came and goes on from it.
        : t.direction === 'upload'
          ? `Stopped at ${formatBytes(t.done)}: the user no longer allows Files, and the part sent was removed from their computer; starts again if they allow it again`
          : `Stopped at ${formatBytes(t.done)}: the user no longer allows Files; resumes if they allow it again`,
      done: t.result ?? '',
      failed: t.error ?? 'Failed',
      cancelled: 'Cancelled',
      ended: t.done > 0 ? `Stopped at ${formatBytes(t.done)}: ${over}` : `Not ${t.direction === 'upload' ? 'sent' : 'fetched'}: ${over}`,
    };
    t.note.textContent = notes[t.state] ?? '';
    t.note.title = t.state === 'done' && t.sha256 ? `SHA-256 ${t.sha256}` : '';
    const hadFocus = document.activeElement === t.cancelBtn;
    t.cancelBtn.hidden = !['queued', 'hashing', 'running', 'interrupted'].includes(t.state);
    // Cancelled, or over while its Cancel had the focus: the focus stays
    // on the transfer, which says what became of it, not on the page.
    if (hadFocus && t.cancelBtn.hidden) t.el.focus({ preventScroll: true });
  }

  async function pump() {
    if (busy || !allowed) return; // without the grant the broker refuses the channel
    const t = queue.find((x) => x.state === 'queued');
    if (!t) return;
    busy = true;
    current = t;
    const chance = chances;
    try {
      if (t.direction === 'upload') await runUpload(t);
      else await runDownload(t);
    } catch (err) {
      if (!stopped(t)) {
        if (!allowed || /interrupted|closed|not allowed/i.test(err.message)) {
          t.state = allowed && chance !== chances ? 'queued' : 'interrupted';
        } else {
          t.state = 'failed';
          t.error = err.message;
        }
      }
    } finally {
      busy = false;
      current = null;
      if (t.state !== 'interrupted' && t.state !== 'queued') dropFromQueue(t);
      render(t);
      if (t.state === 'done' && t.direction === 'upload' && open) list(); // the file is there now
      if (t.state !== 'interrupted') pump();
    }
  }

  /**
   * Whether the technician cancelled t, or the session's end stopped it,
   * while it was carried out: what it was waiting for is not acted on.
   */
  const stopped = (t) => t.state === 'cancelled' || t.state === 'ended';

  function dropFromQueue(t) {
    const i = queue.indexOf(t);
    if (i >= 0) queue.splice(i, 1);
  }

  /** Tells the user's computer to stop the transfer it is carrying out. */
  function cancelOnHost() {
    if (files.dc?.readyState === 'open') files.dc.send(JSON.stringify({ type: 'cancel' }));
  }

  async function runUpload(t) {
    // Over the limit the user's computer announced: refused as it would
    // be, before the file is read through for its hash.
    const limit = getHost()?.max_file;
    if (limit && t.size > limit) {
      t.state = 'failed';
      t.error = `${t.name} is ${formatBytes(t.size)}: the user\u2019s computer takes files of up to ${formatBytes(limit)}.`;
      return;
    }
    if (!t.sha256) {
      t.state = 'hashing';
      render(t);
      t.sha256 = hex(await crypto.subtle.digest('SHA-256', await t.file.arrayBuffer()));
    }
    if (stopped(t)) return;
    const answer = await files.request({ type: 'put', name: t.name, size: t.size, sha256: t.sha256, progress: true });
    if (stopped(t)) {
      // Stopped while the user's computer was asked: it has begun, and stops.
      if (answer.type === 'ready') cancelOnHost();
      return;
    }
    if (answer.type === 'error') {
      t.state = 'failed';
      t.error = answer.message;
      return;
    }
    if (answer.type !== 'ready') throw new Error(`Unexpected answer ${answer.type}`);
    const ch = await files.ready();
    t.state = 'running';
    t.started = performance.now();
    t.done = t.from = answer.offset ?? 0;
    render(t);
    // The bar shows what the user's computer has written, when it says:
    // what was sent waits in buffers on the way, megabytes on a slow link.
    let lastRender = 0;
    const show = (n) => {
      t.done = n;
      if (performance.now() - lastRender > 100) {
        lastRender = performance.now();
        render(t);
      }
    };
    if (answer.progress) onWritten = (n) => show(Math.min(Math.max(n, t.done), t.size));
    // The user's computer answers before the last chunk when it cannot go
    // on (its disk is full, a write failed) and drops what follows:
    // sending stops then.
    let answered = null;
    const final = files.next();
    final.then((m) => { answered = m; }, () => {});
    let sent = t.done;
    let done;
    try {
      while (sent < t.size && !answered) {
        if (stopped(t)) return;
        await drain(ch);
        const end = Math.min(sent + CHUNK, t.size);
        const chunk = await t.file.slice(sent, end).arrayBuffer();
        if (ch.readyState !== 'open') throw new Error('The connection was interrupted.');
        ch.send(chunk);
        sent = end;
        if (!answer.progress) show(sent);
      }
      if (!answered && !answer.progress) {
        t.state = 'verifying';
        render(t);
      }
      done = await final;
    } finally {
      onWritten = null;
    }
    if (stopped(t) && done.type !== 'done') return;
    if (done.type === 'done' && done.sha256 === t.sha256) {
      t.state = 'done';
      t.done = t.size;
      t.result = `Saved as ${done.path} \u00b7 SHA-256 verified`;
    } else {
      t.state = 'failed';
      t.error = done.message || 'The user\u2019s computer did not confirm the file.';
    }
  }

  async function runDownload(t) {
    t.chunks = t.chunks ?? [];
    const have = t.chunks.reduce((n, c) => n + c.length, 0);
    const meta = await files.request({ type: 'get', path: t.path, offset: have });
    if (stopped(t)) {
      // Stopped while the user's computer was asked: it has begun, and stops.
      if (meta.type === 'meta') cancelOnHost();
      return;
    }
    if (meta.type === 'error') {
      t.state = 'failed';
      t.error = meta.message;
      return;
    }
    if (meta.type !== 'meta') throw new Error(`Unexpected answer ${meta.type}`);
    if ((meta.offset ?? 0) !== have) t.chunks = [];
    t.size = meta.size;
    t.state = 'running';
    t.started = performance.now();
    t.done = t.from = meta.offset ?? 0;
    render(t);
    let lastRender = 0;
    let fail = null;
    const got = new Promise((resolve) => {
      if (t.done >= t.size) resolve();
      sink = (chunk) => {
        if (chunk === null) { // the channel closed
          fail = new Error('The connection was interrupted.');
          resolve();
          return;
        }
        t.chunks.push(chunk);
        t.done += chunk.length;
        if (performance.now() - lastRender > 100) {
          lastRender = performance.now();
          render(t);
        }
        if (t.done >= t.size) resolve();
      };
    });
    // The user's computer sends an error instead of the rest when it cannot
    // go on (the file shrank while it was read): whichever comes first
    // ends the wait.
    const final = files.next();
    await Promise.race([got, final.catch(() => {})]);
    sink = null;
    if (stopped(t)) return;
    if (fail) throw fail;
    const done = await final;
    if (done.type !== 'done') {
      t.chunks = [];
      t.state = 'failed';
      t.error = done.message || 'The download failed.';
      return;
    }
    t.state = 'verifying';
    render(t);
    const blob = new Blob(t.chunks, { type: 'application/octet-stream' });
    const sum = hex(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer()));
    if (sum !== done.sha256) {
      t.chunks = [];
      t.state = 'failed';
      t.error = 'The file arrived damaged (SHA-256 mismatch) and was discarded.';
      return;
    }
    t.sha256 = sum;
    t.chunks = [];
    t.state = 'done';
    t.result = `${formatBytes(t.size)} \u00b7 SHA-256 verified`;
    const url = URL.createObjectURL(blob);
    const a = h('a', { href: url, download: t.name, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    window.tether.lastDownload = { name: t.name, size: t.size, sha256: sum };
  }

  function cancelTransfer(t) {
    const underWay = t.state === 'running' || t.state === 'verifying';
    t.state = 'cancelled';
    t.chunks = [];
    render(t);
    if (underWay) {
      sink?.(null);
      cancelOnHost();
    }
    // The one being carried out leaves the queue when pump is done with it.
    if (t !== current) dropFromQueue(t);
  }

  /**
   * Says, in the transfers list where the technician looks for the file,
   * that it was not sent (or fetched) and how to move it instead: the
   * viewer program streams the file from and to disk as it goes, where the
   * console holds it whole in the browser's memory. It stays until the page
   * is left, so the command can be read and copied at leisure.
   */
  function tooLarge(direction, name, size, path) {
    const quote = (s) => (/^[\w.,+@%/:=-]+$/.test(s) ? s : `'${s.replaceAll("'", "'\\''")}'`);
    const upload = direction === 'upload';
    const command = `viewer -broker ${location.origin} ${upload ? 'push' : 'pull'} -session ${sessionId} ${quote(upload ? name : path)}`;
    const text = upload
      ? `This file was not sent. The console can send files of up to ${formatBytes(MAX_BROWSER_FILE)}, and this one is ${formatBytes(size)}. `
        + 'To send it, use viewer, Tether\u2019s command-line program for technicians: run this command in a terminal on your computer, in the folder that holds the file.'
      : `This file was not fetched. The console can fetch files of up to ${formatBytes(MAX_BROWSER_FILE)}, and this one is ${formatBytes(size)}. `
        + 'To fetch it, use viewer, Tether\u2019s command-line program for technicians: run this command in a terminal on your computer, in the folder where you want the file.';
    const el = h('li', { class: 'transfer', 'data-testid': 'transfer', 'data-direction': direction, 'data-name': name, 'data-state': 'too-large' },
      h('span', { class: 'transfer-icon' }, icon('alert', 15)),
      h('div', { class: 'transfer-body' },
        h('div', { class: 'transfer-line' }, h('span', { class: 'transfer-name', text: name }),
          h('span', { class: 'transfer-pct tabular', text: formatBytes(size) })),
        h('p', { class: 'transfer-note', 'data-testid': 'transfer-too-large', text }),
        // Each word is wrapped whole: a line break after "push -" would read as two commands.
        h('code', { class: 'transfer-command', 'data-testid': 'transfer-command' },
          command.split(' ').flatMap((w, i) => [i ? ' ' : '', h('span', { text: w })]))));
    transfersEl.prepend(el);
    transfersHead.hidden = false;
  }

  function upload(files) {
    if (!allowed) return;
    for (const file of files) {
      if (file.size > MAX_BROWSER_FILE) {
        tooLarge('upload', file.name, file.size);
        continue;
      }
      addTransfer({ direction: 'upload', name: file.name, size: file.size, file });
    }
  }

  function download(path, name, size) {
    if (!allowed) return;
    // A download is held whole in the browser's memory until it is
    // verified: a file too large for that would take the page down.
    if (size > MAX_BROWSER_FILE) {
      tooLarge('download', name, size, path);
      return;
    }
    addTransfer({ direction: 'download', path, name, size });
  }

  // ---- panel -----------------------------------------------------------------------

  // Built once: the focus stays on the button while the user answers.
  const askBtn = h('button', { type: 'button', class: 'btn btn-primary btn-sm', 'data-testid': 'files-request' }, icon('hand', 15), 'Ask to use Files');
  askBtn.addEventListener('click', () => {
    if (askBtn.getAttribute('aria-disabled') !== 'true') onRequest('files');
  });

  /**
   * Whether the user is being asked for this right now (from here or from
   * another ask button), and whether a question can be put at all: one at
   * a time.
   */
  function setAsking(asking, canAsk) {
    askBtn.setAttribute('aria-disabled', String(asking || !canAsk));
    askBtn.classList.toggle('is-asking', asking);
    askBtn.lastChild.textContent = asking ? 'Asking the user\u2026' : 'Ask to use Files';
    if (!asking && !canAsk) askBtn.dataset.tip = 'The user is answering another request';
    else delete askBtn.dataset.tip;
  }
  const notAllowed = [
    h('span', { class: 'activity-empty-icon' }, icon('lock', 20)),
    h('p', { class: 'side-empty-title', text: 'The user has not allowed Files' }),
    h('p', { text: 'The user decides. Ask, and they can allow it on their computer.' }), askBtn];
  // Nothing to ask for: the user allowed Files and only paused.
  const whilePaused = [
    h('span', { class: 'activity-empty-icon' }, icon('lock', 20)),
    h('p', { class: 'side-empty-title', text: 'The user paused the session' }),
    h('p', { text: 'Files can be used again once they resume.' })];

  // Nothing to ask for either: the session is over for this page.
  const overTitle = h('p', { class: 'side-empty-title' });
  const whenOver = [
    h('span', { class: 'activity-empty-icon' }, icon('lock', 20)),
    overTitle,
    h('p', { text: 'No more files can be sent or fetched here.' })];

  // Where files sent land, as the user's computer names it (a host told
  // to use another folder says so).
  function renderPlaces() {
    const inbox = getHost()?.files_inbox || '~/Downloads/Tether';
    destText.textContent = `Files you send go to ${inbox} on the user\u2019s computer.`;
    dropText.textContent = `Drop to send to ${inbox} on the user\u2019s computer`;
  }

  function renderAccess() {
    renderPlaces();
    const askHadFocus = document.activeElement === askBtn;
    browser.hidden = !allowed;
    empty.hidden = allowed;
    uploadBtn.disabled = !allowed;
    overTitle.textContent = over ? over[0].toUpperCase() + over.slice(1) : '';
    const shown = over ? whenOver : paused ? whilePaused : notAllowed;
    if (!allowed && empty.lastChild !== shown.at(-1)) empty.replaceChildren(...shown);
    if (askHadFocus && allowed) uploadBtn.focus({ preventScroll: true });
  }

  /** Opened from its button: the focus goes to what the panel offers first. */
  function focusInto() {
    (allowed ? uploadBtn : paused || over ? closeBtn : askBtn).focus({ preventScroll: true });
  }

  function setOpen(on) {
    if (open === on) return;
    open = on;
    panel.hidden = !on;
    button.setAttribute('aria-pressed', String(on));
    button.classList.toggle('is-open', on);
    renderAccess();
    if (on && allowed) {
      renderRows();
      list();
    }
    onToggle?.(on);
  }

  button.addEventListener('click', () => {
    setOpen(!open);
    if (open) focusInto();
  });
  closeBtn.addEventListener('click', () => {
    setOpen(false);
    button.focus({ preventScroll: true });
  });
  // As for Activity: Escape closes the panel, and the focus goes back to its button.
  panel.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      e.stopPropagation();
      setOpen(false);
      button.focus({ preventScroll: true });
    }
  });
  refreshBtn.addEventListener('click', () => list());
  uploadBtn.addEventListener('click', () => fileInput.click());
  fileInput.addEventListener('change', () => {
    upload([...fileInput.files]);
    fileInput.value = '';
  });
  let dragDepth = 0;
  panel.addEventListener('dragenter', (e) => {
    if (!allowed || !e.dataTransfer?.types.includes('Files')) return;
    e.preventDefault();
    dragDepth++;
    panel.classList.add('is-dropping');
  });
  panel.addEventListener('dragover', (e) => { if (allowed) e.preventDefault(); });
  panel.addEventListener('dragleave', () => {
    if (--dragDepth <= 0) {
      dragDepth = 0;
      panel.classList.remove('is-dropping');
    }
  });
  panel.addEventListener('drop', (e) => {
    e.preventDefault();
    dragDepth = 0;
    panel.classList.remove('is-dropping');
    upload([...(e.dataTransfer?.files ?? [])]);
  });
  renderAccess();

  return {
    button,
    panel,
    setOpen,
    setAsking,
    isOpen: () => open,
    /** A transfer is under way, waits its turn, or waits to resume. */
    busy: () => queue.length > 0,
    /**
     * Sends files dropped elsewhere on the live page: the panel opens and
     * sends them. False when Files may not be used now.
     */
    sendDropped(list) {
      if (!allowed || over) return false;
      setOpen(true);
      upload(list);
      return true;
    },
    /** Whether Files may be used; when not, whether that is because the user paused the session. */
    setAllowed(on, { paused: isPaused = false } = {}) {
      const nowPaused = !on && isPaused;
      if (allowed === on && paused === nowPaused) return;
      allowed = on;
      paused = nowPaused;
      if (on) dropped = false;
      button.classList.toggle('is-locked', !on);
      renderAccess();
      // A transfer the host stopped before its word came says now why.
      for (const t of queue) if (t.state === 'interrupted') render(t);
      if (!on) {
        // The transfer under way stops and waits.
        const why = dropped ? 'The connection was interrupted.' : 'The user has not allowed Files.';
        files.close(why);
        browse.close(why);
      } else {
        chances++;
        for (const t of queue) if (t.state === 'interrupted') t.state = 'queued';
        if (open) list();
        pump();
      }
    },
    /**
     * The session is over for this page: what was not transferred says
     * why (the session ended, or this page was cut off), instead of
     * waiting to resume. Called again, the reason is the newer one.
     */
    end(why) {
      over = why;
      for (const t of queue) t.state = 'ended';
      queue.length = 0;
      for (const t of transfers) if (t.state === 'ended') render(t);
      this.setAllowed(false); // the transfer under way stops
      renderAccess();
    },
    /**
     * The technician's connection to the session dropped (or is back with
     * its grants): transfers cut meanwhile say so, not that the user took
     * Files back.
     */
    setConnected(on) {
      if (on) {
        if (allowed) dropped = false;
        return;
      }
      if (dropped) return;
      dropped = true;
      for (const t of queue) if (t.state === 'interrupted') render(t);
    },
    /** A new connection to the broker: interrupted transfers resume. */
    reconnected() {
      if (!alive) return;
      chances++;
      if (!allowed) return; // setAllowed resumes them
      for (const t of queue) if (t.state === 'interrupted') t.state = 'queued';
      if (open) list();
      pump();
    },
    destroy() {
      alive = false;
      files.dc?.close();
      browse.dc?.close();
    },
  };
}

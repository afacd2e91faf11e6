// Terminals on the user's computer: each tab is a shell on its own data
// channel (shell-<n>) through the broker to a PTY on the host, drawn with
// xterm.js. Binary messages are terminal bytes both ways; the host reports
// the shell's exit as {"type":"exit","code":N}; the console sends
// {"type":"resize","cols":C,"rows":R} once the panel's size settles, and
// {"type":"pause"} / {"type":"resume"} while it is behind drawing output.
// Every shell closes at once when the user revokes the permission.

import { Terminal } from './vendor/xterm/xterm.js';
import { FitAddon } from './vendor/xterm/addon-fit.js';
import { h, icon, toast } from './ui.js';

const MAX_SHELLS = 8;
const HIGH_WATER = 1 << 20; // keystrokes queue behind this much output at most
// The broker takes terminal input in messages of at most 64 KiB (as file
// chunks): a long paste goes in pieces well under that.
const INPUT_CHUNK = 16 << 10;
// How long the terminal's size stays put before the shell hears of it.
const RESIZE_SETTLE = 150;
// Output arrives faster than the terminal can draw it (`yes`, a big `cat`):
// past this much not yet drawn the host stops reading the command's output
// until the terminal is down to OUTPUT_LOW, so that Ctrl+C shows at once
// instead of after everything already received has scrolled by.
const OUTPUT_HIGH = 256 << 10;
const OUTPUT_LOW = 32 << 10;
const REVOKED = 'Closed: the user revoked access to Terminal.';
// The technician's own connection dropped: the user did nothing, and is
// asked again once it is back.
const DROPPED = 'Closed: your connection to the session dropped; the user did not close it. A new terminal can be opened once it is back.';
const PAUSED = 'Closed: the user paused the session. You can open a terminal again once they resume.';
const HIDDEN_INPUT = 'A password prompt: what you type here is not shown, and it is not recorded.';
// Moves the focus from the terminal to its tab: Tab, Escape and Ctrl+letters
// all belong to the shell, and a Ctrl+Shift+letter to none.
const LEAVE_KEY = 'KeyE';
const LEAVE_LABEL = 'Ctrl+Shift+E';
// A shell that closed for no stated reason this long before a revoke
// arrived was closed by that revoke.
const LATE_REVOKE_MS = 3000;

const THEME = {
  background: '#0b0e13', foreground: '#e7e9ee', cursor: '#c7d2fe', cursorAccent: '#0b0e13',
  selectionBackground: 'rgba(129, 140, 248, 0.35)',
  black: '#1a1f27', red: '#f97066', green: '#47cd89', yellow: '#fdb022', blue: '#818cf8', magenta: '#e478fa', cyan: '#67e3f9', white: '#e7e9ee',
  brightBlack: '#4b5563', brightRed: '#fda29b', brightGreen: '#75e0a7', brightYellow: '#fec84b', brightBlue: '#a5b4fc', brightMagenta: '#eeaafd', brightCyan: '#a5f0fc', brightWhite: '#ffffff',
};

/**
 * Builds the terminal panel and its toggle button.
 * opts.getPc() returns the current RTCPeerConnection (or null);
 * opts.onRequest(perm) asks the user for a permission; opts.onToggle(open).
 * Returns { button, panel, setAllowed(bool, { paused }), setOpen(bool), isOpen(), closeAll(reason), destroy() }.
 */
export function mountShell({ getPc, onRequest, onToggle }) {
  let open = false;
  let allowed = false;
  let paused = false; // not allowed because the user paused the session
  let over = ''; // why the session is over for this page, once it is
  // The technician's connection dropped: shells closing now, and the grants
  // the broker forgets with it, are not the user's doing.
  let dropped = false;
  let asking = false;
  let canAsk = true;
  let active = null; // the shown tab
  const tabs = []; // { n, term, fit, dc, el, tabEl, itemEl, state: 'opening'|'open'|'closed' }

  const button = h('button', {
    type: 'button', class: 'tool-btn tool-btn-label', 'data-testid': 'shell-open', 'aria-pressed': 'false',
    'aria-controls': 'shell-panel', 'data-tip': 'Terminal on the user\u2019s computer',
  }, icon('terminal', 17), h('span', { class: 'tool-btn-text', text: 'Terminal' }));

  const tabList = h('div', { class: 'shell-tabs', role: 'tablist', 'aria-label': 'Terminals' });
  const newBtn = h('button', {
    type: 'button', class: 'icon-btn icon-btn-dark', 'data-testid': 'shell-new', 'aria-label': 'New terminal', 'data-tip': 'New terminal',
  }, icon('plus', 16));
  const copyBtn = h('button', { type: 'button', class: 'icon-btn icon-btn-dark', 'data-testid': 'shell-copy', 'aria-label': 'Copy selection (Ctrl+Shift+C)', 'data-tip': 'Copy (Ctrl+Shift+C)' }, icon('copy', 15));
  const pasteBtn = h('button', { type: 'button', class: 'icon-btn icon-btn-dark', 'data-testid': 'shell-paste', 'aria-label': 'Paste (Ctrl+Shift+V)', 'data-tip': 'Paste (Ctrl+Shift+V)' }, icon('clipboard', 15));
  const closeBtn = h('button', { type: 'button', class: 'icon-btn icon-btn-dark', 'aria-label': 'Close terminal panel' }, icon('x', 16));
  const tabBar = h('div', { class: 'shell-tabbar', hidden: true }, tabList, newBtn);
  const body = h('div', { class: 'shell-body' });
  const empty = h('div', { class: 'side-empty', 'data-testid': 'shell-empty' });
  const panel = h('aside', {
    class: 'side-panel shell-panel', id: 'shell-panel', 'data-testid': 'shell-panel', hidden: true, 'aria-label': 'Terminal',
  },
  h('header', { class: 'activity-head side-head' },
    h('div', {},
      h('h2', { class: 'activity-title', text: 'Terminal' }),
      h('p', { class: 'activity-sub', 'data-testid': 'shell-hint' }, 'On the user\u2019s computer, as the user. Recorded. ',
        h('kbd', { class: 'kbd', text: LEAVE_LABEL }), ' leaves the terminal for its tabs; ',
        h('kbd', { class: 'kbd', text: 'Delete' }), ' on a tab closes it.')),
    h('div', { class: 'activity-actions' }, copyBtn, pasteBtn, closeBtn)),
  tabBar,
  body, empty);

  // Built once: the focus stays on a button while the user answers.
  const askBtn = h('button', { type: 'button', class: 'btn btn-primary btn-sm', 'data-testid': 'shell-request' }, icon('hand', 15), 'Ask to use Terminal');
  askBtn.addEventListener('click', () => {
    if (askBtn.getAttribute('aria-disabled') !== 'true') onRequest('shell');
  });

  /**
   * Whether the user is being asked for this right now (from here or from
   * another ask button), and whether a question can be put at all: one at
   * a time.
   */
  function setAsking(nowAsking, nowCanAsk) {
    asking = nowAsking;
    canAsk = nowCanAsk;
    renderActions();
    askBtn.setAttribute('aria-disabled', String(asking || !canAsk));
    askBtn.classList.toggle('is-asking', asking);
    askBtn.lastChild.textContent = asking ? 'Asking the user\u2026' : 'Ask to use Terminal';
    if (!asking && !canAsk) askBtn.dataset.tip = 'The user is answering another request';
    else delete askBtn.dataset.tip;
  }
  const startBtn = h('button', { type: 'button', class: 'btn btn-primary btn-sm', 'data-testid': 'shell-start' }, icon('terminal', 15), 'Open a terminal');
  startBtn.addEventListener('click', () => newShell());
  const notAllowed = [
    h('span', { class: 'activity-empty-icon' }, icon('lock', 20)),
    h('p', { class: 'side-empty-title', text: 'The user has not allowed Terminal' }),
    h('p', { text: 'The user decides. Ask, and they can allow it on their computer.' }), askBtn];
  const whilePaused = [
    h('span', { class: 'activity-empty-icon' }, icon('lock', 20)),
    h('p', { class: 'side-empty-title', text: 'The user paused the session' }),
    h('p', { text: 'Terminal can be used again once they resume.' })];
  const noShell = [
    h('span', { class: 'activity-empty-icon' }, icon('terminal', 20)),
    h('p', { class: 'side-empty-title', text: 'No terminal open' }),
    h('p', { text: 'Commands run on the user\u2019s computer as the user, never as an administrator.' }), startBtn];

  // Nothing to ask for either: the session is over for this page.
  const overTitle = h('p', { class: 'side-empty-title' });
  const whenOver = [
    h('span', { class: 'activity-empty-icon' }, icon('lock', 20)),
    overTitle,
    h('p', { text: 'No more terminals can be opened here.' })];

  function renderEmpty() {
    const any = tabs.length > 0;
    const askHadFocus = document.activeElement === askBtn;
    // Closed tabs stay readable after a revoke; their status line says why.
    empty.hidden = any;
    body.hidden = !any;
    // No tabs, no tab strip: the empty state offers the first shell.
    tabBar.hidden = !any;
    renderTools();
    const full = tabs.filter((t) => t.state !== 'closed').length >= MAX_SHELLS;
    newBtn.disabled = !allowed || full;
    // Disabled, it says why.
    newBtn.dataset.tip = allowed ? full ? `At most ${MAX_SHELLS} terminals at a time` : 'New terminal'
      : over ? 'No more terminals can be opened here'
        : paused ? 'The user paused the session' : 'The user has not allowed Terminal';
    renderActions();
    if (!allowed) {
      overTitle.textContent = over.replace(/\.$/, ''); // a title, not a sentence
      const shown = over ? whenOver : paused ? whilePaused : notAllowed;
      if (empty.lastChild !== shown.at(-1)) empty.replaceChildren(...shown);
    } else if (!any) {
      if (empty.lastChild !== startBtn) empty.replaceChildren(...noShell);
      if (askHadFocus) startBtn.focus({ preventScroll: true });
    }
  }

  /**
   * A closed tab's status line offers the way on: a new terminal when
   * Terminal is allowed, the question when it is not.
   */
  function renderActions() {
    for (const t of tabs) {
      const b = t.actionBtn;
      const can = t.state === 'closed' && !over && !paused;
      b.hidden = !can;
      if (!can) continue;
      b.dataset.act = allowed ? 'new' : 'ask';
      b.lastChild.textContent = allowed ? 'Open a new terminal' : asking ? 'Asking the user\u2026' : 'Ask to use Terminal';
      b.setAttribute('aria-disabled', String(!allowed && (asking || !canAsk)));
    }
  }

  /** The focus was on something that is gone now (or nowhere). */
  function focusLost() {
    const el = document.activeElement;
    return !el || el === document.body || !el.isConnected || !el.getClientRects().length;
  }

  /** Opened from its button: the focus goes to the shell, or what the panel offers. */
  function focusInto() {
    if (active) return; // show() focuses the terminal
    (allowed ? startBtn : paused || over ? closeBtn : askBtn).focus({ preventScroll: true });
  }

  /** Copy needs text selected in the shown shell; paste, a shell that is open. */
  function renderTools() {
    copyBtn.disabled = !active?.term.hasSelection();
    pasteBtn.disabled = active?.state !== 'open';
  }

  /**
   * Shows tab's terminal; the keyboard goes into it unless intoTerminal is
   * false (the arrow keys move along the tabs, and the focus with them).
   * The shown tab is the one Tab stops at in the tab list.
   */
  function show(tab, intoTerminal = true) {
    active = tab;
    renderTools();
    for (const t of tabs) {
      const on = t === tab;
      t.el.hidden = !on;
      t.tabEl.setAttribute('aria-selected', String(on));
      t.tabEl.tabIndex = on ? 0 : -1;
      t.tabEl.classList.toggle('is-active', on);
    }
    if (tab) {
      requestAnimationFrame(() => {
        fitTab(tab);
        if (intoTerminal) tab.term.focus();
      });
    }
  }

  /**
   * The tabs' keys, as in any tab list: Left and Right go to the previous
   * and next tab (round the ends), Home and End to the first and last,
   * Delete closes the tab. Enter and Space go into its terminal.
   */
  function onTabKey(t, e) {
    if (e.altKey || e.ctrlKey || e.metaKey || e.shiftKey) return;
    const i = tabs.indexOf(t);
    const to = {
      ArrowLeft: tabs[(i - 1 + tabs.length) % tabs.length],
      ArrowRight: tabs[(i + 1) % tabs.length],
      Home: tabs[0],
      End: tabs.at(-1),
    }[e.key];
    if (to) {
      e.preventDefault();
      show(to, false);
      to.tabEl.focus();
    } else if (e.key === 'Delete') {
      e.preventDefault();
      closeTab(t, false);
    }
  }

  /**
   * Closes tab t. The focus goes to the tab shown next, or into its
   * terminal, or, the last one closed, to what the panel offers instead of
   * to the page.
   */
  function closeTab(t, intoTerminal) {
    const hadFocus = t.itemEl.contains(document.activeElement);
    t.dc?.close();
    removeTab(t, intoTerminal);
    if (!hadFocus && !focusLost()) return;
    if (!active) focusInto();
    else if (intoTerminal) active.term.focus();
    else active.tabEl.focus();
  }

  function fitTab(t) {
    if (t.el.hidden || panel.hidden) return;
    try {
      t.fit.fit();
    } catch { /* not laid out yet */ }
  }

  /**
   * Tells the shell the terminal's size. A drag of the side panel's bar
   * crosses a column at a time: the shell hears the size it settles on
   * (RESIZE_SETTLE later), not each one on the way, each a redraw and a
   * line of the recording. A key typed meanwhile sends it first, so a
   * command always runs at the size on screen.
   */
  function sendResize(t, now = false) {
    t.el.dataset.cols = String(t.term.cols);
    t.el.dataset.rows = String(t.term.rows);
    clearTimeout(t.resizeTimer);
    t.resizeDue = true;
    if (now) flushResize(t);
    else t.resizeTimer = setTimeout(() => flushResize(t), RESIZE_SETTLE);
  }

  function flushResize(t) {
    if (!t.resizeDue || t.dc?.readyState !== 'open') return;
    clearTimeout(t.resizeTimer);
    t.resizeDue = false;
    t.dc.send(JSON.stringify({ type: 'resize', cols: t.term.cols, rows: t.term.rows }));
  }

  /** Asks the host to stop, or go on, reading the shell's output. */
  function holdOutput(t, on) {
    t.held = on;
    t.el.dataset.held = String(on);
    if (t.dc?.readyState === 'open') t.dc.send(JSON.stringify({ type: on ? 'pause' : 'resume' }));
  }

  function setTabState(t, state, note) {
    const wasClosed = t.state === 'closed';
    t.state = state;
    t.tabEl.dataset.state = state;
    t.el.dataset.state = state;
    t.statusEl.hidden = !note;
    t.noteEl.textContent = note || '';
    if (state === 'closed' && !wasClosed) {
      // Closed looks closed: no blinking cursor, no keys taken in vain;
      // the focus goes to what the status line offers instead.
      const hadFocus = t.el.contains(document.activeElement);
      t.term.options.disableStdin = true;
      t.term.options.cursorBlink = false;
      t.term.options.cursorInactiveStyle = 'none';
      t.term.blur();
      renderEmpty();
      if (hadFocus || (active === t && focusLost())) (t.actionBtn.hidden ? t.tabEl : t.actionBtn).focus({ preventScroll: true });
      return;
    }
    renderEmpty();
  }

  function newShell() {
    const pc = getPc();
    if (!allowed || !pc) return;
    const used = new Set(tabs.filter((t) => t.state !== 'closed').map((t) => t.n));
    let n = 1;
    while (used.has(n) || tabs.some((t) => t.n === n && t.state !== 'closed')) n++;
    if (n > MAX_SHELLS) return;
    // Reuse the number of a closed tab: drop that tab first.
    for (const old of tabs.filter((t) => t.n === n)) removeTab(old);

    const term = new Terminal({
      fontFamily: '"DejaVu Sans Mono", ui-monospace, Menlo, Consolas, monospace', fontSize: 13, lineHeight: 1.15,
      cursorBlink: true, scrollback: 5000, theme: THEME, allowProposedApi: false,
    });
    const fit = new FitAddon();
    term.loadAddon(fit);
    const screen = h('div', { class: 'shell-screen', 'data-testid': 'shell-screen' });
    const noteEl = h('span', { class: 'shell-status-note' });
    const actionBtn = h('button', { type: 'button', class: 'btn btn-secondary btn-sm shell-status-action', 'data-testid': 'shell-status-action', hidden: true }, icon('terminal', 14), '');
    const statusEl = h('div', { class: 'shell-status', 'data-testid': 'shell-status', role: 'status', hidden: true }, noteEl, actionBtn);
    const el = h('div', {
      class: 'shell-view', id: `shell-view-${n}`, 'data-testid': `shell-view-${n}`, role: 'tabpanel', 'aria-labelledby': `shell-tab-${n}`,
    }, screen, statusEl);
    const tabEl = h('button', {
      type: 'button', class: 'shell-tab', role: 'tab', id: `shell-tab-${n}`, 'aria-controls': `shell-view-${n}`, tabindex: '-1',
      'data-testid': `shell-tab-${n}`,
    }, h('span', { class: 'shell-tab-dot', 'aria-hidden': 'true' }), `Terminal ${n}`);
    // The mouse's way to close a tab, beside it rather than inside it (a
    // button within a button). A tab list holds tabs only: the keyboard's
    // way is Delete on the tab, and the button is left out of the Tab
    // order and of what a screen reader lists.
    const closeX = h('button', {
      type: 'button', class: 'shell-tab-close', tabindex: '-1', 'aria-hidden': 'true', 'data-testid': `shell-close-${n}`,
    }, icon('x', 12));
    const itemEl = h('span', { class: 'shell-tab-item', role: 'presentation' }, tabEl, closeX);
    const t = { n, term, fit, dc: null, el, tabEl, itemEl, statusEl, noteEl, actionBtn, state: 'opening', undrawn: 0, held: false };
    actionBtn.addEventListener('click', () => {
      if (actionBtn.dataset.act === 'new') newShell();
      else if (actionBtn.getAttribute('aria-disabled') !== 'true') onRequest('shell');
    });

    // In number order: a number freed by a closed tab comes back in its place.
    const after = tabs.find((o) => o.n > n);
    tabs.splice(after ? tabs.indexOf(after) : tabs.length, 0, t);
    tabList.insertBefore(itemEl, after?.itemEl ?? null);
    body.append(el);
    term.open(screen);
    tabEl.addEventListener('click', () => show(t));
    tabEl.addEventListener('keydown', (e) => onTabKey(t, e));
    closeX.addEventListener('click', () => closeTab(t, true));
    setTabState(t, 'opening', 'Opening a terminal on the user\u2019s computer\u2026');
    show(t);

    const dc = pc.createDataChannel(`shell-${n}`, { ordered: true });
    dc.binaryType = 'arraybuffer';
    t.dc = dc;
    const enc = new TextEncoder();
    dc.onopen = () => {
      setTabState(t, 'open', '');
      fitTab(t);
      sendResize(t, true);
      if (active === t) term.focus();
    };
    dc.onmessage = (e) => {
      if (typeof e.data === 'string') {
        let msg = null;
        try { msg = JSON.parse(e.data); } catch { return; }
        if (msg?.type === 'exit') {
          t.exitCode = msg.code;
        } else if ((msg?.type === 'input-hidden' || msg?.type === 'input-shown') && t.state === 'open') {
          const hidden = msg.type === 'input-hidden';
          t.el.dataset.input = hidden ? 'hidden' : 'shown';
          setTabState(t, 'open', hidden ? HIDDEN_INPUT : '');
        }
        return;
      }
      const bytes = new Uint8Array(e.data);
      t.undrawn += bytes.length;
      term.write(bytes, () => {
        t.undrawn -= bytes.length;
        if (t.held && t.undrawn <= OUTPUT_LOW) holdOutput(t, false);
      });
      if (!t.held && t.undrawn > OUTPUT_HIGH) holdOutput(t, true);
    };
    dc.onclose = () => {
      if (t.state === 'closed') return;
      const note = t.exitCode !== undefined
        ? `This terminal ended${t.exitCode ? ` with exit code ${t.exitCode}` : ''}.`
        : dropped ? DROPPED : !allowed ? (paused ? PAUSED : REVOKED) : 'This terminal was closed.';
      // The host closes shells on a revoke; the broker's word on the
      // revoke may come a moment after the close.
      t.unexplainedAt = t.exitCode === undefined && allowed ? performance.now() : undefined;
      setTabState(t, 'closed', note);
    };
    term.onData((d) => {
      if (dc.readyState !== 'open') return;
      if (dc.bufferedAmount > HIGH_WATER) return; // the link is stuck; drop rather than pile up
      flushResize(t);
      // A paste arrives here whole: all of it goes, in order, or none.
      const bytes = enc.encode(d);
      for (let off = 0; off < bytes.length; off += INPUT_CHUNK) dc.send(bytes.subarray(off, off + INPUT_CHUNK));
    });
    term.onBinary((d) => {
      if (dc.readyState !== 'open') return;
      flushResize(t);
      dc.send(Uint8Array.from(d, (c) => c.charCodeAt(0) & 0xff));
    });
    term.onResize(() => sendResize(t));
    term.onSelectionChange(() => {
      if (active === t) renderTools();
    });
    term.attachCustomKeyEventHandler((e) => {
      // Left once the key is up: moved on its way down, the terminal
      // misses the key's end and drops the first key typed on return.
      if (t.leaving && e.type === 'keyup' && e.code === LEAVE_KEY) {
        t.leaving = false;
        t.tabEl.focus();
        return false;
      }
      if (!e.ctrlKey || !e.shiftKey || e.altKey || e.metaKey) return true;
      if (e.code !== 'KeyC' && e.code !== 'KeyV' && e.code !== LEAVE_KEY) return true;
      if (e.type !== 'keydown') return false;
      if (e.code === LEAVE_KEY) {
        e.preventDefault();
        t.leaving = true;
        return false;
      }
      // Ours, not the browser's: its own paste would reach the terminal too.
      e.preventDefault();
      if (e.code === 'KeyC') copySelection();
      else pasteClipboard();
      return false;
    });
    t.resizeObserver = new ResizeObserver(() => fitTab(t));
    t.resizeObserver.observe(screen);
  }

  function removeTab(t, intoTerminal = true) {
    const i = tabs.indexOf(t);
    if (i < 0) return;
    tabs.splice(i, 1);
    t.resizeObserver?.disconnect();
    t.term.dispose();
    t.el.remove();
    t.itemEl.remove();
    if (active === t) show(tabs[Math.min(i, tabs.length - 1)] ?? null, intoTerminal);
    renderEmpty();
  }

  // After Copy or Paste, from the keys or a button, the keyboard is the
  // terminal's again: left on the button, the next Space or Enter would
  // paste a second time, a command run twice on the user's computer.
  async function copySelection() {
    const t = active;
    const text = t?.term.getSelection() ?? '';
    if (!text) return;
    try {
      await navigator.clipboard.writeText(text);
      toast('Copied from the terminal', 'success', 1500);
    } catch {
      toast('The browser did not allow copying', 'error');
    }
    if (active === t && t.state !== 'closed') t.term.focus();
  }

  async function pasteClipboard() {
    const t = active;
    if (!t || t.state !== 'open') return;
    try {
      const text = await navigator.clipboard.readText();
      if (text && t.state === 'open') t.term.paste(text);
    } catch {
      toast('The browser did not allow reading the clipboard', 'error');
    }
    if (active === t && t.state === 'open') t.term.focus();
  }

  function setOpen(on) {
    if (open === on) return;
    open = on;
    panel.hidden = !on;
    button.setAttribute('aria-pressed', String(on));
    button.classList.toggle('is-open', on);
    renderEmpty();
    if (on) {
      if (allowed && tabs.length === 0) newShell();
      else if (active) show(active);
    }
    onToggle?.(on);
  }

  button.addEventListener('click', () => {
    setOpen(!open);
    if (open) focusInto();
  });
  newBtn.addEventListener('click', () => newShell());
  copyBtn.addEventListener('click', copySelection);
  pasteBtn.addEventListener('click', pasteClipboard);
  closeBtn.addEventListener('click', () => {
    setOpen(false);
    button.focus({ preventScroll: true });
  });
  renderEmpty();

  return {
    button,
    panel,
    setOpen,
    setAsking,
    isOpen: () => open,
    /** A shell is open, or opening, on the user's computer. */
    anyOpen: () => tabs.some((t) => t.state !== 'closed'),
    /** Whether Terminal may be used; when not, whether that is because the user paused the session. */
    setAllowed(on, { paused: isPaused = false } = {}) {
      const nowPaused = !on && isPaused;
      if (allowed === on && paused === nowPaused) return;
      allowed = on;
      paused = nowPaused;
      if (on) dropped = false;
      for (const t of tabs) {
        if (!on && !dropped && t.state === 'closed' && performance.now() - t.unexplainedAt < LATE_REVOKE_MS) setTabState(t, 'closed', paused ? PAUSED : REVOKED);
      }
      button.classList.toggle('is-locked', !on);
      renderEmpty();
    },
    /**
     * The technician's connection to the session dropped (or is back,
     * with the grants it had): shells that close meanwhile, and the grants
     * forgotten with it, say so rather than that the user revoked them.
     */
    setConnected(on) {
      if (on) {
        if (allowed) dropped = false;
        return;
      }
      dropped = true;
      for (const t of tabs) {
        if (t.state === 'closed' && performance.now() - t.unexplainedAt < LATE_REVOKE_MS) setTabState(t, 'closed', DROPPED);
      }
      renderEmpty();
    },
    /** The connection was replaced or ended: every shell is gone. */
    closeAll(reason) {
      for (const t of tabs) {
        if (t.state !== 'closed') {
          t.dc?.close();
          setTabState(t, 'closed', reason);
        }
      }
    },
    /**
     * The session is over for this page (a sentence says why): every shell
     * closes, and the panel offers no question for a user who is gone.
     */
    end(why) {
      over = why;
      this.closeAll(why);
      this.setAllowed(false);
      renderEmpty();
    },
    destroy() {
      for (const t of [...tabs]) {
        t.dc?.close();
        removeTab(t);
      }
    },
  };
}

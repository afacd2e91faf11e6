// The permissions a technician asks the user for, as the broker names them
// (internal/protocol: view, control, clipboard, files, shell), with the
// words and icons the console shows for each. The console names a feature
// as its panel does: Files, Terminal.

import { h, icon } from './ui.js';

export const PERMISSIONS = [
  { id: 'view', label: 'View', desc: 'See the screen', icon: 'eye' },
  { id: 'control', label: 'Control', desc: 'Use mouse and keyboard', icon: 'pointer' },
  { id: 'clipboard', label: 'Clipboard', desc: 'Copy and paste text both ways', icon: 'clipboard' },
  { id: 'files', label: 'Files', desc: 'Send and receive files', icon: 'folder' },
  { id: 'shell', label: 'Terminal', desc: 'Run commands on the user\u2019s computer', icon: 'terminal' },
];

/** What the broker asks for when a session names nothing. */
export const DEFAULT_PERMISSIONS = ['view', 'control', 'clipboard'];

const BY_ID = new Map(PERMISSIONS.map((p) => [p.id, p]));
const ORDER = new Map(PERMISSIONS.map((p, i) => [p.id, i]));

/** The known permission `id`, or null. */
export function permInfo(id) {
  return BY_ID.get(id) ?? null;
}

/** Known permissions of list, once each, in the broker's order. */
export function sortPerms(...lists) {
  const set = new Set();
  for (const list of lists) {
    if (!Array.isArray(list)) continue;
    for (const p of list) if (BY_ID.has(p)) set.add(p);
  }
  return [...set].sort((a, b) => ORDER.get(a) - ORDER.get(b));
}

/** The broker's word for each permission, but for the features named as their panels are. */
const WORDS = { files: 'Files', shell: 'Terminal' };

/** "view, control, Terminal": the broker's words, with Files and Terminal as the console names them. */
export function listPerms(list) {
  return sortPerms(list).map((p) => WORDS[p] ?? p).join(', ');
}

/**
 * The broker words its messages with the protocol's names ("The user
 * allowed file transfer and shell."); the console calls those features
 * Files and Terminal, as their panels do.
 */
export function ourWords(message) {
  return message.replace(/\bfile transfer\b/g, 'Files').replace(/\bshell\b/g, 'Terminal');
}

/** "Terminal 2" for the channel shell-2, as the console's tabs number them. */
export function terminalName(channel) {
  const n = /^shell-(\d+)$/.exec(String(channel ?? ''))?.[1];
  return n ? `Terminal ${n}` : 'Terminal';
}

/** "View, Control and Clipboard" for people. */
export function labelPerms(list) {
  const labels = sortPerms(list).map((p) => BY_ID.get(p).label);
  if (labels.length < 2) return labels.join('');
  return `${labels.slice(0, -1).join(', ')} and ${labels.at(-1)}`;
}

/**
 * Read-only chips for a session's permissions (light pages): what it asks
 * for, unless `says` names them otherwise for screen readers ("Allowed
 * now:"). `compact` shows icons only, with the names as tooltips.
 */
export function permChips(list, { compact = false, testid = 'perm-chip', says = 'Asks for' } = {}) {
  const perms = sortPerms(list);
  // A screen reader reads the sentence; the chips are for the eye (a label
  // on a span is not read).
  return h('span', { class: `perm-list${compact ? ' perm-list-compact' : ''}` },
    h('span', { class: 'visually-hidden', text: `${says} ${labelPerms(perms) || 'nothing'}` }),
    perms.map((id) => {
      const p = BY_ID.get(id);
      return h('span', {
        class: `perm-tag perm-tag-${id}`, 'data-testid': testid, 'data-perm': id, 'aria-hidden': 'true',
        title: compact ? `${p.label}: ${p.desc.toLowerCase()}` : p.desc,
      }, icon(p.icon, compact ? 14 : 13), compact ? null : h('span', { text: p.label }));
    }));
}

// Live observation banner: who is watching this session read-only.
// Supervisors join running sessions to watch; the broker tells everyone in
// the session who they are, and this banner keeps it in plain sight.

import { h, icon } from './ui.js';

/** Returns { el, update(list) }; list is [{ name, role }] from the broker. */
export function observerBanner(self) {
  const text = h('span', { class: 'observer-text' });
  const el = h('div', { class: 'observer-banner', role: 'status', 'aria-live': 'polite', hidden: true, 'data-testid': 'observer-banner' },
    icon('eye', 15), text);
  return {
    el,
    update(list) {
      const others = (Array.isArray(list) ? list : []).filter((p) => p && typeof p.name === 'string' && p.name !== self?.username);
      // One person may watch from several tabs: named once.
      const names = [...new Set(others.map((p) => p.name))];
      window.tether.observers = names;
      el.hidden = names.length === 0;
      el.dataset.observers = names.join(',');
      text.textContent = names.length === 1
        ? `${names[0]} (supervisor) is watching this session, view only`
        : `${names.slice(0, -1).join(', ')} and ${names.at(-1)} (supervisors) are watching this session, view only`;
    },
  };
}

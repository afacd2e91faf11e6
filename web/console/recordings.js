// Recordings screen: search session archives by ticket, technician, user's
// computer, date and by what happened (Terminal used, files moved), and open
// one in the player. Technicians see their own sessions; supervisors and
// admins see all (the broker decides).

import * as api from './api.js';
import { formatBytes, formatDateTime, formatDuration, h, icon, shortId, timeAgo, toast } from './ui.js';

const STATES = {
  recording: ['Live', 'badge-active'],
  complete: ['Complete', 'badge-ended'],
  incomplete: ['Incomplete', 'badge-waiting'],
  failed: ['Failed', 'badge-failed'],
  deleted: ['Deleted', 'badge-ended'],
};


/**
 * The moment a day picked in the date fields starts here, plus days, as an
 * RFC 3339 time: the list shows when each session was recorded in the
 * supervisor's own time zone, so a day searched must be that day there, not
 * the broker's UTC day (in New York an evening session fell on the next day).
 */
export function dayStart(day, days) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day || '');
  if (!m) return day;
  const at = new Date(0);
  at.setFullYear(Number(m[1]), Number(m[2]) - 1, Number(m[3]) + days); // years below 100 too
  at.setHours(0, 0, 0, 0);
  return at.toISOString();
}

/** A badge for an archive's state. */
export function recordingBadge(state) {
  const [label, cls] = STATES[state] ?? [state || 'Unknown', 'badge-unknown'];
  return h('span', { class: `badge ${cls}`, 'data-testid': 'recording-state', 'data-state': state },
    h('span', { class: 'badge-dot', 'aria-hidden': 'true' }), label);
}

/**
 * When and why a deleted recording went, shown under its badge:
 * "Dec 5, 2026, 7:31 AM · kept 30 days" or "… · by alice"; the broker's
 * whole sentence is the cell's tooltip.
 */
export function deletionText(d) {
  const days = d.retention_days;
  const why = d.reason === 'retention' && days ? `kept ${days} ${days === 1 ? 'day' : 'days'}` : d.by ? `by ${d.by}` : '';
  return [d.at ? formatDateTime(d.at) : '', why].filter(Boolean).join(' · ');
}

/** Mounts the recordings screen into main. Returns an unmount function. */
export function mountRecordings(main, { navigate, user }) {
  let alive = true;
  let seq = 0;
  const saved = JSON.parse(sessionStorage.getItem('tether.recordings.filter') || '{}');

  const field = (id, label, attrs) => h('div', { class: 'field' },
    h('label', { for: id, class: 'label', text: label }),
    h('input', { id, class: 'input', autocomplete: 'off', spellcheck: 'false', ...attrs }));
  const form = h('form', { class: 'rec-search card', role: 'search', 'aria-label': 'Search recordings', 'data-testid': 'recording-search' },
    h('div', { class: 'rec-search-grid' },
      field('rec-ticket', 'Ticket', { type: 'search', name: 'ticket', placeholder: 'INC-1234', 'data-testid': 'filter-ticket' }),
      user.role === 'technician' ? null
        : field('rec-tech', 'Technician', { type: 'search', name: 'technician', placeholder: 'username', 'data-testid': 'filter-technician' }),
      field('rec-host', 'User\u2019s computer', { type: 'search', name: 'host', placeholder: 'hostname', 'data-testid': 'filter-host' }),
      field('rec-from', 'From', { type: 'date', name: 'from', 'data-testid': 'filter-from' }),
      field('rec-to', 'To', { type: 'date', name: 'to', 'data-testid': 'filter-to' })),
    h('div', { class: 'rec-search-row' },
      h('fieldset', { class: 'rec-has' },
        h('legend', { class: 'label', text: 'What happened' }),
        h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'shell', 'data-testid': 'filter-shell' }), icon('terminal', 15), 'Terminal was used'),
        h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'files', 'data-testid': 'filter-files' }), icon('folder', 15), 'Files were moved')),
      h('div', { class: 'rec-search-actions' },
        h('button', { type: 'button', class: 'btn btn-ghost btn-sm', 'data-testid': 'filter-clear', text: 'Clear' }),
        h('button', { type: 'submit', class: 'btn btn-primary btn-sm', 'data-testid': 'filter-submit' }, icon('search', 15), 'Search'))));
  for (const el of form.elements) {
    if (!el.name || !(el.name in saved)) continue;
    if (el.type === 'checkbox') el.checked = !!saved[el.name];
    else el.value = saved[el.name];
  }

  const results = h('div', { class: 'card table-card', 'data-testid': 'recordings-results' });
  // Polite: it says how many more came when older ones are shown.
  const count = h('span', { class: 'live-hint', 'aria-live': 'polite', 'data-testid': 'recordings-count' });
  // The search the list shows, and its rows so far: older ones are asked
  // for with the same filters, after the last row.
  let query = {};
  let shown = [];

  main.replaceChildren(
    h('header', { class: 'page-header' },
      h('div', {},
        h('h1', { class: 'page-title', text: 'Recordings' }),
        h('p', { class: 'page-subtitle', text: 'Every session is recorded by the broker and signed. Replay what happened, check it has not been altered, and download it for audit.' })),
      h('div', { class: 'page-actions' },
        h('a', { href: api.RECORDING_KEY_URL, class: 'btn btn-secondary', download: 'tether-recording-key.pub.pem', 'data-testid': 'public-key' },
          icon('shield', 16), 'Public key for auditors'))),
    form,
    h('section', { class: 'section' },
      h('div', { class: 'section-header' }, h('h2', { class: 'section-title', text: 'Sessions recorded' }), count),
      results));

  function filter() {
    const f = {};
    for (const el of form.elements) {
      if (!el.name) continue;
      if (el.type === 'checkbox') f[el.name] = el.checked;
      else if (el.value.trim()) f[el.name] = el.value.trim();
    }
    return f;
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    search();
  });
  form.querySelector('[data-testid="filter-clear"]').addEventListener('click', () => {
    form.reset();
    search();
  });
  form.addEventListener('change', (e) => {
    if (e.target.type === 'checkbox' || e.target.type === 'date') search();
  });

  async function search() {
    const f = filter();
    sessionStorage.setItem('tether.recordings.filter', JSON.stringify(f));
    const mine = ++seq;
    results.setAttribute('aria-busy', 'true');
    try {
      const q = { ...f, from: dayStart(f.from, 0), to: dayStart(f.to, 1) };
      const { recordings, more } = await api.searchRecordings(q);
      if (!alive || mine !== seq) return;
      query = q;
      render(recordings, more);
    } catch (err) {
      if (!alive || mine !== seq || err.status === 401) return;
      results.replaceChildren(h('div', { class: 'empty' },
        h('div', { class: 'empty-icon empty-icon-error' }, icon('alert', 28)),
        h('h3', { class: 'empty-title', text: 'Couldn\u2019t search recordings' }),
        h('p', { class: 'empty-text', 'data-testid': 'recordings-error', text: err.message })));
      count.textContent = '';
    } finally {
      results.removeAttribute('aria-busy');
    }
  }

  function countText(n, more) {
    return more
      ? `The newest ${n} recordings; older ones match too`
      : `${n} ${n === 1 ? 'recording' : 'recordings'}`;
  }

  function render(list, more) {
    shown = list;
    count.textContent = countText(list.length, more);
    if (list.length === 0) {
      const any = Object.values(filter()).some(Boolean);
      results.replaceChildren(h('div', { class: 'empty', 'data-testid': 'recordings-empty' },
        h('div', { class: 'empty-icon' }, icon('history', 28)),
        h('h3', { class: 'empty-title', text: any ? 'No recording matches' : 'No recordings yet' }),
        h('p', { class: 'empty-text', text: any ? 'Try a wider date range or fewer filters.' : 'Sessions are recorded from the moment someone connects; they appear here.' })));
      return;
    }
    results.replaceChildren(h('table', { class: 'table rec-table', 'data-testid': 'recordings-table' },
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col', text: 'Recorded' }),
        h('th', { scope: 'col', class: 'col-ticket', text: 'Ticket' }),
        h('th', { scope: 'col', class: 'col-tech', text: 'Technician' }),
        h('th', { scope: 'col', text: 'User\u2019s computer' }),
        h('th', { scope: 'col', class: 'col-length', text: 'Length' }),
        h('th', { scope: 'col', text: 'What happened' }),
        h('th', { scope: 'col', text: 'State' }),
        h('th', { scope: 'col', class: 'col-action' }, h('span', { class: 'visually-hidden', text: 'Play' })))),
      h('tbody', {}, list.map(row))));
    if (more) results.append(olderButton());
  }

  // Under the list while older recordings match: the next page, after the
  // last row, appended.
  function olderButton() {
    const btn = h('button', { type: 'button', class: 'btn btn-secondary btn-sm', 'data-testid': 'recordings-older' },
      icon('history', 15), h('span', { text: 'Show older recordings' }));
    const foot = h('div', { class: 'rec-more' }, btn);
    btn.addEventListener('click', async () => {
      const mine = seq;
      btn.disabled = true;
      btn.classList.add('is-loading');
      results.setAttribute('aria-busy', 'true');
      try {
        const { recordings, more } = await api.searchRecordings({ ...query, after: shown[shown.length - 1].session });
        if (!alive || mine !== seq) return;
        shown = [...shown, ...recordings];
        const rows = recordings.map(row);
        results.querySelector('tbody').append(...rows);
        count.textContent = countText(shown.length, more);
        if (more) return;
        foot.remove();
        // The button went: focus goes on to the first row it brought.
        rows.map((tr) => tr.querySelector('a')).find(Boolean)?.focus();
      } catch (err) {
        if (!alive || mine !== seq || err.status === 401) return;
        toast(err.message, 'error');
      } finally {
        btn.disabled = false;
        btn.classList.remove('is-loading');
        if (mine === seq) results.removeAttribute('aria-busy');
      }
    });
    return foot;
  }

  function row(r) {
    // A session still being recorded is live: watch it, read-only for
    // supervisors, rather than replay the part sealed so far.
    const live = r.state === 'recording';
    const href = live ? `#/session/${encodeURIComponent(r.session)}` : `#/recording/${encodeURIComponent(r.session)}`;
    const what = [
      r.shells ? h('span', { class: 'chip chip-shell', title: `${r.shells} terminal${r.shells > 1 ? 's' : ''}` }, icon('terminal', 13), 'Terminal') : null,
      r.files ? h('span', { class: 'chip chip-files', title: `${r.files} file transfer${r.files > 1 ? 's' : ''}` }, icon('folder', 13), `${r.files} file${r.files > 1 ? 's' : ''}`) : null,
      r.clipboard ? h('span', { class: 'chip', title: 'Clipboard shared' }, icon('clipboard', 13), 'Clipboard') : null,
    ].filter(Boolean);
    const playable = r.state !== 'deleted';
    const when = formatDateTime(r.started_at);
    const tr = h('tr', { class: playable ? 'row-link' : '', 'data-testid': 'recording-row', 'data-session-id': r.session },
      h('td', {}, h('div', { class: 'host-cell' },
        h('span', { class: 'host-name', title: when, text: when }),
        h('span', { class: 'host-meta mono', title: r.session, text: `${shortId(r.session)} · ${timeAgo(r.started_at)}` }),
        // In narrow windows the length moves here, under when.
        h('span', { class: 'host-meta rec-length-sub', text: live ? 'In progress' : `${r.duration_ms ? formatDuration(r.duration_ms) : '—'} · ${formatBytes(r.size_bytes)}` }))),
      h('td', { class: 'col-ticket' }, r.ticket ? h('span', { class: 'ticket', text: r.ticket, title: r.ticket }) : h('span', { class: 'muted', text: 'No ticket' })),
      h('td', { class: 'col-tech', text: r.technician || '—' }),
      // In narrower windows the technician moves under the computer's name.
      h('td', {}, h('div', { class: 'host-cell' },
        r.host?.hostname ? h('span', { class: 'host-name', text: r.host.hostname }) : h('span', { class: 'muted', text: '—' }),
        r.technician ? h('span', { class: 'host-meta rec-tech-sub', text: `by ${r.technician}` }) : null)),
      h('td', { class: 'tabular col-length' }, live ? h('span', { class: 'muted', text: 'In progress' }) : h('div', { class: 'host-cell' },
        h('span', { text: r.duration_ms ? formatDuration(r.duration_ms) : '—' }),
        h('span', { class: 'host-meta', text: formatBytes(r.size_bytes) }))),
      h('td', { class: 'col-what' }, what.length ? h('div', { class: 'chips' }, what) : h('span', { class: 'muted', text: 'Screen only' })),
      h('td', { title: r.deletion?.message || r.note || null }, r.deletion
        ? h('div', { class: 'host-cell rec-deletion' }, recordingBadge(r.state),
          h('span', { class: 'host-meta', 'data-testid': 'recording-deletion', text: deletionText(r.deletion) }))
        : recordingBadge(r.state)),
      // The row's link, named for the recording it opens (its visible
      // word first); a click anywhere else on the row opens it too.
      h('td', { class: 'col-action' }, live
        ? h('a', { href, class: 'btn btn-secondary btn-sm', 'data-testid': 'watch-live', title: 'Watch live', 'aria-label': `Watch live: ${r.ticket || 'no ticket'}, started ${when}` },
          icon('eye', 14), h('span', { class: 'watch-label', text: 'Watch live' }))
        : playable ? h('a', { href, class: 'btn btn-secondary btn-sm', 'data-testid': 'play-recording', title: 'Play', 'aria-label': `Play recording of ${r.ticket || 'no ticket'}, ${when}` },
          icon('play', 14), h('span', { class: 'watch-label', text: 'Play' })) : null));
    if (playable) {
      tr.addEventListener('click', (e) => {
        if (!e.target.closest('a')) navigate(href);
      });
    }
    return tr;
  }

  results.replaceChildren(h('div', { class: 'skeleton-list', role: 'status' },
    h('span', { class: 'visually-hidden', text: 'Loading recordings\u2026' }),
    [0, 1, 2].map(() => h('div', { class: 'skeleton-row' }, [0, 1, 2, 3, 4].map(() => h('span', { class: 'skeleton' }))))));
  search();

  return () => {
    alive = false;
  };
}

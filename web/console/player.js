// Recording player: the session's video (WebM segments played in turn on
// one timeline), markers for what happened (consent, permissions, Files,
// Terminal, chat, clipboard, input bursts), speeds 1×–8×, seeking, each
// terminal's transcript in asciinema-player kept at the timeline's time, the
// event list, and the download and verify buttons.
//
// Time is "t": milliseconds since the recording started, the unit of
// events.jsonl ("t") and of the manifest's segment start_ms.

import * as api from './api.js';
import { listPerms, ourWords, terminalName } from './permissions.js';
import { recordingBadge } from './recordings.js';
import { RecordedScreen } from './screen.js';
import { describeHost, formatBytes, formatDateTime, formatDuration, h, icon, toast } from './ui.js';

const SPEEDS = [1, 2, 4, 8];
const INPUT_BUCKETS = 400; // input bars on the timeline, at most

// Marker categories, in the order of the legend.
const CATEGORIES = [
  { id: 'consent', label: 'Consent', icon: 'shieldCheck' },
  { id: 'permissions', label: 'Permissions', icon: 'hand' },
  { id: 'files', label: 'Files', icon: 'folder' },
  { id: 'shell', label: 'Terminal', icon: 'terminal' },
  { id: 'chat', label: 'Chat', icon: 'send' },
  { id: 'clipboard', label: 'Clipboard', icon: 'clipboard' },
  { id: 'input', label: 'Input bursts', icon: 'keyboard' },
  { id: 'session', label: 'Session', icon: 'activity' },
];

/** Which marker category an event type belongs to. */
export function categoryOf(type) {
  if (type.startsWith('consent.')) return type === 'consent.changed' ? 'permissions' : 'consent';
  if (type.startsWith('permission.') || type.startsWith('control.') || type === 'display.selected') return 'permissions';
  if (type.startsWith('file.')) return 'files';
  if (type.startsWith('shell.')) return 'shell';
  if (type.startsWith('chat.') || type === 'chat') return 'chat';
  if (type === 'clipboard') return 'clipboard';
  if (type === 'input') return 'input';
  return 'session';
}

const LABELS = {
  'recording.started': 'Recording started',
  'recording.finished': 'Recording finished',
  'recording.failed': 'Recording failed',
  'recording.gap': 'Not recorded',
  'session.created': 'Session created',
  'session.ended': 'Session ended',
  'session.handed_over': 'Session handed over',
  'host.connected': 'User\u2019s computer connected',
  'viewer.joined': 'Technician joined',
  'viewer.disconnected': 'Technician cut off',
  'participant.invited': 'Colleague invited',
  'consent.requested': 'Consent asked',
  'consent.granted': 'Consent granted',
  'consent.denied': 'Consent denied',
  'consent.timeout': 'Consent timed out',
  'consent.not_shown': 'Question not shown',
  'consent.changed': 'User changed permissions',
  'permission.requested': 'More permissions asked',
  'control.taken': 'Control taken',
  'control.released': 'Control released',
  'display.selected': 'Display switched',
  'message.refused': 'Message refused',
  'file.transfer': 'File transferred',
  'file.refused': 'File refused',
  'file.interrupted': 'File transfer stopped',
  'shell.opened': 'Terminal opened',
  'shell.closed': 'Terminal closed',
  'shell.command': 'Terminal command',
  clipboard: 'Clipboard',
  input: 'Input',
};

/** Who did it: a technician's name, "The user" or "broker". */
const actorName = (e) => (e.actor === 'user' ? 'The user' : e.actor);

/** One line saying what an event was, from its detail. */
export function summary(e) {
  const d = e.detail || {};
  const list = (v) => (Array.isArray(v) && listPerms(v)) || 'nothing';
  switch (e.type) {
    // The actor is shown under the summary: the summary does not repeat it.
    case 'consent.requested': return d.viewer && d.viewer !== e.actor ? `${d.viewer} asks for ${list(d.permissions)}` : `Asks for ${list(d.permissions)}`;
    case 'consent.granted': return `For ${d.viewer}: ${list(d.granted)}`;
    case 'consent.denied': return `${d.viewer} was refused ${list(d.requested)}`;
    case 'consent.timeout': return `No answer to ${d.viewer}`;
    case 'consent.changed': return d.change ? `The user ${ourWords(d.change)}` : (d.paused ? 'Paused' : 'Permissions updated');
    case 'permission.requested': return `Asks for ${list(d.permissions)}`;
    case 'input': {
      const parts = [['moves', 'move', 'moves'], ['clicks', 'click', 'clicks'], ['wheels', 'scroll', 'scrolls'], ['keys', 'key', 'keys'],
        ['text', 'text entry', 'text entries']].filter(([k]) => d[k]).map(([k, one, many]) => `${d[k]} ${d[k] === 1 ? one : many}`);
      if (d.span_ms) return `${d.total} input events in ${formatDuration(d.span_ms)}`;
      return `${parts.join(', ') || 'Input'} in one second`;
    }
    case 'clipboard':
      return `${d.direction === 'from_host' ? 'From the user' : 'To the user'}: ${formatBytes(d.size)} (content not recorded)`;
    case 'file.transfer':
      return `${d.direction === 'upload' ? 'Upload' : 'Download'} ${d.name || ''} ${formatBytes(d.size)}`;
    case 'file.interrupted':
      return `${d.direction === 'upload' ? 'Upload' : 'Download'} ${d.name || ''} stopped after ${formatBytes(d.relayed_bytes)} of ${formatBytes(d.size)}`;
    case 'file.refused':
      return `${d.direction === 'upload' ? 'Upload' : 'Download'} ${d.name || d.path || ''} ${formatBytes(d.size)}${d.reason ? `: ${d.reason}` : ''}`;
    case 'shell.opened': return `${terminalName(d.channel)} by ${e.actor}`;
    case 'shell.closed': return `${terminalName(d.channel)}${d.code !== undefined ? ` ended${d.code ? ` with exit code ${d.code}` : ''}` : ''}`;
    case 'shell.command': return `$ ${d.command || ''}`;
    case 'session.ended': return d.reason || '';
    case 'session.created': return d.technician && d.technician !== e.actor ? `For ${d.technician}` : '';
    case 'host.connected': return describeHost(d);
    case 'viewer.joined': return `As ${d.role || 'technician'}`;
    case 'viewer.disconnected': return `${d.user || ''}: ${d.reason || ''}`;
    case 'display.selected': return `Display ${Number(d.display) + 1}`;
    case 'message.refused': return d.reason || '';
    case 'recording.finished': return `${d.frames_written ?? 0} of ${d.frames_relayed ?? 0} frames written`;
    case 'recording.gap': {
      const parts = [['events_lost', 'event or terminal output', 'events or terminal outputs'], ['input_counts_lost', 'input event', 'input events']]
        .filter(([k]) => d[k]).map(([k, one, many]) => `${d[k]} ${d[k] === 1 ? one : many}`);
      return `${parts.join(' and ')} missing: the broker\u2019s disk fell behind`;
    }
    case 'participant.invited': case 'session.handed_over': return d.colleague || '';
    default: return '';
  }
}

/**
 * What an auditor checks a moved file against: its whole SHA-256, as the
 * user's computer hashed the file, and whether the bytes the broker relayed
 * hash the same (relayed_sha256, for a transfer it carried whole). A
 * shortened hash cannot be compared with the file's, and a difference is
 * the one thing about a transfer they must not miss.
 */
export function fileHashes(e) {
  const d = e.detail || {};
  if (!e.type.startsWith('file.') || !d.sha256) return [];
  const lines = [{ text: `SHA-256 ${d.sha256}`, bad: false }];
  if (d.relayed_sha256 && d.relayed_sha256 !== d.sha256) {
    lines.push({ text: `The bytes the broker relayed have another SHA-256: ${d.relayed_sha256}`, bad: true });
  } else if (d.relayed_sha256) {
    lines[0].text += ' (the broker relayed the same bytes)';
  }
  return lines;
}

let castScript = null;
/** Loads the vendored asciinema-player once. */
function loadAsciinema() {
  if (window.AsciinemaPlayer) return Promise.resolve(window.AsciinemaPlayer);
  if (!castScript) {
    castScript = new Promise((resolve, reject) => {
      const css = h('link', { rel: 'stylesheet', href: '/console/vendor/asciinema-player/asciinema-player.css' });
      const js = h('script', { src: '/console/vendor/asciinema-player/asciinema-player.min.js' });
      js.addEventListener('load', () => resolve(window.AsciinemaPlayer));
      js.addEventListener('error', () => reject(new Error('The transcript player could not be loaded.')));
      document.head.append(css, js);
    });
  }
  return castScript;
}

/** Mounts the player for recording id into main. Returns an unmount function. */
export function mountPlayer(main, { id, navigate }) {
  let alive = true;
  let rec = null;
  let events = [];
  let segments = []; // the video parts, in order, each with its end and its index
  let segmentNamed = new Map();
  let shells = [];
  let duration = 0;
  let t = 0;
  let playing = false;
  let speed = 1;
  let last = 0;
  let raf = 0;
  let activeShell = null; // { part, player, el }
  let hidden = new Set();
  let currentEvent = -1;
  // The event Next and Previous stepped to last (an index into events),
  // and the time they left the clock at: while the clock is still there
  // they step from it, one event at a time, even those a few milliseconds
  // apart or at the same one. Once it has moved (played, seeked), they
  // step from the time instead.
  let cursor = -1;
  let cursorT = 0;
  // segment and frameTime: the frame on screen, its segment and its time on
  // the timeline; frames: how many were drawn.
  const hooks = { t: 0, duration: 0, playing: false, speed: 1, segment: null, frameTime: -1, frames: 0, markers: {}, shells: 0, shellTime: null, verify: null, ready: false, error: '' };
  window.tether.player = hooks;

  const NO_VIDEO = 'No video here: the screen was not shared or did not change.';
  const noVideoText = h('span', { text: NO_VIDEO });
  const noVideo = h('div', { class: 'player-novideo', 'data-testid': 'player-novideo', hidden: true }, icon('eyeOff', 26), noVideoText);
  // Until the recording's summary and events are in, nothing is known about
  // its video: say it is on its way rather than that there is none.
  const loading = h('div', { class: 'player-novideo', role: 'status', 'data-testid': 'player-loading' },
    h('span', { class: 'spinner spinner-light', 'aria-hidden': 'true' }), h('span', { text: 'Loading the recording\u2026' }));
  const canvas = h('canvas', { class: 'player-video', 'data-testid': 'player-video', role: 'img', 'aria-label': 'The user\u2019s screen as recorded', hidden: true });
  let videoError = null; // { name, message }: why a segment cannot be shown
  let lastDraw = 0; // when the last frame was drawn (performance.now())
  let behindSince = 0; // since when the picture has been behind the clock
  const screen = new RecordedScreen(canvas, (name) => api.recordingPart(id, name), {
    onFrame(name, ms) {
      lastDraw = performance.now();
      const seg = segmentNamed.get(name);
      Object.assign(hooks, { segment: name, frameTime: (seg?.start_ms ?? 0) + ms, frames: hooks.frames + 1 });
      if (videoError?.name === name) {
        videoError = null;
        syncStage();
      }
    },
    onError(err, name) {
      videoError = { name, message: err.message };
      syncStage();
    },
  });
  const stage = h('div', { class: 'player-stage' }, canvas, noVideo, loading);
  const playBtn = h('button', { type: 'button', class: 'player-play', 'aria-label': 'Play', 'data-testid': 'player-play' }, icon('play', 18));
  const prevBtn = h('button', { type: 'button', class: 'icon-btn player-jump', title: 'Previous event', 'aria-label': 'Previous event', 'data-testid': 'player-prev' }, icon('back', 16));
  const nextBtn = h('button', { type: 'button', class: 'icon-btn player-jump', title: 'Next event', 'aria-label': 'Next event', 'data-testid': 'player-next' }, icon('send', 16));
  const timeText = h('span', { class: 'player-time tabular', 'data-testid': 'player-time', text: '0:00 / 0:00' });
  const speedGroup = h('div', { class: 'segmented player-speeds', role: 'group', 'aria-label': 'Playback speed' },
    SPEEDS.map((s) => h('button', { type: 'button', class: `seg-btn${s === 1 ? ' is-active' : ''}`, 'data-speed': String(s), 'data-testid': 'player-speed', 'aria-pressed': s === 1 ? 'true' : 'false', text: `${s}\u00d7` })));
  const track = h('div', { class: 'timeline-track' });
  const markersEl = h('div', { class: 'timeline-markers', 'data-testid': 'timeline-markers' });
  const playhead = h('div', { class: 'timeline-head', 'aria-hidden': 'true' });
  const timeline = h('div', {
    class: 'timeline', role: 'slider', tabindex: '0', 'aria-label': 'Seek', 'aria-valuemin': '0',
    'data-testid': 'timeline',
  }, track, markersEl, playhead);
  const legend = h('div', { class: 'timeline-legend', 'data-testid': 'timeline-legend' });
  const eventList = h('ol', { class: 'event-list', 'data-testid': 'event-list' });
  const eventFilters = h('div', { class: 'event-filters' });
  const shellTabs = h('div', { class: 'tabs shell-tabs', role: 'tablist', 'aria-label': 'Terminals' });
  const shellStage = h('div', { class: 'shell-stage', id: 'player-shell', role: 'tabpanel', 'data-testid': 'shell-stage' });
  // The transcript follows the timeline: its player's own keys (Space
  // plays, arrows seek, f goes full screen) would run it apart from the
  // video and the events. Tab still moves on.
  shellStage.addEventListener('keydown', (ev) => ev.stopPropagation(), true);
  const shellSection = h('section', { class: 'card player-shells', hidden: true, 'data-testid': 'player-shells' },
    h('div', { class: 'player-card-head' }, h('h2', { class: 'section-title' }, icon('terminal', 16), 'Terminal transcript'), shellTabs),
    shellStage);
  const verifyBtn = h('button', { type: 'button', class: 'btn btn-secondary', 'data-testid': 'verify-recording' }, icon('shieldCheck', 16), h('span', { text: 'Verify integrity' }));
  const downloadLink = h('a', { class: 'btn btn-secondary', href: api.recordingDownloadURL(id), download: `tether-${id}.zip`, 'data-testid': 'download-recording' }, icon('download', 16), 'Download archive');
  const verifySlot = h('div', { class: 'verify-slot', 'data-testid': 'verify-result' });
  const titleMeta = h('div', { class: 'player-meta' });
  const badgeSlot = h('span', {});
  const noteSlot = h('div', { class: 'player-note' });

  main.replaceChildren(
    h('header', { class: 'page-header player-header' },
      h('div', { class: 'player-heading' },
        h('a', { href: '#/recordings', class: 'btn btn-ghost btn-sm player-back' }, icon('back', 15), 'Recordings'),
        h('div', { class: 'player-title-row' }, h('h1', { class: 'page-title', text: 'Session recording' }), badgeSlot),
        titleMeta),
      h('div', { class: 'page-actions' }, verifyBtn, downloadLink)),
    verifySlot,
    noteSlot,
    h('div', { class: 'player-layout' },
      h('div', { class: 'player-main' },
        h('section', { class: 'card player-card' },
          stage,
          h('div', { class: 'player-controls' },
            prevBtn, playBtn, nextBtn, timeText,
            h('div', { class: 'player-controls-right' }, h('span', { class: 'player-speed-label', text: 'Speed' }), speedGroup)),
          h('div', { class: 'timeline-wrap' }, timeline, legend)),
        shellSection),
      h('aside', { class: 'card player-events', 'aria-label': 'Events' },
        h('div', { class: 'player-card-head' }, h('h2', { class: 'section-title' }, icon('history', 16), 'Events'), h('span', { class: 'live-hint', 'data-testid': 'event-count' })),
        eventFilters,
        eventList)));

  // ---- Loading ----------------------------------------------------------------

  async function load() {
    try {
      const [r, ev] = await Promise.all([api.getRecording(id), api.recordingEvents(id)]);
      if (!alive) return;
      rec = r;
      events = ev.events || [];
      if (!ev.complete && ev.error) {
        noteSlot.replaceChildren(h('div', { class: 'alert alert-error', role: 'alert' }, icon('alert', 16),
          h('span', { text: `The event log stops early: ${ev.error}. Verify the archive.` })));
      } else if (!ev.complete) {
        noteSlot.replaceChildren(h('div', { class: 'alert alert-info', role: 'status' }, icon('alert', 16),
          h('span', { text: `The player shows the first ${events.length.toLocaleString()} events; the archive holds more. Download it to read them all.` })));
      }
      setup();
    } catch (err) {
      if (!alive || err.status === 401) return;
      hooks.error = err.message;
      main.replaceChildren(h('div', { class: 'empty', 'data-testid': 'player-error' },
        h('div', { class: 'empty-icon empty-icon-error' }, icon('alert', 28)),
        h('h3', { class: 'empty-title', text: playerErrorTitle(err) }),
        h('p', { class: 'empty-text', text: err.message }),
        h('a', { href: '#/recordings', class: 'btn btn-secondary', text: 'Back to recordings' })));
    }
  }

  /** The heading over the broker's own explanation of why nothing plays. */
  function playerErrorTitle(err) {
    if (err.code === 'recording_deleted') return 'Recording deleted';
    if (err.code === 'recording_missing') return 'Recording files missing';
    if (err.status === 404) return 'No such recording';
    return 'Couldn\u2019t open the recording';
  }

  function setup() {
    const m = rec.manifest;
    segments = m.parts.filter((p) => p.kind === 'video').map((p, index) => ({ ...p, end: p.start_ms + p.duration_ms, index }));
    segmentNamed = new Map(segments.map((s) => [s.name, s]));
    shells = m.parts.filter((p) => p.kind === 'shell');
    const lastEvent = events.length ? events[events.length - 1].t : 0;
    const ended = m.ended_at ? Date.parse(m.ended_at) - Date.parse(m.started_at) : 0;
    // A recording still being made has run until now, not until its last event.
    const live = rec.state === 'recording';
    const sofar = live ? api.serverNow() - Date.parse(m.started_at || rec.started_at) : 0;
    duration = Math.max(lastEvent, ended, Number.isFinite(sofar) ? sofar : 0, ...segments.map((s) => s.end), 1000);
    hooks.duration = duration;
    timeline.setAttribute('aria-valuemax', String(Math.round(duration / 1000)));

    badgeSlot.replaceChildren(recordingBadge(rec.state));
    const host = rec.host?.hostname;
    titleMeta.replaceChildren(...[
      meta('ticket', rec.ticket || 'No ticket', 'recording-ticket'),
      meta('user', rec.technician || '—'),
      host ? meta('monitor', host) : null,
      meta('clock', `${formatDateTime(rec.started_at)} · ${formatDuration(duration)}${live ? ' so far' : ''}`),
      h('span', { class: 'player-meta-item mono', title: rec.session, text: rec.session }),
    ].filter(Boolean));
    if (rec.state === 'incomplete' || rec.state === 'failed') {
      noteSlot.append(h('div', { class: 'alert alert-info', role: 'status' }, icon('info', 16),
        h('span', { text: rec.note || 'This recording is incomplete.' })));
    }
    loading.remove();
    drawMarkers();
    drawEvents();
    drawShellTabs();
    hooks.ready = true;
    render();
    // The first picture loads at once; it shows only where the timeline has video.
    if (segments.length) screen.prefetch(segments[0].name);
    syncVideo();
  }

  function meta(ic, text, testid) {
    return h('span', { class: 'player-meta-item', 'data-testid': testid || null }, icon(ic, 14), text);
  }

  // ---- Timeline -----------------------------------------------------------------

  function pct(ms) {
    return `${Math.min(100, Math.max(0, (ms / duration) * 100))}%`;
  }

  function drawMarkers() {
    const counts = {};
    const nodes = [];
    // Video coverage under the markers.
    track.replaceChildren(...segments.map((s) => {
      const el = h('span', { class: 'timeline-video' });
      el.style.left = pct(s.start_ms);
      el.style.width = `${Math.max(0.2, ((s.end - s.start_ms) / duration) * 100)}%`;
      return el;
    }));
    // Input is summed per second; on a long session the bursts are summed
    // again into at most INPUT_BUCKETS bars, so the timeline stays light.
    const bucketMS = Math.max(1000, duration / INPUT_BUCKETS);
    const buckets = new Map();
    for (const e of events) {
      if (e.type !== 'input') continue;
      const k = Math.floor(e.t / bucketMS);
      const b = buckets.get(k) ?? { ...e, detail: { total: 0, span_ms: bucketMS } };
      b.detail.total += e.detail?.total || 0;
      buckets.set(k, b);
    }
    const maxInput = Math.max(1, ...[...buckets.values()].map((e) => e.detail.total));
    const marked = [...events.filter((e) => e.type !== 'input'), ...buckets.values()];
    for (const e of marked) {
      const cat = categoryOf(e.type);
      if (cat === 'session' && !['session.ended', 'host.connected', 'viewer.joined', 'recording.failed', 'recording.gap'].includes(e.type)) continue;
      counts[cat] = (counts[cat] || 0) + 1;
      if (hidden.has(cat)) continue;
      const label = [`${formatDuration(e.t)} · ${LABELS[e.type] || e.type}${summary(e) ? `: ${summary(e)}` : ''}${e.actor ? ` (${actorName(e)})` : ''}`,
        ...fileHashes(e).map((l) => l.text)].join('\n');
      // Markers are for the mouse: the timeline is one Tab stop (its keys
      // seek and jump between events) and the events list reaches each one.
      // Not buttons: a slider holds no controls of its own.
      const el = h('span', {
        class: `marker marker-${cat}`, title: label, 'aria-hidden': 'true',
        'data-testid': 'timeline-marker', 'data-category': cat, 'data-type': e.type,
      });
      el.style.left = pct(e.t);
      if (cat === 'input') el.style.height = `${30 + 70 * Math.min(1, (e.detail?.total || 0) / maxInput)}%`;
      el.addEventListener('click', (ev) => {
        ev.stopPropagation();
        seek(Math.max(0, e.t - 500));
      });
      nodes.push(el);
    }
    markersEl.replaceChildren(...nodes);
    hooks.markers = counts;
    legend.replaceChildren(...CATEGORIES.filter((c) => counts[c.id]).map((c) => {
      const btn = h('button', {
        type: 'button', class: `legend-item${hidden.has(c.id) ? ' is-off' : ''}`, 'aria-pressed': hidden.has(c.id) ? 'false' : 'true',
        'data-testid': 'legend-item', 'data-category': c.id,
      }, h('span', { class: `legend-swatch marker-${c.id}`, 'aria-hidden': 'true' }), c.label, h('span', { class: 'tab-count', text: String(counts[c.id]) }));
      btn.addEventListener('click', () => {
        if (hidden.has(c.id)) hidden.delete(c.id);
        else hidden.add(c.id);
        drawMarkers();
        drawEvents();
      });
      return btn;
    }));
  }

  function timeFromPointer(ev) {
    const r = timeline.getBoundingClientRect();
    return Math.min(duration, Math.max(0, ((ev.clientX - r.left) / r.width) * duration));
  }
  let dragging = false;
  timeline.addEventListener('pointerdown', (ev) => {
    dragging = true;
    timeline.setPointerCapture(ev.pointerId);
    seek(timeFromPointer(ev));
  });
  timeline.addEventListener('pointermove', (ev) => {
    if (dragging) seek(timeFromPointer(ev));
  });
  timeline.addEventListener('pointerup', () => { dragging = false; });
  timeline.addEventListener('keydown', (ev) => {
    const step = ev.shiftKey ? 30000 : 5000;
    if (ev.key === 'ArrowRight') seek(Math.min(duration, t + step));
    else if (ev.key === 'ArrowLeft') seek(Math.max(0, t - step));
    else if (ev.key === 'Home') seek(0);
    else if (ev.key === 'End') seek(duration);
    else if (ev.key === ' ') toggle();
    else if (ev.key === 'PageDown' || ev.key === ']') jump(1);
    else if (ev.key === 'PageUp' || ev.key === '[') jump(-1);
    else return;
    ev.preventDefault();
  });

  // ---- Events -------------------------------------------------------------------

  function drawEvents() {
    const shown = events.map((e, i) => ({ e, i })).filter(({ e }) => !hidden.has(categoryOf(e.type)));
    // One fragment, not an argument per row: a long session's hundred
    // thousand rows would overflow the call stack as arguments.
    const rows = document.createDocumentFragment();
    for (const row of shown.map(({ e, i }) => {
      const cat = categoryOf(e.type);
      const li = h('li', { class: 'event-row', 'data-index': String(i), 'data-testid': 'event-row', 'data-type': e.type },
        h('button', { type: 'button', class: 'event-btn' },
          h('span', { class: 'event-time tabular', text: formatDuration(e.t) }),
          h('span', { class: `event-dot marker-${cat}`, 'aria-hidden': 'true' }),
          h('span', { class: 'event-body' },
            h('span', { class: 'event-title', text: LABELS[e.type] || e.type }),
            summary(e) ? h('span', { class: 'event-summary', text: summary(e) }) : null,
            e.actor ? h('span', { class: 'event-actor', text: actorName(e) }) : null)),
        // Outside the button, so that a hash can be selected and copied.
        fileHashes(e).map((l) => h('div', {
          class: `event-hash mono${l.bad ? ' is-bad' : ''}`, 'data-testid': 'event-hash', 'data-mismatch': l.bad ? 'true' : null, text: l.text,
        })));
      li.firstChild.addEventListener('click', () => seekEvent(i));
      return li;
    })) rows.append(row);
    eventList.replaceChildren(rows);
    const count = main.querySelector('[data-testid="event-count"]');
    if (count) count.textContent = `${events.length} events`;
    currentEvent = -1;
  }

  function highlightEvent() {
    let idx = -1;
    if (t === cursorT && cursor >= 0 && cursor < events.length) idx = cursor;
    else for (let i = 0; i < events.length && events[i].t <= t; i++) idx = i;
    if (idx === currentEvent) return;
    currentEvent = idx;
    eventList.querySelector('.is-current')?.classList.remove('is-current');
    const row = eventList.querySelector(`[data-index="${idx}"]`);
    if (row) {
      row.classList.add('is-current');
      showInList(row);
    }
  }

  /**
   * Scrolls the events list, and only it (not the page), so that row shows:
   * while playing and after a seek alike.
   */
  function showInList(row) {
    const list = eventList.getBoundingClientRect();
    const r = row.getBoundingClientRect();
    if (r.top < list.top) eventList.scrollTop -= list.top - r.top;
    else if (r.bottom > list.bottom) eventList.scrollTop += Math.min(r.bottom - list.bottom, r.top - list.top);
  }

  // ---- Video --------------------------------------------------------------------

  function lastSegmentBefore(ms) {
    let found = null;
    for (const s of segments) if (s.start_ms <= ms) found = s;
    return found;
  }

  // The picture, or where there is none, why.
  function syncStage(seg = lastSegmentBefore(t)) {
    const why = seg ? (seg.name === videoError?.name ? videoError.message : '') : NO_VIDEO;
    if (noVideoText.textContent !== why) noVideoText.textContent = why; // on every animation frame
    noVideo.hidden = !why;
    canvas.hidden = Boolean(why);
  }

  // The picture at t: the segment's there, or between segments (the
  // screen did not change) the last frame of the one before.
  function syncVideo() {
    const seg = lastSegmentBefore(t);
    syncStage(seg);
    if (!seg) return;
    screen.show(seg.name, Math.min(t, seg.end) - seg.start_ms);
    const next = segments[seg.index + 1];
    if (next && next.start_ms - t < 2000 * speed) screen.prefetch(next.name);
  }

  // ---- Shells -------------------------------------------------------------------

  function drawShellTabs() {
    if (!shells.length) return;
    shellSection.hidden = false;
    hooks.shells = shells.length;
    shellTabs.replaceChildren(...shells.map((p, i) => {
      const tab = h('button', {
        type: 'button', role: 'tab', class: 'tab', id: `player-shell-tab-${i}`, 'aria-controls': 'player-shell', 'aria-selected': 'false', tabindex: '-1',
        'data-testid': 'shell-tab',
      }, icon('terminal', 14), `Terminal ${i + 1} · ${formatDuration(p.start_ms)}`);
      tab.addEventListener('click', () => openShell(i));
      tab.addEventListener('keydown', (e) => onShellTabKey(i, e));
      return tab;
    }));
    openShell(0);
  }

  /**
   * The transcripts' tabs are one Tab stop: Left and Right go to the
   * previous and next (round the ends), Home and End to the first and last.
   */
  function onShellTabKey(i, e) {
    if (e.altKey || e.ctrlKey || e.metaKey || e.shiftKey) return;
    const n = shells.length;
    const to = { ArrowLeft: (i - 1 + n) % n, ArrowRight: (i + 1) % n, Home: 0, End: n - 1 }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    openShell(to);
    shellTabs.children[to].focus();
  }

  async function openShell(i) {
    const part = shells[i];
    [...shellTabs.children].forEach((tab, k) => {
      tab.classList.toggle('is-active', k === i);
      tab.setAttribute('aria-selected', k === i ? 'true' : 'false');
      tab.tabIndex = k === i ? 0 : -1;
    });
    shellStage.setAttribute('aria-labelledby', `player-shell-tab-${i}`);
    activeShell?.player?.dispose?.();
    const el = h('div', { class: 'shell-player', 'data-testid': 'shell-player' });
    // Before the terminal opens its transcript is empty: the note says when.
    const note = h('div', { class: 'shell-note', 'data-testid': 'shell-note', hidden: true });
    shellStage.replaceChildren(el, note);
    activeShell = { part, player: null, el, note, index: i };
    try {
      const AP = await loadAsciinema();
      if (!alive || activeShell?.part !== part) return;
      activeShell.player = AP.create(api.recordingPartURL(id, part.name), el, {
        preload: true, controls: false, fit: 'width', theme: 'asciinema', terminalFontSize: '13px', idleTimeLimit: undefined,
      });
      syncShell();
    } catch (err) {
      shellStage.replaceChildren(h('div', { class: 'alert alert-error' }, icon('alert', 16), h('span', { text: err.message })));
    }
  }

  // The transcript follows the timeline on every frame, so that a line
  // shows when it was written: five times a second, output came up to a
  // fifth of a second late, and later at higher speeds. The transcript
  // draws what it is given on the next frame, so while playing it is
  // given what happened up to that frame's time: ahead, the timeline's
  // step from the last frame to this one. Its seeks run one at a time; one
  // asked for meanwhile goes to where the timeline is when the one under
  // way is done.
  let castSeeking = false;
  let castBehind = false;
  let castAhead = 0;
  function syncShell(ahead = 0) {
    const s = activeShell;
    if (!s?.player) return;
    castAhead = ahead;
    if (castSeeking) {
      castBehind = true;
      return;
    }
    const at = Math.max(0, (Math.min(duration, t + castAhead) - s.part.start_ms) / 1000);
    hooks.shellTime = at;
    s.note.hidden = t >= s.part.start_ms;
    if (!s.note.hidden) {
      // "at 0:00" while the clock says 0:00 too would read as now.
      const later = Math.floor(s.part.start_ms / 1000) > Math.floor(t / 1000);
      s.note.textContent = `Terminal ${s.index + 1} has not opened yet${later ? `: it opens at ${formatDuration(s.part.start_ms)}` : ''}.`;
    }
    castSeeking = true;
    castBehind = false;
    // Not loaded yet, it refuses: the next frame tries again.
    Promise.resolve().then(() => s.player.seek(at)).catch(() => {}).finally(() => {
      castSeeking = false;
      if (castBehind && alive) syncShell(castAhead);
    });
  }

  // ---- Clock --------------------------------------------------------------------

  function clampTime(ms) {
    return Math.min(duration, Math.max(0, ms));
  }

  function seek(ms) {
    t = clampTime(ms);
    syncVideo();
    syncShell();
    render();
  }

  function toggle() {
    if (!rec) return;
    if (!playing && t >= duration) t = 0;
    playing = !playing;
    last = performance.now();
    syncVideo();
    render();
    if (playing) loop();
  }

  function setSpeed(s) {
    speed = s;
    for (const b of speedGroup.children) {
      const on = Number(b.dataset.speed) === s;
      b.classList.toggle('is-active', on);
      b.setAttribute('aria-pressed', on ? 'true' : 'false');
    }
    render();
  }

  function loop() {
    cancelAnimationFrame(raf);
    raf = requestAnimationFrame((now) => {
      if (!alive || !playing) return;
      // An animation frame's time may come before the click that
      // started playing: the clock never goes back. Nor does it leap
      // when the page was held up (a busy machine, a hidden tab).
      let step = Math.min(Math.max(0, now - last), 50) * speed;
      // A busy screen at a high speed can outrun the decoder: the clock
      // waits for the picture, within reason: a second without a new
      // picture (a decoder that stopped) and it goes on.
      if (screen.behind() <= 250) behindSince = 0;
      else if (!behindSince) behindSince = now;
      if (behindSince && now - Math.max(behindSince, lastDraw) < 1000) step = 0;
      t += step;
      last = now;
      if (t >= duration) {
        t = duration;
        playing = false;
      }
      syncVideo();
      syncShell(playing ? step : 0);
      render();
      if (playing) loop();
    });
  }

  function render() {
    playhead.style.left = pct(t);
    timeline.setAttribute('aria-valuenow', String(Math.round(t / 1000)));
    timeText.textContent = `${formatDuration(t)} / ${formatDuration(duration)}`;
    playBtn.replaceChildren(icon(playing ? 'pause' : 'play', 18));
    playBtn.setAttribute('aria-label', playing ? 'Pause' : 'Play');
    highlightEvent();
    const at = events[currentEvent];
    timeline.setAttribute('aria-valuetext', at ? `${formatDuration(t)}, ${LABELS[at.type] || at.type}` : formatDuration(t));
    Object.assign(hooks, { t, playing, speed });
  }

  playBtn.addEventListener('click', toggle);
  // To event i of the list: its time, and it is the current one even
  // where others share that millisecond.
  function seekEvent(i) {
    cursor = i;
    cursorT = clampTime(events[i].t);
    seek(events[i].t);
  }

  // Steps to the next or previous event (input summaries aside), in the
  // categories shown, by its place in the list: events a moment apart are
  // each stopped at. Past the last one it goes to the end, before the
  // first to the start.
  function jump(dir) {
    const steps = [];
    events.forEach((e, i) => {
      if (e.type !== 'input' && !hidden.has(categoryOf(e.type))) steps.push(i);
    });
    const stepping = t === cursorT;
    let target;
    if (dir > 0) target = steps.find((i) => (stepping ? i > cursor : events[i].t > t));
    else target = steps.findLast((i) => (stepping ? i < cursor : events[i].t < t));
    if (target !== undefined) {
      seekEvent(target);
      return;
    }
    cursor = dir > 0 ? events.length : -1;
    cursorT = dir > 0 ? duration : 0;
    seek(cursorT);
  }
  prevBtn.addEventListener('click', () => jump(-1));
  nextBtn.addEventListener('click', () => jump(1));
  for (const b of speedGroup.children) b.addEventListener('click', () => setSpeed(Number(b.dataset.speed)));
  // ---- Verify -------------------------------------------------------------------

  verifyBtn.addEventListener('click', async () => {
    verifyBtn.disabled = true;
    verifyBtn.classList.add('is-loading');
    verifyBtn.lastChild.textContent = 'Verifying…';
    try {
      const r = await api.verifyRecording(id);
      if (!alive) return;
      hooks.verify = r;
      showVerify(r);
    } catch (err) {
      toast(err.message, 'error');
    } finally {
      verifyBtn.disabled = false;
      verifyBtn.classList.remove('is-loading');
      verifyBtn.lastChild.textContent = 'Verify integrity';
    }
  });

  function showVerify(r) {
    const ok = r.ok;
    // Past the last seal (a broker that stopped, or someone who could
    // write the folder) nothing is signed: "not altered" holds up to it.
    const unsealed = r.unsealed_event_lines || r.unsealed_bytes;
    const okTitle = unsealed
      ? 'Verified up to its last seal; what follows is not signed and not played'
      : 'Verified: this recording has not been altered';
    verifySlot.replaceChildren(h('div', { class: `verify-card ${ok ? 'is-ok' : 'is-bad'}`, role: 'status', 'data-ok': ok ? 'true' : 'false' },
      h('div', { class: 'verify-icon' }, icon(ok ? 'shieldCheck' : 'shieldX', 22)),
      h('div', { class: 'verify-body' },
        h('div', { class: 'verify-title', text: ok ? okTitle : `Not verified: ${r.problems.length} problem${r.problems.length > 1 ? 's' : ''} found` }),
        h('div', { class: 'verify-meta', text: `Signed by ${r.signer || 'an unknown key'}${r.trusted_key ? ' (this broker\u2019s key)' : ''} · ${r.parts_ok} parts checked · ${r.event_lines} chained events` }),
        r.problems.length ? h('ul', { class: 'verify-list' }, r.problems.map((p) => h('li', {}, h('strong', { class: 'mono', text: p.part }), ` ${p.message}`))) : null,
        r.warnings.length ? h('ul', { class: 'verify-list verify-warnings' }, r.warnings.map((p) => h('li', {}, h('strong', { class: 'mono', text: p.part }), ` ${p.message}`))) : null)));
  }

  load();

  return () => {
    alive = false;
    playing = false;
    cancelAnimationFrame(raf);
    activeShell?.player?.dispose?.();
    screen.close();
    if (window.tether.player === hooks) window.tether.player = null;
  };
}

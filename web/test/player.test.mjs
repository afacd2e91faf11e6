// The supervisor player's one-line summaries of recorded events, checked
// in Node on web/console/player.js itself: counts read as English, and a
// summary does not repeat the name shown under it.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { summary } from '../console/player.js';

test('input counts are singular for one', () => {
  assert.equal(summary({ type: 'input', detail: { moves: 1, clicks: 2, keys: 1, text: 1 } }),
    '1 move, 2 clicks, 1 key, 1 text entry in one second');
  assert.equal(summary({ type: 'input', detail: { wheels: 3, keys: 12, text: 2 } }), '3 scrolls, 12 keys, 2 text entries in one second');
});

test('a summary names only who the actor line does not', () => {
  assert.equal(summary({ type: 'session.created', actor: 'admin', detail: {} }), '');
  assert.equal(summary({ type: 'session.created', actor: 'admin', detail: { technician: 'lee' } }), 'For lee');
  assert.equal(summary({ type: 'consent.requested', actor: 'lee', detail: { viewer: 'lee', permissions: ['view', 'shell'] } }), 'Asks for view, Terminal');
  assert.equal(summary({ type: 'consent.granted', actor: 'user', detail: { viewer: 'lee', granted: ['view'] } }), 'For lee: view');
});

test('a gap in the recording says what is missing', () => {
  assert.equal(summary({ type: 'recording.gap', detail: { events_lost: 1, input_counts_lost: 0 } }),
    '1 event or terminal output missing: the broker\u2019s disk fell behind');
  assert.equal(summary({ type: 'recording.gap', detail: { events_lost: 3, input_counts_lost: 40 } }),
    '3 events or terminal outputs and 40 input events missing: the broker\u2019s disk fell behind');
});

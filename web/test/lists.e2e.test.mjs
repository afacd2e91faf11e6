// The Sessions and Recordings lists fit the window, down to 900 px wide:
// a real broker with sessions a real host joined (on an Xvfb desktop), one
// of them live, and headless Chromium. Screenshots go to artifacts/.

import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { collectErrors, launch } from './browser.mjs';
import { api, bin, ROOT, startBroker, startHost, startXvfb, stopAll, until, signIn, ticketSession } from './procs.mjs';

const artifacts = join(ROOT, 'artifacts');
mkdirSync(artifacts, { recursive: true });
after(stopAll);

let broker;

// Sessions as a busy day leaves them: long ticket titles, one live with the
// user's computer connected, one ended after it had been, some waiting.
before(async () => {
  const display = await startXvfb(1280, 720);
  broker = await startBroker();
  const create = (id, title) => ticketSession(broker, id, title);
  await create('INC-30110', 'Outlook asks for the password again and again after the move');
  await create('REQ-88213', 'New starter: set up the printer on the third floor');
  const done = await create('INC-30125', 'VPN drops every few minutes when on the hotel wifi');
  const live = await create('INC-30131', 'Excel crashes when opening the quarterly report from SharePoint');
  for (const s of [done, live]) {
    const host = startHost(broker, s.code, display);
    await host.ready;
    await until(`the user's computer in ${s.id}`, async () => (await api(broker, 'GET', `/api/v1/sessions/${s.id}`)).body.host?.hostname);
  }
  assert.equal((await api(broker, 'POST', `/api/v1/sessions/${done.id}/end`)).status, 200);
  // A recording with everything in it: a ticket id as long as a helpdesk
  // writes one, a shell, files and the clipboard.
  const busy = await create('INC-4711 printer offline for Mrs. Very-Long-Surname-Customer at the Frankfurt branch office', 'Printer offline');
  execFileSync(bin('shellrec'), ['-data', broker.dataDir, '-session', busy.id]);
});

/** Whether the page is no wider than the window, and where the row's last column is. */
function measure(page, row) {
  return page.evaluate((row) => {
    const root = document.documentElement;
    const action = document.querySelector(`[data-testid="${row}"] td.col-action`).getBoundingClientRect();
    const card = document.querySelector(`[data-testid="${row}"]`).closest('.table-card').getBoundingClientRect();
    return { scrollWidth: root.scrollWidth, clientWidth: root.clientWidth, actionRight: Math.round(action.right), cardRight: Math.round(card.right) };
  }, row);
}

/** How many lines the text of each element matching selector takes, at most. */
function maxLines(page, selector) {
  return page.locator(selector).evaluateAll((els) => Math.max(...els.map((e) => {
    const lh = parseFloat(getComputedStyle(e).lineHeight) || 18;
    return Math.round(e.getBoundingClientRect().height / lh);
  })));
}

for (const viewport of [{ width: 900, height: 700 }, { width: 1000, height: 800 }, { width: 1280, height: 720 }, { width: 1440, height: 900 }]) {
  const size = `${viewport.width}x${viewport.height}`;

  test(`the lists fit a ${size} window`, { timeout: 60_000 }, async (t) => {
    const browser = await launch({ viewport });
    t.after(() => browser.close());
    const page = await browser.newPage();
    const errors = collectErrors(page);
    await signIn(page, broker);

    await t.test('Sessions', async () => {
      await until('five sessions', async () => (await page.getByTestId('session-row').count()) === 5);
      await page.locator('[data-testid="session-row"][data-state="active"] .host-meta').waitFor();
      await page.mouse.move(0, 0);
      await page.screenshot({ path: join(artifacts, `console-lists-sessions-${size}.png`), fullPage: true, animations: 'disabled' });
      const m = await measure(page, 'session-row');
      assert.ok(m.scrollWidth <= m.clientWidth, `the page is ${m.scrollWidth} px wide in a ${m.clientWidth} px window`);
      assert.ok(m.actionRight <= m.cardRight, `the last column ends at ${m.actionRight}, the list at ${m.cardRight}`);
      assert.equal(await maxLines(page, '[data-testid="session-row"] .host-meta'), 1, 'the system and screen size wrap');
    });

    await t.test('Recordings', async () => {
      await page.getByTestId('nav-recordings').click();
      await until('three recordings', async () => (await page.getByTestId('recording-row').count()) === 3);
      await page.getByTestId('watch-live').waitFor();
      await page.mouse.move(0, 0);
      await page.screenshot({ path: join(artifacts, `console-lists-recordings-${size}.png`), fullPage: true, animations: 'disabled' });
      const m = await measure(page, 'recording-row');
      assert.ok(m.scrollWidth <= m.clientWidth, `the page is ${m.scrollWidth} px wide in a ${m.clientWidth} px window`);
      assert.ok(m.actionRight <= m.cardRight, `the last column ends at ${m.actionRight}, the list at ${m.cardRight}`);
      assert.ok(await page.getByTestId('watch-live').isVisible());
      assert.ok(await maxLines(page, '[data-testid="recording-row"] td:first-child .host-name') <= 2, 'the date takes more than two lines');
      // The long ticket is cut short, whole in its tooltip.
      const ticket = page.locator('[data-testid="recording-row"] .ticket', { hasText: 'INC-4711' });
      assert.match(await ticket.getAttribute('title'), /Frankfurt branch office$/);
      assert.equal(await maxLines(page, '[data-testid="recording-row"] .ticket'), 1, 'a ticket wraps');
    });

    assert.deepEqual(errors.map(String), []);
  });
}

/** What the filter buttons read: label and count. */
function filterCounts(page) {
  return page.locator('[aria-label="Filter sessions"] button').evaluateAll((tabs) => tabs.map((t) => t.textContent));
}

/** What has the keyboard focus: a session row's id, or a filter's name. */
function focused(page) {
  return page.evaluate(() => {
    const el = document.activeElement;
    return el?.dataset.sessionId ?? el?.dataset.testid ?? el?.dataset.filter ?? el?.tagName;
  });
}

/** Waits for the list's next auto-refresh to have been drawn. */
async function nextRefresh(page) {
  await page.waitForResponse((r) => new URL(r.url()).pathname === '/api/v1/sessions' && r.request().method() === 'GET', { timeout: 10_000 });
  await new Promise((r) => setTimeout(r, 700));
}

test('waiting and live sessions are listed in full, ended ones page by page', { timeout: 90_000 }, async () => {
  const own = await startBroker();
  // This morning's session: its code is still good.
  const waiting = (await api(own, 'POST', '/api/v1/sessions', { ticket: { id: 'INC-WAITING' } })).body;
  // A busy helpdesk since: 130 sessions, all ended. Ten at a time.
  for (let i = 0; i < 130; i += 10) {
    await Promise.all(Array.from({ length: 10 }, async (_, j) => {
      const s = await api(own, 'POST', '/api/v1/sessions', { ticket: { id: `INC-${1000 + i + j}` } });
      assert.equal(s.status, 201, JSON.stringify(s.body));
      assert.equal((await api(own, 'POST', `/api/v1/sessions/${s.body.id}/end`)).status, 200);
    }));
  }
  const browser = await launch({ viewport: { width: 1280, height: 900 } });
  try {
    const page = await browser.newPage();
    await signIn(page, own);
    const rows = page.getByTestId('session-row');
    await rows.first().waitFor();
    await until('the newest ended sessions and the waiting one', async () => (await rows.count()) === 101);
    assert.equal(await page.locator(`[data-session-id="${waiting.id}"]`).count(), 1, 'the waiting session is not listed');
    assert.deepEqual(await filterCounts(page), ['All101+', 'Waiting1', 'Live0', 'Ended100+']);
    const older = page.getByTestId('show-older');
    await older.scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(artifacts, 'console-sessions-older.png'), fullPage: false, animations: 'disabled' });

    // The technician asks for older ones, with the keyboard.
    const ids = () => rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.sessionId));
    const shown = new Set(await ids());
    await older.focus();
    await page.keyboard.press('Enter');
    await until('all 131 sessions', async () => (await rows.count()) === 131);
    assert.deepEqual(await filterCounts(page), ['All131', 'Waiting1', 'Live0', 'Ended130']);
    assert.equal(await older.count(), 0, 'nothing older is left to show');
    const first = (await ids()).find((id) => !shown.has(id));
    assert.equal(await focused(page), first, 'the focus is not on the first of the older sessions');
    // The refresh keeps them.
    await nextRefresh(page);
    assert.equal(await rows.count(), 131);
    assert.deepEqual(await filterCounts(page), ['All131', 'Waiting1', 'Live0', 'Ended130']);
  } finally {
    await browser.close();
  }
});

test('the auto-refresh and the filters keep the keyboard focus', { timeout: 60_000 }, async () => {
  const own = await startBroker();
  for (const id of ['INC-1', 'INC-2', 'INC-3']) {
    assert.equal((await api(own, 'POST', '/api/v1/sessions', { ticket: { id } })).status, 201);
  }
  const browser = await launch({ viewport: { width: 1280, height: 720 } });
  try {
    const page = await browser.newPage();
    await signIn(page, own);
    const rows = page.getByTestId('session-row');
    await until('three sessions', async () => (await rows.count()) === 3);

    // A keyboard user on the second row, then a refresh.
    const second = await rows.nth(1).getAttribute('data-session-id');
    await rows.nth(1).focus();
    await nextRefresh(page);
    assert.equal(await focused(page), second, 'the refresh took the focus off the row');

    // The filters are toggle buttons: Enter picks one and the focus stays.
    const waitingFilter = page.getByRole('button', { name: /^Waiting/ });
    await waitingFilter.focus();
    await page.keyboard.press('Enter');
    assert.equal(await focused(page), 'waiting', 'picking a filter took the focus off it');
    assert.equal(await waitingFilter.getAttribute('aria-pressed'), 'true');
    await nextRefresh(page);
    assert.equal(await focused(page), 'waiting', 'the refresh took the focus off the filter');

    // Tab goes on to the next filter, whose empty list says it in the
    // filter's own word.
    await page.keyboard.press('Tab');
    assert.equal(await focused(page), 'active');
    await page.keyboard.press(' ');
    assert.equal(await page.locator('.empty-text').textContent(), 'No live sessions right now.');
    assert.equal(await focused(page), 'active');
  } finally {
    await browser.close();
  }
});

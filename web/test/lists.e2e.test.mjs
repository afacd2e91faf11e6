// The Sessions and Recordings lists fit the window, down to 900 px wide:
// a real broker with sessions a real host joined (on an Xvfb desktop), one
// of them live, and headless Chromium. Screenshots go to artifacts/.

import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { collectErrors, launch } from './browser.mjs';
import { api, bin, ROOT, startBroker, startHost, startXvfb, stopAll, until, signIn } from './procs.mjs';

const artifacts = join(ROOT, 'artifacts');
mkdirSync(artifacts, { recursive: true });
after(stopAll);

let broker;

// Sessions as a busy day leaves them: long ticket titles, one live with the
// user's computer connected, one ended after it had been, some waiting.
before(async () => {
  const display = await startXvfb(1280, 720);
  broker = await startBroker();
  const create = async (id, title) => {
    const s = await api(broker, 'POST', '/api/v1/sessions', { ticket: { id, system: 'servicenow', title } });
    assert.equal(s.status, 201, JSON.stringify(s.body));
    return s.body;
  };
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

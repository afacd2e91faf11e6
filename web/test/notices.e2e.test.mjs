// The console's own notices on the session page (a paste the browser
// refused, a request the broker refused): they show on the remote screen's corner,
// under the user's answers rather than on top of them, and stay in sight
// when the technician works full screen. A real broker, a real host on Xvfb
// answering on its terminal, and headless Chromium.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { collectErrors, launch } from './browser.mjs';
import { ROOT, api, signIn, startBroker, startHost, startXvfb, stopAll } from './procs.mjs';

after(stopAll);

const artifacts = join(ROOT, 'artifacts');
mkdirSync(artifacts, { recursive: true });

test('the console\u2019s notices stay readable beside the user\u2019s answers and in full screen', { timeout: 120_000 }, async (t) => {
  const display = await startXvfb(1280, 720);
  const broker = await startBroker();
  const created = await api(broker, 'POST', '/api/v1/sessions', {
    ticket: { id: 'INC-NOTICES' }, permissions: ['view', 'control', 'clipboard', 'shell'],
  });
  assert.equal(created.status, 201);
  const browser = await launch({ viewport: { width: 1024, height: 640 } });
  t.after(() => browser.close());
  const page = await browser.newPage();
  const errors = collectErrors(page);
  const byId = (id) => page.getByTestId(id);
  await signIn(page, broker);
  await byId('sessions-table').waitFor();
  await page.goto(`${broker.url}/#/session/${created.body.id}`);
  const host = startHost(broker, created.body.code, display);
  await host.ready;
  await page.locator('#conn-state[data-state="live"]').waitFor({ timeout: 30_000 });
  await byId('stage-overlay').waitFor({ state: 'hidden', timeout: 15_000 });

  // A notice the console raises itself: the browser refuses the terminal
  // its clipboard (the page is given no clipboard permission).
  await page.context().clearPermissions();
  const refused = page.locator('.toast-error').filter({ hasText: 'The browser did not allow reading the clipboard' });
  const box = async (locator) => locator.boundingBox();
  const overlaps = (a, b) => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;

  // The technician pastes into a terminal and the browser refuses, and the
  // user revokes the clipboard meanwhile: both notices can be read.
  await byId('shell-open').click(); // allowed from the start: a terminal opens
  await page.locator('[data-testid="shell-tab-1"][data-state="open"]').waitFor({ timeout: 15_000 });
  await byId('shell-paste').click();
  await refused.waitFor();
  host.type('revoke clipboard');
  const revoked = page.locator('[data-testid="consent-toast"][data-kind="revoked"]:not([hidden])');
  await revoked.waitFor({ timeout: 10_000 });
  assert.equal(await refused.isVisible(), true, 'the first notice is still up');
  await page.screenshot({ path: join(artifacts, 'notices-stacked.png') });
  const stage = await box(byId('remote-stage'));
  const notice = await box(refused);
  const answer = await box(revoked);
  assert.equal(overlaps(notice, answer), false, `the notice ${JSON.stringify(notice)} is drawn over the user's answer ${JSON.stringify(answer)}`);
  assert.ok(notice.x >= stage.x && notice.x + notice.width <= stage.x + stage.width,
    `the notice ${JSON.stringify(notice)} sits on the remote screen ${JSON.stringify(stage)}, not over the Terminal panel`);

  // Gone full screen, the technician still sees a notice.
  await byId('shell-paste').click();
  await byId('fullscreen').click();
  await page.waitForFunction(() => document.fullscreenElement?.dataset.testid === 'remote-stage');
  await page.screenshot({ path: join(artifacts, 'notices-fullscreen.png') });
  const shown = await refused.last().evaluate((el) => document.fullscreenElement.contains(el));
  assert.equal(shown, true, 'the notice is drawn in full screen');
  await page.evaluate(() => document.exitFullscreen());
  assert.deepEqual(errors, []);
});

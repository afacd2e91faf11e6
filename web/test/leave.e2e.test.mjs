// Leaving a session page: closing or reloading the tab while the technician
// controls the user's computer, moves a file or has a shell open drops them
// out of it, so the browser asks first; on the session list, while only
// watching, or once the session is over, nothing would be lost and it does
// not. A real broker, a real host on Xvfb answering on its terminal, and
// headless Chromium closing its tab as Ctrl+W would.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { collectErrors, launch } from './browser.mjs';
import { api, ROOT, signIn, startBroker, startHost, startXvfb, stopAll, tempDir, until } from './procs.mjs';

after(stopAll);

const artifacts = join(ROOT, 'artifacts');
mkdirSync(artifacts, { recursive: true });

/**
 * Closes the page's tab as the technician would, running its beforeunload
 * handlers. Resolves true when the browser asked first (the technician
 * then stays, and the page with them), false when the tab just closed.
 */
async function closeAsks(page) {
  const asked = new Promise((resolve) => page.once('dialog', async (d) => {
    resolve(d.type() === 'beforeunload');
    await d.dismiss();
  }));
  const closed = page.waitForEvent('close').then(() => false);
  await page.close({ runBeforeUnload: true });
  const answer = await Promise.race([asked, closed]);
  if (answer) assert.equal(page.isClosed(), false, 'the technician chose to stay');
  return answer;
}

test('closing the tab asks first only while something would be lost', { timeout: 180_000 }, async (t) => {
  const home = tempDir('tether-home-');
  writeFileSync(join(home, 'notes.txt'), 'printer settings\n');
  const display = await startXvfb(1280, 720);
  const broker = await startBroker();
  const created = await api(broker, 'POST', '/api/v1/sessions', {
    ticket: { id: 'INC-LEAVE' }, permissions: ['view', 'control', 'files', 'shell'],
  });
  assert.equal(created.status, 201);
  const sessionUrl = `${broker.url}/#/session/${created.body.id}`;
  const browser = await launch();
  t.after(() => browser.close());

  // The session list: nothing to lose.
  let page = await browser.newPage();
  await signIn(page, broker);
  await page.getByTestId('sessions-table').waitFor();
  assert.equal(await closeAsks(page), false, 'the session list closes without a question');

  // openLive opens the session in a new tab, live, and clicks on the
  // picture: the browser asks before leaving only a page the technician
  // has used, so every "no question" below is the page's own doing.
  const openLive = async () => {
    const p = await browser.newPage();
    const errors = collectErrors(p);
    await p.goto(sessionUrl);
    await p.locator('#conn-state[data-state="live"]').waitFor({ timeout: 30_000 });
    await p.getByTestId('stage-overlay').waitFor({ state: 'hidden', timeout: 15_000 });
    await p.getByTestId('remote-stage').click();
    return { p, errors };
  };
  const host = startHost(broker, created.body.code, display, { args: ['-files-root', home, '-files-inbox', join(home, 'in')] });
  await host.ready;

  // Watching only: nothing to lose.
  ({ p: page } = await openLive());
  assert.equal(await page.evaluate(() => window.tether.control.enabled), false);
  assert.equal(await closeAsks(page), false, 'a view-only page closes without a question');

  // The technician comes back and takes control: the browser asks.
  let errors;
  ({ p: page, errors } = await openLive());
  const byId = (id) => page.getByTestId(id);
  await byId('mode-control').click();
  await page.waitForFunction(() => window.tether.control.enabled === true);
  await page.screenshot({ path: join(artifacts, 'leave-control.png') });
  assert.equal(await closeAsks(page), true, 'in control, closing asks first');
  await byId('mode-view').click();
  await page.waitForFunction(() => window.tether.control.enabled === false);

  // Back to watching, with a shell open: the browser asks.
  await byId('shell-open').click();
  await page.locator('[data-testid="shell-tab-1"][data-state="open"]').waitFor({ timeout: 15_000 });
  await page.screenshot({ path: join(artifacts, 'leave-shell.png') });
  assert.equal(await closeAsks(page), true, 'with a shell open, closing asks first');

  // Going back to the list with the page's own arrow would close the shell
  // too: the page asks, and staying keeps the terminal open.
  const backToList = () => page.getByRole('link', { name: 'Back to sessions' }).click();
  const leave = () => page.getByTestId('leave-session-dialog');
  const closedShells = () => host.out.stdout.split('No terminal is open').length - 1;
  // stayAndLeave checks that going back asks, that Cancel keeps the
  // technician and the terminal where they were, and that Leave then goes
  // to the list and closes the terminal, the session going on.
  const stayAndLeave = async (goBack, shot) => {
    const closed = closedShells();
    await goBack();
    await leave().waitFor();
    assert.match(await leave().innerText(), /Going back to the sessions list closes the open terminal\. The session itself goes on/);
    await page.screenshot({ path: join(artifacts, shot) });
    await leave().getByRole('button', { name: 'Cancel' }).click();
    await leave().waitFor({ state: 'hidden' });
    assert.match(page.url(), /#\/session\//, 'the technician stayed');
    assert.equal(await byId('shell-tab-1').getAttribute('data-state'), 'open', 'the terminal is still open');
    await goBack();
    await page.getByTestId('confirm-ok').click();
    await page.getByTestId('sessions-table').waitFor();
    await until('the host to say the terminal closed', () => closedShells() > closed);
    assert.deepEqual(errors, []);
    await page.close();
  };
  await stayAndLeave(backToList, 'leave-back-shell.png');

  // The browser's Back button, on a session opened from the list, asks as well.
  page = await browser.newPage();
  errors = collectErrors(page);
  await page.goto(`${broker.url}/#/sessions`);
  await page.locator(`[data-testid="session-row"][data-session-id="${created.body.id}"]`).click();
  await page.locator('#conn-state[data-state="live"]').waitFor({ timeout: 30_000 });
  await byId('shell-open').click();
  await page.locator('[data-testid="shell-tab-1"][data-state="open"]').waitFor({ timeout: 15_000 });
  await stayAndLeave(() => page.evaluate(() => history.back()), 'leave-browser-back-shell.png');

  ({ p: page, errors } = await openLive());

  // No shell, watching, and a transfer under way (the user's computer holds
  // it up for a moment): the browser asks.
  await byId('files-open').click();
  const notes = page.locator('[data-testid="files-entry"][data-name="notes.txt"]');
  await notes.waitFor({ timeout: 15_000 });
  host.signal('SIGSTOP');
  try {
    await notes.click();
    await page.locator('[data-testid="transfer"][data-name="notes.txt"]:not([data-state="done"])').waitFor();
    await page.screenshot({ path: join(artifacts, 'leave-transfer.png') });
    assert.equal(await closeAsks(page), true, 'with a transfer under way, closing asks first');
  } finally {
    host.signal('SIGCONT');
  }
  await page.locator('[data-testid="transfer"][data-name="notes.txt"][data-state="done"]').waitFor({ timeout: 15_000 });

  // In control with a shell open, the session ends: nothing is left to lose.
  await byId('shell-open').click();
  await page.locator('[data-testid="shell-tab-1"][data-state="open"]').waitFor({ timeout: 15_000 });
  await byId('mode-control').click();
  await page.waitForFunction(() => window.tether.control.enabled === true);
  await byId('end-session').click();
  await page.getByTestId('confirm-ok').click();
  await page.locator('#conn-state[data-state="ended"]').waitFor({ timeout: 15_000 });
  await page.screenshot({ path: join(artifacts, 'leave-ended.png') });
  assert.deepEqual(errors, []);
  assert.equal(await closeAsks(page), false, 'an ended session closes without a question');
});

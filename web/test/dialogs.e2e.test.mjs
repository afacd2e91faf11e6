// Dialogs that guard something that cannot be undone: a real broker and
// headless Chromium. Screenshots go to artifacts/.

import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { collectErrors, launch } from './browser.mjs';
import { api, openSession, ROOT, startBroker, stopAll } from './procs.mjs';

const artifacts = join(ROOT, 'artifacts');
mkdirSync(artifacts, { recursive: true });
after(stopAll);

let broker;
before(async () => {
  broker = await startBroker();
});

test('Enter in the End session dialog keeps the session going', { timeout: 60_000 }, async () => {
  const browser = await launch();
  try {
    const page = await browser.newPage();
    await openSession(page, broker, 'INC-ENTER');
    const id = decodeURIComponent(page.url().split('/').pop());
    await page.getByTestId('end-session').click();
    const dialog = page.getByTestId('end-session-dialog');
    await dialog.waitFor();
    await page.screenshot({ path: join(artifacts, 'dialog-end-session.png') });
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Cancel', 'the dialog opens on its destructive button');
    await page.keyboard.press('Enter');
    await dialog.waitFor({ state: 'detached' });
    await page.waitForTimeout(500);
    const s = await api(broker, 'GET', `/api/v1/sessions/${id}`);
    assert.notEqual(s.body.state, 'ended', 'Enter ended the session');
  } finally {
    await browser.close();
  }
});

// Dialogs that guard something that cannot be undone: a real broker and
// headless Chromium. Screenshots go to artifacts/.

import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { collectErrors, launch } from './browser.mjs';
import { api, openSession, ROOT, startBroker, stopAll, signIn } from './procs.mjs';

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

test('a new API key\u2019s dialog keeps the key and its Copy button together, and asks before it is closed uncopied', { timeout: 60_000 }, async () => {
  const browser = await launch();
  try {
    const page = await browser.newPage();
    const errors = collectErrors(page);
    await signIn(page, broker);
    errors.length = 0; // the console's first look for a login answers 401
    await page.getByTestId('nav-keys').click();
    await page.getByTestId('new-key').click();
    await page.getByTestId('key-name').fill('helpdesk integration');
    await page.getByTestId('key-create').click();
    const dialog = page.getByTestId('key-secret-dialog');
    await dialog.waitFor();
    await page.screenshot({ path: join(artifacts, 'dialog-api-key.png') });

    // The Copy button sits beside the key, the lock beside its sentence.
    const box = async (loc) => loc.boundingBox();
    const key = await box(dialog.getByTestId('shown-secret'));
    const copy = await box(dialog.getByTestId('copy-secret'));
    assert.ok(copy.y < key.y + key.height && copy.y + copy.height > key.y, `Copy (${JSON.stringify(copy)}) is not beside the key (${JSON.stringify(key)})`);
    const lock = await box(dialog.locator('p:has-text("It is not shown again") svg'));
    const note = await box(dialog.locator('p:has-text("It is not shown again") span'));
    assert.ok(lock.y + lock.height > note.y && lock.y < note.y + note.height, 'the lock is on a line of its own');

    // Escape before copying warns instead of closing.
    await page.keyboard.press('Escape');
    await page.waitForTimeout(200);
    assert.ok(await dialog.isVisible(), 'Escape threw away a key that was never copied');
    assert.ok(await dialog.getByTestId('secret-unsaved').isVisible());
    await page.screenshot({ path: join(artifacts, 'dialog-api-key-unsaved.png') });
    // Once copied, it closes.
    await dialog.getByTestId('copy-secret').click();
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    assert.deepEqual(errors.map(String), []);
  } finally {
    await browser.close();
  }
});

test('a dialog goes with its page: Back closes it, and a new key not yet copied keeps its page until Back again', { timeout: 60_000 }, async () => {
  const browser = await launch({ viewport: { width: 1280, height: 720 } });
  try {
    const page = await browser.newPage();
    const errors = collectErrors(page);
    await signIn(page, broker);
    errors.length = 0; // the console's first look for a login answers 401
    await page.getByTestId('nav-keys').click();
    await page.getByTestId('new-key').waitFor();
    await page.locator('a[href="#/sessions"]').first().click();
    await page.getByTestId('new-session').click();
    await page.getByTestId('new-session-dialog').waitFor();
    await page.goBack();
    await page.getByTestId('new-key').waitFor();
    assert.equal(await page.getByTestId('new-session-dialog').count(), 0, 'the new session dialog stayed over the API keys page');

    await page.getByTestId('new-key').click();
    await page.getByTestId('key-name').fill('back button');
    await page.getByTestId('key-create').click();
    const secret = page.getByTestId('key-secret-dialog');
    await secret.waitFor();
    await page.goBack();
    await secret.getByTestId('secret-unsaved').waitFor();
    assert.match(page.url(), /#\/admin\/keys$/, 'the page changed under a key not yet copied');
    await page.goBack();
    await secret.waitFor({ state: 'detached' });
    await page.waitForFunction(() => location.hash !== '#/admin/keys');
    assert.deepEqual(errors.map(String), []);
  } finally {
    await browser.close();
  }
});

test('webhooks: a first one starts from the empty list, and a wrong address is explained in the form\u2019s words', { timeout: 60_000 }, async () => {
  const browser = await launch();
  try {
    const page = await browser.newPage();
    await signIn(page, broker);
    await page.getByTestId('nav-webhooks').click();
    const empty = page.locator('.card.empty', { hasText: 'No webhooks yet' });
    await empty.waitFor();
    await empty.getByRole('button', { name: 'New webhook' }).click();
    const dialog = page.getByTestId('webhook-dialog');
    await dialog.waitFor();
    await page.getByTestId('webhook-url').fill('tickets.example.com/hook');
    await page.getByTestId('webhook-create').click();
    const error = dialog.getByTestId('field-error');
    await error.waitFor();
    await page.screenshot({ path: join(artifacts, 'dialog-webhook-address.png') });
    const text = await error.textContent();
    assert.match(text, /^The address must be a full https:\/\/ address/);
    assert.doesNotMatch(text, /\burl\b/, 'the error names the API field');
  } finally {
    await browser.close();
  }
});

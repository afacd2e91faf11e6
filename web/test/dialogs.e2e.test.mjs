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

test('closing notes go with the end of the session, and an end the broker refused keeps them in the dialog', { timeout: 60_000 }, async () => {
  const browser = await launch();
  try {
    const page = await browser.newPage();
    const errors = collectErrors(page);
    await openSession(page, broker, 'INC-NOTES');
    const id = decodeURIComponent(page.url().split('/').pop());
    await page.getByTestId('end-session').click();
    const dialog = page.getByTestId('end-session-dialog');
    const notes = 'Printer driver reinstalled; test page printed.\nUser to call back if it jams again.';
    await dialog.getByTestId('end-notes').fill(notes);
    // The broker cannot write for a moment.
    await page.route(`**/api/v1/sessions/${id}/end`, (r) => r.fulfill({
      status: 503, contentType: 'application/json',
      body: JSON.stringify({ error: { code: 'unavailable', message: 'The broker has a problem with its database: try again in a moment.' } }),
    }));
    await dialog.getByTestId('confirm-ok').click();
    await dialog.getByTestId('form-error').waitFor();
    assert.match(await dialog.getByTestId('form-error').textContent(), /^The session was not ended\. The broker has a problem with its database/);
    assert.equal(await dialog.getByTestId('end-notes').inputValue(), notes, 'what was written is still there');
    await page.screenshot({ path: join(artifacts, 'dialog-end-notes-refused.png') });
    await page.unroute(`**/api/v1/sessions/${id}/end`);
    await dialog.getByTestId('confirm-ok').click();
    await dialog.waitFor({ state: 'detached' });
    await page.getByTestId('session-ended').waitFor();
    const trail = (await api(broker, 'GET', `/api/v1/sessions/${id}/events`)).body.events;
    assert.deepEqual(trail.filter((e) => e.type === 'session.closing_notes').map((e) => e.detail.notes), [notes]);
    // The refusals asked for show as failed loads; nothing else may fail.
    assert.deepEqual(errors.filter((e) => !/Failed to load resource/.test(e.message)), []);
  } finally {
    await browser.close();
  }
});

test('the session\u2019s technician invites a colleague and hands the session over from the live page', { timeout: 60_000 }, async () => {
  for (const username of ['tom', 'sue']) {
    assert.equal((await api(broker, 'POST', '/api/v1/users', { username, role: 'technician' })).status, 201);
  }
  assert.equal((await api(broker, 'POST', '/api/v1/users', { username: 'vic', role: 'supervisor' })).status, 201);
  const browser = await launch();
  try {
    const page = await browser.newPage();
    const errors = collectErrors(page);
    await openSession(page, broker, 'INC-TEAM');
    const id = decodeURIComponent(page.url().split('/').pop());
    const dialog = page.getByTestId('bring-in-dialog');
    const bringIn = async (name, button) => {
      await page.getByTestId('bring-in').click();
      await dialog.getByTestId('bring-in-username').fill(name);
      await dialog.getByTestId(button).click();
    };
    // A supervisor cannot be invited: the broker's reason shows under the field.
    await bringIn('vic', 'invite');
    assert.match(await dialog.textContent(), /Invite: they join beside you, and the user is asked before they see anything\. Hand over: the session becomes theirs\./);
    await dialog.getByTestId('field-error').waitFor();
    assert.match(await dialog.getByTestId('field-error').textContent(), /vic is a supervisor/i);
    await page.screenshot({ path: join(artifacts, 'dialog-bring-in-refused.png') });
    await dialog.getByTestId('bring-in-username').fill('tom');
    await dialog.getByTestId('invite').click();
    await page.getByText('tom is invited').waitFor();
    await bringIn('sue', 'hand-over');
    await page.getByText('The session is sue\u2019s now.').waitFor();
    const s = (await api(broker, 'GET', `/api/v1/sessions/${id}`)).body;
    assert.equal(s.technician, 'sue');
    const trail = (await api(broker, 'GET', `/api/v1/sessions/${id}/events`)).body.events.map((e) => `${e.type} ${e.detail.colleague ?? ''}`);
    assert.ok(trail.includes('participant.invited tom') && trail.includes('session.handed_over sue'), trail.join('\n'));
    // The refusals asked for show as failed loads; nothing else may fail.
    assert.deepEqual(errors.filter((e) => !/Failed to load resource/.test(e.message)), []);
  } finally {
    await browser.close();
  }
});

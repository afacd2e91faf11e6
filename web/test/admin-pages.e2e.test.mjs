// The administration pages as an admin sees them, against a real broker:
// tables whose rows grow taller (a key with many scopes) keep their
// action cells in line, a role shown after a refused change is the one the
// account has, and a long webhook description stays inside its card.
// Screenshots go to artifacts/.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { launch } from './browser.mjs';
import { api, call, ROOT, signIn, startBroker, stopAll } from './procs.mjs';

const artifacts = join(ROOT, 'artifacts');
mkdirSync(artifacts, { recursive: true });
after(stopAll);

/**
 * Signs in to broker's console as its first admin, opens the screen the
 * navigation item nav leads to, and runs fn with the page.
 */
async function onScreen(broker, nav, fn) {
  const browser = await launch();
  try {
    const page = await browser.newPage();
    await signIn(page, broker);
    await page.getByTestId(nav).click();
    await fn(page);
  } finally {
    await browser.close();
  }
}

// The broker refuses webhook receivers on loopback.
const address = Object.values(networkInterfaces()).flat().find((a) => a.family === 'IPv4' && !a.internal)?.address;

test('a key with many scopes: the Revoke cell is as tall as its row, so the row\u2019s line runs straight under it', { timeout: 60_000 }, async () => {
  const broker = await startBroker();
  await onScreen(broker, 'nav-keys', async (page) => {
    await page.getByTestId('keys-table').waitFor();
    await page.screenshot({ path: join(artifacts, 'admin-keys-rows.png') });
    // The first admin's key holds every scope: its row is the tallest.
    const rows = await page.$$eval('[data-testid="key-row"]', (trs) => trs.map((tr) => ({
      row: tr.getBoundingClientRect().height,
      cells: [...tr.cells].map((td) => td.getBoundingClientRect().height),
    })));
    assert.ok(rows.length > 0);
    for (const { row, cells } of rows) {
      for (const cell of cells) assert.ok(Math.abs(cell - row) < 2, `a cell ${cell}px tall in a row ${row}px tall`);
    }
  });
});

test('after a role change the broker refuses, the list shows the role the account has, not the one it had when the page opened', { timeout: 60_000 }, async () => {
  const broker = await startBroker();
  assert.equal((await api(broker, 'POST', '/api/v1/users', { username: 'lee', role: 'technician' })).status, 201);
  await onScreen(broker, 'nav-accounts', async (page) => {
    const role = page.locator('[data-testid="account-row"][data-username="lee"] [data-testid="account-role"]');
    await role.waitFor();

    await role.selectOption('supervisor');
    await page.getByTestId('confirm-ok').click();
    await page.getByText('lee is now supervisor.').waitFor();

    // The database cannot be written for a moment: the next change fails.
    await page.route('**/api/v1/users/lee', (r) => r.fulfill({
      status: 503, contentType: 'application/json',
      body: JSON.stringify({ error: { code: 'unavailable', message: 'The broker has a problem with its database: try again in a moment.' } }),
    }));
    await role.selectOption('admin');
    await page.getByTestId('confirm-ok').click();
    await page.getByText('The broker has a problem with its database').waitFor();
    await page.screenshot({ path: join(artifacts, 'admin-role-refused.png') });
    const users = (await api(broker, 'GET', '/api/v1/users')).body.users;
    assert.equal(users.find((u) => u.username === 'lee').role, 'supervisor');
    assert.equal(await role.inputValue(), 'supervisor', 'the list shows the role lee has');
  });
});

test('a webhook with a long description without spaces stays inside its card and the page', { skip: !address && 'no IPv4 address besides loopback', timeout: 60_000 }, async () => {
  const broker = await startBroker();
  const description = 'https://wiki.example.com/helpdesk/integrations/servicenow/' + 'x'.repeat(150);
  const url = `https://${address}:9/tether/${'y'.repeat(150)}`;
  const made = await api(broker, 'POST', '/api/v1/webhooks', { url, events: ['session.created'], description });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  await onScreen(broker, 'nav-webhooks', async (page) => {
    const card = page.getByTestId('webhook-card');
    await card.waitFor();
    await page.screenshot({ path: join(artifacts, 'admin-webhook-long.png') });
    const [scroll, client] = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
    assert.ok(scroll <= client, `the page scrolls sideways: ${scroll}px wide in ${client}px`);
    const overflow = await card.evaluate((el) => el.scrollWidth - el.clientWidth);
    assert.ok(overflow <= 0, `the card's content is ${overflow}px wider than the card`);
    // The question before deleting it names the URL, inside the dialog.
    await page.getByTestId('webhook-delete').click();
    const question = page.getByTestId('confirm-dialog').locator('.modal-description');
    await question.waitFor();
    const cut = await question.evaluate((el) => {
      const range = document.createRange();
      range.selectNodeContents(el);
      return range.getBoundingClientRect().right - el.closest('dialog').getBoundingClientRect().right;
    });
    assert.ok(cut <= 0, `the URL runs ${Math.round(cut)}px past the dialog's edge`);
    await page.screenshot({ path: join(artifacts, 'admin-webhook-long-delete.png') });
    await page.keyboard.press('Escape');
  });
});

test('a role changes only once the admin says so: an arrow key on the list asks first, and Cancel keeps the role', { timeout: 60_000 }, async () => {
  const broker = await startBroker();
  assert.equal((await api(broker, 'POST', '/api/v1/users', { username: 'lee', role: 'supervisor' })).status, 201);
  await onScreen(broker, 'nav-accounts', async (page) => {
    const role = page.locator('[data-testid="account-row"][data-username="lee"] [data-testid="account-role"]');
    await role.waitFor();
    // Tabbing through the table, the admin presses the down arrow on
    // the closed list, which picks the next role.
    await role.focus();
    await page.keyboard.press('ArrowDown');
    const dialog = page.getByTestId('confirm-dialog');
    await dialog.waitFor();
    await page.screenshot({ path: join(artifacts, 'admin-role-confirm.png') });
    assert.match(await dialog.textContent(), /Make lee an admin\?.*signed out and cut off from any session/s);
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    assert.equal(await role.inputValue(), 'supervisor', 'the list shows the role lee still has');
    const lee = (await api(broker, 'GET', '/api/v1/users')).body.users.find((u) => u.username === 'lee');
    assert.equal(lee.role, 'supervisor', 'nothing was saved');
  });
});

test('a key of a disabled account, and scopes a demoted account no longer holds, read as not working', { timeout: 60_000 }, async () => {
  const broker = await startBroker();
  for (const [username, role] of [['pat', 'admin'], ['lee', 'technician']]) {
    assert.equal((await api(broker, 'POST', '/api/v1/users', { username, role })).status, 201);
  }
  const patKey = await api(broker, 'POST', '/api/v1/keys', { name: 'pat-integration', scopes: ['users:admin', 'sessions:read'], username: 'pat' });
  const leeKey = await api(broker, 'POST', '/api/v1/keys', { name: 'lee-script', scopes: ['sessions:read'], username: 'lee' });
  assert.equal((await api(broker, 'PATCH', '/api/v1/users/pat', { role: 'technician' })).status, 200);
  assert.equal((await api(broker, 'PATCH', '/api/v1/users/lee', { disabled: true })).status, 200);
  assert.equal((await call(broker, 'GET', '/api/v1/users', patKey.body.key)).status, 403, 'pat\u2019s key no longer manages accounts');
  assert.equal((await call(broker, 'GET', '/api/v1/sessions', leeKey.body.key)).status, 401, 'lee\u2019s key no longer works');
  await onScreen(broker, 'nav-keys', async (page) => {
    await page.getByTestId('keys-table').waitFor();
    await page.screenshot({ path: join(artifacts, 'admin-keys-not-working.png'), fullPage: true });
    const row = (k) => page.locator(`[data-testid="key-row"][data-key-id="${k.body.id}"]`);
    assert.equal(await row(leeKey).getByTestId('key-not-working').textContent(), 'Not working: account disabled');
    assert.deepEqual(await row(patKey).getByTestId('key-scope-dormant').locator('s').allInnerTexts(), ['users:admin'], 'users:admin is marked, sessions:read is not');
    assert.equal(await row(patKey).getByTestId('key-not-working').count(), 0);
  });
});

test('a key past its last day says so, and one made in the console expires when chosen', { timeout: 60_000 }, async () => {
  const broker = await startBroker();
  // A key whose last moment is two seconds away, as a ticket system's
  // would be after its months of use.
  const last = new Date(Math.ceil(Date.now() / 1000) * 1000 + 2000).toISOString().replace(/\.\d+Z$/, 'Z');
  const old = await api(broker, 'POST', '/api/v1/keys', { name: 'old integration', scopes: ['sessions:read'], expires_at: last });
  assert.equal(old.status, 201);
  assert.equal(old.body.expires_at, last);
  while (Date.now() < Date.parse(last) + 200) await new Promise((r) => setTimeout(r, 100));
  const refused = await call(broker, 'GET', '/api/v1/sessions', old.body.key);
  assert.deepEqual([refused.status, refused.body.error.code], [401, 'key_expired']);
  await onScreen(broker, 'nav-keys', async (page) => {
    const row = (id) => page.locator(`[data-testid="key-row"][data-key-id="${id}"]`);
    await row(old.body.id).getByTestId('key-expired').waitFor();
    assert.equal(await row(old.body.id).getByTestId('key-expired').textContent(), 'Expired');
    // The first admin's key works until revoked.
    const first = page.locator('[data-testid="key-row"]', { hasText: 'initial admin key' });
    assert.equal(await first.getByTestId('key-expires').textContent(), 'Never');

    // Made in the console, the key lasts what is chosen: 30 days here.
    await page.getByTestId('new-key').click();
    await page.getByTestId('key-name').fill('Monthly export');
    assert.equal(await page.getByTestId('key-expires-in').inputValue(), '90', 'a new key lasts 90 days unless told otherwise');
    await page.getByTestId('key-expires-in').selectOption('30');
    await page.getByTestId('key-create').click();
    await page.getByTestId('shown-secret').waitFor();
    await page.getByRole('button', { name: 'I have saved it' }).click();
    const made = page.locator('[data-testid="key-row"]', { hasText: 'Monthly export' });
    await made.waitFor();
    assert.equal(await made.getByTestId('key-expires').textContent(), 'in 30 days');
    await page.screenshot({ path: join(artifacts, 'admin-keys-expiry.png'), fullPage: true });
    const listed = (await api(broker, 'GET', '/api/v1/keys')).body.keys.find((k) => k.name === 'Monthly export');
    const days = (Date.parse(listed.expires_at) - Date.parse(listed.created_at)) / 86_400_000;
    assert.ok(Math.abs(days - 30) < 0.01, `the key expires ${days} days after it was made`);
  });
});

test('a webhook\u2019s events and description can be changed, keeping its address, secret and history', { skip: !address && 'no IPv4 address besides loopback', timeout: 60_000 }, async () => {
  const broker = await startBroker();
  const url = `https://${address}:9/tether`;
  const made = await api(broker, 'POST', '/api/v1/webhooks', { url, events: ['session.created'], description: 'tickets' });
  assert.equal(made.status, 201);
  await onScreen(broker, 'nav-webhooks', async (page) => {
    await page.getByTestId('webhook-edit').click();
    const dialog = page.getByTestId('webhook-dialog');
    assert.equal(await dialog.getByTestId('webhook-url').inputValue(), url);
    assert.equal(await dialog.getByTestId('webhook-url').isEditable(), false, 'the address is shown, not offered');
    await dialog.getByTestId('webhook-description').fill('ServiceNow work notes');
    await dialog.locator('[data-testid="webhook-event"][value="session.ended"]').check();
    await page.screenshot({ path: join(artifacts, 'admin-webhook-edit.png') });
    await dialog.getByTestId('webhook-create').click();
    await page.getByText('Webhook saved.').waitFor();
    await page.getByTestId('webhook-card').getByText('session.ended').waitFor();
    const after = (await api(broker, 'GET', '/api/v1/webhooks')).body.webhooks;
    assert.equal(after.length, 1);
    assert.equal(after[0].id, made.body.id, 'the same webhook');
    assert.deepEqual([after[0].description, after[0].events], ['ServiceNow work notes', ['session.created', 'session.ended']]);
  });
});

test('after an action from the keyboard the focus stays on the row\u2019s control, not at the top of the page', { timeout: 60_000 }, async () => {
  const broker = await startBroker();
  assert.equal((await api(broker, 'POST', '/api/v1/users', { username: 'lee', role: 'technician' })).status, 201);
  await onScreen(broker, 'nav-accounts', async (page) => {
    const toggle = page.locator('[data-testid="account-row"][data-username="lee"] [data-testid="account-toggle"]');
    await toggle.focus();
    await page.keyboard.press('Enter');
    await page.getByTestId('confirm-ok').focus();
    await page.keyboard.press('Enter');
    await page.locator('[data-testid="account-row"][data-username="lee"][data-disabled="true"]').waitFor();
    const focused = () => page.evaluate(() => {
      const el = document.activeElement;
      return `${el.closest('[data-username]')?.dataset.username} ${el.dataset.testid} ${el.textContent}`;
    });
    assert.equal(await focused(), 'lee account-toggle Enable');
    await page.keyboard.press('Enter'); // and enabled again, without a question
    await page.locator('[data-testid="account-row"][data-username="lee"][data-disabled="false"]').waitFor();
    assert.equal(await focused(), 'lee account-toggle Disable');
  });
});

test('requiring two-factor for one\u2019s own role says it applies at once, and asks an admin without it first', { timeout: 60_000 }, async () => {
  const broker = await startBroker();
  await onScreen(broker, 'nav-accounts', async (page) => {
    const policy = page.getByTestId('totp-policy');
    assert.match(await policy.locator('.field-hint').textContent(), /applies at once/);
    await policy.locator('[data-testid="totp-role"][data-role="admin"]').check();
    await page.getByTestId('totp-policy-save').click();
    const dialog = page.getByTestId('confirm-dialog');
    assert.match(await dialog.textContent(), /You have not set it up/);
    await dialog.getByText('Cancel').click();
    assert.deepEqual((await api(broker, 'GET', '/api/v1/settings')).body.totp_required_roles, [], 'nothing was saved');
    await page.getByTestId('totp-policy-save').click();
    await page.getByTestId('confirm-ok').click();
    await page.getByText('Two-factor authentication is now required').waitFor();
    assert.deepEqual((await api(broker, 'GET', '/api/v1/settings')).body.totp_required_roles, ['admin']);
  });
});

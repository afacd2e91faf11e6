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
import { api, ROOT, signIn, startBroker, stopAll } from './procs.mjs';

const artifacts = join(ROOT, 'artifacts');
mkdirSync(artifacts, { recursive: true });
after(stopAll);

// The broker refuses webhook receivers on loopback.
const address = Object.values(networkInterfaces()).flat().find((a) => a.family === 'IPv4' && !a.internal)?.address;

test('a key with many scopes: the Revoke cell is as tall as its row, so the row\u2019s line runs straight under it', { timeout: 60_000 }, async () => {
  const broker = await startBroker();
  const browser = await launch();
  try {
    const page = await browser.newPage();
    await signIn(page, broker);
    await page.getByTestId('nav-keys').click();
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
  } finally {
    await browser.close();
  }
});

test('after a role change the broker refuses, the list shows the role the account has, not the one it had when the page opened', { timeout: 60_000 }, async () => {
  const broker = await startBroker();
  assert.equal((await api(broker, 'POST', '/api/v1/users', { username: 'lee', role: 'technician' })).status, 201);
  const browser = await launch();
  try {
    const page = await browser.newPage();
    await signIn(page, broker);
    await page.getByTestId('nav-accounts').click();
    const role = page.locator('[data-testid="account-row"][data-username="lee"] [data-testid="account-role"]');
    await role.waitFor();

    await role.selectOption('supervisor');
    await page.getByText('lee is now supervisor.').waitFor();

    // The database cannot be written for a moment: the next change fails.
    await page.route('**/api/v1/users/lee', (r) => r.fulfill({
      status: 503, contentType: 'application/json',
      body: JSON.stringify({ error: { code: 'unavailable', message: 'The broker has a problem with its database: try again in a moment.' } }),
    }));
    await role.selectOption('admin');
    await page.getByText('The broker has a problem with its database').waitFor();
    await page.screenshot({ path: join(artifacts, 'admin-role-refused.png') });
    const users = (await api(broker, 'GET', '/api/v1/users')).body.users;
    assert.equal(users.find((u) => u.username === 'lee').role, 'supervisor');
    assert.equal(await role.inputValue(), 'supervisor', 'the list shows the role lee has');
  } finally {
    await browser.close();
  }
});

test('a webhook with a long description without spaces stays inside its card and the page', { skip: !address && 'no IPv4 address besides loopback', timeout: 60_000 }, async () => {
  const broker = await startBroker();
  const description = 'https://wiki.example.com/helpdesk/integrations/servicenow/' + 'x'.repeat(150);
  const url = `https://${address}:9/tether/${'y'.repeat(150)}`;
  const made = await api(broker, 'POST', '/api/v1/webhooks', { url, events: ['session.created'], description });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  const browser = await launch();
  try {
    const page = await browser.newPage();
    await signIn(page, broker);
    await page.getByTestId('nav-webhooks').click();
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
  } finally {
    await browser.close();
  }
});

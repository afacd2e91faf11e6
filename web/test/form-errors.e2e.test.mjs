// The broker's word on a field shows under that field, against a real
// broker: the new-account, new-API-key, new-webhook, new-session and
// password forms, at a wide and a narrow window. The input is marked
// invalid and described by the message, the first one marked has focus,
// typing into it takes its mark away, and a corrected form goes through
// with nothing left over. Screenshots go to artifacts/.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { launch } from './browser.mjs';
import { ROOT, signIn, startBroker, stopAll } from './procs.mjs';

const artifacts = join(ROOT, 'artifacts');
mkdirSync(artifacts, { recursive: true });
after(stopAll);

const WINDOWS = [{ width: 1440, height: 900 }, { width: 900, height: 900 }];

/**
 * Checks that input (a locator) is marked invalid, described by a message
 * matching pattern that sits right under it, and returns the message's id.
 */
async function assertMarked(input, pattern) {
  assert.equal(await input.getAttribute('aria-invalid'), 'true', 'the input is marked invalid');
  assert.match(await input.getAttribute('class'), /\bis-invalid\b/);
  const ids = (await input.getAttribute('aria-describedby') ?? '').split(/\s+/);
  const id = ids.find((i) => i.endsWith('-error') || i.startsWith('field-error-'));
  assert.ok(id, `aria-describedby names the message: ${ids}`);
  const message = input.page().locator(`[id="${id}"]`);
  assert.equal(await message.getAttribute('data-testid'), 'field-error');
  assert.ok(await message.isVisible(), 'the message shows');
  assert.match(await message.textContent(), pattern);
  const [box, msg] = [await input.boundingBox(), await message.boundingBox()];
  assert.ok(msg.y >= box.y + box.height - 1 && msg.y - (box.y + box.height) < 16,
    `the message sits right under its input (input ends at ${box.y + box.height}, message starts at ${msg.y})`);
  assert.ok(Math.abs(msg.x - box.x) < 2, `the message lines up with its input (${msg.x} vs ${box.x})`);
  return id;
}

async function assertCleared(input, id) {
  assert.equal(await input.getAttribute('aria-invalid'), null, 'editing takes the mark away');
  assert.doesNotMatch(await input.getAttribute('class'), /\bis-invalid\b/);
  assert.ok(!(await input.getAttribute('aria-describedby') ?? '').includes(id), 'and the description with it');
  assert.equal(await input.page().locator(`[id="${id}"]`).count(), 0, 'the message is gone');
}

const focused = (input) => input.evaluate((el) => el === document.activeElement);

async function assertNoErrors(page) {
  assert.equal(await page.getByTestId('field-error').count(), 0, 'no field message is left');
  assert.equal(await page.locator('[aria-invalid="true"]').count(), 0, 'no input is left marked');
  assert.equal(await page.locator('[data-testid="form-error"]:visible').count(), 0, 'no error box shows');
}

test('field errors show under their fields, at 1440 and 900 px wide', { timeout: 180_000 }, async () => {
  const broker = await startBroker();
  for (const [i, size] of WINDOWS.entries()) {
    const browser = await launch({ viewport: size });
    try {
      const page = await browser.newPage();
      const shot = (name) => page.screenshot({ path: join(artifacts, `form-errors-${name}-${size.width}.png`) });
      await signIn(page, broker);

      // New account: a username the broker refuses.
      await page.getByTestId('nav-accounts').click();
      await page.getByTestId('accounts-table').waitFor();
      await page.getByTestId('new-account').click();
      const accountDialog = page.getByTestId('account-dialog');
      const username = page.getByTestId('account-username');
      await username.fill('Not Valid');
      await page.getByTestId('account-create').click();
      await accountDialog.getByTestId('field-error').waitFor();
      const usernameError = await assertMarked(username, /^Username must be 2 to 32 lower-case letters/);
      assert.equal(usernameError, 'acc-username-error');
      assert.ok(await focused(username), 'focus is on the invalid username');
      assert.equal(await accountDialog.getByTestId('form-error').isHidden(), true, 'nothing is left for the box above');
      await shot('account');
      await username.press('End');
      await username.type('x');
      await assertCleared(username, usernameError);
      await username.fill(`lee${i}`);
      await page.getByTestId('account-create').click();
      await page.getByTestId('password-dialog').waitFor();
      await assertNoErrors(page);
      await page.getByTestId('copy-secret').click();
      await page.getByRole('button', { name: 'I have saved it' }).click();

      // New API key: no name and no scope, two fields at once.
      await page.getByTestId('nav-keys').click();
      await page.getByTestId('keys-table').waitFor();
      await page.getByTestId('new-key').click();
      const keyDialog = page.getByTestId('key-dialog');
      for (const box of await page.getByTestId('key-scope').all()) await box.setChecked(false);
      await page.getByTestId('key-create').click();
      await keyDialog.getByTestId('field-error').first().waitFor();
      assert.equal(await keyDialog.getByTestId('field-error').count(), 2);
      const name = page.getByTestId('key-name');
      const nameError = await assertMarked(name, /^Name must say what the key is for/);
      const scopes = keyDialog.locator('.check-list');
      const scopesError = await assertMarked(scopes, /^Scopes must name at least one scope/);
      assert.equal(await page.locator(`[id="${scopesError}"]`).getAttribute('role'), 'alert', 'a group of checkboxes takes no focus of its own: its message is announced');
      assert.equal(await page.locator(`[id="${nameError}"]`).getAttribute('role'), null, 'a field\u2019s message is read with the field as it takes the focus');
      assert.ok(await focused(name), 'focus is on the first invalid input, the name');
      await shot('key');
      await name.fill('ServiceNow');
      await assertCleared(name, nameError);
      assert.equal(await scopes.getAttribute('aria-invalid'), 'true', 'the other field keeps its mark');
      await page.locator('[data-testid="key-scope"][data-scope="sessions:read"]').check();
      await assertCleared(scopes, scopesError);
      await page.getByTestId('key-create').click();
      await page.getByTestId('key-secret-dialog').waitFor();
      await assertNoErrors(page);
      await page.getByTestId('copy-secret').click();
      await page.getByRole('button', { name: 'I have saved it' }).click();

      // New webhook: an address that is not one, said in the form's words.
      await page.getByTestId('nav-webhooks').click();
      await page.locator('[data-testid="webhooks-empty"], [data-testid="webhook-card"]').first().waitFor();
      await page.getByTestId('new-webhook').click();
      const webhookDialog = page.getByTestId('webhook-dialog');
      const url = page.getByTestId('webhook-url');
      await url.fill('tickets.example.com/hook');
      await page.getByTestId('webhook-create').click();
      await webhookDialog.getByTestId('field-error').waitFor();
      const urlError = await assertMarked(url, /^The address must be a full https:\/\/ address/);
      assert.ok(await focused(url), 'focus is on the invalid address');
      assert.equal(await webhookDialog.getByTestId('form-error').isHidden(), true);
      await shot('webhook');
      await url.press('Home');
      await url.type('https://');
      await assertCleared(url, urlError);
      await url.fill(`https://10.255.0.${i + 1}/tether`);
      await page.getByTestId('webhook-create').click();
      await page.getByTestId('webhook-secret-dialog').waitFor();
      await assertNoErrors(page);
      await page.getByTestId('copy-secret').click();
      await page.getByRole('button', { name: 'I have saved it' }).click();

      // New session: a ticket reference too long in bytes (é takes two).
      await page.getByRole('link', { name: 'Sessions', exact: true }).click();
      await page.getByTestId('new-session').click();
      const sessionDialog = page.getByTestId('new-session-dialog');
      const ticket = page.getByTestId('new-session-ticket');
      await ticket.fill('é'.repeat(100));
      await page.getByTestId('new-session-submit').click();
      await sessionDialog.getByTestId('field-error').waitFor();
      const ticketError = await assertMarked(ticket, /^The ticket reference must be at most 128 bytes/);
      assert.doesNotMatch(await page.locator(`[id="${ticketError}"]`).textContent(), /ticket\.id/, 'the message names the field as the form does');
      assert.ok(await focused(ticket), 'focus is on the invalid ticket reference');
      await shot('session');
      await ticket.press('Backspace');
      await assertCleared(ticket, ticketError);
      await ticket.fill(`INC-${i}`);
      await page.getByTestId('new-session-submit').click();
      await page.getByTestId('code-card').waitFor();
      await assertNoErrors(page);

      // The password form stays on the page: its marks go once it succeeds.
      await page.getByTestId('nav-account').click();
      const current = page.getByTestId('pw-current');
      const next = page.getByTestId('pw-new');
      await current.fill(broker.admin.password);
      await next.fill('short');
      await page.getByTestId('pw-save').click();
      await page.getByTestId('field-error').waitFor();
      const nextError = await assertMarked(next, /at least 12 characters/);
      assert.equal(await current.getAttribute('aria-invalid'), null);
      assert.ok(await focused(next), 'focus is on the new password');
      await shot('password');
      await next.fill(`${broker.admin.password}-${i}`);
      await assertCleared(next, nextError);
      await page.getByTestId('pw-save').click();
      await page.getByText('Password changed.').waitFor();
      await assertNoErrors(page);
      broker.admin.password = `${broker.admin.password}-${i}`;
    } finally {
      await browser.close();
    }
  }
});

// Accounts, API keys, webhooks, two-factor sign-in, a user's own code and
// the join page, through the console against a real broker (and, for the
// user's code, a real host on a real X display).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { launch } from './browser.mjs';
import { api, bin, call, ROOT, start, startBroker, startHost, startXvfb, stopAll, totp } from './procs.mjs';

const artifacts = join(ROOT, 'artifacts');
mkdirSync(artifacts, { recursive: true });
after(stopAll);

/** The text of an error box once it shows. */
async function errorText(locator) {
  await locator.waitFor({ state: 'visible' });
  return locator.textContent();
}

async function signIn(page, broker, user, password) {
  await page.goto(broker.url + '/');
  await page.getByTestId('login-username').fill(user);
  await page.getByTestId('login-password').fill(password);
  await page.getByTestId('login-submit').click();
}

/** Signs in as user and opens Account security. */
async function openAccount(page, broker, user, password) {
  await signIn(page, broker, user, password);
  await page.getByTestId('new-session').waitFor();
  await page.goto(broker.url + '/#/account');
}

test('admin manages accounts, API keys and webhooks', { timeout: 120_000 }, async () => {
  const broker = await startBroker();
  const browser = await launch();
  try {
    const page = await browser.newPage();
    await page.goto(broker.url + '/');
    assert.equal(await page.locator('.login-subtitle').textContent(), 'Use your Tether account.', 'admins and supervisors sign in here too');
    const answered = page.waitForResponse((r) => r.url().endsWith('/api/v1/login'));
    await signIn(page, broker, broker.admin.user, broker.admin.password);
    // The console's login stays in its HttpOnly cookie: the sign-in's
    // answer, which the page's scripts read, holds no bearer token that
    // anything injected into the page could carry away.
    const answer = await (await answered).json();
    assert.equal(answer.token, undefined, 'the console\'s sign-in answer holds no bearer token');
    assert.ok(answer.csrf_token, 'the console gets its CSRF token');
    await page.getByTestId('nav-accounts').click();
    await page.getByTestId('accounts-table').waitFor();

    // A new technician: the broker makes up a password, shown once.
    await page.getByTestId('new-account').click();
    // The hint gives the broker's rule for usernames.
    assert.match(await page.getByTestId('account-dialog').textContent(), /2 to 32 lower-case letters, digits, dots, dashes or underscores/);
    await page.getByTestId('account-username').fill('Not Valid');
    await page.getByTestId('account-create').click();
    assert.match(await errorText(page.getByTestId('account-dialog').getByTestId('field-error')), /Username must be/);
    await page.getByTestId('account-username').fill('lee');
    await page.getByTestId('account-create').click();
    const password = await page.getByTestId('shown-secret').textContent();
    assert.ok(password.length >= 16, 'a strong first password is shown');
    await page.screenshot({ path: join(artifacts, 'admin-account-password.png') });
    await page.getByRole('button', { name: 'I have saved it' }).click();
    const lee = page.locator('[data-testid="account-row"][data-username="lee"]');
    await lee.waitFor();

    // It works: lee can sign in through the API with that password.
    const login = await call(broker, 'POST', '/api/v1/login', '', { username: 'lee', password });
    assert.equal(login.status, 200);

    // Reset: a new password, shown once; lee's old login and password stop
    // working, the new one works. An admin's own row has no Reset: their
    // password is under Account security.
    const self = page.locator(`[data-testid="account-row"][data-username="${broker.admin.user}"]`);
    assert.equal(await self.getByTestId('account-reset').isDisabled(), true);
    assert.equal(await self.getByTestId('account-role').textContent(), 'Admin', 'one\u2019s own role, shown as text');
    await lee.getByTestId('account-reset').click();
    await page.getByTestId('confirm-ok').click();
    const reset = await page.getByTestId('password-dialog').getByTestId('shown-secret').textContent();
    assert.ok(reset.length >= 16 && reset !== password, 'a new strong password is shown');
    await page.getByRole('button', { name: 'I have saved it' }).click();
    assert.equal((await call(broker, 'GET', '/api/v1/me', login.body.token)).status, 401, 'the reset ends lee\u2019s sign-ins');
    assert.equal((await call(broker, 'POST', '/api/v1/login', '', { username: 'lee', password })).status, 401, 'the old password no longer works');
    const relogin = await call(broker, 'POST', '/api/v1/login', '', { username: 'lee', password: reset });
    assert.equal(relogin.status, 200);

    // Disable: lee's login ends at once.
    await lee.getByTestId('account-toggle').click();
    await page.getByTestId('confirm-ok').click();
    await page.locator('[data-testid="account-row"][data-username="lee"][data-disabled="true"]').waitFor();
    assert.equal((await call(broker, 'GET', '/api/v1/me', relogin.body.token)).status, 401);

    // The two-factor policy.
    await page.locator('[data-testid="totp-role"][data-role="admin"]').check();
    await page.getByTestId('totp-policy-save').click();
    await page.getByTestId('confirm-ok').click(); // the admin has no two-factor yet
    await page.locator('.toast-success').first().waitFor();
    const settings = await call(broker, 'GET', '/api/v1/settings', broker.admin.api_key);
    assert.deepEqual(settings.body.totp_required_roles, ['admin']);
    await page.screenshot({ path: join(artifacts, 'admin-accounts.png'), fullPage: true });
    await call(broker, 'PUT', '/api/v1/settings', broker.admin.api_key, { totp_required_roles: [] });

    // An API key for a ticket system, shown once, scoped.
    await page.getByTestId('nav-keys').click();
    await page.getByTestId('new-key').click();
    await page.getByTestId('key-name').fill('ServiceNow production');
    await page.screenshot({ path: join(artifacts, 'admin-key-dialog.png') });
    await page.getByTestId('key-create').click();
    const key = await page.getByTestId('shown-secret').textContent();
    assert.match(key, /^tth_/);
    await page.getByRole('button', { name: 'I have saved it' }).click();
    const created = await call(broker, 'POST', '/api/v1/sessions', key, { ticket: { system: 'servicenow', id: 'INC-77' } });
    assert.equal(created.status, 201, 'the key may create sessions');
    assert.equal((await call(broker, 'GET', '/api/v1/users', key)).status, 403, 'but not manage accounts');
    await page.reload();
    const row = page.locator('[data-testid="key-row"]', { hasText: 'ServiceNow production' });
    await row.waitFor();
    assert.doesNotMatch(await row.getByTestId('key-last-used').textContent(), /Never/, 'last use is shown');
    await page.screenshot({ path: join(artifacts, 'admin-keys.png'), fullPage: true });
    await row.getByTestId('key-revoke').click();
    await page.getByTestId('confirm-ok').click();
    await page.locator('[data-testid="key-row"].is-muted', { hasText: 'ServiceNow production' }).waitFor();
    assert.equal((await call(broker, 'GET', '/api/v1/sessions', key)).status, 401, 'a revoked key is refused');

    // A key that acts as a supervisor: only what a supervisor may do is offered.
    assert.equal((await call(broker, 'POST', '/api/v1/users', broker.admin.api_key, { username: 'sue', role: 'supervisor', password: 'sue-password-12' })).status, 201);
    await page.getByTestId('new-key').click();
    await page.getByTestId('key-name').fill('Audit reports');
    await page.getByTestId('key-user').locator('option[value="sue"]').waitFor({ state: 'attached' });
    await page.getByTestId('key-user').selectOption('sue');
    const scopeBox = (s) => page.locator(`[data-testid="key-scope"][data-scope="${s}"]`);
    assert.equal(await scopeBox('sessions:create').isChecked(), false, 'sessions:create ticked for a supervisor');
    assert.equal(await scopeBox('sessions:create').isDisabled(), true);
    assert.equal(await scopeBox('sessions:read').isChecked(), true);
    await page.screenshot({ path: join(artifacts, 'admin-key-dialog-supervisor.png') });
    await page.getByTestId('key-create').click();
    const audit = await page.getByTestId('shown-secret').textContent();
    await page.getByRole('button', { name: 'I have saved it' }).click();
    assert.equal((await call(broker, 'GET', '/api/v1/sessions', audit)).status, 200);

    // A webhook: refused field by field, then added with its secret shown once.
    await page.getByTestId('nav-webhooks').click();
    await page.getByTestId('new-webhook').click();
    await page.getByTestId('webhook-url').fill('http://tickets.example.com/hook');
    await page.getByTestId('webhook-create').click();
    assert.match(await errorText(page.getByTestId('webhook-dialog').getByTestId('field-error')), /https/);
    await page.getByTestId('webhook-url').fill('https://10.255.0.1/tether');
    // As long a description as the broker takes.
    const description = 'ServiceNow work notes for the service desk. '.repeat(7).slice(0, 256);
    await page.getByTestId('webhook-description').fill(description);
    await page.getByTestId('webhook-create').click();
    assert.ok((await page.getByTestId('shown-secret').textContent()).length > 20);
    await page.getByRole('button', { name: 'I have saved it' }).click();
    const card = page.getByTestId('webhook-card');
    await card.waitFor();
    const hooks = (await call(broker, 'GET', '/api/v1/webhooks', broker.admin.api_key)).body;
    assert.equal((hooks.webhooks ?? hooks)[0].description, description);
    await card.getByTestId('webhook-deliveries').click();
    await card.getByTestId('deliveries').waitFor();
    await page.screenshot({ path: join(artifacts, 'admin-webhooks.png'), fullPage: true });
    await card.getByTestId('webhook-toggle').click();
    await page.locator('[data-testid="webhook-card"]', { hasText: 'Disabled' }).waitFor();
  } finally {
    await browser.close();
  }
});

test('two-factor sign-in: enrolment when the role requires it, then a code at each sign-in', { timeout: 60_000 }, async () => {
  const broker = await startBroker();
  const admin = broker.admin.api_key;
  assert.equal((await call(broker, 'POST', '/api/v1/users', admin, { username: 'tina', role: 'technician', password: 'tina-password-1' })).status, 201);
  assert.equal((await call(broker, 'PUT', '/api/v1/settings', admin, { totp_required_roles: ['technician'] })).status, 200);
  const browser = await launch();
  try {
    const page = await browser.newPage();
    await signIn(page, broker, 'tina', 'tina-password-1');
    await page.getByTestId('enrol-required').waitFor();
    assert.equal(await page.locator('a[href="#/sessions"]').count(), 0, 'nothing else is offered before enrolment');
    assert.deepEqual(await page.locator('.sidebar .nav-section').allTextContents(), ['You'], 'a heading over nothing');
    await page.getByTestId('totp-password').fill('tina-password-1');
    await page.getByTestId('totp-start').click();
    const secret = await page.getByTestId('totp-secret').getAttribute('data-secret');
    assert.match(await page.getByTestId('totp-uri').textContent(), /^otpauth:\/\/totp\/Tether:tina\?/);
    // The QR code holds exactly the otpauth:// URI (read back with zbarimg).
    const uri = await page.getByTestId('totp-uri').textContent();
    const qrPath = join(artifacts, 'totp-qr.png');
    await page.getByTestId('totp-qr').screenshot({ path: qrPath });
    const scanned = execFileSync('zbarimg', ['--quiet', '--raw', qrPath], { encoding: 'utf8' }).trim();
    assert.equal(scanned, uri, 'the QR code scans to the otpauth URI');
    await page.screenshot({ path: join(artifacts, 'account-totp-enrol.png') });
    await page.getByTestId('totp-confirm-code').fill('000000');
    await page.getByTestId('totp-confirm').click();
    assert.match(await errorText(page.getByTestId('field-error')), /wrong/);
    await page.getByTestId('totp-confirm-code').fill(totp(secret));
    await page.getByTestId('totp-confirm').click();
    await page.getByTestId('recovery-codes-done').click();
    await page.locator('[data-testid="totp-status"]', { hasText: 'On' }).waitFor();
    await page.locator('a[href="#/sessions"]').waitFor();

    // Next sign-in: the password, then the code (the next one: each works once).
    await page.getByTestId('logout').click();
    await signIn(page, broker, 'tina', 'tina-password-1');
    await page.getByTestId('login-totp').waitFor();
    await page.screenshot({ path: join(artifacts, 'login-totp.png') });
    await page.getByTestId('login-totp').fill(totp(secret, Date.now() + 30_000));
    await page.getByTestId('login-submit').click();
    await page.getByTestId('new-session').waitFor();
  } finally {
    await browser.close();
  }
});

test('recovery codes: shown once at enrolment, one signs in without the phone, new ones replace them', { timeout: 90_000 }, async () => {
  const broker = await startBroker();
  assert.equal((await call(broker, 'POST', '/api/v1/users', broker.admin.api_key, { username: 'tina', role: 'technician', password: 'tina-password-1' })).status, 201);
  const browser = await launch();
  try {
    const page = await browser.newPage();
    await openAccount(page, broker, 'tina', 'tina-password-1');
    await page.getByTestId('totp-password').fill('tina-password-1');
    await page.getByTestId('totp-start').click();
    const secret = await page.getByTestId('totp-secret').getAttribute('data-secret');
    await page.getByTestId('totp-confirm-code').fill(totp(secret));
    await page.getByTestId('totp-confirm').click();

    // The codes, once, with a way to keep them.
    const shown = await page.getByTestId('recovery-code').allTextContents();
    assert.equal(shown.length, 10);
    assert.equal(new Set(shown).size, 10, `recovery codes repeat: ${shown}`);
    for (const c of shown) assert.match(c, /^[a-hj-km-np-z2-9]{5}-[a-hj-km-np-z2-9]{5}$/);
    await page.mouse.move(0, 0);
    await page.screenshot({ path: join(artifacts, 'account-recovery-codes.png') });
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('recovery-codes-download').click()]);
    assert.equal(download.suggestedFilename(), 'tether-recovery-codes-tina.txt');
    const saved = (await readFile(await download.path(), 'utf8')).trim().split('\n');
    assert.match(saved[0], /^Tether recovery codes for tina at /);
    assert.deepEqual(saved.slice(1), shown, 'the downloaded file holds the codes shown');
    await page.getByTestId('recovery-codes-done').click();
    const left = page.getByTestId('recovery-codes-left');
    await left.waitFor();
    assert.equal(await left.getAttribute('data-left'), '10');
    assert.equal(await page.getByTestId('recovery-code').count(), 0, 'the codes stay on screen after "I have saved them"');

    // The phone is lost: a recovery code signs in, once.
    await page.getByTestId('logout').click();
    await signIn(page, broker, 'tina', 'tina-password-1');
    await page.getByTestId('login-totp').waitFor();
    await page.getByTestId('login-use-recovery').click();
    assert.equal(await page.locator('label[for="login-totp"]').textContent(), 'Recovery code');
    assert.equal(await page.getByTestId('login-totp').evaluate((el) => el === document.activeElement), true, 'the code field does not keep the focus');
    await page.getByTestId('login-totp').fill(shown[0]);
    await page.screenshot({ path: join(artifacts, 'login-recovery-code.png') });
    await page.getByTestId('login-submit').click();
    await page.getByTestId('new-session').waitFor();
    let res = await call(broker, 'POST', '/api/v1/login', '', { username: 'tina', password: 'tina-password-1', totp: shown[0] });
    assert.equal(res.status, 401, 'a recovery code signed in twice');
    assert.equal(res.body.error.code, 'bad_totp');
    await page.goto(broker.url + '/#/account');
    await page.locator('[data-testid="recovery-codes-left"][data-left="9"]').waitFor();

    // New codes, with the password and a recovery code (the phone is
    // gone): the old set stops working.
    await page.getByTestId('totp-password').fill('tina-password-1');
    await page.getByTestId('totp-change-code').fill(shown[1]);
    await page.getByTestId('recovery-codes-new').click();
    await page.locator('section', { hasText: 'Your new recovery codes' }).waitFor();
    const fresh = await page.getByTestId('recovery-code').allTextContents();
    assert.equal(fresh.length, 10);
    assert.equal(fresh.filter((c) => shown.includes(c)).length, 0, 'a new code is one of the old ones');
    res = await call(broker, 'POST', '/api/v1/login', '', { username: 'tina', password: 'tina-password-1', totp: shown[2] });
    assert.equal(res.status, 401, 'an old recovery code still signs in');
    await page.getByTestId('recovery-codes-done').click();
    await page.locator('[data-testid="recovery-codes-left"][data-left="10"]').waitFor();

    // Running low, the page says to make new ones.
    for (const c of fresh.slice(0, 8)) {
      assert.equal((await call(broker, 'POST', '/api/v1/login', '', { username: 'tina', password: 'tina-password-1', totp: c })).status, 200);
    }
    await page.reload();
    await page.locator('[data-testid="recovery-codes-left"][data-left="2"]').waitFor();
    assert.match(await left.textContent(), /2 of 10 recovery codes left\. Make new ones before you run out\./);
    assert.match(await left.getAttribute('class'), /is-few/);
    await page.screenshot({ path: join(artifacts, 'account-recovery-codes-few.png') });
  } finally {
    await browser.close();
  }
});

test('a stolen login cannot set up or turn off two-factor authentication without the password', { timeout: 60_000 }, async () => {
  const broker = await startBroker();
  assert.equal((await call(broker, 'POST', '/api/v1/users', broker.admin.api_key, { username: 'tina', role: 'technician', password: 'tina-password-1' })).status, 201);
  // Someone has tina's login token (a console left signed in, a copied
  // cookie) but not her password.
  const stolen = (await call(broker, 'POST', '/api/v1/login', '', { username: 'tina', password: 'tina-password-1' })).body.token;
  assert.ok(stolen);
  let res = await call(broker, 'POST', '/api/v1/me/totp', stolen, {});
  assert.equal(res.status, 400, 'enrolment without the password is refused');
  assert.equal(res.body.error.code, 'password_required');
  res = await call(broker, 'POST', '/api/v1/me/totp', stolen, { password: 'a-good-guess-1' });
  assert.equal(res.status, 400, 'enrolment with a wrong password is refused');
  assert.equal(res.body.error.code, 'bad_credentials');
  assert.equal((await call(broker, 'GET', '/api/v1/me', stolen)).body.user.totp_enabled, false);

  const browser = await launch();
  try {
    const page = await browser.newPage();
    await openAccount(page, broker, 'tina', 'tina-password-1');
    const card = page.locator('section', { has: page.getByTestId('totp-status') });
    await page.getByTestId('totp-password').fill('not-my-password');
    await page.getByTestId('totp-start').click();
    assert.equal(await errorText(card.getByTestId('field-error')), 'The password is wrong. Enter the password you sign in with.');
    await page.screenshot({ path: join(artifacts, 'account-totp-password-wrong.png') });
    await page.getByTestId('totp-password').fill('tina-password-1');
    await page.getByTestId('totp-start').click();
    const secret = await page.getByTestId('totp-secret').getAttribute('data-secret');
    await page.getByTestId('totp-confirm-code').fill(totp(secret));
    await page.getByTestId('totp-confirm').click();
    await page.getByTestId('recovery-codes-done').click();
    await page.locator('[data-testid="totp-status"]', { hasText: 'On' }).waitFor();

    // Turning it on ended the stolen login, which gave no code.
    assert.equal((await call(broker, 'GET', '/api/v1/me', stolen)).status, 401, 'the login opened with the password alone outlived the enrolment');
    // Her browser's login, which gave the code, copied (the cookie is the
    // token) cannot turn it off, even with a right code.
    const copied = (await page.context().cookies()).find((c) => c.name === '__Host-tether_login')?.value;
    assert.ok(copied);
    res = await call(broker, 'DELETE', '/api/v1/me/totp', copied, { password: 'a-good-guess-2', code: totp(secret, Date.now() + 30_000) });
    assert.equal(res.status, 400, 'turning two-factor off with a wrong password is refused');
    assert.equal(res.body.error.code, 'bad_credentials');

    // While her role requires it, turning it off is not offered: the
    // broker would refuse it once she had typed her password and a code.
    assert.equal((await api(broker, 'PUT', '/api/v1/settings', { totp_required_roles: ['technician'] })).status, 200);
    await page.reload();
    await page.getByTestId('totp-required').waitFor();
    assert.equal(await page.getByTestId('totp-disable').count(), 0);
    await page.screenshot({ path: join(artifacts, 'account-totp-required.png') });
    assert.equal((await api(broker, 'PUT', '/api/v1/settings', { totp_required_roles: [] })).status, 200);
    await page.reload();

    // Tina turns it off with her password and a code.
    await page.getByTestId('totp-password').fill('not-my-password');
    await page.getByTestId('totp-change-code').fill(totp(secret, Date.now() + 30_000));
    await page.screenshot({ path: join(artifacts, 'account-totp-off-form.png') });
    await page.getByTestId('totp-disable').click();
    assert.equal(await errorText(card.getByTestId('field-error')), 'The password is wrong. Enter the password you sign in with.');
    await page.getByTestId('totp-password').fill('tina-password-1');
    await page.getByTestId('totp-disable').click();
    await page.locator('[data-testid="totp-status"]', { hasText: 'Off' }).waitFor();
    await page.screenshot({ path: join(artifacts, 'account-totp-off.png') });
  } finally {
    await browser.close();
  }
});

test('technician enters the code a user reads out, with a ticket, and sees the screen', { timeout: 120_000 }, async () => {
  const display = await startXvfb(1280, 720);
  const painter = start(bin('xpattern'), ['-mode', 'counter', '-interval', '50'], { env: { DISPLAY: display }, readyLine: /ready/ });
  await painter.ready;
  const broker = await startBroker();
  const host = startHost(broker, null, display);
  await host.ready;
  const code = host.code();
  assert.match(code, /^\d{9}$/);
  const browser = await launch();
  try {
    const page = await browser.newPage();
    await signIn(page, broker, broker.admin.user, broker.admin.password);
    await page.getByTestId('enter-code').click();
    await page.getByTestId('claim-code').fill(`${code.slice(0, 3)} ${code.slice(3, 6)} ${code.slice(6)}`);
    await page.getByTestId('claim-submit').click();
    assert.match(await errorText(page.getByTestId('claim-dialog').getByTestId('field-error')), /ticket/i, 'a ticket is required');
    await page.getByTestId('claim-ticket').fill('HELP-9');
    await page.getByTestId('claim-system').fill('jira');
    await page.getByTestId('claim-title').fill('Printer offline');
    await page.screenshot({ path: join(artifacts, 'console-enter-code.png') });
    await page.getByTestId('claim-submit').click();
    await page.waitForSelector('[data-testid="conn-state"][data-state="live"]', { timeout: 30_000 });
    await page.waitForFunction(() => {
      const v = document.querySelector('[data-testid="remote-video"]');
      return v && v.videoWidth === 1280 && v.getVideoPlaybackQuality().totalVideoFrames > 5;
    }, null, { timeout: 30_000 });
    assert.match(host.out.stdout, /HELP-9/, 'the user was told which ticket');
    await page.screenshot({ path: join(artifacts, 'console-user-initiated-live.png') });

    // A wrong code says so, and a code works once.
    await page.goto(broker.url + '/#/sessions');
    const row = page.locator('[data-testid="session-row"]', { hasText: 'HELP-9' });
    await row.getByTestId('user-initiated').waitFor();
    assert.match(await row.textContent(), /Printer offline/, 'the list shows the ticket title');
    await page.screenshot({ path: join(artifacts, 'console-sessions-user-initiated.png') });
    await page.getByTestId('enter-code').click();
    await page.getByTestId('claim-code').fill(code);
    await page.getByTestId('claim-ticket').fill('HELP-9');
    await page.getByTestId('claim-submit').click();
    assert.match(await errorText(page.getByTestId('claim-error')), /No computer is waiting with that code/);
  } finally {
    await browser.close();
  }
});

test('the join page tells the user what happens and offers the host', { timeout: 60_000 }, async () => {
  const broker = await startBroker();
  const s = await call(broker, 'POST', '/api/v1/sessions', broker.admin.api_key,
    { ticket: { system: 'servicenow', id: 'INC-4242', title: 'VPN drops every hour' }, permissions: ['view', 'control', 'clipboard'] });
  assert.equal(s.status, 201);
  const browser = await launch({ viewport: { width: 900, height: 1000 } });
  try {
    const page = await browser.newPage();
    const res = await page.goto(s.body.join_url);
    assert.equal(res.status(), 200);
    assert.match(await page.getByTestId('join-title').textContent(), /admin is ready to help you with ticket INC-4242/);
    assert.equal((await page.getByTestId('join-code').textContent()).replaceAll(' ', ''), s.body.code);
    assert.equal(await page.getByTestId('join-download').getAttribute('href'), `/join/${s.body.code}/host`);
    const styles = await page.locator('.join-card').evaluate((el) => getComputedStyle(el).borderRadius);
    assert.equal(styles, '16px', 'the page is styled (its CSS loads under the CSP)');
    await page.screenshot({ path: join(artifacts, 'join-page.png'), fullPage: true });
    const bad = await page.goto(broker.url + '/join/000000001');
    assert.equal(bad.status(), 404);
    await page.screenshot({ path: join(artifacts, 'join-page-invalid.png') });
  } finally {
    await browser.close();
  }
});

test('a supervisor watches: no new sessions, no codes, no ending', { timeout: 60_000 }, async () => {
  const broker = await startBroker();
  const admin = broker.admin.api_key;
  assert.equal((await call(broker, 'POST', '/api/v1/users', admin, { username: 'sue', role: 'supervisor', password: 'sue-password-12' })).status, 201);
  const s = await call(broker, 'POST', '/api/v1/sessions', admin, { ticket: { id: 'INC-5' } });
  const browser = await launch();
  try {
    const page = await browser.newPage();
    // The admin makes a code at this browser and logs out; sue signs in at
    // the same page and must not see it.
    await signIn(page, broker, broker.admin.user, broker.admin.password);
    await page.getByTestId('new-session').click();
    await page.getByTestId('new-session-submit').click();
    await page.getByTestId('session-code').waitFor();
    await page.getByTestId('logout').click();
    await page.getByTestId('login-username').fill('sue');
    await page.getByTestId('login-password').fill('sue-password-12');
    await page.getByTestId('login-submit').click();
    await page.getByTestId('sessions-table').waitFor();
    assert.equal(await page.getByTestId('session-code').count(), 0, 'the admin\u2019s code is shown to sue');
    assert.equal(await page.getByTestId('new-session').count(), 0);
    assert.equal(await page.getByTestId('enter-code').count(), 0);
    assert.equal(await page.getByTestId('nav-accounts').count(), 0, 'no administration for supervisors');
    await page.goto(`${broker.url}/#/session/${s.body.id}`);
    await page.getByTestId('conn-state').waitFor();
    const user = await page.evaluate(() => window.tether.user);
    assert.equal(await page.getByTestId('end-session').isVisible(), false, JSON.stringify(user));
  } finally {
    await browser.close();
  }
});

test('requiring two-factor authentication takes an open console to enrolment', { timeout: 60_000 }, async () => {
  const broker = await startBroker();
  const admin = broker.admin.api_key;
  assert.equal((await call(broker, 'POST', '/api/v1/users', admin, { username: 'tom', role: 'technician', password: 'tom-password-12' })).status, 201);
  const browser = await launch();
  try {
    const page = await browser.newPage();
    await signIn(page, broker, 'tom', 'tom-password-12');
    await page.getByTestId('new-session').waitFor();
    assert.equal((await call(broker, 'PUT', '/api/v1/settings', admin, { totp_required_roles: ['technician'] })).status, 200);
    // The list refreshes on its own; the broker's answer sends tom to enrol.
    await page.getByTestId('enrol-required').waitFor({ timeout: 20_000 });
    assert.match(page.url(), /#\/account$/);
  } finally {
    await browser.close();
  }
});

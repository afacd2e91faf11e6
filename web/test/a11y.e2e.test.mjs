// Each page a technician, a supervisor and an admin meets in the console,
// and the join page the user opens, checked with axe-core against WCAG 2.1
// A and AA: no serious or critical violation on any of them. A real
// broker, a real host on Xvfb (sharing its screen, files and a shell) and
// headless Chromium. Screenshots go to artifacts/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import axe from 'axe-core';
import { launch } from './browser.mjs';
import { api, recordShellArchive, ROOT, signIn, startBroker, startHost, startXvfb, stopAll, tempDir, until, ticketSession, totp } from './procs.mjs';

const artifacts = join(ROOT, 'artifacts');
mkdirSync(artifacts, { recursive: true });
after(stopAll);

const TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const address = Object.values(networkInterfaces()).flat().find((a) => a.family === 'IPv4' && !a.internal)?.address;

/** Runs axe on the page as it is now; resolves to its serious and critical violations. */
async function audit(page) {
  // By the protocol rather than a script tag: the console's CSP allows
  // only its own scripts.
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(axe.source);
  return page.evaluate(async (tags) => {
    const { violations } = await window.axe.run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] });
    return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.map((n) => `${n.target.join(' ')}: ${n.html.slice(0, 240)}\n      ${n.failureSummary.replaceAll('\n', '\n      ')}`),
    }));
  }, TAGS);
}

/** Checks the page, saving a screenshot of it as a11y-<name>.png. */
async function check(page, name) {
  // Transitions finish first: a colour halfway through one is not the page's.
  await page.waitForTimeout(400);
  await page.screenshot({ path: join(artifacts, `a11y-${name}.png`), animations: 'disabled' });
  const found = await audit(page);
  const report = found.map((v) => `${v.id} (${v.impact}): ${v.help}\n${v.nodes.map((n) => `    ${n}`).join('\n')}`).join('\n');
  assert.equal(found.length, 0, `${name}: ${found.length} serious or critical violations\n${report}`);
}

let broker, live, ended, waiting, rec;

before(async () => {
  const display = await startXvfb(1280, 720);
  broker = await startBroker();
  const create = (id, title) => ticketSession(broker, id, title);
  waiting = await create('INC-30110', 'Outlook asks for the password again and again');
  ended = await create('INC-30125', 'VPN drops every few minutes');
  assert.equal((await api(broker, 'POST', `/api/v1/sessions/${ended.id}/end`)).status, 200);
  rec = await recordShellArchive(broker, 'INC-30127');
  // A live session whose user shares a folder with a few files in it.
  const home = tempDir('tether-a11y-home-');
  for (const name of ['report.xlsx', 'notes.txt']) writeFileSync(join(home, name), `${name}\n`);
  mkdirSync(join(home, 'Documents'));
  live = await create('INC-30131', 'Excel crashes when opening the quarterly report');
  const host = startHost(broker, live.code, display, { args: ['-files-root', home] });
  await host.ready;
  await until('the user\u2019s computer in the live session', async () => (await api(broker, 'GET', `/api/v1/sessions/${live.id}`)).body.host?.hostname);
  assert.equal((await api(broker, 'POST', '/api/v1/users', { username: 'sue', role: 'supervisor', password: 'sue-password-12' })).status, 201);
});

test('the console as an admin and technician meets it', { timeout: 240_000 }, async (t) => {
  const browser = await launch({ viewport: { width: 1440, height: 900 } });
  t.after(() => browser.close());
  const page = await browser.newPage();

  await t.test('sign-in', async () => {
    await page.goto(broker.url);
    await page.getByTestId('login-username').waitFor();
    await check(page, 'sign-in');
  });

  await t.test('sessions: waiting, live and ended', async () => {
    await signIn(page, broker);
    await page.locator('[data-testid="session-row"][data-state="active"] .host-meta').waitFor();
    await page.locator('[data-testid="session-row"][data-state="ended"]').first().waitFor();
    await page.mouse.move(0, 0);
    await check(page, 'sessions');
  });

  await t.test('new session dialog, and the code it gives', async () => {
    await page.getByTestId('new-session').click();
    await page.getByTestId('new-session-dialog').waitFor();
    await check(page, 'dialog-new-session');
    // The line under a field is read with it.
    const described = await page.getByTestId('new-session-ticket').evaluate((el) => (el.getAttribute('aria-describedby') ?? '').split(' ').map((id) => document.getElementById(id)?.textContent).join(' '));
    assert.match(described, /^Links the session and its recording to the helpdesk ticket/);
    await page.getByTestId('new-session-ticket').fill('INC-30140');
    await page.getByTestId('new-session-submit').click();
    await page.getByTestId('session-code').waitFor();
    await check(page, 'sessions-code');
  });

  await t.test('a user\u2019s code dialog', async () => {
    await page.getByTestId('enter-code').click();
    await page.getByTestId('claim-code').waitFor();
    await check(page, 'dialog-enter-code');
    await page.keyboard.press('Escape');
  });

  await t.test('live session: toolbar', async () => {
    await page.goto(`${broker.url}/#/session/${encodeURIComponent(live.id)}`);
    await page.waitForSelector('[data-testid="conn-state"][data-state="live"]', { timeout: 30_000 });
    await page.waitForFunction(() => document.querySelector('[data-testid="remote-video"]')?.videoWidth > 0, null, { timeout: 30_000 });
    await check(page, 'live');
    // The toolbar's menu of keys (in control), and its clipboard.
    await page.getByTestId('mode-control').click();
    await page.waitForFunction(() => window.tether.control?.enabled === true);
    await page.getByTestId('keys-menu').click();
    await page.locator('#keys-menu-list').waitFor();
    await check(page, 'live-keys-menu');
    await page.keyboard.press('Escape');
    await page.getByTestId('clipboard-open').click();
    await page.locator('#clipboard-panel').waitFor();
    await check(page, 'live-clipboard');
    await page.keyboard.press('Escape');
  });

  await t.test('live session: Files panel', async () => {
    await page.getByTestId('files-open').click();
    await page.getByTestId('files-request').click();
    await page.getByTestId('files-entry').first().waitFor({ timeout: 30_000 });
    await check(page, 'live-files');
  });

  await t.test('live session: Terminal panel with two terminals', async () => {
    await page.getByTestId('shell-open').click();
    await page.getByTestId('shell-request').click();
    await page.getByTestId('shell-start').click({ timeout: 30_000 });
    await page.locator('[data-testid="shell-tab-1"][data-state="open"]').waitFor();
    await page.getByTestId('shell-new').click();
    await page.locator('[data-testid="shell-tab-2"][data-state="open"]').waitFor();
    await check(page, 'live-terminal');
  });

  await t.test('live session: Activity panel', async () => {
    await page.getByTestId('activity-open').click();
    await page.getByTestId('activity-row').first().waitFor();
    await check(page, 'live-activity');
  });

  await t.test('bring in a colleague dialog', async () => {
    await page.getByTestId('bring-in').click();
    await page.getByTestId('bring-in-dialog').waitFor();
    await check(page, 'dialog-bring-in');
    await page.keyboard.press('Escape');
  });

  await t.test('end session dialog', async () => {
    await page.getByTestId('end-session').click();
    await page.getByTestId('end-session-dialog').waitFor();
    await check(page, 'dialog-end-session');
    await page.keyboard.press('Escape');
  });

  await t.test('leave session dialog', async () => {
    // The terminals are open: going back to the list asks first.
    await page.getByRole('link', { name: 'Back to sessions' }).click();
    await page.getByTestId('leave-session-dialog').waitFor();
    await check(page, 'dialog-leave-session');
    await page.getByTestId('confirm-ok').click();
    await page.getByTestId('new-session').waitFor();
  });

  await t.test('recordings', async () => {
    await page.goto(`${broker.url}/#/recordings`);
    await page.getByTestId('recording-row').first().waitFor();
    await check(page, 'recordings');
  });

  await t.test('player', async () => {
    await page.goto(`${broker.url}/#/recording/${encodeURIComponent(rec.id)}`);
    await page.waitForFunction(() => window.tether.player?.ready === true, null, { timeout: 30_000 });
    await check(page, 'player');
  });

  await t.test('accounts and the two-factor policy', async () => {
    await page.goto(`${broker.url}/#/admin/accounts`);
    await page.getByTestId('account-row').first().waitFor();
    await page.getByTestId('totp-policy-save').waitFor();
    await check(page, 'admin-accounts');
    await page.getByTestId('new-account').click();
    await page.getByTestId('account-username').waitFor();
    await check(page, 'dialog-new-account');
    await page.keyboard.press('Escape');
  });

  await t.test('API keys', async () => {
    await page.goto(`${broker.url}/#/admin/keys`);
    await page.getByTestId('key-row').first().waitFor();
    await check(page, 'admin-keys');
    await page.getByTestId('new-key').click();
    await page.getByTestId('key-name').waitFor();
    await check(page, 'dialog-new-key');
    await page.keyboard.press('Escape');
  });

  await t.test('webhooks', async () => {
    await page.goto(`${broker.url}/#/admin/webhooks`);
    await page.getByTestId('webhooks-empty').waitFor();
    await check(page, 'admin-webhooks-empty');
    // The broker refuses receivers on loopback: one on another address of
    // this machine (never called here), when it has one.
    if (address) {
      const made = await api(broker, 'POST', '/api/v1/webhooks', { url: `https://${address}:9/tether`, events: ['session.created'], description: 'ServiceNow work notes' });
      assert.equal(made.status, 201, JSON.stringify(made.body));
      await page.reload();
      await page.getByTestId('webhook-card').waitFor();
      await check(page, 'admin-webhooks');
    }
    await page.getByTestId('new-webhook').click();
    await page.getByTestId('webhook-url').waitFor();
    await check(page, 'dialog-new-webhook');
    await page.keyboard.press('Escape');
  });

  await t.test('account security, and setting up two-factor', async () => {
    await page.goto(`${broker.url}/#/account`);
    await page.getByTestId('totp-start').waitFor();
    await check(page, 'account');
    await page.getByTestId('totp-password').fill(broker.admin.password);
    await page.getByTestId('totp-start').click();
    await page.getByTestId('totp-qr').waitFor();
    await check(page, 'account-enrol');
    // Turned on: the recovery codes, then the card that counts them.
    const secret = await page.getByTestId('totp-secret').getAttribute('data-secret');
    await page.getByTestId('totp-confirm-code').fill(totp(secret));
    await page.getByTestId('totp-confirm').click();
    await page.getByTestId('recovery-codes').waitFor();
    await check(page, 'account-recovery-codes');
    const [code] = await page.getByTestId('recovery-code').allTextContents();
    await page.getByTestId('recovery-codes-done').click();
    await page.getByTestId('recovery-codes-left').waitFor();
    await check(page, 'account-totp-on');
    // Off again with a recovery code, for the admin's sign-ins that follow.
    await page.getByTestId('totp-password').fill(broker.admin.password);
    await page.getByTestId('totp-change-code').fill(code);
    await page.getByTestId('totp-disable').click();
    await page.getByTestId('totp-start').waitFor();
  });
});

test('the console as a supervisor meets it', { timeout: 120_000 }, async (t) => {
  const browser = await launch({ viewport: { width: 1440, height: 900 } });
  t.after(() => browser.close());
  const page = await browser.newPage();
  await page.goto(broker.url);
  await page.getByTestId('login-username').fill('sue');
  await page.getByTestId('login-password').fill('sue-password-12');
  await page.getByTestId('login-submit').click();

  await t.test('sessions', async () => {
    await page.locator('[data-testid="session-row"][data-state="active"] .host-meta').waitFor();
    await page.mouse.move(0, 0);
    await check(page, 'supervisor-sessions');
  });

  await t.test('watching a live session', async () => {
    await page.goto(`${broker.url}/#/session/${encodeURIComponent(live.id)}`);
    await page.waitForSelector('[data-testid="conn-state"][data-state="live"]', { timeout: 30_000 });
    await page.waitForFunction(() => document.querySelector('[data-testid="remote-video"]')?.videoWidth > 0, null, { timeout: 30_000 });
    await check(page, 'supervisor-live');
  });
});

test('after a link from the keyboard the new page starts at its heading', { timeout: 60_000 }, async () => {
  const browser = await launch({ viewport: { width: 1440, height: 900 } });
  try {
    const page = await browser.newPage();
    await signIn(page, broker);
    await page.getByTestId('new-session').waitFor();
    const focused = () => page.evaluate(() => `${document.activeElement.tagName} ${document.activeElement.textContent.trim().slice(0, 40)}`);
    for (const [nav, heading] of [['nav-recordings', 'Recordings'], ['nav-keys', 'API keys'], ['nav-account', 'Account security']]) {
      await page.getByTestId(nav).focus();
      await page.keyboard.press('Enter');
      await page.locator('main h1', { hasText: heading }).waitFor();
      assert.equal(await focused(), `H1 ${heading}`, `after ${nav}`);
    }
    // Back goes there too.
    await page.goBack();
    await page.locator('main h1', { hasText: 'API keys' }).waitFor();
    assert.equal(await focused(), 'H1 API keys', 'after Back');
  } finally {
    await browser.close();
  }
});

test('the join page the user opens', { timeout: 60_000 }, async (t) => {
  const browser = await launch({ viewport: { width: 900, height: 1000 } });
  t.after(() => browser.close());
  const page = await browser.newPage();

  await t.test('with a code that is good', async () => {
    assert.equal((await page.goto(waiting.join_url)).status(), 200);
    await page.getByTestId('join-code').waitFor();
    await check(page, 'join');
  });

  await t.test('with a code that is no longer good', async () => {
    await page.goto(ended.join_url);
    await page.getByTestId('join-title').waitFor();
    await check(page, 'join-ended');
  });
});

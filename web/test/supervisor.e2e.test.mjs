// The console as a supervisor sees it, and as a colleague who joins a live
// session: against a real broker, a real host on an Xvfb desktop (whose
// user answers on its terminal) and headless Chromium at 1440x900.
// Screenshots go to artifacts/.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { collectErrors, launch } from './browser.mjs';
import { call, ROOT, startBroker, startHost, startXvfb, stopAll, until } from './procs.mjs';

const artifacts = join(ROOT, 'artifacts');
mkdirSync(artifacts, { recursive: true });
after(stopAll);

async function signIn(page, broker, user, password) {
  await page.goto(broker.url + '/');
  await page.getByTestId('login-username').fill(user);
  await page.getByTestId('login-password').fill(password);
  await page.getByTestId('login-submit').click();
  await page.getByTestId('logout').waitFor();
}

/** Waits for the host's question number n (from 1) to the user. */
async function asked(host, n) {
  await until(`question ${n} on the host`, () => host.out.stdout.split('Allow? ').length - 1 >= n, 20_000);
}

test('a supervisor at 1440x900', { timeout: 180_000 }, async (t) => {
  const display = await startXvfb(1280, 720);
  execFileSync('xsetroot', ['-solid', '#35648c'], { env: { ...process.env, DISPLAY: display } });
  const broker = await startBroker();
  const key = broker.admin.api_key;
  for (const [username, role] of [['sue', 'supervisor'], ['max', 'supervisor'], ['tom', 'technician']]) {
    assert.equal((await call(broker, 'POST', '/api/v1/users', key, { username, role, password: `${username}-password-12` })).status, 201);
  }

  const browser = await launch();
  t.after(() => browser.close());
  const tech = await browser.newPage();
  const errors = collectErrors(tech);
  const others = await launch();
  t.after(() => others.close());
  const page = await others.newPage();
  const pageErrors = collectErrors(page);
  const shot = (p, name) => p.screenshot({ path: join(artifacts, `console-supervisor-${name}-1440x900.png`), animations: 'disabled' });

  await signIn(page, broker, 'sue', 'sue-password-12');

  await t.test('no sessions yet: nothing offered that a supervisor cannot do', async () => {
    const empty = page.getByTestId('sessions-empty');
    await empty.waitFor();
    assert.equal(await empty.getByRole('button').count(), 0, 'a button in the empty list');
    assert.doesNotMatch(await page.locator('main').textContent(), /New support session|Create a/);
    assert.match(await empty.textContent(), /Sessions appear here as technicians start them/);
    await page.mouse.move(0, 0);
    await shot(page, '00-no-sessions');
  });

  // The admin works a session with the user, who lets them in.
  const s = (await call(broker, 'POST', '/api/v1/sessions', key, { ticket: { id: 'INC-7001' } })).body;
  const host = startHost(broker, s.code, display, { answer: null });
  await host.ready;
  await signIn(tech, broker, broker.admin.user, broker.admin.password);
  await tech.goto(`${broker.url}/#/session/${s.id}`);
  await asked(host, 1);
  host.type('all');
  await tech.locator('[data-testid="perm-chip"][data-perm="view"][data-granted="true"]').waitFor({ timeout: 15_000 });

  await t.test('a supervisor is offered nothing but watching', async () => {
    await page.goto(`${broker.url}/#/session/${s.id}`);
    await asked(host, 2);
    host.type('all');
    await page.locator('[data-testid="perm-chip"][data-perm="view"][data-granted="true"]').waitFor({ timeout: 15_000 });
    await page.locator('#conn-state[data-state="live"]').waitFor({ timeout: 15_000 });
    // No asking for files or a shell: the broker would refuse.
    assert.equal(await page.getByTestId('files-open').count(), 0, 'a Files button');
    assert.equal(await page.getByTestId('shell-open').count(), 0, 'a Terminal button');
    assert.equal(await page.getByTestId('activity-open').isVisible(), true);
    await page.getByTestId('clipboard-open').click();
    await page.getByTestId('clipboard-not-allowed').waitFor();
    assert.match(await page.getByTestId('clipboard-not-allowed').textContent(), /Supervisors watch only/);
    assert.equal(await page.locator('[data-testid="request-perm"]:visible').count(), 0, 'something to ask for');
    await page.mouse.move(0, 0);
    await shot(page, '01-watching');
    await page.keyboard.press('Escape');
  });

  await t.test('declined, a supervisor is told they may not watch; the session goes on', async () => {
    // Another supervisor: the user is asked (sue, back at once, would keep
    // what the user allowed her).
    await others.context.clearCookies();
    await signIn(page, broker, 'max', 'max-password-12');
    await page.goto(`${broker.url}/#/session/${s.id}`);
    await asked(host, 3);
    host.type('no');
    await page.getByTestId('let-go').waitFor({ timeout: 15_000 });
    assert.equal(await page.getByTestId('let-go-reason').textContent(), 'The user did not let you watch. The session goes on.');
    assert.equal(await page.getByTestId('session-ended').count(), 0, 'no "Session ended"');
    assert.equal(await page.locator('#conn-state').getAttribute('data-state'), 'declined');
    assert.equal(await page.locator('#conn-state').textContent(), 'Declined');
    assert.doesNotMatch(await page.getByTestId('stage-overlay').textContent(), /Create a new session/);
    assert.equal(await page.getByTestId('consent-status').textContent(), 'The user did not let you watch.');
    assert.equal((await call(broker, 'GET', `/api/v1/sessions/${s.id}`, key)).body.state, 'active');
    assert.equal(await tech.locator('#conn-state').getAttribute('data-state'), 'live');
    await page.mouse.move(0, 0);
    await shot(page, '02-declined');
  });

  await t.test('declined, an invited colleague is told so; the session goes on', async () => {
    assert.equal((await call(broker, 'POST', `/api/v1/sessions/${s.id}/invite`, key, { username: 'tom' })).status, 200);
    await others.context.clearCookies();
    await signIn(page, broker, 'tom', 'tom-password-12');
    await page.goto(`${broker.url}/#/session/${s.id}`);
    await asked(host, 4);
    host.type('no');
    await page.getByTestId('let-go').waitFor({ timeout: 15_000 });
    assert.equal(await page.getByTestId('let-go-reason').textContent(), 'The user did not let you join. The session goes on.');
    assert.equal(await page.getByTestId('session-ended').count(), 0, 'no "Session ended"');
    assert.equal(await page.locator('#conn-state').textContent(), 'Declined');
    assert.equal(await page.getByTestId('end-session').isVisible(), false, 'nothing to end from here');
    assert.equal((await call(broker, 'GET', `/api/v1/sessions/${s.id}`, key)).body.state, 'active');
    await page.mouse.move(0, 0);
    await shot(page, '03-colleague-declined');
  });

  await t.test('a session that is not theirs shows only that', async () => {
    const theirs = (await call(broker, 'POST', '/api/v1/sessions', key, { ticket: { id: 'INC-7002' } })).body;
    for (const id of [theirs.id, 'no-such-session']) {
      await page.goto(`${broker.url}/#/sessions`);
      await page.goto(`${broker.url}/#/session/${id}`);
      await page.getByTestId('session-ended').waitFor({ timeout: 15_000 });
      assert.equal(await page.getByTestId('session-ended').textContent(), 'Can\u2019t open this session');
      assert.equal(await page.getByTestId('ended-reason').textContent(), 'No such session, or it is not yours.');
      assert.equal(await page.locator('#conn-state').isVisible(), false, 'a state badge');
      assert.doesNotMatch(await page.locator('.viewer').innerText(), /Ended|session is over/);
    }
    await page.mouse.move(0, 0);
    await shot(page, '04-not-found');
  });

  // The broker answers 404 for a session that is not theirs, as it should.
  assert.deepEqual([...errors, ...pageErrors].map(String).filter((e) => !/status of 404/.test(e)), []);
});

test('a supervisor watching in two tabs is named once', { timeout: 120_000 }, async (t) => {
  const display = await startXvfb(1280, 720);
  const broker = await startBroker();
  const key = broker.admin.api_key;
  assert.equal((await call(broker, 'POST', '/api/v1/users', key, { username: 'sue', role: 'supervisor', password: 'sue-password-12' })).status, 201);
  const s = (await call(broker, 'POST', '/api/v1/sessions', key, { ticket: { id: 'INC-7003' } })).body;
  const host = startHost(broker, s.code, display);
  await host.ready;
  const browser = await launch();
  t.after(() => browser.close());
  const tech = await browser.newPage();
  const errors = collectErrors(tech);
  await signIn(tech, broker, broker.admin.user, broker.admin.password);
  await tech.goto(`${broker.url}/#/session/${s.id}`);
  await tech.locator('#conn-state[data-state="live"]').waitFor({ timeout: 30_000 });

  // Sue watches in one tab, and opens the session in a second one.
  const sup = await launch();
  t.after(() => sup.close());
  const first = await sup.newPage();
  await signIn(first, broker, 'sue', 'sue-password-12');
  const second = await sup.newPage();
  for (const page of [first, second]) {
    await page.goto(`${broker.url}/#/session/${s.id}`);
    await page.locator('[data-testid="perm-chip"][data-perm="view"][data-granted="true"]').waitFor({ timeout: 20_000 });
  }
  const banner = tech.getByTestId('observer-banner');
  await banner.waitFor();
  await tech.waitForTimeout(1500); // time for a second name to come
  assert.equal(await banner.innerText(), 'sue (supervisor) is watching this session, view only');

  // One tab closed, she still watches; both, she is gone.
  await second.close();
  await tech.waitForTimeout(1500);
  assert.equal(await banner.innerText(), 'sue (supervisor) is watching this session, view only');
  await first.close();
  await banner.waitFor({ state: 'hidden', timeout: 15_000 });
  assert.deepEqual(errors, []);
});

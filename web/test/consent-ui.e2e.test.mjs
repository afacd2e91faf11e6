// The user's consent as the console shows it, against the real stack: a
// real broker, a real host on an Xvfb desktop (a terminal, a clock and the
// input witness, testdata/xpattern -mode input, which reports what reaches
// the X server), and headless Chromium at 1440x900. The user answers the
// host's questions and gives its commands (pause, resume, revoke) on the
// host's terminal, as a person would. Screenshots go to artifacts/.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { collectErrors, launch, remotePoint, waitForPaint } from './browser.mjs';
import { bin, call, ROOT, start, startBroker, startHost, startXvfb, stopAll, until } from './procs.mjs';

const VIEWPORT = { width: 1440, height: 900 };
const SCREEN = { width: 1280, height: 720 };
// The input witness covers this part of the user's screen; clicks aim at its middle.
const WITNESS = { x: 700, y: 340, width: 540, height: 340 };
const TARGET = [WITNESS.x + WITNESS.width / 2, WITNESS.y + WITNESS.height / 2];

const artifacts = join(ROOT, 'artifacts');
mkdirSync(artifacts, { recursive: true });
after(stopAll);

/** The host's terminal output, as the user reads it (the pty ends lines with \r\n). */
const terminal = (host) => host.out.stdout.replaceAll('\r', '');

/**
 * The questions the host has put to the user so far, each as
 * { who, more, ticket, perms }: who asks, whether they are connected
 * already and ask for more, for which ticket, and the permissions listed.
 */
function questions(host) {
  const re = /\n([^\n]*?\))(, connected already,)? asks (?:to connect to|for more on) this computer(?: for ticket "([^\n]*?)")?\.\nThey ask to:\n((?: {2}\d+\. [^\n]*\n)+)[^\n]*\nAllow\? /g;
  return [...terminal(host).matchAll(re)].map((m) => ({
    who: m[1], more: !!m[2], ticket: m[3] ?? '', perms: [...m[4].matchAll(/\d+\. (\S+)/g)].map((p) => p[1]),
  }));
}

/** Waits for the host's next question to the user and returns it. */
async function nextQuestion(host) {
  host.asked ??= 0;
  const q = await until('the host to ask the user', () => questions(host)[host.asked]);
  host.asked++;
  return q;
}

/** Waits for the host's terminal to show text after `from` (an offset into terminal(host)). */
async function hostSays(host, text, from = 0) {
  await until(`the host to print "${text}"`, () => terminal(host).indexOf(text, from) >= 0);
}

const witnessMark = (witness) => witness.out.stdout.split('\n').length - 1;
const witnessLines = (witness, from) => witness.out.stdout.split('\n').slice(from).filter(Boolean);

/** Waits for a witness line after `from` that matches re. */
async function reaches(witness, re, from) {
  return until(`the X server to get ${re}`, () => witnessLines(witness, from).find((l) => re.test(l)));
}

/** Gives input time to arrive, then checks that none did. */
async function nothingReaches(witness, from, message) {
  await new Promise((r) => setTimeout(r, 1000));
  assert.deepEqual(witnessLines(witness, from), [], message);
}

/** Clicks where the witness is on the remote screen and types a key. */
async function clickAndType(page) {
  const [px, py] = await remotePoint(page, ...TARGET);
  await page.mouse.click(px, py);
  await page.keyboard.press('KeyA');
}

async function signIn(page, broker, user, password) {
  await page.goto(broker.url + '/');
  await page.getByTestId('login-username').fill(user);
  await page.getByTestId('login-password').fill(password);
  await page.getByTestId('login-submit').click();
  await page.getByTestId('sessions-table').waitFor();
}

test('consent at 1440x900', { timeout: 180_000 }, async (t) => {
  // The user's desktop: a coloured background, a terminal, a clock, and
  // the witness, which takes the keyboard focus.
  const display = await startXvfb(SCREEN.width, SCREEN.height);
  const env = { DISPLAY: display };
  execFileSync('xsetroot', ['-solid', '#35648c'], { env: { ...process.env, ...env } });
  start('xterm', ['-geometry', '80x22+24+24', '-bg', '#1e1e1e', '-fg', '#d0d0d0'], { env });
  start('xclock', ['-geometry', '170x170+1086+24', '-update', '1'], { env });
  const witness = start(bin('xpattern'), ['-mode', 'input', '-geometry', `${WITNESS.width}x${WITNESS.height}+${WITNESS.x}+${WITNESS.y}`],
    { env, readyLine: /ready/ });
  await witness.ready;

  const broker = await startBroker();
  const key = broker.admin.api_key;
  const me = broker.admin.user;
  for (const [username, role] of [['sue', 'supervisor'], ['tom', 'technician']]) {
    const made = await call(broker, 'POST', '/api/v1/users', key, { username, role, password: `${username}-password-12` });
    assert.equal(made.status, 201, JSON.stringify(made.body));
  }
  // Sessions that ask for different things; the last one is worked below.
  const create = async (ticket, permissions) => {
    const s = await call(broker, 'POST', '/api/v1/sessions', key, { ticket: { id: ticket }, ...(permissions && { permissions }) });
    assert.equal(s.status, 201, JSON.stringify(s.body));
    return s.body;
  };
  await create('INC-20911', ['view']);
  await create('INC-20927', ['view', 'control', 'clipboard', 'files']);
  const old = await create('REQ-4410', ['view', 'control', 'clipboard', 'files', 'shell']);
  assert.equal((await call(broker, 'POST', `/api/v1/sessions/${old.id}/end`, key)).status, 200);
  const main = await create('INC-20931'); // what the broker asks for by default

  const browser = await launch({ viewport: VIEWPORT });
  t.after(() => browser.close());
  const page = await browser.newPage();
  const pageErrors = collectErrors(page);
  const shot = (name) => page.screenshot({ path: join(artifacts, `console-consent-${name}-1440x900.png`), animations: 'disabled' });
  const byId = (id) => page.getByTestId(id);
  const perm = (id, p) => page.locator(`[data-testid="${id}"][data-perm="${p}"]`);
  const chips = () => page.locator('[data-testid="perm-chip"]').evaluateAll((els) => els.map((e) => `${e.dataset.perm}:${e.dataset.granted}`));
  const permissions = () => page.evaluate(() => window.tether.permissions);
  const toast = async (text) => {
    await page.locator('[data-testid="consent-toast"]:not([hidden])').filter({ hasText: text }).waitFor({ timeout: 15_000 });
    return byId('consent-toast').getAttribute('data-kind');
  };
  const controlEnabled = (on) => page.waitForFunction((on) => window.tether.control.enabled === on, on, { timeout: 15_000 });
  const events = async (id) => (await call(broker, 'GET', `/api/v1/sessions/${id}/events`, key)).body.events;

  // A second browser: the supervisor, then a second technician.
  const other = await launch({ viewport: VIEWPORT });
  t.after(() => other.close());
  const otherErrors = []; // one list per page

  await signIn(page, broker, me, broker.admin.password);
  await page.bringToFront();

  let mainHost;
  let picked;

  await t.test('the list shows what each session asks for', async () => {
    await until('four sessions', async () => (await byId('session-row').count()) === 4);
    const rows = await byId('session-row').evaluateAll((els) => els.map((e) => [
      e.querySelector('.ticket')?.textContent, e.querySelector('[data-testid="session-perms"]').dataset.perms]));
    assert.deepEqual(Object.fromEntries(rows), {
      'INC-20931': 'view,control,clipboard',
      'REQ-4410': 'view,control,clipboard,files,shell',
      'INC-20927': 'view,control,clipboard,files',
      'INC-20911': 'view',
    });
  });

  await t.test('the permission picker sends the chosen permissions', async () => {
    await byId('new-session').click();
    const box = (p) => perm('perm-option', p);
    assert.deepEqual(await page.locator('[data-testid="perm-option"]').evaluateAll((els) => els.map((e) => [e.value, e.checked, e.disabled])), [
      ['view', true, true],
      ['control', true, false],
      ['clipboard', true, false],
      ['files', false, false],
      ['shell', false, false],
    ]);
    assert.equal(await page.getByRole('checkbox', { name: 'Files' }).count(), 1, 'each box is named by its label');
    await byId('new-session-ticket').fill('INC-20944');
    await box('clipboard').uncheck();
    await box('files').check();
    await page.mouse.move(0, 0);
    await shot('01-new-session');
    await byId('new-session-submit').click();
    await byId('code-card').waitFor();
    const code = await byId('session-code').getAttribute('data-code');
    // What the broker stored: the session for that ticket asks for what was
    // picked. (The host's question for it is checked where the user answers it.)
    const list = (await call(broker, 'GET', '/api/v1/sessions', key)).body.sessions;
    const stored = list.filter((s) => s.ticket?.id === 'INC-20944');
    assert.equal(stored.length, 1);
    assert.deepEqual(stored[0].permissions, ['view', 'control', 'files']);
    assert.equal(stored[0].state, 'waiting');
    picked = { id: stored[0].id, code };
    assert.deepEqual(await byId('code-card').locator('[data-testid="perm-chip"]').evaluateAll((els) => els.map((e) => e.dataset.perm)), ['view', 'control', 'files']);
    await page.mouse.move(0, 0);
    await shot('02-code-card');
  });

  await t.test('while the user decides, the stage says what was asked', async () => {
    await page.goto(`${broker.url}/#/session/${main.id}`);
    await page.locator('#conn-state[data-state="waiting"]').waitFor({ timeout: 15_000 });
    // The user runs the host with the session's code and has not answered yet.
    mainHost = startHost(broker, main.code, display, { answer: null });
    await mainHost.ready;
    const q = await nextQuestion(mainHost);
    assert.deepEqual(q, { who: `${me} (admin)`, more: false, ticket: 'INC-20931', perms: ['view', 'control', 'clipboard'] });
    await page.locator('#conn-state[data-state="live"]').waitFor({ timeout: 20_000 });
    const pending = byId('consent-pending');
    await pending.waitFor();
    assert.deepEqual(await chips(), ['view:false', 'control:false', 'clipboard:false'], 'the requested permissions, none granted yet');
    assert.equal(await pending.getAttribute('data-variant'), 'overlay');
    assert.equal(await pending.locator('.overlay-title').textContent(), `Waiting for the user at ${hostname()} to allow access\u2026`);
    assert.deepEqual(await pending.locator('[data-perm]').evaluateAll((els) => els.map((e) => e.dataset.perm)), ['view', 'control', 'clipboard']);
    assert.deepEqual(await permissions(), { granted: [], paused: false, pending: true, message: 'Waiting for the user to answer.' });
    assert.equal(await byId('mode-control').isDisabled(), true);
    assert.equal(await byId('consent-toast').isVisible(), false, 'the overlay says it already');
    await page.mouse.move(0, 0);
    await page.waitForTimeout(2100); // "Asked just now"
    await shot('03-waiting');
  });

  await t.test('a partial grant: chips, View only, and Request control', async () => {
    mainHost.type('1'); // view only
    assert.equal(await toast('The user allowed view only.'), 'partial');
    await byId('consent-pending').waitFor({ state: 'detached' });
    await page.waitForFunction(() => document.querySelector('[data-testid="remote-video"]').videoWidth === 1280, null, { timeout: 20_000 });
    await byId('stage-overlay').waitFor({ state: 'hidden', timeout: 10_000 });
    assert.deepEqual(await chips(), ['view:true', 'control:false', 'clipboard:false']);
    assert.deepEqual(await permissions(), { granted: ['view'], paused: false, pending: false, message: 'The user allowed view only.' });
    assert.equal(await byId('mode-control').isDisabled(), true);
    assert.equal(await byId('mode-control').getAttribute('data-tip'), 'The user has not allowed control');
    assert.equal(await byId('mode-view').getAttribute('aria-pressed'), 'true');
    await perm('request-perm', 'control').waitFor();
    let from = witnessMark(witness);
    await clickAndType(page);
    await nothingReaches(witness, from, 'view only: nothing reaches the user\u2019s screen');
    await waitForPaint(page);
    await page.mouse.move(0, 0);
    await shot('04-partial');

    await perm('request-perm', 'control').click();
    const q = await nextQuestion(mainHost);
    assert.deepEqual(q, { who: `${me} (admin)`, more: true, ticket: 'INC-20931', perms: ['control'] });
    const asked = (await events(main.id)).filter((e) => e.type === 'permission.requested');
    assert.deepEqual(asked.map((e) => [e.actor, e.detail]), [[me, { permissions: ['control'] }]]);
    assert.equal(await perm('request-perm', 'control').isDisabled(), true, 'one question at a time');
    assert.match(await perm('request-perm', 'control').textContent(), /Asking the user/);
    // Said once, in the status line: the screen stays in view, no banner, no toast.
    await page.locator('[data-testid="consent-status"][data-kind="pending"]').waitFor();
    assert.match(await byId('consent-status').textContent(), /Waiting for the user to allow Control/);
    assert.equal(await byId('consent-pending').count(), 0);
    assert.equal(await page.locator('[data-testid="consent-toast"][data-kind="pending"]:not([hidden])').count(), 0);
    await page.mouse.move(0, 0);
    await shot('05-asking-control');

    // Allowed: the console takes control at once, as the technician asked.
    mainHost.type('all');
    assert.equal(await toast('The user allowed control.'), 'granted');
    await controlEnabled(true);
    await byId('consent-pending').waitFor({ state: 'detached' });
    assert.equal(await perm('request-perm', 'control').isVisible(), false);
    assert.deepEqual(await chips(), ['view:true', 'control:true', 'clipboard:false']);
    from = witnessMark(witness);
    await clickAndType(page);
    await reaches(witness, /^button 1 down /, from);
    await reaches(witness, /^key down \d+ a$/, from);
  });

  await t.test('a supervisor watching is announced on the stage', async () => {
    assert.equal(await byId('observer-banner').isVisible(), false);
    const watcher = await other.newPage();
    otherErrors.push(collectErrors(watcher));
    await signIn(watcher, broker, 'sue', 'sue-password-12');
    await watcher.goto(`${broker.url}/#/session/${main.id}`);
    // The user is asked to let the supervisor see, and nothing more.
    const q = await nextQuestion(mainHost);
    assert.deepEqual(q, { who: 'sue (supervisor)', more: false, ticket: 'INC-20931', perms: ['view'] });
    const shown = terminal(mainHost).length;
    mainHost.type('all');
    await hostSays(mainHost, 'sue (supervisor) is observing and can only see your screen', shown);
    await byId('observer-banner').waitFor({ timeout: 15_000 });
    assert.match(await byId('observer-banner').textContent(), /sue \(supervisor\) is watching this session, view only/);
    await watcher.locator('#conn-state[data-state="live"]').waitFor({ timeout: 20_000 });
    // The supervisor's console offers no control: the broker gives none.
    const control = watcher.getByTestId('mode-control');
    assert.equal(await control.isDisabled(), true);
    assert.equal(await control.getAttribute('data-tip'), 'Supervisors watch only');
    assert.equal(await watcher.locator('[data-testid="request-perm"][data-perm="control"]').isVisible(), false);
    // They were asked to see and were let see: all they asked for.
    await watcher.locator('[data-testid="consent-toast"]:not([hidden])').filter({ hasText: 'The user allowed view.' }).waitFor({ timeout: 15_000 });
    assert.equal(await watcher.getByTestId('consent-toast').getAttribute('data-kind'), 'granted');
    assert.deepEqual(await watcher.locator('[data-testid="perm-chip"]').evaluateAll((els) => els.map((e) => `${e.dataset.perm}:${e.dataset.granted}`)), ['view:true']);
    await page.bringToFront();
    await page.mouse.move(0, 0);
    await shot('05b-observed');
    await watcher.close();
    await byId('observer-banner').waitFor({ state: 'hidden', timeout: 15_000 });
  });

  await t.test('the clipboard panel asks for clipboard access', async () => {
    await byId('clipboard-open').click();
    await perm('request-perm', 'clipboard').waitFor();
    assert.match(await byId('clipboard-not-allowed').textContent(), /not allowed clipboard sharing/);
    assert.equal(await byId('clipboard-send-text').isVisible(), false);
    await perm('request-perm', 'clipboard').click();
    assert.deepEqual(await nextQuestion(mainHost), { who: `${me} (admin)`, more: true, ticket: 'INC-20931', perms: ['clipboard'] });
    await page.locator('[data-testid="clipboard-not-allowed"]', { hasText: 'Waiting for the user to answer on their computer' }).waitFor();
    assert.equal(await perm('request-perm', 'clipboard').isDisabled(), true, 'one question at a time');
    mainHost.type('no');
    assert.equal(await toast('The user declined.'), 'declined');
    await page.waitForFunction(() => document.querySelector('[data-testid="request-perm"][data-perm="clipboard"]').getAttribute('aria-disabled') === 'false');
    assert.equal(await byId('clipboard-send-text').isVisible(), false);
    await page.keyboard.press('Escape');

    // The chip asks too.
    await perm('perm-chip', 'clipboard').click();
    assert.deepEqual(await nextQuestion(mainHost), { who: `${me} (admin)`, more: true, ticket: 'INC-20931', perms: ['clipboard'] });
    await page.locator('[data-testid="perm-chip"][data-perm="clipboard"].is-asking').waitFor();
    mainHost.type('no');
    assert.equal(await toast('The user declined.'), 'declined');
    await page.locator('[data-testid="perm-chip"][data-perm="clipboard"]:not(.is-asking)').waitFor();
    assert.deepEqual(await chips(), ['view:true', 'control:true', 'clipboard:false']);
    assert.equal(await page.evaluate(() => window.tether.control.enabled), true, 'a "no" to the clipboard leaves control alone');
    const from = witnessMark(witness);
    await clickAndType(page);
    await reaches(witness, /^key down \d+ a$/, from);
  });

  await t.test('paused: the stage says so, control stops, and comes back on resume', async () => {
    const shown = terminal(mainHost).length;
    mainHost.type('pause');
    await hostSays(mainHost, 'PAUSED: nothing is shared until you resume.', shown);
    await byId('consent-paused').waitFor({ timeout: 15_000 });
    assert.equal(await toast('The user paused the session.'), 'paused');
    assert.deepEqual(await permissions(), { granted: ['view', 'control'], paused: true, pending: false, message: 'The user paused the session.' });
    await controlEnabled(false);
    assert.equal(await byId('mode-control').isDisabled(), true);
    assert.equal(await byId('mode-control').getAttribute('data-tip'), 'The user paused the session');
    assert.equal(await page.locator('[data-testid="request-perm"]:visible').count(), 0, 'nothing to ask for while paused');
    assert.match(await byId('consent-status').textContent(), /^Paused by the user0:0\d$/);
    let from = witnessMark(witness);
    await clickAndType(page);
    await nothingReaches(witness, from, 'paused: nothing reaches the user\u2019s screen');
    await page.mouse.move(0, 0);
    await page.waitForTimeout(2100);
    await shot('06-paused');

    // The sessions list, in another browser, says what the user allows now
    // and that the session is paused; a session the user has not joined
    // still shows what it asks for.
    const list = await other.newPage();
    otherErrors.push(collectErrors(list));
    await list.goto(`${broker.url}/#/sessions`);
    const row = list.locator(`[data-testid="session-row"][data-session-id="${main.id}"]`);
    await row.waitFor({ timeout: 15_000 });
    const cell = row.getByTestId('session-perms');
    assert.equal(await cell.getAttribute('data-perms'), 'view,control');
    assert.equal(await cell.getAttribute('data-now'), 'paused');
    assert.equal(await cell.locator('.cell-sub').textContent(), 'paused by the user');
    assert.match(await row.getByTestId('session-length').textContent(), /^for (under a minute|\d+ min)$/);
    const waiting = list.locator('[data-testid="session-row"][data-state="waiting"]').first().getByTestId('session-perms');
    assert.equal(await waiting.getAttribute('data-now'), null);
    assert.equal(await waiting.locator('.cell-sub').textContent(), 'asked');
    assert.equal(await list.locator('[data-testid="session-row"][data-state="waiting"]').first().getByTestId('session-length').count(), 0);
    await list.screenshot({ path: join(artifacts, 'console-consent-06b-list-paused-1440x900.png'), animations: 'disabled' });
    await list.close();

    mainHost.type('resume');
    assert.equal(await toast('The user resumed the session.'), 'resumed');
    await byId('consent-paused').waitFor({ state: 'detached' });
    await controlEnabled(true);
    from = witnessMark(witness);
    await clickAndType(page);
    await reaches(witness, /^button 1 down /, from);
    await reaches(witness, /^key down \d+ a$/, from);
  });

  await t.test('revoked control: View only, and no input leaves', async () => {
    mainHost.type('revoke control');
    assert.equal(await toast('The user revoked control.'), 'revoked');
    await controlEnabled(false);
    assert.equal(await byId('mode-view').getAttribute('aria-pressed'), 'true');
    assert.equal(await byId('mode-control').isDisabled(), true);
    await perm('request-perm', 'control').waitFor();
    const from = witnessMark(witness);
    await clickAndType(page);
    await nothingReaches(witness, from, 'control revoked: nothing reaches the user\u2019s screen');
  });

  await t.test('view revoked: the stage offers to ask again', async () => {
    mainHost.type('revoke view');
    assert.equal(await toast('The user revoked view.'), 'revoked');
    await byId('consent-noview').waitFor();
    assert.match(await byId('consent-noview').textContent(), /The user revoked view\./);
    await perm('request-perm', 'view').click();
    assert.deepEqual(await nextQuestion(mainHost), { who: `${me} (admin)`, more: true, ticket: 'INC-20931', perms: ['view'] });
    await byId('consent-pending').waitFor();
    assert.deepEqual(await byId('consent-pending').locator('[data-perm]').evaluateAll((els) => els.map((e) => e.dataset.perm)), ['view']);
    mainHost.type('all');
    assert.equal(await toast('The user allowed view.'), 'granted');
    await byId('stage-overlay').waitFor({ state: 'hidden', timeout: 15_000 });
  });

  await t.test('the activity panel lists the audit trail', async () => {
    const trail = await events(main.id);
    await byId('activity-open').click();
    const panel = byId('activity-panel');
    await panel.waitFor();
    await until(`${trail.length} rows`, async () => (await byId('activity-row').count()) === trail.length);
    const rows = await byId('activity-row').evaluateAll((els) => els.map((e) => [e.dataset.type, e.dataset.actor, e.querySelector('.activity-text').textContent]));
    assert.deepEqual(rows.map(([type]) => type), trail.map((e) => e.type).reverse(), 'the broker\u2019s trail, newest first');
    // What the user was asked and answered, oldest first.
    const consent = rows.filter(([type]) => /^(consent|permission)\./.test(type)).map(([, actor, text]) => [actor, text]).reverse();
    assert.deepEqual(consent, [
      [me, 'The user was asked to allow view, control, clipboard'],
      ['user', 'The user allowed view; declined control, clipboard'],
      [me, `${me} asked for control`],
      [me, 'The user was asked to allow control'],
      ['user', 'The user allowed control'],
      ['sue', 'The user was asked to allow view'],
      ['user', 'The user allowed view'],
      [me, `${me} asked for clipboard`],
      [me, 'The user was asked to allow clipboard'],
      ['user', `The user declined ${me}\u2019s request for clipboard`],
      [me, `${me} asked for clipboard`],
      [me, 'The user was asked to allow clipboard'],
      ['user', `The user declined ${me}\u2019s request for clipboard`],
      ['user', 'The user paused the session'],
      ['user', 'The user resumed the session'],
      ['user', 'The user revoked control'],
      ['user', 'The user revoked view'],
      [me, `${me} asked for view`],
      [me, 'The user was asked to allow view'],
      ['user', 'The user allowed view'],
    ]);
    assert.deepEqual(rows.at(-1), ['session.created', me, `${me} created the session`], 'oldest last');
    assert.deepEqual(rows.at(-2), ['viewer.joined', me, `${me} opened the session as admin`]);
    assert.ok(rows.some(([type, , text]) => type === 'host.connected' && text.startsWith(`The user\u2019s computer connected (${hostname()}`)), JSON.stringify(rows));
    assert.match(await panel.textContent(), /\(you\)/);
    await page.mouse.move(0, 0);
    await shot('07-activity');

    // A consent change brings the new events in.
    await perm('request-perm', 'control').click();
    assert.deepEqual((await nextQuestion(mainHost)).perms, ['control']);
    await until(`${trail.length + 2} rows`, async () => (await byId('activity-row').count()) === trail.length + 2);
    const newest = await byId('activity-row').evaluateAll((els) => els.slice(0, 2).map((e) => e.dataset.type));
    assert.deepEqual(newest, ['consent.requested', 'permission.requested']);
    mainHost.type('no');
    assert.equal(await toast('The user declined.'), 'declined');
    await byId('activity-open').click();
    await panel.waitFor({ state: 'hidden' });
  });

  await t.test('a reload keeps what the user allowed, without asking again', async () => {
    const asked = terminal(mainHost).split('Allow? ').length;
    await page.reload();
    await page.locator('#conn-state[data-state="live"]').waitFor({ timeout: 20_000 });
    await perm('perm-chip', 'view').and(page.locator('[data-granted="true"]')).waitFor({ timeout: 15_000 });
    await waitForPaint(page);
    assert.equal(terminal(mainHost).split('Allow? ').length, asked, 'the user was asked again after a reload');
  });

  await t.test('declined: the session ends with the user\u2019s answer', async () => {
    // The session made with the picker: the user runs the host with its code.
    const host = startHost(broker, picked.code, display, { answer: null });
    await host.ready;
    await page.goto(`${broker.url}/#/session/${picked.id}`);
    assert.deepEqual(await nextQuestion(host), { who: `${me} (admin)`, more: false, ticket: 'INC-20944', perms: ['view', 'control', 'files'] });
    await page.locator('#conn-state[data-state="live"]').waitFor({ timeout: 20_000 });
    await byId('consent-pending').waitFor();
    assert.deepEqual(await chips(), ['view:false', 'control:false', 'files:false']);
    host.type('no');
    await byId('session-ended').waitFor({ timeout: 15_000 });
    assert.equal(await byId('ended-reason').textContent(), 'The user declined.');
    assert.equal(await page.locator('#conn-state').getAttribute('data-state'), 'ended');
    assert.equal(await byId('consent-pending').count(), 0);
    const { code: exitCode } = await host.exited;
    assert.equal(exitCode, 0, `host exit code; stderr:\n${host.out.stderr}`);
    assert.match(terminal(host), /Session ended: You declined\./);
    const s = (await call(broker, 'GET', `/api/v1/sessions/${picked.id}`, key)).body;
    assert.deepEqual([s.state, s.end_reason], ['ended', 'The user declined.']);
    await page.mouse.move(0, 0);
    await shot('08-declined');
  });

  await t.test('declined while another technician stays: this viewer is let go', async () => {
    // tom works the ticket too: invited, but the user does not let him in.
    assert.equal((await call(broker, 'POST', `/api/v1/sessions/${main.id}/invite`, key, { username: 'tom' })).status, 200);
    await other.context.clearCookies();
    const colleague = await other.newPage();
    otherErrors.push(collectErrors(colleague));
    await signIn(colleague, broker, 'tom', 'tom-password-12');
    await colleague.goto(`${broker.url}/#/session/${main.id}`);
    assert.deepEqual(await nextQuestion(mainHost), { who: 'tom (technician)', more: false, ticket: 'INC-20931', perms: ['view', 'control', 'clipboard'] });
    await colleague.locator('#conn-state[data-state="live"]').waitFor({ timeout: 20_000 });
    await colleague.getByTestId('consent-pending').waitFor();
    mainHost.type('no');
    // Not an end: tom is told so, without "Session ended".
    await colleague.getByTestId('let-go').waitFor({ timeout: 15_000 });
    assert.equal(await colleague.getByTestId('let-go-reason').textContent(), 'The user did not let you join. The session goes on.');
    assert.equal(await colleague.getByTestId('session-ended').count(), 0);
    // The session goes on: the user has let this console's technician in.
    const s = (await call(broker, 'GET', `/api/v1/sessions/${main.id}`, key)).body;
    assert.equal(s.state, 'active');
    assert.equal(mainHost.child.exitCode, null, 'the host stopped');
  });

  assert.deepEqual(pageErrors.map(String), []);
  assert.deepEqual(otherErrors.flat().map(String), []);
});

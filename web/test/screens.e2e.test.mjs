// Every console screen against the real stack, at two window sizes, with
// screenshots in artifacts/: the broker's login errors and lock-out, the
// sessions list, a fresh code, a session waiting for its host, the live
// picture of a real desktop (Xvfb with an xterm and a clock) and its end;
// then the live page's bars and side panels in narrower windows.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { collectErrors, launch, waitForPaint } from './browser.mjs';
import { api, ROOT, start, startBroker, startHost, startXvfb, stopAll, until } from './procs.mjs';

const artifacts = join(ROOT, 'artifacts');
mkdirSync(artifacts, { recursive: true });
after(stopAll);

const DESKTOP = { width: 1920, height: 1080 };
const BACKDROP = { hex: '#2a6f97', rgb: [0x2a, 0x6f, 0x97] }; // the root window's colour
let display;

// One desktop for the whole file: a coloured backdrop, a terminal and a
// clock, as a user's screen would show.
before(async () => {
  display = await startXvfb(DESKTOP.width, DESKTOP.height);
  const env = { DISPLAY: display };
  execFileSync('xsetroot', ['-solid', BACKDROP.hex], { env: { ...process.env, ...env } });
  start('xterm', ['-fa', 'DejaVu Sans Mono', '-fs', '12', '-geometry', '96x30+120+120', '-bg', 'white', '-fg', 'black', '-e', 'top', '-d', '5'], { env });
  start('xclock', ['-geometry', '260x260+1500+120', '-update', '1'], { env });
  await until('the terminal and the clock on the desktop', () => {
    const tree = execFileSync('xwininfo', ['-root', '-children'], { env: { ...process.env, ...env } }).toString();
    return /"xterm"/.test(tree) && /"xclock"/.test(tree);
  }, 15_000);
});

/**
 * The share of the pixels in a rectangle of the remote screen that the
 * console's video shows within tol of colour rgb.
 */
function videoShare(page, [x, y, w, h], rgb, tol = 24) {
  return page.getByTestId('remote-video').evaluate((v, [x, y, w, h, rgb, tol]) => {
    const c = document.createElement('canvas');
    c.width = v.videoWidth;
    c.height = v.videoHeight;
    const ctx = c.getContext('2d');
    ctx.drawImage(v, 0, 0);
    const d = ctx.getImageData(x, y, w, h).data;
    let hits = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (rgb.every((c, k) => Math.abs(d[i + k] - c) <= tol)) hits++;
    }
    return hits / (w * h);
  }, [x, y, w, h, rgb, tol]);
}

/**
 * Waits for the host's next consent question and answers it with the
 * numbers of the permissions in allow; returns what it asked, in order.
 */
async function answerPrompt(host, allow, asked = 0) {
  await until('the host\u2019s question', () => host.out.stdout.split('Allow? ').length - 1 > asked, 30_000);
  const question = host.out.stdout.slice(host.out.stdout.lastIndexOf('They ask to:'));
  const listed = [...question.matchAll(/^\s+(\d+)\. (\w+)/gm)].map((m) => m[2]);
  host.type(allow.map((p) => listed.indexOf(p) + 1).join(' '));
  return listed;
}

const VIEWPORTS = [
  { width: 1440, height: 900 },
  { width: 1280, height: 720 },
];

for (const viewport of VIEWPORTS) {
  const size = `${viewport.width}x${viewport.height}`;

  test(`console screens render at ${size}`, { timeout: 120_000 }, async (t) => {
    const broker = await startBroker();
    const browser = await launch({ viewport });
    t.after(() => browser.close());

    const page = await browser.newPage();
    const pageErrors = collectErrors(page);
    const shot = (name) => page.screenshot({ path: join(artifacts, `console-${name}-${size}.png`), animations: 'disabled' });
    const byId = (id) => page.getByTestId(id);
    let sessionId = '';
    let code = '';
    let host;

    await t.test('login shows the broker\u2019s error', async () => {
      await page.goto(broker.url + '/');
      // The broker locks an account after five wrong passwords in a row:
      // the fifth is still just wrong, the sixth meets the lock-out.
      for (let i = 1; i <= 6; i++) {
        await byId('login-username').fill('locked.out');
        await byId('login-password').fill(`guess-${i}`);
        await byId('login-submit').click();
        await page.waitForFunction(() => {
          const label = document.querySelector('[data-testid="login-submit"]').textContent;
          return !document.querySelector('[data-testid="login-error"]').hidden && label !== 'Signing in\u2026';
        });
        const want = i <= 5 ? 'Wrong username or password.' : 'Too many failed logins. Wait a moment and try again.';
        assert.equal((await byId('login-error').textContent()).trim(), want, `attempt ${i}`);
      }
      assert.match(await byId('login-submit').textContent(), /^Try again in (29|30)s$/);
      assert.equal(await byId('login-submit').isDisabled(), true);

      await page.reload(); // forget the lock-out countdown
      await byId('login-username').fill(broker.admin.user);
      await byId('login-password').fill('not the password');
      await byId('login-submit').click();
      const error = byId('login-error');
      await error.waitFor({ state: 'visible' });
      assert.equal((await error.textContent()).trim(), 'Wrong username or password.');
      await page.waitForFunction(() => !document.querySelector('[data-testid="login-submit"]').disabled);
      await byId('login-password').fill('');
      await page.mouse.move(0, 0);
      await shot('01-login-error');
    });

    await t.test('sessions: empty state after sign-in', async () => {
      await byId('login-password').fill(broker.admin.password);
      await byId('login-submit').click();
      await byId('sessions-empty').waitFor();
      assert.ok((await byId('current-user').textContent()).includes(broker.admin.user));
      await shot('02-sessions-empty');
    });

    await t.test('sessions: list and a fresh code', async () => {
      // Five sessions made by a ticket system: four waiting, one ended.
      const made = [
        { ticket: { system: 'servicenow', id: 'INC-20931' } },
        { ticket: { system: 'jira', id: 'HELP-88' }, permissions: ['view'] },
        { ticket: { id: 'INC-20977' }, permissions: ['view', 'control', 'clipboard', 'files', 'shell'] },
        {},
        { ticket: { id: 'INC-20880' }, permissions: ['view', 'files'] },
      ];
      for (const body of made) assert.equal((await api(broker, 'POST', '/api/v1/sessions', body)).status, 201);
      const last = (await api(broker, 'GET', '/api/v1/sessions')).body.sessions.find((s) => s.ticket?.id === 'INC-20880');
      assert.equal((await api(broker, 'POST', `/api/v1/sessions/${last.id}/end`, {})).status, 200);

      await page.reload();
      await byId('sessions-table').waitFor();
      assert.equal(await byId('session-row').count(), 5);
      assert.equal(await page.locator(`[data-testid="session-row"][data-session-id="${last.id}"]`).getAttribute('data-state'), 'ended');

      await byId('new-session').click();
      await byId('new-session-ticket').fill('INC-1234');
      await shot('03-new-session-dialog');
      await byId('new-session-submit').click();
      await byId('new-session-dialog').waitFor({ state: 'detached' });

      const codeEl = byId('session-code');
      await codeEl.waitFor();
      sessionId = (await byId('open-session').getAttribute('href')).replace('#/session/', '');
      const stored = await api(broker, 'GET', `/api/v1/sessions/${sessionId}`);
      assert.equal(stored.status, 200);
      assert.deepEqual({ ticket: stored.body.ticket?.id, permissions: stored.body.permissions, state: stored.body.state },
        { ticket: 'INC-1234', permissions: ['view', 'control', 'clipboard'], state: 'waiting' }, 'View, Control and Clipboard by default');

      code = await codeEl.getAttribute('data-code');
      assert.match(code, /^\d{9,}$/);
      assert.equal((await codeEl.locator('.code-group').allTextContents()).join(''), code, 'the code as shown');
      assert.equal(await codeEl.locator('.visually-hidden').textContent(), `Support code ${code.split('').join(' ')}`, 'the code as read out');
      assert.equal(await byId('host-command').textContent(), `host -broker ${broker.url} -ca ca.pem ${code}`);
      assert.match(await byId('host-command-hint').textContent(), /already has Tether installed, they can run this instead of using the link. This is a test broker: the user also needs its ca.pem/);
      assert.match(await byId('code-expiry').textContent(), /^Expires in (9|10):\d\d$/);
      await page.waitForFunction(() => document.querySelectorAll('[data-testid="session-row"]').length === 6);
      await page.mouse.move(0, 0);
      await shot('04-sessions-code');
    });

    await t.test('session view: waiting for the host', async () => {
      await byId('open-session').click();
      await page.locator('#conn-state[data-state="waiting"]').waitFor({ timeout: 15_000 });
      assert.equal(await page.evaluate(() => window.tether.state), 'waiting');
      assert.equal((await byId('conn-state').textContent()).trim(), 'Waiting for the user');
      assert.match(await byId('stage-overlay').innerText(), /Waiting for the user to join/);
      // The code to read out to the user, on the waiting screen.
      const overlayCode = byId('overlay-code');
      const shown = await overlayCode.waitFor({ timeout: 5000 }).then(() => true, () => false);
      await shot('05-session-waiting');
      assert.ok(shown, 'the waiting screen shows the code to read out');
      assert.equal(await overlayCode.getAttribute('data-code'), code);
    });

    await t.test('session view: live video of the user\u2019s desktop', async () => {
      // The user runs the host with the code and allows what is asked.
      host = startHost(broker, code, display);
      await host.ready;
      await page.locator('#conn-state[data-state="live"]').waitFor({ timeout: 30_000 });
      await page.waitForFunction(() => document.querySelector('[data-testid="remote-video"]').videoWidth > 0, null, { timeout: 30_000 });
      // The picture has a size a moment before its first frame is decoded.
      await byId('stage-overlay').waitFor({ state: 'hidden', timeout: 10_000 });
      await byId('display-size').waitFor();
      assert.equal(await byId('display-size').textContent(), '1920 \u00d7 1080');
      assert.match(await byId('host-info').textContent(), new RegExp(`^${hostname()} \u00b7 `));
      // Let the encoder ramp up to full resolution so the screenshot is sharp.
      await page.waitForFunction(() => document.querySelector('[data-testid="remote-video"]').videoWidth >= 1920, null, { timeout: 15_000 });
      await waitForPaint(page);
      // The picture is the user's desktop: the backdrop, and the white
      // terminal where it stands on the screen.
      const backdrop = await videoShare(page, [0, 800, 1920, 280], BACKDROP.rgb);
      assert.ok(backdrop > 0.99, `the backdrop shows below the windows (${backdrop})`);
      const terminal = await videoShare(page, [140, 140, 800, 500], [255, 255, 255]);
      assert.ok(terminal > 0.6, `the terminal shows where it stands (${terminal} of it white)`);
      await shot('06-session-live');

      await byId('end-session').click();
      await byId('end-session-dialog').waitFor();
      await shot('07-end-confirm');
      await byId('confirm-ok').click();
      await byId('session-ended').waitFor();
      assert.equal(await page.locator('#conn-state').getAttribute('data-state'), 'ended');
      assert.equal(await byId('ended-reason').textContent(), 'The technician ended the session.');
      // Nothing is allowed any more: no chip says otherwise.
      const chips = await page.locator('[data-testid="perm-chip"]').evaluateAll((els) => els.map((e) => `${e.dataset.perm}:${e.dataset.granted}:${e.dataset.tip}`));
      assert.ok(chips.length > 0);
      for (const c of chips) assert.match(c, /:false:.*the session is over$/);
      assert.equal(await byId('consent-status').textContent(), 'The session is over.');
      assert.equal(await byId('consent-toast').isVisible(), false);
      await byId('stage-overlay').getByText(/^Watched for /).waitFor();
      await shot('08-session-ended');
      // The user's side ends too, and the broker keeps why.
      const { code: exitCode } = await host.exited;
      assert.equal(exitCode, 0, `host exit code; output:\n${host.out.stdout}`);
      assert.match(host.out.stdout, /Session ended/);
      const stored = (await api(broker, 'GET', `/api/v1/sessions/${sessionId}`)).body;
      assert.deepEqual([stored.state, stored.end_reason], ['ended', 'The technician ended the session.']);
      // What was watched is one click away, in the player.
      await byId('stage-overlay').getByTestId('open-recording').click();
      await page.waitForFunction((id) => location.hash === `#/recording/${encodeURIComponent(id)}`, sessionId);
    });

    assert.deepEqual(pageErrors.map(String), []);
  });
}

test('the live session page fits 1440, 1100 and 900 px wide windows', { timeout: 120_000 }, async (t) => {
  const broker = await startBroker();
  // Every permission asked for, two of them not allowed: the widest bar.
  const created = await api(broker, 'POST', '/api/v1/sessions', { ticket: { id: 'INC-WIDE' }, permissions: ['view', 'control', 'clipboard', 'files', 'shell'] });
  assert.equal(created.status, 201);
  const browser = await launch({ viewport: { width: 1440, height: 900 } });
  t.after(() => browser.close());

  const page = await browser.newPage();
  const pageErrors = collectErrors(page);
  const byId = (id) => page.getByTestId(id);

  await page.goto(`${broker.url}/#/session/${created.body.id}`);
  await byId('login-username').fill(broker.admin.user);
  await byId('login-password').fill(broker.admin.password);
  await byId('login-submit').click();
  await page.locator('#conn-state[data-state="waiting"]').waitFor({ timeout: 15_000 });
  const host = startHost(broker, created.body.code, display, { answer: null });
  await host.ready;
  const asked = await answerPrompt(host, ['view', 'control', 'clipboard']);
  assert.deepEqual([...asked].sort(), ['clipboard', 'control', 'files', 'shell', 'view']);
  await until('the host\u2019s answer', () => /Allowed: view, control, clipboard\./.test(host.out.stdout));
  await page.locator('#conn-state[data-state="live"]').waitFor({ timeout: 30_000 });
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="perm-chip"][data-granted="true"]').length === 3);
  assert.deepEqual(await page.locator('[data-testid="perm-chip"][data-granted="false"]').evaluateAll((els) => els.map((e) => e.dataset.perm).sort()), ['files', 'shell']);
  await page.waitForFunction(() => document.querySelector('[data-testid="remote-video"]').videoWidth > 0, null, { timeout: 30_000 });

  // Every control of the bars and of the open side panel: inside the
  // window, and the topmost element at its centre, so a click reaches it.
  const unreachable = () => page.evaluate(() => {
    const found = [];
    const bad = [];
    const controls = document.querySelectorAll(`.viewer-bar :is(button, a, select), .consent-bar :is(button, [data-testid="perm-chip"]),
      :is(.side-panel, .activity-panel):not([hidden]) button`);
    for (const el of controls) {
      if (!el.checkVisibility()) continue;
      const name = el.dataset.testid || el.getAttribute('aria-label') || el.textContent.trim();
      found.push(name);
      const r = el.getBoundingClientRect();
      if (r.left < 0 || r.top < 0 || r.right > window.innerWidth || r.bottom > window.innerHeight) {
        bad.push(`${name} at x ${Math.round(r.left)}..${Math.round(r.right)}, y ${Math.round(r.top)}..${Math.round(r.bottom)}`);
        continue;
      }
      const top = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
      if (!el.contains(top)) bad.push(`${name} under ${top?.tagName}.${top?.className}`);
    }
    return { found, bad };
  });

  for (const [width, height] of [[1440, 900], [1100, 760], [900, 700]]) {
    await t.test(`${width} px wide`, async () => {
      await page.setViewportSize({ width, height });
      for (const panel of ['files', 'shell', 'activity']) {
        await byId(`${panel}-open`).click();
        await byId(`${panel}-panel`).waitFor();
        await page.mouse.move(0, height - 1);
        await page.waitForTimeout(250); // the panel slides in
        const { scrollWidth, innerWidth } = await page.evaluate(() => ({ scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth }));
        assert.ok(scrollWidth <= innerWidth, `with the ${panel} panel open the page is ${scrollWidth} px wide in a ${innerWidth} px window`);
        const { found, bad } = await unreachable();
        assert.deepEqual(bad, [], `out of reach with the ${panel} panel open`);
        const want = ['end-session', 'mode-view', 'mode-control', 'fullscreen', 'files-open', 'shell-open', 'activity-open', 'perm-chip'];
        if (panel === 'files') want.push('files-request', 'Close files');
        // No terminal is open: the tab strip, with its "+", waits for the first.
        if (panel === 'shell') want.push('shell-copy', 'shell-paste', 'Close terminal panel', 'shell-request');
        if (panel === 'activity') want.push('Close activity');
        assert.deepEqual(want.filter((name) => !found.includes(name)), [], `controls shown with the ${panel} panel open`);
        // The status line says what the user allows, whole.
        const status = await byId('consent-status').evaluate((el) => {
          const text = el.querySelector('.consent-status-text');
          return { text: text.textContent, cut: text.scrollWidth > text.clientWidth };
        });
        assert.equal(status.cut, false, `the status line is cut at ${width} px: ${status.text}`);
        if (panel !== 'activity') await page.screenshot({ path: join(artifacts, `console-narrow-${panel}-${width}x${height}.png`), animations: 'disabled' });
        await byId(`${panel}-open`).click();
        await byId(`${panel}-panel`).waitFor({ state: 'hidden' });
      }
    });
  }

  assert.deepEqual(pageErrors.map(String), []);
});

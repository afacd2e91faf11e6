// Renders every console screen in Chromium against a fake of the broker's
// REST API and saves screenshots to artifacts/ at the repository root.
//
// This is a rendering and wiring test of the console alone. Signaling is
// routed inside the browser; for the live view a second page of the same
// Chromium plays the broker's side of WebRTC (fake-peer.js), sending a canvas
// "desktop" and holding the control and input data channels, so the remote
// control test can check, byte by byte, what the console sends.
// The end-to-end test against the real broker lives elsewhere and reuses
// browser.mjs.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { collectErrors, launch } from './browser.mjs';
import { NEW_CODE, PASSWORD, USER, decodeInput, sampleSessions, startFakeBroker } from './fake-broker.mjs';

const ARTIFACTS = resolve(fileURLToPath(new URL('../../artifacts/', import.meta.url)));

const VIEWPORTS = [
  { width: 1440, height: 900 },
  { width: 1280, height: 720 },
];

const WAITING_ID = sampleSessions()[0].id;

for (const viewport of VIEWPORTS) {
  const size = `${viewport.width}x${viewport.height}`;

  test(`console screens render at ${size}`, { timeout: 120_000 }, async (t) => {
    await mkdir(ARTIFACTS, { recursive: true });
    const broker = await startFakeBroker();
    t.after(() => broker.close());
    const browser = await launch({ viewport });
    t.after(() => browser.close());

    const page = await browser.newPage();
    const pageErrors = collectErrors(page);
    const shot = (name) => page.screenshot({ path: resolve(ARTIFACTS, `console-${name}-${size}.png`), animations: 'disabled' });
    const byId = (id) => page.locator(`[data-testid="${id}"]`);

    const signaling = routeSignaling(page);

    await t.test('login shows the broker\u2019s error', async () => {
      await page.goto(`${broker.origin}/console/`);
      await byId('login-username').fill('locked.out');
      await byId('login-password').fill('anything');
      await byId('login-submit').click();
      await byId('login-error').waitFor({ state: 'visible' });
      assert.equal((await byId('login-error').textContent()).trim(), 'Too many failed logins. Wait a moment and try again.');
      assert.match(await byId('login-submit').textContent(), /^Try again in \d+s$/);
      assert.equal(await byId('login-submit').isDisabled(), true);

      await page.reload(); // forget the lock-out countdown
      await byId('login-username').fill(USER.username);
      await byId('login-password').fill('not the password');
      await byId('login-submit').click();
      const error = byId('login-error');
      await error.waitFor({ state: 'visible' });
      assert.equal((await error.textContent()).trim(), 'Wrong username or password.');
      assert.equal(await byId('login-submit').isEnabled(), true);
      await byId('login-password').fill('');
      await page.mouse.move(0, 0);
      await shot('01-login-error');
    });

    await t.test('sessions: empty state after sign-in', async () => {
      broker.state.sessions = [];
      await byId('login-password').fill(PASSWORD);
      await byId('login-submit').click();
      await byId('sessions-empty').waitFor();
      assert.equal((await byId('current-user').textContent()).includes(USER.username), true);
      await shot('02-sessions-empty');
    });

    await t.test('sessions: list and a fresh code', async () => {
      broker.state.sessions = sampleSessions();
      await page.reload();
      await byId('sessions-table').waitFor();
      assert.equal(await byId('session-row').count(), 5);

      await byId('new-session').click();
      await byId('new-session-ticket').fill('INC-1234');
      await shot('03-new-session-dialog');
      await byId('new-session-submit').click();
      await page.waitForFunction(() => !document.querySelector('[data-testid="new-session-dialog"]'));
      assert.deepEqual(broker.state.created.at(-1), { ticket: { id: 'INC-1234' }, permissions: ['view', 'control', 'clipboard'] }, 'View, Control and Clipboard by default');

      const code = byId('session-code');
      await code.waitFor();
      assert.equal(await code.getAttribute('data-code'), NEW_CODE);
      assert.equal((await code.textContent()).replace(/\s/g, ''), NEW_CODE);
      assert.equal(await byId('host-command').textContent(), `host -broker ${broker.origin} ${NEW_CODE}`);
      assert.match(await byId('code-expiry').textContent(), /^Expires in (9|10):\d\d$/);
      await page.waitForFunction(() => document.querySelectorAll('[data-testid="session-row"]').length === 6);
      await page.mouse.move(0, 0);
      await shot('04-sessions-code');
    });

    await t.test('session view: waiting for the host', async () => {
      signaling.scenario = 'waiting';
      await page.goto(`${broker.origin}/console/#/session/${WAITING_ID}`);
      await page.locator('#conn-state[data-state="waiting"]').waitFor();
      assert.equal(await page.evaluate(() => window.tether.state), 'waiting');
      const hello = signaling.received.find((m) => m.type === 'hello');
      assert.deepEqual(
        { v: hello.v, type: hello.type, session: hello.session, payload: hello.payload },
        { v: 1, type: 'hello', session: WAITING_ID, payload: { version: 1, session: WAITING_ID, role: 'viewer' } },
      );
      await byId('overlay-code').waitFor();
      await shot('05-session-waiting');
    });

    await t.test('session view: live video from a WebRTC offer', async () => {
      const peer = await browser.context.newPage();
      t.after(() => peer.close());
      await peer.goto(`${broker.origin}/peer`);
      signaling.scenario = 'live';
      signaling.peer = peer;
      signaling.received.length = 0;

      await page.goto(`${broker.origin}/console/#/sessions`);
      await page.goto(`${broker.origin}/console/#/session/${WAITING_ID}`);
      await page.locator('#conn-state[data-state="live"]').waitFor({ timeout: 20_000 });
      await page.waitForFunction(() => document.querySelector('[data-testid="remote-video"]').videoWidth > 0, null, { timeout: 20_000 });
      const answer = signaling.received.find((m) => m.type === 'answer');
      assert.ok(answer, 'the console answered the offer');
      assert.match(answer.payload.sdp, /a=candidate:/, 'the answer carries its ICE candidates');
      // The picture has a size a moment before its first frame is decoded.
      await byId('stage-overlay').waitFor({ state: 'hidden', timeout: 5000 });
      await byId('display-size').waitFor();
      // Let the encoder ramp up to full resolution so the screenshot is sharp.
      await page.waitForFunction(() => document.querySelector('[data-testid="remote-video"]').videoWidth >= 1920, null, { timeout: 8000 }).catch(() => {});
      await waitForPaint(page);
      await shot('06-session-live');

      await byId('end-session').click();
      await shot('07-end-confirm');
      await byId('confirm-ok').click();
      await byId('session-ended').waitFor();
      assert.equal(await page.locator('#conn-state').getAttribute('data-state'), 'ended');
      await shot('08-session-ended');
    });

    assert.deepEqual(pageErrors.map(String), []);
  });
}

test('the live session page fits 1440, 1100 and 900 px wide windows', { timeout: 120_000 }, async (t) => {
  await mkdir(ARTIFACTS, { recursive: true });
  const broker = await startFakeBroker();
  t.after(() => broker.close());
  // Every permission asked for, two of them not allowed: the widest bar.
  broker.state.sessions[0].permissions = ['view', 'control', 'clipboard', 'files', 'shell'];
  const browser = await launch({ viewport: { width: 1440, height: 900 } });
  t.after(() => browser.close());

  const page = await browser.newPage();
  const pageErrors = collectErrors(page);
  const byId = (id) => page.locator(`[data-testid="${id}"]`);
  const { peer, signaling } = await livePeer(browser, page, broker);

  await page.bringToFront();
  await page.goto(`${broker.origin}/console/#/session/${WAITING_ID}`);
  await byId('login-username').fill(USER.username);
  await byId('login-password').fill(PASSWORD);
  await byId('login-submit').click();
  await page.locator('#conn-state[data-state="live"]').waitFor({ timeout: 20_000 });
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="perm-chip"][data-granted="true"]').length === 3);

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
        if (panel === 'shell') want.push('shell-copy', 'shell-paste', 'Close terminal panel', 'shell-new', 'shell-request');
        if (panel === 'activity') want.push('Close activity');
        assert.deepEqual(want.filter((name) => !found.includes(name)), [], `controls shown with the ${panel} panel open`);
        if (panel !== 'activity') await page.screenshot({ path: resolve(ARTIFACTS, `console-narrow-${panel}-${width}x${height}.png`), animations: 'disabled' });
        await byId(`${panel}-open`).click();
        await byId(`${panel}-panel`).waitFor({ state: 'hidden' });
      }
    });
  }

  assert.deepEqual(pageErrors.map(String), []);
});

test('remote control at 1440x900', { timeout: 180_000 }, async (t) => {
  await mkdir(ARTIFACTS, { recursive: true });
  const broker = await startFakeBroker();
  t.after(() => broker.close());
  const browser = await launch({ viewport: { width: 1440, height: 900 } });
  t.after(() => browser.close());
  await browser.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: broker.origin });

  const page = await browser.newPage();
  const pageErrors = collectErrors(page);
  const shot = (name) => page.screenshot({ path: resolve(ARTIFACTS, `console-${name}-1440x900.png`), animations: 'disabled' });
  const byId = (id) => page.locator(`[data-testid="${id}"]`);

  const { peer, signaling } = await livePeer(browser, page, broker);

  // What the console sent, as the fake broker received it: control messages
  // parsed, input messages decoded with the host's checks.
  const log = async () => (await peer.evaluate(() => window.fake.log)).map((e) => (e.ch === 'input' ? { ch: 'input', ...decodeInput(e.bytes) } : e));
  const inputs = async () => (await log()).filter((e) => e.ch === 'input').map(({ ch, ...e }) => e);
  const controls = async () => (await log()).filter((e) => e.ch === 'control').map((e) => e.msg);
  const clearLog = () => peer.evaluate(() => window.fake.clear());
  const until = async (what, fn, ms = 5000) => {
    const end = Date.now() + ms;
    for (;;) {
      const v = await fn();
      if (v) return v;
      if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const keysOf = (list) => list.filter((e) => e.kind === 'key').map((e) => `${e.code}${e.down ? '\u2193' : '\u2191'}`);
  const geometry = () => page.evaluate(() => {
    const v = document.querySelector('[data-testid="remote-video"]');
    const s = document.querySelector('[data-testid="remote-stage"]');
    const vr = v.getBoundingClientRect();
    const sr = s.getBoundingClientRect();
    return {
      video: { left: vr.left, top: vr.top, width: vr.width, height: vr.height },
      stage: { left: sr.left, top: sr.top, width: sr.width, height: sr.height },
      vw: v.videoWidth,
      vh: v.videoHeight,
    };
  });

  await page.goto(`${broker.origin}/console/#/session/${WAITING_ID}`);
  await byId('login-username').fill(USER.username);
  await byId('login-password').fill(PASSWORD);
  await byId('login-submit').click();
  await page.locator('#conn-state[data-state="live"]').waitFor({ timeout: 20_000 });
  // Full resolution before any geometry: the encoder may start smaller.
  await page.waitForFunction(() => document.querySelector('[data-testid="remote-video"]').videoWidth === 1920, null, { timeout: 20_000 });
  await waitForPaint(page);

  await t.test('data channels are negotiated with ids 0 and 1', async () => {
    await page.waitForFunction(() => window.tether.viewer?.control?.readyState === 'open' && window.tether.viewer.input.readyState === 'open');
    const channels = await page.evaluate(() => [window.tether.viewer.control, window.tether.viewer.input]
      .map((c) => ({ label: c.label, id: c.id, negotiated: c.negotiated, ordered: c.ordered })));
    assert.deepEqual(channels, [
      { label: 'control', id: 0, negotiated: true, ordered: true },
      { label: 'input', id: 1, negotiated: true, ordered: true },
    ]);
    // Negotiated channels only talk when both sides used the same ids.
    await peer.evaluate(() => window.fake.channelsOpen());
  });

  await t.test('view only sends no input; a refusal keeps it and says why', async () => {
    assert.equal(await byId('mode-view').getAttribute('aria-pressed'), 'true');
    assert.equal(await page.evaluate(() => window.tether.control.enabled), false);
    assert.equal(await byId('keys-menu').isDisabled(), true);
    assert.equal(await byId('clipboard-open').isDisabled(), false, 'the clipboard grant lets the technician read it in view only');
    const g = await geometry();
    await page.mouse.click(g.stage.left + g.stage.width / 2, g.stage.top + g.stage.height / 2);
    await page.keyboard.press('KeyA');
    await page.waitForTimeout(200);
    assert.deepEqual(await inputs(), []);
    assert.equal(await page.evaluate(() => window.tether.input.sent), 0);

    await peer.evaluate(() => { window.fake.policy.grant = false; });
    await byId('mode-control').click();
    await until('the control request', async () => (await controls()).length === 1);
    assert.deepEqual(await controls(), [{ type: 'control', enabled: true }]);
    await byId('control-notice').waitFor();
    assert.equal((await byId('control-notice').textContent()).trim(), 'This session is view-only for you.');
    await page.mouse.move(700, 500);
    await shot('13-control-refused');
    assert.equal(await byId('mode-view').getAttribute('aria-pressed'), 'true');
    assert.equal(await byId('mode-control').getAttribute('aria-pressed'), 'false');
    assert.equal(await page.evaluate(() => window.tether.control.enabled), false);
  });

  await t.test('Control follows the broker\u2019s answer and takes the keyboard', async () => {
    await peer.evaluate(() => { window.fake.policy.grant = true; });
    await clearLog();
    await byId('mode-control').click();
    await page.waitForFunction(() => window.tether.control.enabled === true);
    assert.deepEqual(await controls(), [{ type: 'control', enabled: true }]);
    assert.equal(await byId('mode-control').getAttribute('aria-pressed'), 'true');
    assert.equal(await byId('mode-view').getAttribute('aria-pressed'), 'false');
    assert.equal(await page.evaluate(() => document.activeElement?.dataset.testid), 'remote-stage');
    await byId('capture-hint').waitFor();
    assert.match(await byId('capture-hint').textContent(), /Keyboard is captured.*Ctrl.*Alt.*Shift/);
  });

  await t.test('a click in fit mode lands on the right remote pixel, not on the letterbox', async () => {
    const g = await geometry();
    assert.deepEqual([g.vw, g.vh], [1920, 1080]);
    // object-fit: contain, worked out here independently of the console.
    const scale = Math.min(g.video.width / g.vw, g.video.height / g.vh);
    const left = g.video.left + (g.video.width - g.vw * scale) / 2;
    const top = g.video.top + (g.video.height - g.vh * scale) / 2;
    // The stage is wider or taller than 16:9: bars above and below, or on the sides.
    const barAbove = top - g.stage.top >= 8;
    assert.ok(barAbove || left - g.stage.left >= 8, `a letterbox bar beside the picture (${top - g.stage.top}, ${left - g.stage.left} px)`);

    // The OK button of the remote error dialog: remote (1220, 595).
    const cx = Math.round(left + 1220.5 * scale);
    const cy = Math.round(top + 595.5 * scale);
    const want = { x: Math.floor((cx - left) / scale), y: Math.floor((cy - top) / scale) };
    assert.ok(Math.abs(want.x - 1220) <= 1 && Math.abs(want.y - 595) <= 1);
    await clearLog();
    await page.mouse.click(cx, cy);
    const sent = await until('a click', async () => {
      const list = await inputs();
      return list.filter((e) => e.kind === 'button').length === 2 && list;
    });
    const buttons = sent.filter((e) => e.kind === 'button');
    assert.deepEqual(buttons, [
      { kind: 'button', button: 0, down: true, ...want },
      { kind: 'button', button: 0, down: false, ...want },
    ]);
    // The press carries its position and the host moves there first, so
    // no move has to go before it; the pointer's own move (Playwright moves
    // before it clicks) may, to the same place.
    assert.ok(sent.every((e) => e.kind !== 'move' || (e.x === want.x && e.y === want.y)), 'no move elsewhere');
    assert.ok(sent.filter((e) => e.kind === 'move').length <= 1, 'at most the pointer\'s own move');
    assert.deepEqual(await page.evaluate(() => window.tether.input.lastSent), { kind: 'button', button: 0, down: false, ...want });

    // The bar beside the picture is not the remote screen.
    await clearLog();
    if (barAbove) await page.mouse.click(cx, Math.floor((g.stage.top + top) / 2));
    else await page.mouse.click(Math.floor((g.stage.left + left) / 2), cy);
    await page.waitForTimeout(250);
    assert.deepEqual(await inputs(), []);

    // A right click far right and low, clamped inside the display.
    await clearLog();
    await page.mouse.click(Math.floor(left + g.vw * scale) - 1, Math.floor(top + g.vh * scale) - 1, { button: 'right' });
    const right = await until('a right click', async () => {
      const list = (await inputs()).filter((e) => e.kind === 'button');
      return list.length === 2 && list;
    });
    for (const b of right) {
      assert.equal(b.button, 2);
      assert.ok(b.x >= 1917 && b.x <= 1919 && b.y >= 1077 && b.y <= 1079, `near the bottom-right corner: ${b.x},${b.y}`);
    }
  });

  await t.test('1:1 mode shows actual pixels and counts the scroll offset', async () => {
    await byId('fit-toggle').click();
    await page.waitForFunction(() => document.querySelector('[data-testid="remote-video"]').getBoundingClientRect().width === 1920);
    assert.equal(await byId('fit-toggle').getAttribute('data-mode'), 'actual');
    await page.evaluate(() => {
      const surface = document.querySelector('[data-testid="remote-stage"] .stage-surface');
      surface.scrollLeft = 300;
      surface.scrollTop = 150;
    });
    const g = await geometry();
    const scroll = await page.evaluate(() => {
      const surface = document.querySelector('[data-testid="remote-stage"] .stage-surface');
      return { left: surface.scrollLeft, top: surface.scrollTop };
    });
    assert.deepEqual(scroll, { left: 300, top: 150 });
    const cx = Math.round(g.stage.left + 640);
    const cy = Math.round(g.stage.top + 380);
    const want = { x: Math.floor(cx - g.stage.left + scroll.left), y: Math.floor(cy - g.stage.top + scroll.top) };
    await clearLog();
    await page.mouse.click(cx, cy);
    const buttons = await until('a click', async () => {
      const list = (await inputs()).filter((e) => e.kind === 'button');
      return list.length === 2 && list;
    });
    assert.deepEqual(buttons, [
      { kind: 'button', button: 0, down: true, ...want },
      { kind: 'button', button: 0, down: false, ...want },
    ]);
    await shot('12-control-actual-size');
    await byId('fit-toggle').click();
    assert.equal(await byId('fit-toggle').getAttribute('data-mode'), 'fit');
  });

  await t.test('Shift+1 goes out as physical keys, with key repeat; Tab stays on the remote', async () => {
    await page.locator('[data-testid="remote-stage"]').focus();
    await clearLog();
    await page.keyboard.press('Shift+Digit1');
    await page.keyboard.down('KeyA');
    await page.keyboard.down('KeyA'); // auto-repeat
    await page.keyboard.up('KeyA');
    await page.keyboard.press('Tab');
    const want = ['ShiftLeft\u2193', 'Digit1\u2193', 'Digit1\u2191', 'ShiftLeft\u2191', 'KeyA\u2193', 'KeyA\u2193', 'KeyA\u2191', 'Tab\u2193', 'Tab\u2191'];
    const got = await until('nine key events', async () => {
      const k = keysOf(await inputs());
      return k.length >= want.length && k;
    });
    assert.deepEqual(got, want);
    assert.equal(await page.evaluate(() => document.activeElement?.dataset.testid), 'remote-stage', 'Tab did not move the focus');
  });

  await t.test('characters without a physical key go as text', async () => {
    await page.locator('[data-testid="remote-stage"]').focus();
    await clearLog();
    await page.evaluate(() => {
      const stage = document.querySelector('[data-testid="remote-stage"]');
      // A virtual keyboard's key with no code, then an IME's composed text.
      stage.dispatchEvent(new KeyboardEvent('keydown', { key: 'é', code: '', bubbles: true, cancelable: true }));
      stage.dispatchEvent(new KeyboardEvent('keyup', { key: 'é', code: '', bubbles: true, cancelable: true }));
      stage.dispatchEvent(new CompositionEvent('compositionend', { data: '日本語', bubbles: true }));
    });
    const got = await until('two texts', async () => {
      const list = (await inputs()).filter((e) => e.kind === 'text');
      return list.length === 2 && list;
    });
    assert.deepEqual(got, [{ kind: 'text', text: 'é' }, { kind: 'text', text: '日本語' }]);
    assert.deepEqual(keysOf(await inputs()), []);
  });

  await t.test('leaving the page releases everything', async () => {
    await page.locator('[data-testid="remote-stage"]').focus();
    await page.keyboard.down('AltLeft');
    await until('Alt held on the remote', async () => keysOf(await inputs()).at(-1) === 'AltLeft↓');
    await clearLog();
    await page.evaluate(() => window.dispatchEvent(new PageTransitionEvent('pagehide', { persisted: false })));
    await until('release-all', async () => (await inputs()).some((e) => e.kind === 'release-all'));
    await page.keyboard.up('AltLeft');
    assert.deepEqual(keysOf(await inputs()), [], 'no key-up for a key the remote already let go');
  });

  await t.test('the wheel sends whole notches', async () => {
    const g = await geometry();
    const cx = g.stage.left + g.stage.width / 2;
    const cy = g.stage.top + g.stage.height / 2;
    await page.mouse.move(cx, cy);
    await clearLog();
    await page.mouse.wheel(0, 250); // a real wheel event: 2 notches, half a notch left over
    await until('two notches', async () => (await inputs()).some((e) => e.kind === 'wheel'));
    const wheels = async () => (await inputs()).filter((e) => e.kind === 'wheel');
    assert.deepEqual(await wheels(), [{ kind: 'wheel', dx: 0, dy: 2 }]);

    // Back to back (Playwright waits ~2 s between real ones, and the
    // console forgets a remainder after a pause): pixels add up to 100 a
    // notch, a line is a notch, and no message carries more than 100.
    await clearLog();
    await page.evaluate(([x, y]) => {
      const el = document.elementFromPoint(x, y);
      const wheel = (deltaX, deltaY, deltaMode = 0) => el.dispatchEvent(new WheelEvent('wheel', {
        deltaX, deltaY, deltaMode, clientX: x, clientY: y, bubbles: true, cancelable: true,
      }));
      for (let i = 0; i < 5; i++) wheel(0, -40); // -200 px: 2 notches up
      wheel(0, 3, 1); // 3 lines down
      wheel(-120, 0); // 1 notch left, 20 px over
      wheel(0, 25_000); // 250 notches down
    }, [cx, cy]);
    const got = await until('all notches', async () => {
      const list = await wheels();
      return list.reduce((n, e) => n + e.dy, 0) === 251 && list;
    });
    assert.deepEqual(got, [
      { kind: 'wheel', dx: 0, dy: -1 },
      { kind: 'wheel', dx: 0, dy: -1 },
      { kind: 'wheel', dx: 0, dy: 3 },
      { kind: 'wheel', dx: -1, dy: 0 },
      { kind: 'wheel', dx: 0, dy: 100 },
      { kind: 'wheel', dx: 0, dy: 100 },
      { kind: 'wheel', dx: 0, dy: 50 },
    ]);
    const before = (await inputs()).filter((e) => e.kind !== 'wheel');
    assert.ok(before.every((e) => e.kind === 'move'), 'only a move to the pointer besides');
  });

  await t.test('blur sends release-all', async () => {
    await page.locator('[data-testid="remote-stage"]').focus();
    await page.keyboard.down('ControlLeft');
    await until('Ctrl held on the remote', async () => keysOf(await inputs()).at(-1) === 'ControlLeft↓');
    await clearLog();
    await page.evaluate(() => document.querySelector('[data-testid="remote-stage"]').blur());
    await until('release-all', async () => (await inputs()).some((e) => e.kind === 'release-all'));
    assert.deepEqual(await inputs(), [{ kind: 'release-all' }]);
    await page.keyboard.up('ControlLeft');
    assert.equal(await byId('remote-stage').evaluate((el) => el.classList.contains('is-captured')), false);
  });

  await t.test('the stats overlay shows live figures', async () => {
    await byId('stats-toggle').click();
    await byId('stats-overlay').waitFor();
    const figures = await until('figures', async () => {
      const f = await byId('stats-overlay').evaluate((el) => ({ fps: el.dataset.fps, kbps: el.dataset.kbps, rtt: el.dataset.rtt }));
      return f.fps && f.kbps && f.rtt && Number(f.kbps) > 0 && f;
    }, 10_000);
    for (const [name, value] of Object.entries(figures)) assert.match(value, /^\d+$/, `${name} is a number`);
    assert.match(await byId('stats-overlay').textContent(), /1920×1080/);
    await page.mouse.move(700, 500);
    await page.locator('[data-testid="remote-stage"]').focus();
    await shot('11-control-stats');
  });

  await t.test('the keys menu sends Ctrl+Alt+Del', async () => {
    await page.mouse.move(700, 500);
    await byId('keys-menu').click();
    await byId('key-ctrl-alt-del').waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.dataset.testid), 'key-ctrl-alt-del', 'focus on the first item');
    await byId('key-alt-tab').hover();
    await shot('09-control-keys-menu');
    await clearLog();
    await byId('key-ctrl-alt-del').click();
    const got = await until('six key events', async () => {
      const k = keysOf(await inputs());
      return k.length >= 6 && k;
    });
    assert.deepEqual(got, ['ControlLeft\u2193', 'AltLeft\u2193', 'Delete\u2193', 'Delete\u2191', 'AltLeft\u2191', 'ControlLeft\u2191']);
    assert.equal(await byId('key-ctrl-alt-del').isVisible(), false, 'the menu closed');

    // Keyboard only: open with Enter, move down, pick with Enter.
    await byId('keys-menu').focus();
    await page.keyboard.press('Enter');
    await page.keyboard.press('ArrowDown');
    await clearLog();
    await page.keyboard.press('Enter');
    const sup = await until('the Windows key', async () => {
      const k = keysOf(await inputs());
      return k.length >= 2 && k;
    });
    assert.deepEqual(sup, ['MetaLeft\u2193', 'MetaLeft\u2191']);
  });

  await t.test('clipboard both ways, with the 64 KiB limit', async () => {
    const text = 'Remote clipboard: \\\\fs01\\finance\\Q3 report.xlsx';
    await peer.evaluate((t2) => window.fake.send({ type: 'clipboard', text: t2 }), text);
    await page.locator('[data-testid="clipboard-open"] .tool-dot:not([hidden])').waitFor();
    await byId('clipboard-open').click();
    await byId('clipboard-remote').waitFor();
    assert.equal(await byId('clipboard-remote').textContent(), text);
    await byId('clipboard-copy').click();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), text);

    await clearLog();
    await byId('clipboard-send-text').fill('net use Z: \\\\fs01\\finance /persistent:yes');
    await byId('clipboard-send').click();
    await until('the clipboard message', async () => (await controls()).length === 1);
    assert.deepEqual(await controls(), [{ type: 'clipboard', text: 'net use Z: \\\\fs01\\finance /persistent:yes' }]);
    await page.mouse.move(700, 500);
    await shot('10-control-clipboard');

    await clearLog();
    await byId('clipboard-send-text').fill('x'.repeat(64 * 1024 + 1));
    await byId('clipboard-send').click();
    await byId('clipboard-error').waitFor();
    assert.match(await byId('clipboard-error').textContent(), /65,537 bytes.*at most 65,536 bytes \(64 KiB\)/);
    await page.waitForTimeout(200);
    assert.deepEqual(await controls(), []);
    await byId('clipboard-send-text').fill('');
    await page.keyboard.press('Escape');
    assert.equal(await byId('clipboard-send-text').isVisible(), false);
  });

  await t.test('Ctrl+V puts the technician\u2019s clipboard on the remote first', async () => {
    await page.evaluate(() => navigator.clipboard.writeText('pasted from the console'));
    await page.locator('[data-testid="remote-stage"]').focus();
    await clearLog();
    await page.keyboard.press('Control+KeyV');
    const entries = await until('the paste', async () => {
      const l = await log();
      return l.filter((e) => e.kind === 'key').length === 4 && l;
    });
    const order = entries.map((e) => (e.ch === 'control' ? `clipboard:${e.msg.text}` : `${e.code}${e.down ? '\u2193' : '\u2191'}`));
    assert.deepEqual(order, ['ControlLeft\u2193', 'clipboard:pasted from the console', 'KeyV\u2193', 'KeyV\u2191', 'ControlLeft\u2191']);
  });

  await t.test('two displays show the picker; choosing one selects it', async () => {
    assert.equal(await byId('display-picker').isVisible(), false);
    await peer.evaluate(() => window.fake.send({
      type: 'displays',
      displays: [
        { index: 0, name: 'DELL U2720Q', x: 0, y: 0, width: 1920, height: 1080, primary: true },
        { index: 1, name: 'Laptop', x: 1920, y: 0, width: 1280, height: 800 },
      ],
      current: 0,
    }));
    await peer.evaluate(() => window.fake.send({ type: 'something.newer', value: 1 })); // ignored
    await byId('display-picker').waitFor();
    assert.equal(await byId('display-picker').locator('option').count(), 2);
    assert.equal(await byId('display-picker').inputValue(), '0');
    await clearLog();
    await byId('display-picker').selectOption('1');
    await until('display.select', async () => (await controls()).length === 1);
    assert.deepEqual(await controls(), [{ type: 'display.select', index: 1 }]);

    await peer.evaluate(() => window.fake.send({
      type: 'displays', displays: [{ index: 0, name: 'Built-in', x: 0, y: 0, width: 1920, height: 1080, primary: true }],
    }));
    await byId('display-picker').waitFor({ state: 'hidden' });
  });

  await t.test('dropped input shows a small toast', async () => {
    await peer.evaluate(() => window.fake.send({ type: 'input.dropped', count: 3, reason: 'Input is paused while the user reviews permissions.' }));
    await byId('input-toast').waitFor();
    assert.equal((await byId('input-toast').textContent()).trim(), 'Input is paused while the user reviews permissions.');
    await shot('14-input-dropped');
    // Rate-limited: a second burst right after does not flash another toast.
    await peer.evaluate(() => window.fake.send({ type: 'input.dropped', count: 1, reason: 'Other.' }));
    await page.waitForTimeout(100);
    assert.equal((await byId('input-toast').textContent()).trim(), 'Input is paused while the user reviews permissions.');
  });

  await t.test('full screen shows the stage alone, with a bar to leave it', async () => {
    await page.bringToFront(); // the peer's tab opened last; only the front tab may go full screen
    await byId('fullscreen').click();
    await page.waitForFunction(() => document.fullscreenElement?.dataset.testid === 'remote-stage');
    await byId('fullscreen-exit').waitFor();
    assert.match(await page.locator('.fs-mode').textContent(), /In control/);
    await page.waitForTimeout(300); // the bar slides in
    await shot('15-control-fullscreen');
    await byId('fullscreen-exit').click();
    await page.waitForFunction(() => !document.fullscreenElement);
  });

  await t.test('View only releases everything and gives control back', async () => {
    await page.locator('[data-testid="remote-stage"]').focus();
    await page.keyboard.down('ShiftLeft');
    await until('Shift held on the remote', async () => keysOf(await inputs()).at(-1) === 'ShiftLeft↓');
    await clearLog();
    await byId('mode-view').click();
    await page.keyboard.up('ShiftLeft');
    await page.waitForFunction(() => window.tether.control.enabled === false);
    const l = await log();
    const release = l.findIndex((e) => e.ch === 'input' && e.kind === 'release-all');
    const off = l.findIndex((e) => e.ch === 'control' && e.msg.type === 'control' && e.msg.enabled === false);
    assert.ok(release >= 0, 'release-all sent');
    assert.ok(off >= 0, 'control given up');
    assert.deepEqual(l.filter((e) => e.ch === 'input').map((e) => e.kind), ['release-all'], 'one release-all, nothing else');
    assert.equal(await byId('mode-view').getAttribute('aria-pressed'), 'true');
    assert.equal(await byId('keys-menu').isDisabled(), true);
    await byId('clipboard-open').click();
    assert.equal(await byId('clipboard-send').isDisabled(), true, 'setting the remote clipboard needs control');
    assert.match(await byId('clipboard-panel-hint').textContent(), /Switch to Control/);
    await page.keyboard.press('Escape');
    await byId('remote-stage').focus();
    await clearLog();
    await page.keyboard.press('KeyB');
    await page.waitForTimeout(150);
    assert.deepEqual(await inputs(), []);
  });

  assert.deepEqual(pageErrors.map(String), []);
});

// liveSession signs in to a live session of the fake broker whose session
// asks for permissions, with the fake peer on the other end.
async function liveSession(t, permissions) {
  const broker = await startFakeBroker();
  t.after(() => broker.close());
  broker.state.sessions[0].permissions = permissions;
  const browser = await launch({ viewport: { width: 1440, height: 900 } });
  t.after(() => browser.close());
  const page = await browser.newPage();
  const pageErrors = collectErrors(page);
  const byId = (id) => page.locator(`[data-testid="${id}"]`);
  const { peer, signaling } = await livePeer(browser, page, broker);
  await page.goto(`${broker.origin}/console/#/session/${WAITING_ID}`);
  await byId('login-username').fill(USER.username);
  await byId('login-password').fill(PASSWORD);
  await byId('login-submit').click();
  await page.locator('#conn-state[data-state="live"]').waitFor({ timeout: 20_000 });
  return { page, byId, peer, signaling, pageErrors };
}

test('a shell the host closes for a revoke says so, whichever word comes first', { timeout: 120_000 }, async (t) => {
  const { page, byId, peer, signaling, pageErrors } = await liveSession(t, ['view', 'shell']);
  signaling.permissions({ granted: ['view', 'shell'], message: 'The user allowed shell.' });
  await byId('shell-open').click();

  // The host closes each shell the moment the user revokes shell access;
  // the broker's permissions message may come before or after that close.
  // A closed tab's number is used again, so every shell here is shell 1.
  const openShell = async () => {
    await page.locator('[data-testid="shell-tab-1"][data-state="open"]').waitFor();
    await peer.waitForFunction(() => window.fake.opened['shell-1']?.readyState === 'open');
  };
  const hostCloses = () => peer.evaluate(() => window.fake.opened['shell-1'].close());
  const status = async () => {
    await page.locator('[data-testid="shell-tab-1"][data-state="closed"]').waitFor();
    return byId('shell-view-1').getByTestId('shell-status').innerText();
  };
  const allow = async (on) => {
    signaling.permissions({ granted: on ? ['view', 'shell'] : ['view'], message: on ? 'The user allowed shell.' : 'The user revoked shell.' });
    await page.waitForFunction((want) => window.tether.permissions.granted.includes('shell') === want, on);
  };

  // The close first, then the revoke.
  await openShell();
  await hostCloses();
  assert.equal(await status(), 'The shell was closed.', 'no reason known yet');
  await allow(false);
  await page.waitForFunction(() => /revoked/.test(document.querySelector('[data-testid="shell-view-1"] [data-testid="shell-status"]').innerText));

  // The revoke first, then the close.
  await allow(true);
  await byId('shell-new').click();
  await openShell();
  await allow(false);
  await hostCloses();
  assert.match(await status(), /revoked/);

  // A close the user did not cause keeps the plain words.
  await allow(true);
  await byId('shell-new').click();
  await openShell();
  await hostCloses();
  assert.equal(await status(), 'The shell was closed.');
  await page.waitForTimeout(500);
  assert.equal(await byId('shell-view-1').getByTestId('shell-status').innerText(), 'The shell was closed.');
  assert.deepEqual(pageErrors.map(String), []);
});

test('a download the user revokes and allows again at once resumes where it stopped', { timeout: 120_000 }, async (t) => {
  const { page, byId, peer, signaling, pageErrors } = await liveSession(t, ['view', 'files']);
  const size = 600 * 1024;
  await peer.evaluate((n) => {
    const data = new Uint8Array(n);
    for (let i = 0; i < n; i++) data[i] = (i * 7919) % 251;
    window.fake.files['app.log'] = data;
    window.fake.stallAt = 200 * 1024;
  }, size);
  const allow = (on) => signaling.permissions({ granted: on ? ['view', 'files'] : ['view'], message: on ? 'The user allowed file transfer.' : 'The user revoked file transfer.' });
  allow(true);
  await byId('files-open').click();
  const download = page.waitForEvent('download', { timeout: 30_000 });
  download.catch(() => {}); // a failure below is the one to report
  await page.locator('[data-testid="files-entry"][data-name="app.log"]').click();
  const row = page.locator('[data-testid="transfer"][data-name="app.log"]');
  await page.waitForFunction(() => Number(document.querySelector('[data-testid="transfer"][data-name="app.log"] [role="progressbar"]')?.getAttribute('aria-valuenow')) > 0);

  // The grant comes back before the channel the revoke closed is gone: the
  // transfer must not wait for a grant that already came.
  allow(false);
  allow(true);
  await page.locator('[data-testid="transfer"][data-name="app.log"][data-state="done"]').waitFor({ timeout: 15_000 });
  // Asked again from where it stopped: past the start, at most where the
  // user's side stopped sending (what was still in flight at the revoke
  // is dropped with the channel).
  const gets = await peer.evaluate(() => window.fake.gets);
  assert.ok(gets.length === 2 && gets[0] === 0 && gets[1] > 0 && gets[1] <= 200 * 1024, `offsets asked for: ${gets}`);
  const saved = readFileSync(await (await download).path());
  assert.equal(saved.length, size);
  assert.ok(saved.every((b, i) => b === (i * 7919) % 251), 'the saved file is the user\'s file');
  assert.match(await row.innerText(), /verified/i);
  assert.deepEqual(pageErrors.map(String), []);
});

test('consent at 1440x900', { timeout: 180_000 }, async (t) => {
  await mkdir(ARTIFACTS, { recursive: true });
  const broker = await startFakeBroker();
  t.after(() => broker.close());
  const browser = await launch({ viewport: { width: 1440, height: 900 } });
  t.after(() => browser.close());

  const page = await browser.newPage();
  const pageErrors = collectErrors(page);
  const shot = (name) => page.screenshot({ path: resolve(ARTIFACTS, `console-consent-${name}-1440x900.png`), animations: 'disabled' });
  const byId = (id) => page.locator(`[data-testid="${id}"]`);
  const perm = (id, p) => page.locator(`[data-testid="${id}"][data-perm="${p}"]`);
  const chips = () => page.locator('[data-testid="perm-chip"]').evaluateAll((els) => els.map((e) => `${e.dataset.perm}:${e.dataset.granted}`));
  const permissions = () => page.evaluate(() => window.tether.permissions);
  const until = async (what, fn, ms = 5000) => {
    const end = Date.now() + ms;
    for (;;) {
      const v = await fn();
      if (v) return v;
      if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  const { peer, signaling } = await livePeer(browser, page, broker);
  signaling.consent = 'manual';
  const controls = async () => (await peer.evaluate(() => window.fake.log)).filter((e) => e.ch === 'control').map((e) => e.msg);
  const clearLog = () => peer.evaluate(() => window.fake.clear());
  const sent = (type) => signaling.received.filter((m) => m.type === type);
  const toast = async (text) => {
    await page.locator('[data-testid="consent-toast"]:not([hidden])').filter({ hasText: text }).waitFor();
    return byId('consent-toast').getAttribute('data-kind');
  };

  await page.goto(`${broker.origin}/console/`);
  await byId('login-username').fill(USER.username);
  await byId('login-password').fill(PASSWORD);
  await byId('login-submit').click();
  await byId('sessions-table').waitFor();
  await page.bringToFront();

  await t.test('the list shows what each session asks for', async () => {
    const perms = await page.locator('[data-testid="session-perms"]').evaluateAll((els) => els.map((e) => e.dataset.perms));
    assert.deepEqual(perms, sampleSessions().map((s) => s.permissions.join(',')));
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
    assert.equal(await page.getByRole('checkbox', { name: 'File transfer' }).count(), 1, 'each box is named by its label');
    await byId('new-session-ticket').fill('INC-20944');
    await box('clipboard').uncheck();
    await box('files').check();
    await page.mouse.move(0, 0);
    await shot('01-new-session');
    await byId('new-session-submit').click();
    await byId('code-card').waitFor();
    assert.deepEqual(broker.state.created.at(-1), { ticket: { id: 'INC-20944' }, permissions: ['view', 'control', 'files'] });
    assert.deepEqual(await byId('code-card').locator('[data-testid="perm-chip"]').evaluateAll((els) => els.map((e) => e.dataset.perm)), ['view', 'control', 'files']);
    await page.mouse.move(0, 0);
    await shot('02-code-card');
  });

  await t.test('while the user decides, the stage says what was asked', async () => {
    await page.goto(`${broker.origin}/console/#/session/${WAITING_ID}`);
    await page.locator('#conn-state[data-state="live"]').waitFor({ timeout: 20_000 });
    assert.deepEqual(await chips(), ['view:false', 'control:false', 'clipboard:false'], 'the requested permissions, none granted yet');
    signaling.permissions({ pending: true, message: 'Waiting for the user to answer.' });
    const pending = byId('consent-pending');
    await pending.waitFor();
    assert.equal(await pending.getAttribute('data-variant'), 'overlay');
    assert.match(await pending.textContent(), /Waiting for the user at FIN-LT-0142 to allow access…/);
    assert.deepEqual(await pending.locator('[data-perm]').evaluateAll((els) => els.map((e) => e.dataset.perm)), ['view', 'control', 'clipboard']);
    assert.deepEqual(await permissions(), { granted: [], paused: false, pending: true, message: 'Waiting for the user to answer.' });
    assert.equal(await byId('mode-control').isDisabled(), true);
    assert.equal(await byId('consent-toast').isVisible(), false, 'the overlay says it already');
    await page.mouse.move(0, 0);
    await page.waitForTimeout(2100); // "Asked 0:01 ago"
    await shot('03-waiting');
  });

  await t.test('a partial grant: chips, View only, and Request control', async () => {
    await peer.evaluate(() => window.fake.setSharing(true));
    signaling.permissions({ granted: ['view'], message: 'The user allowed view only.' });
    assert.equal(await toast('The user allowed view only.'), 'partial');
    await byId('consent-pending').waitFor({ state: 'detached' });
    await page.waitForFunction(() => document.querySelector('[data-testid="remote-video"]').videoWidth >= 1920, null, { timeout: 20_000 });
    await byId('stage-overlay').waitFor({ state: 'hidden', timeout: 5000 });
    assert.deepEqual(await chips(), ['view:true', 'control:false', 'clipboard:false']);
    assert.deepEqual(await permissions(), { granted: ['view'], paused: false, pending: false, message: 'The user allowed view only.' });
    assert.equal(await byId('mode-control').isDisabled(), true);
    assert.equal(await byId('mode-control').getAttribute('data-tip'), 'The user has not allowed control');
    assert.equal(await byId('mode-view').getAttribute('aria-pressed'), 'true');
    await perm('request-perm', 'control').waitFor();
    await waitForPaint(page);
    await page.mouse.move(0, 0);
    await shot('04-partial');

    signaling.received.length = 0;
    await perm('request-perm', 'control').click();
    await until('permission.request', () => sent('permission.request').length === 1);
    const [req] = sent('permission.request');
    assert.deepEqual({ v: req.v, session: req.session, payload: req.payload }, { v: 1, session: WAITING_ID, payload: { permissions: ['control'] } });
    assert.equal(await perm('request-perm', 'control').isDisabled(), true, 'one question at a time');
    assert.match(await perm('request-perm', 'control').textContent(), /Asking the user/);

    signaling.permissions({ granted: ['view'], pending: true, message: 'Waiting for the user to answer.' });
    const banner = byId('consent-pending');
    await banner.waitFor();
    assert.equal(await banner.getAttribute('data-variant'), 'banner', 'the screen stays in view');
    assert.match(await banner.textContent(), /Waiting for the user to allow Control/);
    assert.equal(await toast('Waiting for the user to answer.'), 'pending');
    await page.mouse.move(0, 0);
    await shot('05-asking-control');

    // Allowed: the console takes control at once, as the technician asked.
    await clearLog();
    signaling.permissions({ granted: ['view', 'control'], message: 'The user allowed control.' });
    assert.equal(await toast('The user allowed control.'), 'granted');
    await page.waitForFunction(() => window.tether.control.enabled === true);
    assert.deepEqual(await controls(), [{ type: 'control', enabled: true }]);
    await byId('consent-pending').waitFor({ state: 'detached' });
    assert.equal(await perm('request-perm', 'control').isVisible(), false);
    assert.deepEqual(await chips(), ['view:true', 'control:true', 'clipboard:false']);
  });

  await t.test('a supervisor watching is announced on the stage', async () => {
    assert.equal(await byId('observer-banner').isVisible(), false);
    signaling.send('observers', { observers: [{ id: 'v_sup1', name: 'morgan.lee', role: 'supervisor', org: 'Acme IT' }] });
    await byId('observer-banner').waitFor();
    assert.match(await byId('observer-banner').textContent(), /morgan\.lee \(supervisor\) is watching this session, view only/);
    await page.mouse.move(0, 0);
    await shot('05b-observed');
    signaling.send('observers', { observers: [] });
    await byId('observer-banner').waitFor({ state: 'hidden' });
  });

  await t.test('the clipboard panel asks for clipboard access', async () => {
    await byId('clipboard-open').click();
    await perm('request-perm', 'clipboard').waitFor();
    assert.match(await byId('clipboard-not-allowed').textContent(), /not allowed clipboard sharing/);
    assert.equal(await byId('clipboard-send-text').isVisible(), false);
    signaling.received.length = 0;
    await perm('request-perm', 'clipboard').click();
    await until('permission.request', () => sent('permission.request').length === 1);
    assert.deepEqual(sent('permission.request')[0].payload, { permissions: ['clipboard'] });
    // The broker turns it down: the user is answering someone else.
    signaling.send('error', { code: 'bad_message', message: 'The user is still answering an earlier request.' });
    assert.equal(await toast('The user is still answering an earlier request.'), 'info');
    await page.waitForFunction(() => !document.querySelector('[data-testid="request-perm"][data-perm="clipboard"]').disabled);
    await page.keyboard.press('Escape');

    // The chip asks too.
    signaling.received.length = 0;
    await perm('perm-chip', 'clipboard').click();
    await until('permission.request', () => sent('permission.request').length === 1);
    assert.deepEqual(sent('permission.request')[0].payload, { permissions: ['clipboard'] });
    signaling.permissions({ granted: ['view', 'control'], pending: true, message: 'Waiting for the user to answer.' });
    await page.locator('[data-testid="perm-chip"][data-perm="clipboard"].is-asking').waitFor();
    signaling.permissions({ granted: ['view', 'control'], message: 'The user declined.' });
    assert.equal(await toast('The user declined.'), 'declined');
    assert.deepEqual(await chips(), ['view:true', 'control:true', 'clipboard:false']);
    assert.equal(await page.evaluate(() => window.tether.control.enabled), true, 'a "no" to the clipboard leaves control alone');
  });

  await t.test('paused: the stage says so, control stops, and comes back on resume', async () => {
    await peer.evaluate(() => window.fake.setSharing(false));
    signaling.permissions({ granted: ['view', 'control'], paused: true, message: 'The user paused the session.' });
    await byId('consent-paused').waitFor();
    assert.equal(await toast('The user paused the session.'), 'paused');
    assert.deepEqual(await permissions(), { granted: ['view', 'control'], paused: true, pending: false, message: 'The user paused the session.' });
    await page.waitForFunction(() => window.tether.control.enabled === false);
    assert.equal(await byId('mode-control').isDisabled(), true);
    assert.equal(await byId('mode-control').getAttribute('data-tip'), 'The user paused the session');
    assert.equal(await page.locator('[data-testid="request-perm"]:visible').count(), 0, 'nothing to ask for while paused');
    assert.match(await byId('consent-status').textContent(), /^Paused by the user0:0\d$/);
    await page.mouse.move(0, 0);
    await page.waitForTimeout(2100);
    await shot('06-paused');

    await clearLog();
    await peer.evaluate(() => window.fake.setSharing(true));
    signaling.permissions({ granted: ['view', 'control'], message: 'The user resumed the session.' });
    assert.equal(await toast('The user resumed the session.'), 'resumed');
    await byId('consent-paused').waitFor({ state: 'detached' });
    await page.waitForFunction(() => window.tether.control.enabled === true);
    assert.deepEqual(await controls(), [{ type: 'control', enabled: true }], 'control taken back');
  });

  await t.test('revoked control: View only, and no input leaves', async () => {
    signaling.permissions({ granted: ['view'], message: 'The user revoked control.' });
    assert.equal(await toast('The user revoked control.'), 'revoked');
    await page.waitForFunction(() => window.tether.control.enabled === false);
    assert.equal(await byId('mode-view').getAttribute('aria-pressed'), 'true');
    assert.equal(await byId('mode-control').isDisabled(), true);
    await perm('request-perm', 'control').waitFor();
    await clearLog();
    const box = await byId('remote-stage').boundingBox();
    await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
    await page.keyboard.press('KeyA');
    await page.waitForTimeout(200);
    assert.deepEqual((await peer.evaluate(() => window.fake.log)).filter((e) => e.ch === 'input'), []);
  });

  await t.test('view revoked: the stage offers to ask again', async () => {
    await peer.evaluate(() => window.fake.setSharing(false));
    signaling.permissions({ granted: [], message: 'The user revoked view.' });
    assert.equal(await toast('The user revoked view.'), 'revoked');
    await byId('consent-noview').waitFor();
    assert.match(await byId('consent-noview').textContent(), /The user revoked view\./);
    signaling.received.length = 0;
    await perm('request-perm', 'view').click();
    await until('permission.request', () => sent('permission.request').length === 1);
    assert.deepEqual(sent('permission.request')[0].payload, { permissions: ['view'] });
    signaling.permissions({ granted: [], pending: true, message: 'Waiting for the user to answer.' });
    await byId('consent-pending').waitFor();
    assert.deepEqual(await byId('consent-pending').locator('[data-perm]').evaluateAll((els) => els.map((e) => e.dataset.perm)), ['view']);
    await peer.evaluate(() => window.fake.setSharing(true));
    signaling.permissions({ granted: ['view'], message: 'The user allowed view.' });
    assert.equal(await toast('The user allowed view.'), 'granted');
    await byId('stage-overlay').waitFor({ state: 'hidden' });
  });

  await t.test('the activity panel lists the audit trail', async () => {
    const t0 = Date.now() - 5 * 60_000;
    const at = (sec) => new Date(t0 + sec * 1000).toISOString();
    const me = USER.username;
    broker.state.events[WAITING_ID] = [
      { at: at(0), actor: me, type: 'viewer.joined', detail: { role: 'technician' } },
      { at: at(19), actor: 'user', type: 'host.connected', detail: { hostname: 'FIN-LT-0142', os: 'Windows 11 Pro', remote: '10.20.4.17:53122' } },
      { at: at(19), actor: me, type: 'consent.requested', detail: { permissions: ['view', 'control', 'clipboard'], viewer: me } },
      { at: at(31), actor: 'user', type: 'consent.granted', detail: { viewer: me, requested: ['view', 'control', 'clipboard'], granted: ['view'] } },
      { at: at(64), actor: me, type: 'message.refused', detail: { reason: 'The user has not allowed control.', count: 1 } },
      { at: at(70), actor: me, type: 'permission.requested', detail: { permissions: ['control'] } },
      { at: at(70), actor: me, type: 'consent.requested', detail: { permissions: ['control'], viewer: me } },
      { at: at(78), actor: 'user', type: 'consent.granted', detail: { viewer: me, requested: ['control'], granted: ['control'] } },
      { at: at(133), actor: 'user', type: 'consent.denied', detail: { viewer: me, requested: ['clipboard'], granted: [] } },
      { at: at(190), actor: 'user', type: 'consent.changed', detail: { change: 'paused the session', paused: true, grants: [] } },
      { at: at(214), actor: 'user', type: 'consent.changed', detail: { change: 'resumed the session', paused: false, grants: [] } },
      { at: at(260), actor: 'user', type: 'consent.changed', detail: { change: 'revoked control', paused: false, grants: [] } },
    ];
    await byId('activity-open').click();
    const panel = byId('activity-panel');
    await panel.waitFor();
    await until('12 rows', async () => (await byId('activity-row').count()) === 12);
    const rows = await byId('activity-row').evaluateAll((els) => els.map((e) => [e.dataset.type, e.querySelector('.activity-text').textContent]));
    assert.deepEqual(rows.at(-1), ['viewer.joined', `${me} opened the session as technician`], 'oldest last');
    assert.deepEqual(rows[0], ['consent.changed', 'The user revoked control'], 'newest first');
    const text = Object.fromEntries(rows.map(([type, s], i) => [`${i}:${type}`, s]));
    assert.deepEqual(Object.values(text).reverse(), [
      `${me} opened the session as technician`,
      'The user\u2019s computer connected (FIN-LT-0142, Windows 11 Pro)',
      'The user was asked to allow view, control, clipboard',
      'The user allowed view; declined control, clipboard',
      `Blocked a message from ${me}: The user has not allowed control`,
      `${me} asked for control`,
      'The user was asked to allow control',
      'The user allowed control',
      `The user declined ${me}\u2019s request for clipboard`,
      'The user paused the session',
      'The user resumed the session',
      'The user revoked control',
    ]);
    assert.match(await panel.textContent(), /\(you\)/);
    await page.mouse.move(0, 0);
    await shot('07-activity');

    // A consent change brings the new events in.
    broker.state.events[WAITING_ID].push({ at: new Date().toISOString(), actor: me, type: 'permission.requested', detail: { permissions: ['control'] } });
    signaling.permissions({ granted: ['view'], pending: true, message: 'Waiting for the user to answer.' });
    await until('13 rows', async () => (await byId('activity-row').count()) === 13);
    assert.equal(await byId('activity-row').first().getAttribute('data-type'), 'permission.requested');
    await byId('activity-open').click();
    await panel.waitFor({ state: 'hidden' });
  });

  await t.test('declined: the session ends with the user\u2019s answer', async () => {
    const id = sampleSessions()[1].id;
    await page.goto(`${broker.origin}/console/#/session/${id}`);
    await page.locator('#conn-state[data-state="live"]').waitFor({ timeout: 20_000 });
    signaling.permissions({ pending: true, message: 'Waiting for the user to answer.' });
    await byId('consent-pending').waitFor();
    assert.deepEqual(await chips(), ['view:false', 'control:false', 'clipboard:false', 'files:false']);
    signaling.permissions({ granted: [], message: 'The user declined.' });
    signaling.send('ended', { reason: 'The user declined.' });
    await byId('session-ended').waitFor();
    assert.equal(await byId('ended-reason').textContent(), 'The user declined.');
    assert.equal(await page.locator('#conn-state').getAttribute('data-state'), 'ended');
    assert.equal(await byId('consent-pending').count(), 0);
    await page.mouse.move(0, 0);
    await shot('08-declined');
  });

  await t.test('declined while another technician stays: this viewer is let go', async () => {
    await page.goto(`${broker.origin}/console/#/session/${WAITING_ID}`);
    await page.locator('#conn-state[data-state="live"]').waitFor({ timeout: 20_000 });
    signaling.permissions({ pending: true, message: 'Waiting for the user to answer.' });
    await byId('consent-pending').waitFor();
    signaling.permissions({ granted: [], message: 'The user did not answer in time.' });
    await signaling.ws.close({ code: 4003, reason: 'the user declined' });
    await byId('session-ended').waitFor();
    assert.equal(await byId('ended-reason').textContent(), 'The user did not answer in time.');
  });

  assert.deepEqual(pageErrors.map(String), []);
});

/** Resolves after the remote video has presented a few frames at its current size. */
async function waitForPaint(page) {
  await page.evaluate(() => new Promise((done) => {
    const v = document.querySelector('[data-testid="remote-video"]');
    let n = 0;
    const next = () => v.requestVideoFrameCallback(() => (++n >= 3 ? done() : next()));
    next();
    setTimeout(done, 3000);
  }));
  await page.waitForTimeout(300);
}

// livePeer opens the fake broker's /peer page as the remote host and routes
// the console's signaling to it, live.
async function livePeer(browser, page, broker) {
  const peer = await browser.context.newPage();
  await peer.goto(`${broker.origin}/peer`);
  const signaling = routeSignaling(page);
  signaling.scenario = 'live';
  signaling.peer = peer;
  return { peer, signaling };
}

/**
 * Answers the console's /ws/viewer inside the browser, like the broker would.
 * scenario 'waiting': welcome with no host. 'live': welcome, host state, and
 * an offer made by `peer`, the fake broker's /peer page (fake-peer.js),
 * which sends a canvas as the remote screen and holds the data channels.
 * consent 'all': the user is asked and allows view, control and clipboard
 * at once; 'manual': no frames and no answer until the test sends them
 * (ctl.permissions, peer setSharing).
 */
function routeSignaling(page) {
  const ctl = {
    scenario: 'waiting',
    consent: 'all',
    peer: null,
    received: [],
    ws: null,
    session: '',
    /** Sends a broker message on the page's current signaling socket. */
    send(type, payload) {
      ctl.ws.send(JSON.stringify({ v: 1, type, id: `b${Date.now()}`, session: ctl.session, payload }));
    },
    permissions(payload) {
      ctl.send('permissions', { granted: [], paused: false, pending: false, ...payload });
    },
  };
  page.routeWebSocket(/\/ws\/viewer$/, (ws) => {
    ctl.ws = ws;
    const send = (type, session, payload) => ws.send(JSON.stringify({ v: 1, type, id: `b${Date.now()}`, session, payload }));
    ws.onMessage(async (data) => {
      const msg = JSON.parse(String(data));
      ctl.received.push(msg);
      const session = msg.payload?.session ?? msg.session;
      if (msg.type === 'hello') ctl.session = session;
      if (msg.type === 'hello' && ctl.scenario === 'waiting') {
        send('welcome', session, { session, state: 'waiting' });
      }
      if (msg.type === 'hello' && ctl.scenario === 'live') {
        send('welcome', session, { session, state: 'active' });
        send('state', session, { state: 'active', host: { hostname: 'FIN-LT-0142', os: 'Windows 11 Pro', width: 1920, height: 1080 } });
        const sharing = ctl.consent === 'all';
        const sdp = await ctl.peer.evaluate((on) => window.fake.offer({ sharing: on }), sharing);
        send('offer', session, { sdp });
        if (ctl.consent === 'all') {
          send('permissions', session, { granted: [], paused: false, pending: true, message: 'Waiting for the user to answer.' });
          send('permissions', session, {
            granted: ['view', 'control', 'clipboard'], paused: false, pending: false, message: 'The user allowed view, control and clipboard.',
          });
        }
      }
      if (msg.type === 'answer' && ctl.peer) {
        await ctl.peer.evaluate((sdp) => window.fake.accept(sdp), msg.payload.sdp);
      }
    });
  });
  return ctl;
}

// Renders every console screen in Chromium against a fake of the broker's
// REST API and saves screenshots to artifacts/ at the repository root.
//
// This is a rendering and wiring test of the console alone. Signaling is
// routed inside the browser; for the live view a second page of the same
// Chromium plays the broker's side of WebRTC, sending a canvas "desktop".
// The end-to-end test against the real broker lives elsewhere and reuses
// browser.mjs.

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { launch } from './browser.mjs';
import { NEW_CODE, PASSWORD, USER, sampleSessions, startFakeBroker } from './fake-broker.mjs';

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
    const pageErrors = [];
    page.on('pageerror', (err) => pageErrors.push(err));
    page.on('console', (msg) => {
      if (msg.type() === 'error' && !/status of (401|403|429)/.test(msg.text())) pageErrors.push(new Error(msg.text()));
    });
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
      await peer.goto(`${broker.origin}/blank`);
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
      assert.equal(await byId('stage-overlay').isVisible(), false);
      await byId('display-size').waitFor();
      // Let the encoder ramp up to full resolution so the screenshot is sharp.
      await page.waitForFunction(() => document.querySelector('[data-testid="remote-video"]').videoWidth >= 1920, null, { timeout: 8000 }).catch(() => {});
      await page.waitForTimeout(500);
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

/**
 * Answers the console's /ws/viewer inside the browser, like the broker would.
 * scenario 'waiting': welcome with no host. 'live': welcome, host state, and
 * an offer made by `peer`, a page that sends a canvas as the remote screen.
 */
function routeSignaling(page) {
  const ctl = { scenario: 'waiting', peer: null, received: [] };
  page.routeWebSocket(/\/ws\/viewer$/, (ws) => {
    const send = (type, session, payload) => ws.send(JSON.stringify({ v: 1, type, id: `b${Date.now()}`, session, payload }));
    ws.onMessage(async (data) => {
      const msg = JSON.parse(String(data));
      ctl.received.push(msg);
      const session = msg.payload?.session ?? msg.session;
      if (msg.type === 'hello' && ctl.scenario === 'waiting') {
        send('welcome', session, { session, state: 'waiting' });
      }
      if (msg.type === 'hello' && ctl.scenario === 'live') {
        send('welcome', session, { session, state: 'active' });
        send('state', session, { state: 'active', host: { hostname: 'FIN-LT-0142', os: 'Windows 11 Pro', width: 1920, height: 1080 } });
        const sdp = await ctl.peer.evaluate(makeOffer);
        send('offer', session, { sdp });
      }
      if (msg.type === 'answer' && ctl.peer) {
        await ctl.peer.evaluate((sdp) => window.peer.setRemoteDescription({ type: 'answer', sdp }), msg.payload.sdp);
      }
    });
  });
  return ctl;
}

// Runs in the peer page: draws a desktop on a canvas and offers it as video.
async function makeOffer() {
  const canvas = document.createElement('canvas');
  canvas.width = 1920;
  canvas.height = 1080;
  const g = canvas.getContext('2d');
  const draw = () => {
    const bg = g.createLinearGradient(0, 0, 1920, 1080);
    bg.addColorStop(0, '#1e3a5f');
    bg.addColorStop(1, '#3b6e8f');
    g.fillStyle = bg;
    g.fillRect(0, 0, 1920, 1080);
    // A mail window.
    g.fillStyle = '#fff';
    g.fillRect(180, 110, 1180, 760);
    g.fillStyle = '#0f4c81';
    g.fillRect(180, 110, 1180, 44);
    g.fillStyle = '#fff';
    g.font = '20px sans-serif';
    g.fillText('Inbox \u2014 Mail', 204, 139);
    g.fillStyle = '#f3f4f6';
    g.fillRect(180, 154, 260, 716);
    g.fillStyle = '#374151';
    ['Inbox', 'Drafts', 'Sent', 'Archive'].forEach((f, i) => g.fillText(f, 210, 200 + i * 40));
    for (let i = 0; i < 12; i++) {
      g.fillStyle = i === 1 ? '#e0ecf8' : '#fff';
      g.fillRect(440, 154 + i * 60, 920, 60);
      g.fillStyle = '#111827';
      g.fillText(`Quarterly report ${i + 1}`, 470, 190 + i * 60);
      g.fillStyle = '#6b7280';
      g.fillText('Finance team \u00b7 attachments', 800, 190 + i * 60);
    }
    // The error the user called about.
    g.fillStyle = 'rgba(0,0,0,0.25)';
    g.fillRect(708, 408, 620, 240);
    g.fillStyle = '#fff';
    g.fillRect(700, 400, 620, 240);
    g.fillStyle = '#b91c1c';
    g.font = 'bold 24px sans-serif';
    g.fillText('Cannot open attachment', 740, 460);
    g.fillStyle = '#374151';
    g.font = '19px sans-serif';
    g.fillText('Error 0x80070005: Access is denied.', 740, 505);
    g.fillStyle = '#0f4c81';
    g.fillRect(1160, 575, 120, 40);
    g.fillStyle = '#fff';
    g.fillText('OK', 1205, 602);
    // Taskbar with a clock, so frames keep changing.
    g.fillStyle = 'rgba(15,23,42,0.92)';
    g.fillRect(0, 1032, 1920, 48);
    g.fillStyle = '#e5e7eb';
    g.font = '18px sans-serif';
    g.fillText(new Date().toLocaleTimeString(), 1790, 1063);
  };
  draw();
  setInterval(draw, 250);

  const stream = canvas.captureStream(15);
  const [track] = stream.getVideoTracks();
  track.contentHint = 'detail'; // a desktop: keep the resolution, like the host does
  const pc = new RTCPeerConnection();
  window.peer = pc;
  pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((done) => {
    if (pc.iceGatheringState === 'complete') return done();
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && done());
    setTimeout(done, 3000);
  });
  return pc.localDescription.sdp;
}

// What the console shows when the other end stops answering: the user's
// computer frozen (the host process stopped with SIGSTOP) and back
// (SIGCONT). A real broker, a real host on Xvfb, headless Chromium.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { collectErrors, launch, remotePoint } from './browser.mjs';
import { ROOT, api, bin, start, startBroker, startHost, startXvfb, stopAll, signIn, until } from './procs.mjs';

after(stopAll);

const artifacts = join(ROOT, 'artifacts');
mkdirSync(artifacts, { recursive: true });

/** A live session on a new broker, its console page signed in, and its host. */
async function liveSession(t, display) {
  const broker = await startBroker();
  const created = await api(broker, 'POST', '/api/v1/sessions', { ticket: { id: 'INC-FROZEN' }, permissions: ['view', 'control'] });
  assert.equal(created.status, 201);
  const browser = await launch();
  t.after(() => browser.close());
  const page = await browser.newPage();
  const errors = collectErrors(page);
  await signIn(page, broker, `/#/session/${created.body.id}`);
  const host = startHost(broker, created.body.code, display);
  await host.ready;
  await page.locator('#conn-state[data-state="live"]').waitFor({ timeout: 30_000 });
  await page.getByTestId('stage-overlay').waitFor({ state: 'hidden', timeout: 15_000 });
  return { broker, page, host, errors };
}

test('a frozen computer shows as not responding, and live again when it is back', { timeout: 120_000 }, async (t) => {
  const display = await startXvfb(1280, 720);
  const { page, host, errors } = await liveSession(t, display);
  const badge = page.locator('#conn-state');

  // A still screen sends no video at all: that is not a frozen computer.
  await page.waitForTimeout(8000);
  assert.equal(await badge.getAttribute('data-state'), 'live', 'a still screen stays live');
  assert.equal(await page.getByTestId('host-silent').count(), 0);

  // In control of a changing screen, then the computer freezes.
  await page.getByTestId('mode-control').click();
  await page.waitForFunction(() => window.tether.control.enabled === true);
  start('xclock', ['-geometry', '300x300+490+210', '-update', '1'], { env: { DISPLAY: display } });
  await page.waitForTimeout(2000);
  const frozenAt = Date.now();
  host.signal('SIGSTOP');
  try {
    await page.locator('#conn-state[data-state="silent"]').waitFor({ timeout: 12_000 });
    const noticedAfter = Date.now() - frozenAt;
    assert.ok(noticedAfter < 4500, `noticed only ${noticedAfter} ms after the host stopped`);
    assert.equal(await badge.innerText(), 'Not responding');
    assert.equal(await page.getByTestId('host-silent').innerText(), 'The user\u2019s computer is not responding');
    const since = await page.getByTestId('host-silent-since').innerText();
    assert.match(since, /^Nothing has come from it since \d{1,2}:\d\d:\d\d\b.*The picture is the last one received\.$/);
    // The technician's input is not sent meanwhile, and the page says so.
    assert.equal(await page.getByTestId('host-silent-input').innerText(),
      'Your mouse and keyboard are paused until it answers: nothing you click or type meanwhile reaches it.');
    await page.keyboard.press('KeyA');
    await page.waitForFunction(() => /not responding: your mouse and keyboard are paused/.test(document.querySelector('[data-testid="input-toast"]:not([hidden])')?.textContent ?? ''), null, { timeout: 5000 });
    // The last picture stays under the message, dimmed.
    const filter = await page.getByTestId('remote-video').evaluate((v) => getComputedStyle(v).filter);
    assert.match(filter, /brightness/);
    assert.match(await page.title(), /^Not responding · INC-FROZEN/);
    await page.waitForTimeout(400); // the dimming's transition
    await page.screenshot({ path: join(artifacts, 'console-host-not-responding.png') });
    t.diagnostic(`noticed ${noticedAfter} ms after the host stopped`);
  } finally {
    host.signal('SIGCONT');
  }

  // Back: live again, and the picture moves.
  await page.locator('#conn-state[data-state="live"]').waitFor({ timeout: 15_000 });
  await page.getByTestId('stage-overlay').waitFor({ state: 'hidden' });
  await page.waitForFunction(() => getComputedStyle(document.querySelector('[data-testid="remote-video"]')).filter === 'none', null, { timeout: 2000 });
  const frames = () => page.getByTestId('remote-video').evaluate((v) => v.getVideoPlaybackQuality().totalVideoFrames);
  const before = await frames();
  await page.waitForTimeout(2500);
  assert.ok(await frames() > before, 'the clock ticks on the picture again');
  await page.screenshot({ path: join(artifacts, 'console-host-responding-again.png') });
  assert.deepEqual(errors, []);
});

test('a broker that goes away says so, and the session\u2019s end once it is back', { timeout: 120_000 }, async (t) => {
  const display = await startXvfb(1280, 720);
  const { broker, page, errors } = await liveSession(t, display);

  const killedAt = Date.now();
  broker.child.kill('SIGKILL');
  await broker.exited;
  const title = page.getByTestId('reconnecting');
  await page.waitForFunction(() => document.querySelector('[data-testid="reconnecting"]')?.textContent === 'The broker is not answering', null, { timeout: 15_000 });
  t.diagnostic(`said so ${Date.now() - killedAt} ms after the broker went away`);
  assert.equal(await page.locator('#conn-state').getAttribute('data-state'), 'reconnecting');
  assert.match(await page.getByTestId('reconnecting-since').innerText(), /^Cut off from the broker since \d{1,2}:\d\d:\d\d\b/);
  assert.match(await page.getByTestId('stage-overlay').innerText(), /If the broker was restarted meanwhile, the session ended with it/);
  await page.screenshot({ path: join(artifacts, 'console-broker-gone.png') });
  await page.waitForTimeout(3000);
  assert.equal(await title.innerText(), 'The broker is not answering', 'it keeps saying so while the broker is away');

  // The broker comes back on the same address and data: the session did not
  // survive it, and the page says so and why.
  const again = start(broker.child.spawnargs[0], broker.child.spawnargs.slice(1), { readyLine: /Console: / });
  await again.ready;
  await page.getByTestId('session-ended').waitFor({ timeout: 30_000 });
  await page.waitForFunction(() => document.querySelector('[data-testid="ended-reason"]')?.textContent === 'The broker stopped during the session.', null, { timeout: 5000 })
    .catch(async () => assert.fail(`the page says "${await page.getByTestId('ended-reason').innerText()}", not why the session ended`));
  await page.screenshot({ path: join(artifacts, 'console-broker-back-session-ended.png') });
  // The page's failed tries to reach the broker are the browser's own console errors.
  assert.deepEqual(errors.filter((e) => !/WebSocket|ERR_CONNECTION_REFUSED|Failed to load resource/.test(e.message)), []);
});

test('while the broker is not answering, End session says it cannot act, and works once it is back', { timeout: 120_000 }, async (t) => {
  const display = await startXvfb(1280, 720);
  const { broker, page, errors } = await liveSession(t, display);
  const end = page.getByTestId('end-session');
  const note = page.getByTestId('end-unavailable');
  assert.equal(await note.isVisible(), false);

  // Stopped, not killed: the session lives on in it, and goes on when it resumes.
  broker.child.kill('SIGSTOP');
  const stoppedAt = Date.now();
  try {
    await page.locator('#conn-state[data-state="reconnecting"]').waitFor({ timeout: 30_000 });
    await note.waitFor();
    assert.equal(await note.innerText(), 'The session cannot be ended while the broker is not answering.');
    assert.equal(await end.getAttribute('aria-disabled'), 'true');
    assert.equal(await end.getAttribute('aria-describedby'), 'end-unavailable');
    // A click asks nothing and sends nothing (forced: the button is not
    // enabled, as Playwright sees it).
    await end.click({ force: true });
    await page.waitForTimeout(500);
    assert.equal(await page.getByTestId('end-session-dialog').count(), 0, 'a dialog to end what cannot be ended');
    await page.screenshot({ path: join(artifacts, 'console-broker-away-end-unavailable.png') });
    // Its socket never closes, and a new one hangs: the page's pings find
    // the broker silent, and it says so as for a broker that went away,
    // before the user's computer gives the session up (30 s of silence).
    await page.waitForFunction(() => document.querySelector('[data-testid="reconnecting"]')?.textContent === 'The broker is not answering', null, { timeout: 40_000 });
    const saidAfter = Date.now() - stoppedAt;
    t.diagnostic(`said the stopped broker is not answering ${saidAfter} ms after it stopped`);
    assert.ok(saidAfter < 25_000, `said the broker is not answering only ${saidAfter} ms after it stopped`);
  } finally {
    broker.child.kill('SIGCONT');
  }

  await page.locator('#conn-state[data-state="live"]').waitFor({ timeout: 30_000 });
  assert.equal(await note.isVisible(), false);
  assert.equal(await end.getAttribute('aria-disabled'), null);
  await end.click();
  await page.getByTestId('confirm-ok').click();
  await page.getByTestId('session-ended').waitFor({ timeout: 15_000 });
  assert.equal(await page.getByTestId('ended-reason').innerText(), 'The technician ended the session.');
  assert.deepEqual(errors.filter((e) => !/WebSocket|ERR_CONNECTION_REFUSED|Failed to load resource/.test(e.message)), []);
});

test('what is typed while the broker is not answering never reaches the user\u2019s computer', { timeout: 150_000 }, async (t) => {
  const display = await startXvfb(1280, 720);
  const witness = start(bin('xpattern'), ['-mode', 'input'], { env: { DISPLAY: display }, readyLine: /ready/ });
  await witness.ready;
  const lines = (from) => witness.out.stdout.split('\n').slice(from).filter(Boolean);
  const mark = () => witness.out.stdout.split('\n').length - 1;
  const { broker, page, errors } = await liveSession(t, display);
  await page.getByTestId('mode-control').click();
  await page.waitForFunction(() => window.tether.control?.enabled === true);
  const [px, py] = await remotePoint(page, 640, 360);
  let from = mark();
  await page.mouse.click(px, py); // the keyboard goes to the remote screen
  await until('the click on the user\u2019s computer', () => lines(from).includes('button 1 up 640 360'));

  // The broker stops answering: the page says so, and the technician, not
  // sure it still works, types a command and clicks.
  from = mark();
  broker.child.kill('SIGSTOP');
  try {
    await page.locator('#conn-state[data-state="reconnecting"]').waitFor({ timeout: 30_000 });
    const sent = await page.evaluate(() => window.tether.input.sent);
    await page.keyboard.type('qwe');
    await page.mouse.click(px + 40, py + 40);
    await page.waitForTimeout(500);
    assert.equal(await page.evaluate(() => window.tether.input.sent), sent, 'input was sent while cut off from the broker');
    await page.waitForTimeout(2000);
  } finally {
    broker.child.kill('SIGCONT');
  }

  // Back, the page takes control again; nothing from while it was cut off
  // lands on the user's computer, late.
  await page.locator('#conn-state[data-state="live"]').waitFor({ timeout: 30_000 });
  await page.waitForFunction(() => window.tether.control?.enabled === true, null, { timeout: 15_000 });
  await page.waitForTimeout(3000);
  const late = lines(from).filter((l) => /^(key|text|button) /.test(l));
  assert.deepEqual(late, [], 'input from while the broker was not answering reached the user\u2019s computer');
  // And what is typed now does.
  await page.mouse.click(px, py);
  const now = mark();
  await page.keyboard.type('r');
  await until('the key typed once the broker is back', () => lines(now).includes('text r'));
  assert.deepEqual(errors.filter((e) => !/WebSocket|ERR_CONNECTION_REFUSED|Failed to load resource/.test(e.message)), []);
});

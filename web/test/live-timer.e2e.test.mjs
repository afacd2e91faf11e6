// The live session's timer counts the session's time, from when the user
// first let a technician in: a reload of the page does not set it back to
// 0:00, and a colleague who opens the session later sees the same time. A
// real broker, a real host on Xvfb, headless Chromium.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { collectErrors, launch } from './browser.mjs';
import { ROOT, api, call, signIn, startBroker, startHost, startXvfb, stopAll } from './procs.mjs';

after(stopAll);

const artifacts = join(ROOT, 'artifacts');
mkdirSync(artifacts, { recursive: true });

/** The timer's time in seconds, once it shows one. */
async function timerSeconds(page) {
  const timer = page.locator('.viewer-timer');
  await timer.waitFor({ timeout: 15_000 });
  const text = await timer.innerText();
  const m = text.match(/^(?:(\d+):)?(\d+):(\d\d)$/);
  assert.ok(m, `the timer shows "${text}"`);
  return (Number(m[1] ?? 0) * 60 + Number(m[2])) * 60 + Number(m[3]);
}

test('the session timer keeps counting across a reload, and for a colleague who joins late', { timeout: 120_000 }, async (t) => {
  const display = await startXvfb(1280, 720);
  const broker = await startBroker();
  assert.equal((await api(broker, 'POST', '/api/v1/users', { username: 'tom', role: 'technician', password: 'tom-password-12' })).status, 201);
  const created = await api(broker, 'POST', '/api/v1/sessions', { ticket: { id: 'INC-TIMER' }, permissions: ['view'] });
  assert.equal(created.status, 201);
  const id = created.body.id;
  assert.equal(created.body.live_at, undefined, 'not live before the user let anyone in');

  const browser = await launch({ viewport: { width: 1280, height: 720 } });
  t.after(() => browser.close());
  const page = await browser.newPage();
  const errors = collectErrors(page);
  await signIn(page, broker, `/#/session/${id}`);
  const host = startHost(broker, created.body.code, display);
  await host.ready;
  await page.locator('#conn-state[data-state="live"]').waitFor({ timeout: 30_000 });

  // The broker says when the session went live: the user's yes.
  const live = (await api(broker, 'GET', `/api/v1/sessions/${id}`)).body.live_at;
  assert.ok(live, 'the session has a live_at once the user let the technician in');
  const events = (await api(broker, 'GET', `/api/v1/sessions/${id}/events`)).body.events;
  assert.equal(Date.parse(live), Date.parse(events.find((e) => e.type === 'consent.granted').at));

  await page.waitForFunction(() => /^0:(0[6-9]|[1-5]\d)$/.test(document.querySelector('.viewer-timer')?.textContent ?? ''), null, { timeout: 15_000 });
  const before = await timerSeconds(page);

  // The technician reloads mid-session: the time goes on from where it was.
  await page.reload();
  const afterReload = await timerSeconds(page);
  const expected = Math.floor((Date.now() - Date.parse(live)) / 1000);
  assert.ok(afterReload >= before && Math.abs(afterReload - expected) <= 2,
    `after the reload the timer shows ${afterReload} s; it showed ${before} s before, and the session has been live ${expected} s`);
  await page.locator('#conn-state[data-state="live"]').waitFor({ timeout: 30_000 });
  await page.screenshot({ path: join(artifacts, 'console-timer-after-reload.png') });

  // tom, invited later, opens the session: the same time, not 0:00.
  assert.equal((await api(broker, 'POST', `/api/v1/sessions/${id}/invite`, { username: 'tom' })).status, 200);
  const other = await launch({ viewport: { width: 1280, height: 720 } });
  t.after(() => other.close());
  const colleague = await other.newPage();
  await colleague.goto(`${broker.url}/#/session/${id}`);
  await colleague.getByTestId('login-username').fill('tom');
  await colleague.getByTestId('login-password').fill('tom-password-12');
  await colleague.getByTestId('login-submit').click();
  await colleague.locator('#conn-state[data-state="live"]').waitFor({ timeout: 30_000 });
  const theirs = await timerSeconds(colleague);
  const ours = await timerSeconds(page);
  assert.ok(theirs >= before && Math.abs(theirs - ours) <= 1, `tom's timer shows ${theirs} s, the first technician's ${ours} s`);
  await colleague.screenshot({ path: join(artifacts, 'console-timer-late-colleague.png') });

  // The session's JSON gives the same time to a ticket system.
  const listed = (await call(broker, 'GET', '/api/v1/sessions', broker.admin.api_key)).body.sessions.find((s) => s.id === id);
  assert.equal(listed.live_at, live);
  assert.deepEqual(errors, []);
});

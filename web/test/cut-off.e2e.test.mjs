// A technician cut off from a session that goes on (an administrator
// changed their account, their login ended elsewhere) is told so, not that
// the session ended: the user and the others are still in it. A real
// broker, a real host on Xvfb, headless Chromium.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { collectErrors, launch } from './browser.mjs';
import { ROOT, api, signIn, startBroker, startHost, startXvfb, stopAll } from './procs.mjs';

after(stopAll);

const artifacts = join(ROOT, 'artifacts');
mkdirSync(artifacts, { recursive: true });

test('a colleague whose role an administrator changes is told they were disconnected, and the session goes on', { timeout: 120_000 }, async (t) => {
  const display = await startXvfb(1280, 720);
  const broker = await startBroker();
  assert.equal((await api(broker, 'POST', '/api/v1/users', { username: 'tom', role: 'technician', password: 'tom-password-12' })).status, 201);
  const created = await api(broker, 'POST', '/api/v1/sessions', { ticket: { id: 'INC-CUT' }, permissions: ['view'] });
  assert.equal(created.status, 201);
  const id = created.body.id;

  const browser = await launch({ viewport: { width: 1280, height: 720 } });
  t.after(() => browser.close());
  const page = await browser.newPage();
  await signIn(page, broker, `/#/session/${id}`);
  const host = startHost(broker, created.body.code, display);
  await host.ready;
  await page.locator('#conn-state[data-state="live"]').waitFor({ timeout: 30_000 });

  assert.equal((await api(broker, 'POST', `/api/v1/sessions/${id}/invite`, { username: 'tom' })).status, 200);
  const other = await launch({ viewport: { width: 1280, height: 720 } });
  t.after(() => other.close());
  const colleague = await other.newPage();
  const errors = collectErrors(colleague);
  await colleague.goto(`${broker.url}/#/session/${id}`);
  await colleague.getByTestId('login-username').fill('tom');
  await colleague.getByTestId('login-password').fill('tom-password-12');
  await colleague.getByTestId('login-submit').click();
  await colleague.locator('#conn-state[data-state="live"]').waitFor({ timeout: 30_000 });

  // An administrator makes tom a supervisor: his connection is cut.
  assert.equal((await api(broker, 'PATCH', '/api/v1/users/tom', { role: 'supervisor' })).status, 200);
  await colleague.getByTestId('cut-off').waitFor({ timeout: 15_000 });
  assert.equal(await colleague.getByTestId('cut-off').textContent(), 'You were disconnected');
  assert.equal(await colleague.getByTestId('ended-reason').textContent(), 'An administrator changed your role; connect again.');
  assert.equal(await colleague.getByTestId('session-ended').count(), 0, 'tom is not told the session ended');
  assert.equal(await colleague.locator('#conn-state').innerText(), 'Disconnected');
  assert.doesNotMatch(await colleague.locator('body').innerText(), /session is over|Session ended/);
  await colleague.screenshot({ path: join(artifacts, 'console-cut-off.png') });

  // It did not end: the first technician still has the user's screen.
  assert.equal((await api(broker, 'GET', `/api/v1/sessions/${id}`)).body.state, 'active');
  assert.equal(await page.locator('#conn-state').getAttribute('data-state'), 'live');

  // Connect again opens the session anew, now as what tom is.
  await colleague.getByTestId('connect-again').click();
  await colleague.locator('#conn-state[data-state="live"], #conn-state[data-state="connecting"], #conn-state[data-state="waiting"]').waitFor({ timeout: 15_000 });
  assert.equal(await colleague.getByTestId('cut-off').count(), 0);
  assert.deepEqual(errors.filter((e) => !/WebSocket|Failed to load resource/.test(e.message)), []);
});

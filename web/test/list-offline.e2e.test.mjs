// The sessions list while the broker is away: the page says it shows the
// last list it had and that it is trying again, rather than pulsing
// "Auto-refreshing" over figures that no longer move, and it is live again
// once the broker is back. A real broker, stopped and started again on its
// data, and headless Chromium.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { launch } from './browser.mjs';
import { ROOT, api, bin, freeUDPPort, signIn, start, startBroker, stopAll } from './procs.mjs';

after(stopAll);

const artifacts = join(ROOT, 'artifacts');
mkdirSync(artifacts, { recursive: true });

test('the sessions list says when it cannot refresh, and refreshes again when the broker is back', { timeout: 90_000 }, async (t) => {
  const broker = await startBroker();
  assert.equal((await api(broker, 'POST', '/api/v1/sessions', { ticket: { id: 'INC-OFFLINE' } })).status, 201);
  const browser = await launch({ viewport: { width: 1280, height: 720 } });
  t.after(() => browser.close());
  const page = await browser.newPage();
  await signIn(page, broker);
  await page.getByTestId('session-row').waitFor();
  const hint = page.locator('.live-hint');
  assert.equal(await hint.innerText(), 'Auto-refreshing');

  broker.child.kill('SIGKILL');
  await broker.exited;
  await page.getByText('Showing the last list: Cannot reach the Tether broker').waitFor({ timeout: 15_000 });
  await page.screenshot({ path: join(artifacts, 'list-offline.png') });
  assert.equal(await hint.innerText(), 'Reconnecting', 'the list is not being refreshed');

  const port = new URL(broker.url).port;
  const again = start(bin('broker'), ['-addr', `127.0.0.1:${port}`, '-udp', String(await freeUDPPort()), '-data', broker.dataDir], { readyLine: /Console: / });
  await again.ready;
  await page.getByText('Showing the last list').waitFor({ state: 'hidden', timeout: 15_000 });
  assert.equal(await hint.innerText(), 'Auto-refreshing');
});

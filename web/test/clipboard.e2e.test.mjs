// The clipboard panel on a user's computer whose clipboard cannot be used
// (no xclip or xsel there): the panel says so, rather than "Sent" for text
// that never reached the user's clipboard, or a wait for a clipboard that
// never comes.

import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { collectErrors, launch } from './browser.mjs';
import { openSession, ROOT, startBroker, startHost, startXvfb, stopAll, tempDir } from './procs.mjs';

after(stopAll);

test('a user\u2019s computer without a clipboard program', { timeout: 120_000 }, async (t) => {
  const display = await startXvfb(1280, 720);
  const broker = await startBroker();
  const browser = await launch({ viewport: { width: 1280, height: 800 } });
  t.after(() => browser.close());
  await browser.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: broker.url });
  const page = await browser.newPage();
  const pageErrors = collectErrors(page);
  const byId = (id) => page.getByTestId(id);

  // A PATH with what starting the host takes, and no xclip or xsel.
  const path = tempDir('tether-noclip-');
  for (const prog of ['script', 'sh']) symlinkSync(`/usr/bin/${prog}`, join(path, prog));
  const code = await openSession(page, broker, 'INC-20940');
  const host = startHost(broker, code, display, { env: { PATH: path } });
  await host.ready;
  await page.locator('#conn-state[data-state="live"]').waitFor({ timeout: 30_000 });
  await byId('mode-control').click();
  await page.waitForFunction(() => window.tether.control?.enabled === true, null, { timeout: 15_000 });

  await byId('clipboard-open').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="clipboard-remote"]').textContent === 'The remote clipboard could not be read.',
    null, { timeout: 10_000 });

  await byId('clipboard-send-text').fill('net use Z: \\\\fs01\\finance');
  await byId('clipboard-send').click();
  await byId('clipboard-error').waitFor({ timeout: 10_000 });
  assert.equal(await byId('clipboard-error').textContent(), "The user's clipboard could not be set.");
  assert.doesNotMatch(await byId('clipboard-send').textContent(), /Sent/);
  mkdirSync(join(ROOT, 'artifacts'), { recursive: true });
  await page.screenshot({ path: join(ROOT, 'artifacts', 'console-clipboard-unavailable-1280x800.png'), animations: 'disabled' });
  assert.deepEqual(pageErrors, []);
});

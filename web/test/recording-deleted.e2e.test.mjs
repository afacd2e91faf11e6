// A recording the broker deleted when its retention period ended, opened
// as a supervisor finds it: in the list, and from a ticket's link to the
// player. Both say it was deleted, when, and why, as the API does. One
// whose files someone removed by hand says that.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { launch } from './browser.mjs';
import { api, bin, freeUDPPort, recordShellArchive, ROOT, signIn, start, startBroker, stopAll, until } from './procs.mjs';

const artifacts = join(ROOT, 'artifacts');
mkdirSync(artifacts, { recursive: true });
after(stopAll);

test('a recording deleted by retention says when and why, in the API, the list and the player', { timeout: 90_000 }, async (t) => {
  const broker = await startBroker();
  const made = await recordShellArchive(broker, 'INC-GONE');
  broker.child.kill('SIGTERM');
  await broker.exited;

  // The archive was sealed 40 days ago; the broker comes back keeping
  // recordings for 30, and deletes it as it starts.
  const manifest = join(broker.dataDir, 'recordings', made.id, 'manifest.json');
  const m = JSON.parse(readFileSync(manifest, 'utf8'));
  m.sealed_at = new Date(Date.now() - 40 * 86400_000).toISOString();
  writeFileSync(manifest, JSON.stringify(m));
  const port = new URL(broker.url).port;
  const again = start(bin('broker'), ['-addr', `127.0.0.1:${port}`, '-udp', String(await freeUDPPort()), '-data', broker.dataDir, '-retention-days', '30'],
    { readyLine: /Console: / });
  await again.ready;

  const listed = await until('the recording deleted', async () =>
    (await api(broker, 'GET', '/api/v1/recordings?ticket=INC-GONE')).body.recordings.find((r) => r.state === 'deleted'));
  assert.equal(listed.deletion?.reason, 'retention', JSON.stringify(listed));
  assert.equal(listed.deletion.retention_days, 30);
  assert.ok(Math.abs(Date.parse(listed.deletion.at) - Date.now()) < 60_000, `deleted at ${listed.deletion.at}, not just now`);
  const said = /^This recording was deleted on \d{1,2} \w+ \d{4} at \d\d:\d\d UTC, because this broker keeps recordings for 30 days after they end\.$/;
  assert.match(listed.deletion.message, said);
  for (const path of ['', '/events', '/download']) {
    const res = await api(broker, 'GET', `/api/v1/recordings/${made.id}${path}`);
    assert.equal(res.status, 410, path);
    assert.equal(res.body.error.code, 'recording_deleted');
    assert.match(res.body.error.message, said, path);
  }

  const browser = await launch({ viewport: { width: 1440, height: 900 } });
  t.after(() => browser.close());
  const page = await browser.newPage();
  await signIn(page, broker, '/#/recordings');
  const row = page.getByTestId('recording-row').filter({ hasText: 'INC-GONE' });
  await row.waitFor({ timeout: 15_000 });
  assert.match(await row.getByTestId('recording-deletion').textContent(), / · kept 30 days$/);
  assert.equal(await row.getByTestId('recording-deletion').locator('xpath=../..').getAttribute('title'), listed.deletion.message);
  await page.mouse.move(0, 0);
  await page.screenshot({ path: join(artifacts, 'recording-deleted-list.png') });

  // A ticket's link opens the player, which says what the broker said.
  await page.goto(`${broker.url}/#/recording/${made.id}`);
  const error = page.getByTestId('player-error');
  await error.waitFor({ timeout: 15_000 });
  assert.equal(await error.locator('h3').textContent(), 'Recording deleted');
  assert.match(await error.textContent(), /This recording was deleted on .* because this broker keeps recordings for 30 days after they end\./);
  await page.screenshot({ path: join(artifacts, 'recording-deleted-player.png') });
});

test('a recording whose files were removed by hand says so, not that its manifest cannot be read', { timeout: 60_000 }, async (t) => {
  const broker = await startBroker();
  const made = await recordShellArchive(broker, 'INC-RM');
  rmSync(join(broker.dataDir, 'recordings', made.id), { recursive: true });

  const said = /^This recording's files are no longer on the broker: someone removed them from its recordings folder outside Tether/;
  for (const [method, path] of [['GET', ''], ['GET', '/events'], ['GET', '/download'], ['POST', '/verify']]) {
    const res = await api(broker, method, `/api/v1/recordings/${made.id}${path}`);
    assert.equal(res.status, 410, `${method} ${path}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.error.code, 'recording_missing');
    assert.match(res.body.error.message, said);
  }

  const browser = await launch({ viewport: { width: 1440, height: 900 } });
  t.after(() => browser.close());
  const page = await browser.newPage();
  await signIn(page, broker, `/#/recording/${made.id}`);
  const error = page.getByTestId('player-error');
  await error.waitFor({ timeout: 15_000 });
  assert.equal(await error.locator('h3').textContent(), 'Recording files missing');
  assert.match(await error.textContent(), /no longer on the broker: someone removed them/);
  await page.screenshot({ path: join(artifacts, 'recording-removed-player.png') });
});

// Files moved in a session, as an auditor reads them in the recording
// player: each transfer's whole SHA-256, to compare with the file's, and
// whether the broker relayed the bytes the user's computer hashed. A real
// broker, an archive written by its recorder and headless Chromium.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { launch } from './browser.mjs';
import { api, openRecording, recordShellArchive, ROOT, startBroker, stopAll } from './procs.mjs';

after(stopAll);

test('the player shows each file\'s whole hash and a relayed file that hashes otherwise', { timeout: 60_000 }, async () => {
  const broker = await startBroker();
  const session = await recordShellArchive(broker, 'INC-HASH');
  const { events } = (await api(broker, 'GET', `/api/v1/recordings/${session.id}/events`)).body;
  const [report, fix] = events.filter((e) => e.type === 'file.transfer').map((e) => e.detail);
  assert.equal(report.relayed_sha256, report.sha256);
  assert.notEqual(fix.relayed_sha256, fix.sha256);

  const browser = await launch();
  try {
    const { page, errors } = await openRecording(browser, broker, session.id);
    const rows = page.locator('[data-testid="event-row"][data-type="file.transfer"]');
    assert.equal(await rows.count(), 2);

    const reportRow = await rows.nth(0).innerText();
    assert.ok(reportRow.includes(report.sha256), `report.pdf's row does not show its whole hash: ${reportRow}`);
    assert.match(reportRow, /broker relayed the same bytes/);
    assert.equal(await rows.nth(0).locator('[data-mismatch="true"]').count(), 0);

    const fixRow = await rows.nth(1).innerText();
    assert.ok(fixRow.includes(fix.sha256), `fix.sh's row does not show its whole hash: ${fixRow}`);
    const mismatch = rows.nth(1).locator('[data-mismatch="true"]');
    assert.equal(await mismatch.count(), 1, `fix.sh's row does not say the relayed bytes differ: ${fixRow}`);
    assert.ok((await mismatch.innerText()).includes(fix.relayed_sha256));

    mkdirSync(join(ROOT, 'artifacts'), { recursive: true });
    await page.screenshot({ path: join(ROOT, 'artifacts', 'player-file-hashes.png') });
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

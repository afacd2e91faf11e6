// Searching recordings by date in the console: a supervisor picks days in
// their own time zone, the one the list shows each session's time in.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { launch } from './browser.mjs';
import { api, bin, ROOT, signIn, startBroker, stopAll } from './procs.mjs';

after(stopAll);

test('a day searched is the supervisor\'s own day, as the list shows it', { timeout: 60_000 }, async () => {
  const broker = await startBroker();
  const made = await api(broker, 'POST', '/api/v1/sessions', { ticket: { id: 'INC-DAY' } });
  execFileSync(bin('shellrec'), ['-data', broker.dataDir, '-session', made.body.id]);
  const { started_at: startedAt } = (await api(broker, 'GET', '/api/v1/recordings?ticket=INC-DAY')).body.recordings[0];

  // A time zone where the session was recorded on another day than in UTC:
  // twelve hours behind in the morning (UTC), fourteen ahead later on.
  const utcHour = new Date(startedAt).getUTCHours();
  const timezoneId = utcHour < 12 ? 'Etc/GMT+12' : 'Etc/GMT-14';
  const offsetH = utcHour < 12 ? -12 : 14;
  const utcDay = startedAt.slice(0, 10);
  const localDay = new Date(Date.parse(startedAt) + offsetH * 3600_000).toISOString().slice(0, 10);
  assert.notEqual(localDay, utcDay);

  const browser = await launch();
  try {
    const page = await browser.newPage();
    const cdp = await browser.context.newCDPSession(page);
    await cdp.send('Emulation.setTimezoneOverride', { timezoneId });
    await signIn(page, broker, '/#/recordings');
    const rows = page.getByTestId('recording-row');
    await rows.first().waitFor({ timeout: 15_000 });
    const shown = await rows.first().locator('td').first().textContent();

    const searchDay = async (day) => {
      await page.getByTestId('filter-from').fill(day);
      await page.getByTestId('filter-to').fill(day);
      await page.getByTestId('filter-submit').click();
      await page.waitForFunction(() => !document.querySelector('[data-testid="recordings-results"]')?.hasAttribute('aria-busy'));
      await page.waitForTimeout(300);
      return rows.count();
    };
    assert.equal(await searchDay(localDay), 1, `recorded ${shown} here, it is not found on ${localDay}`);
    mkdirSync(join(ROOT, 'artifacts'), { recursive: true });
    await page.screenshot({ path: join(ROOT, 'artifacts', 'recordings-local-day.png') });
    assert.equal(await searchDay(utcDay), 0, `recorded ${shown} here, it is found on ${utcDay}, the day in UTC`);
  } finally {
    await browser.close();
  }
});

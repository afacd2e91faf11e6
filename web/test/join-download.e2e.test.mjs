// The join page's download: the host with the code filled in while the
// code is good, and the reason on the page once it is not (the session
// ended while the user read the page), not a failed download.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch } from './browser.mjs';
import { call, startBroker, stopAll } from './procs.mjs';

after(stopAll);

test('the join page downloads the host, and says why once the code is no good', { timeout: 60_000 }, async () => {
  const broker = await startBroker();
  const key = broker.admin.api_key;
  const s = await call(broker, 'POST', '/api/v1/sessions', key, { ticket: { id: 'INC-77' } });
  assert.equal(s.status, 201);
  const browser = await launch({ viewport: { width: 900, height: 1000 } });
  try {
    const page = await browser.newPage();
    assert.equal((await page.goto(s.body.join_url)).status(), 200);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('join-download').click()]);
    assert.equal(download.suggestedFilename(), `tether-host-${s.body.code}`);
    assert.equal(await download.failure(), null, 'the download completes');

    // The technician ends the session while the user still reads the page.
    assert.equal((await call(broker, 'POST', `/api/v1/sessions/${s.body.id}/end`, key)).status, 200);
    let downloads = 0;
    page.on('download', () => { downloads += 1; });
    await page.getByTestId('join-download').click();
    await page.waitForFunction(() => /already used|expired|not valid/.test(document.querySelector('h1')?.textContent ?? ''), null, { timeout: 10_000 });
    assert.equal(downloads, 0, 'no download of an error page');
  } finally {
    await browser.close();
  }
});

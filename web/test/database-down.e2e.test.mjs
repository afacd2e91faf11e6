// The broker's database cannot be read while the broker runs (a failing
// disk, a damaged file): a ticket system's request and the console are
// told the broker has a problem, in words and as JSON, not that their key
// or login is wrong; once the database is back, both work again without a
// restart. A real broker process; its database files are overwritten with
// garbage, then put back.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { collectErrors, launch } from './browser.mjs';
import { api, ROOT, signIn, startBroker, stopAll, until } from './procs.mjs';

after(stopAll);

const ARTIFACTS = join(ROOT, 'artifacts');

// spoil overwrites the database and its write-ahead log with garbage and
// returns what put them back. Each time it also clears the header of the
// log's shared index, so that the broker reads the files from disk again
// rather than the pages it keeps in memory.
function spoil(dataDir) {
  const files = ['tether.db', 'tether.db-wal'].map((f) => join(dataDir, f));
  const saved = files.map((f) => readFileSync(f));
  const clearIndex = () => {
    const shm = join(dataDir, 'tether.db-shm');
    const index = readFileSync(shm);
    index.fill(0, 0, 136);
    writeFileSync(shm, index);
  };
  files.forEach((f, i) => writeFileSync(f, Buffer.alloc(saved[i].length, 0xff)));
  clearIndex();
  return () => {
    files.forEach((f, i) => writeFileSync(f, saved[i]));
    clearIndex();
  };
}

test('an unreadable database answers 503 with a clear message, and requests work again once it is back', { timeout: 120_000 }, async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  const broker = await startBroker();
  assert.equal((await api(broker, 'GET', '/api/v1/sessions')).status, 200);
  const browser = await launch();
  try {
    const page = await browser.newPage();
    const errors = collectErrors(page);
    await signIn(page, broker);
    await page.getByTestId('new-session').waitFor();

    const restore = spoil(broker.dataDir);
    const down = await api(broker, 'GET', '/api/v1/sessions');
    assert.equal(down.status, 503, JSON.stringify(down.body));
    assert.equal(down.body?.error?.code, 'unavailable');
    assert.match(down.body.error.message, /The broker has a problem/);
    // The console, opened again, says so instead of a blank page.
    await page.reload();
    await page.getByText(/The broker has a problem/).first().waitFor({ timeout: 15_000 });
    await page.screenshot({ path: join(ARTIFACTS, 'database-down-console.png') });

    restore();
    const up = await api(broker, 'GET', '/api/v1/sessions');
    assert.equal(up.status, 200, JSON.stringify(up.body));
    await page.reload();
    await page.getByTestId('new-session').waitFor({ timeout: 15_000 });
    await page.screenshot({ path: join(ARTIFACTS, 'database-back-console.png') });
    assert.deepEqual(errors.filter((e) => !/status of 503/.test(e.message)), []);
  } finally {
    await browser.close();
  }
});

// Two jobs the broker runs every second need the database: ending the
// sessions whose code expired, and sending webhooks. While it cannot be
// read, each logs once what fails and that the broker keeps trying, not a
// line every second that buries the rest of the log; and once that it
// works again.
test('the broker logs once that its background work fails, not every second, and when it works again', { timeout: 60_000 }, async () => {
  const broker = await startBroker();
  const before = broker.out.stderr.length;
  const restore = spoil(broker.dataDir);
  await new Promise((r) => setTimeout(r, 5_000));
  const down = broker.out.stderr.slice(before);
  const lines = down.split('\n').filter(Boolean);
  assert.ok(lines.length <= 2, `${lines.length} lines in 5 seconds:\n${down}`);
  for (const what of [/cannot end the sessions whose support code expired/, /cannot read the webhook deliveries that are due/]) {
    const said = lines.filter((l) => what.test(l));
    assert.equal(said.length, 1, `${what}: once:\n${down}`);
    assert.match(said[0], /level=ERROR .*the broker keeps trying/);
  }

  restore();
  await until('the broker to log that its jobs work again', () =>
    /can end the sessions whose support code expired again/.test(broker.out.stderr)
    && /can read the webhook deliveries that are due again/.test(broker.out.stderr));
});

// The broker's database cannot be read while the broker runs (a failing
// disk, a damaged file): a ticket system's request and the console are
// told the broker has a problem, in words and as JSON, not that their key
// or login is wrong; once the database is back, both work again without a
// restart, and the console without signing in again. A real broker
// process; its database files are overwritten with garbage, then put
// back.

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

test('an unreadable database answers 503 with a clear message; the signed-in console waits for it, not at the sign-in form, and comes back once it is', { timeout: 120_000 }, async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  const broker = await startBroker();
  assert.equal((await api(broker, 'POST', '/api/v1/sessions', { ticket: { id: 'INC-DBDOWN' } })).status, 201);
  const browser = await launch();
  try {
    const page = await browser.newPage();
    const errors = collectErrors(page);
    await signIn(page, broker);
    await page.getByTestId('session-row').waitFor();

    const restore = spoil(broker.dataDir);
    const down = await api(broker, 'GET', '/api/v1/sessions');
    assert.equal(down.status, 503, JSON.stringify(down.body));
    assert.equal(down.body?.error?.code, 'unavailable');
    assert.match(down.body.error.message, /The broker has a problem/);
    // The open list says it shows what it had, and keeps trying.
    await page.getByText(/Showing the last list: The broker has a problem/).waitFor({ timeout: 15_000 });
    await page.screenshot({ path: join(ARTIFACTS, 'database-down-list.png') });

    // Opened again (a reload, a new tab), the console cannot learn who is
    // signed in: it says the broker has a problem and waits for it, rather
    // than offering the sign-in form as if the technician were logged out.
    await page.reload();
    const waiting = page.getByTestId('broker-down');
    await waiting.waitFor({ timeout: 15_000 });
    await page.evaluate(() => {
      window.sawSignIn = false;
      new MutationObserver(() => {
        if (document.querySelector('[data-testid="login-username"]')) window.sawSignIn = true;
      }).observe(document.body, { childList: true, subtree: true });
    });
    const text = await waiting.innerText();
    assert.match(text, /The broker has a problem and cannot check logins right now/);
    assert.match(text, /asks the broker again every 5 seconds, and opens the page you were on as soon as it answers/);
    assert.equal(await page.getByTestId('login-username').count(), 0, 'no sign-in form');
    await page.screenshot({ path: join(ARTIFACTS, 'database-down-console.png') });
    // Asked again while the database is still unreadable, it keeps waiting.
    await page.getByTestId('broker-down-retry').click();
    await until('the check to end', () => page.getByTestId('broker-down-retry').isEnabled());
    assert.equal(await waiting.count(), 1);

    restore();
    const up = await api(broker, 'GET', '/api/v1/sessions');
    assert.equal(up.status, 200, JSON.stringify(up.body));
    // By itself, without a reload or signing in again, the list is back.
    await page.getByTestId('session-row').waitFor({ timeout: 15_000 });
    assert.match(page.url(), /#\/sessions$/);
    assert.equal(await page.evaluate(() => window.sawSignIn), false, 'the sign-in form never showed');
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

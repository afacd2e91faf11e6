// Searching recordings in the console and through the API: a supervisor
// picks days in their own time zone, the one the list shows each session's
// time in; the other filters find what the supervisor typed in the names
// they mean.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { launch } from './browser.mjs';
import { api, bin, recordShellArchive, ROOT, signIn, startBroker, startHost, startXvfb, stopAll, until } from './procs.mjs';

after(stopAll);

test('a day searched is the supervisor\'s own day, as the list shows it', { timeout: 60_000 }, async () => {
  const broker = await startBroker();
  await recordShellArchive(broker, 'INC-DAY');
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

/** The sessions of the recordings the API finds with query. */
async function found(broker, query) {
  const res = await api(broker, 'GET', `/api/v1/recordings?${new URLSearchParams(query)}`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.recordings.map((r) => r.session);
}

test('the computer filter finds the user\'s computer by its name, not by the words its report is kept in', { timeout: 60_000 }, async () => {
  const broker = await startBroker();
  const display = await startXvfb(640, 480);
  const made = await api(broker, 'POST', '/api/v1/sessions', { ticket: { id: 'INC-HOST' } });
  startHost(broker, made.body.code, display);
  const name = await until('the user\'s computer in the recording', async () =>
    (await api(broker, 'GET', '/api/v1/recordings?ticket=INC-HOST')).body.recordings[0]?.host?.hostname);

  assert.deepEqual(await found(broker, { host: name.toUpperCase() }), [made.body.id], `${name} in capitals`);
  assert.deepEqual(await found(broker, { host: name.slice(0, -1) }), [made.body.id], `part of ${name}`);
  for (const term of ['hostname', 'width', 'capture', '"', '{']) {
    if (name.toLowerCase().includes(term)) continue;
    assert.deepEqual(await found(broker, { host: term }), [], `"${term}" is not in the computer's name ${name} nor its OS`);
  }
});

test('the technician filter finds a technician\'s recordings by part of the name, in any case', { timeout: 60_000 }, async () => {
  const broker = await startBroker();
  assert.equal((await api(broker, 'POST', '/api/v1/users', { username: 'alice.ng', role: 'technician', password: 'alice-password-12' })).status, 201);
  const made = await api(broker, 'POST', '/api/v1/sessions', { ticket: { id: 'INC-ALICE' }, technician: 'alice.ng' });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  execFileSync(bin('shellrec'), ['-data', broker.dataDir, '-session', made.body.id]);

  for (const technician of ['alice.ng', 'Alice', 'ALICE.NG', 'ng']) {
    assert.deepEqual(await found(broker, { technician }), [made.body.id], `technician=${technician}`);
  }
  assert.deepEqual(await found(broker, { technician: 'bob' }), []);
  assert.deepEqual(await found(broker, { technician: '_' }), [], 'an underscore is a character, not a wildcard');
});

test('what one person searched for is not shown to the next to sign in on the tab', { timeout: 60_000 }, async () => {
  const broker = await startBroker();
  assert.equal((await api(broker, 'POST', '/api/v1/users', { username: 'sue', role: 'supervisor', password: 'sue-password-12' })).status, 201);
  const browser = await launch();
  try {
    const page = await browser.newPage();
    await signIn(page, broker, '/#/recordings');
    await page.getByTestId('filter-ticket').fill('INC-4711-HR-complaint');
    await page.getByTestId('filter-ticket').press('Enter');
    await until('the search kept for the tab', () => page.evaluate(() => sessionStorage.getItem('tether.recordings.filter')?.includes('INC-4711')));
    // The admin signs out, and sue signs in on the same tab.
    await page.getByTestId('logout').click();
    await page.getByTestId('login-username').fill('sue');
    await page.getByTestId('login-password').fill('sue-password-12');
    await page.getByTestId('login-submit').click();
    await page.getByTestId('logout').waitFor();
    await page.goto(broker.url + '/#/recordings');
    await page.getByTestId('filter-ticket').waitFor();
    assert.equal(await page.getByTestId('filter-ticket').inputValue(), '', 'the admin\u2019s search shown to sue');
  } finally {
    await browser.close();
  }
});

test('each recording row has a link, named for the recording, that Enter opens', { timeout: 60_000 }, async () => {
  const broker = await startBroker();
  const s = await recordShellArchive(broker, 'INC-KEYS');
  const browser = await launch({ viewport: { width: 1440, height: 900 } });
  try {
    const page = await browser.newPage();
    await signIn(page, broker, '/#/recordings');
    const row = page.getByTestId('recording-row');
    await row.waitFor();
    const when = await row.locator('td').first().locator('.host-name').textContent();
    // The next Tab stop after the search is the row's link, and the row is
    // not a stop of its own.
    await page.getByTestId('filter-submit').focus();
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => {
      const el = document.activeElement;
      return { tag: el.tagName, href: el.getAttribute('href'), name: el.getAttribute('aria-label'), row: el.closest('[data-testid="recording-row"]')?.dataset.sessionId };
    });
    assert.deepEqual(focused, { tag: 'A', href: `#/recording/${s.id}`, name: `Play recording of INC-KEYS, ${when}`, row: s.id });
    assert.equal(await page.getByRole('link', { name: `Play recording of INC-KEYS, ${when}` }).count(), 1);
    assert.equal(await row.getAttribute('tabindex'), null);
    await page.keyboard.press('Enter');
    await page.waitForFunction((id) => location.hash === `#/recording/${id}`, s.id);
    await page.waitForFunction(() => window.tether.player?.ready === true);
    // A click on the row, not on its link, opens it too.
    await page.goBack();
    await row.locator('td').nth(1).click();
    await page.waitForFunction((id) => location.hash === `#/recording/${id}`, s.id);
  } finally {
    await browser.close();
  }
});

for (const width of [800, 1100, 1440]) {
  test(`at ${width} px every column of the recordings list fits its card`, { timeout: 60_000 }, async () => {
    const broker = await startBroker();
    await recordShellArchive(broker, 'INC-4711 printer in the Frankfurt branch office');
    // A live one: its Watch live is wider than Play.
    const display = await startXvfb(640, 480);
    const live = await api(broker, 'POST', '/api/v1/sessions', { ticket: { id: 'INC-LIVE' } });
    startHost(broker, live.body.code, display);
    const browser = await launch({ viewport: { width, height: 900 } });
    try {
      const page = await browser.newPage();
      await signIn(page, broker, '/#/recordings');
      await until('two recordings, one live', async () => (await page.getByTestId('recording-row').count()) === 2 && (await page.getByTestId('watch-live').count()) === 1, 30_000);
      await page.mouse.move(0, 0);
      mkdirSync(join(ROOT, 'artifacts'), { recursive: true });
      await page.screenshot({ path: join(ROOT, 'artifacts', `recordings-${width}.png`), fullPage: true });
      const m = await page.evaluate(() => {
        const card = document.querySelector('[data-testid="recordings-results"]');
        const right = Math.max(...[...document.querySelectorAll('[data-testid="recordings-table"] th, [data-testid="recordings-table"] td, [data-testid="recording-row"] .col-action a')]
          .filter((el) => el.getClientRects().length).map((el) => el.getBoundingClientRect().right));
        return { cardRight: card.getBoundingClientRect().right, right, overflow: card.scrollWidth - card.clientWidth, page: document.documentElement.scrollWidth - innerWidth };
      });
      assert.ok(m.right <= m.cardRight + 0.5 && m.overflow <= 0 && m.page <= 0,
        `the columns end at ${m.right} px, the card at ${m.cardRight} px; the table is ${m.overflow} px wider than its card, the page ${m.page} px wider than the window`);
      for (const a of await page.locator('[data-testid="recording-row"] .col-action a').all()) assert.ok(await a.isVisible());
    } finally {
      await browser.close();
    }
  });
}

test('a supervisor reaches the recordings older than the newest hundred, with the same filters', { timeout: 120_000 }, async () => {
  const broker = await startBroker();
  // One that the ticket filter leaves out, the oldest of all: a second page
  // asked for without the filter would show it.
  const other = await recordShellArchive(broker, 'INC-OTHER');
  await api(broker, 'POST', `/api/v1/sessions/${other.id}/end`, {});
  // 101 that match, a dozen at a time: shellrec mostly waits. A
  // technician may have only so many codes waiting: each session is ended.
  for (let i = 0; i < 101; i += 12) {
    await Promise.all(Array.from({ length: Math.min(12, 101 - i) }, async (_, k) => {
      const s = (await api(broker, 'POST', '/api/v1/sessions', { ticket: { id: `INC-PAGE-${i + k}` } })).body;
      await promisify(execFile)(bin('shellrec'), ['-data', broker.dataDir, '-session', s.id]);
      const ended = await api(broker, 'POST', `/api/v1/sessions/${s.id}/end`, {});
      assert.equal(ended.status, 200, JSON.stringify(ended.body));
    }));
  }
  const first = (await api(broker, 'GET', '/api/v1/recordings?ticket=INC-PAGE')).body;
  assert.equal(first.recordings.length, 100);
  assert.equal(first.more, true);
  const oldest = (await api(broker, 'GET', `/api/v1/recordings?ticket=INC-PAGE&after=${first.recordings.at(-1).session}`)).body.recordings;
  assert.equal(oldest.length, 1);

  const browser = await launch({ viewport: { width: 1440, height: 900 } });
  try {
    const page = await browser.newPage();
    await signIn(page, broker, '/#/recordings');
    await page.getByTestId('filter-ticket').fill('INC-PAGE');
    await page.getByTestId('filter-submit').click();
    const rows = page.getByTestId('recording-row');
    await until('the newest hundred', async () => (await rows.count()) === 100 && !(await page.locator(`[data-session-id="${other.id}"]`).count()));
    const count = page.getByTestId('recordings-count');
    assert.equal(await count.textContent(), 'The newest 100 recordings; older ones match too');
    assert.equal(await page.locator(`[data-testid="recording-row"][data-session-id="${oldest[0].session}"]`).count(), 0);
    const older = page.getByRole('button', { name: 'Show older recordings' });
    await older.scrollIntoViewIfNeeded();
    mkdirSync(join(ROOT, 'artifacts'), { recursive: true });
    await page.screenshot({ path: join(ROOT, 'artifacts', 'recordings-older.png') });
    await older.click();
    await until('the 101st', async () => (await rows.count()) === 101);
    assert.equal(await rows.last().getAttribute('data-session-id'), oldest[0].session);
    assert.equal(await page.locator(`[data-session-id="${other.id}"]`).count(), 0, 'the older page dropped the ticket filter');
    assert.equal(await count.textContent(), '101 recordings');
    assert.equal(await older.count(), 0, 'the button stays when nothing older matches');
    // Focus goes on to the row it brought, not to the top of the page.
    assert.equal(await page.evaluate(() => document.activeElement?.closest('[data-testid="recording-row"]')?.dataset.sessionId), oldest[0].session);
  } finally {
    await browser.close();
  }
});

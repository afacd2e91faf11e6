// What the console shows when the user revokes a permission on their own
// terminal while the technician uses it: a real broker, a real host on
// Xvfb answering and revoking through its terminal, and headless Chromium.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { collectErrors, launch } from './browser.mjs';
import { api, ROOT, signIn, startBroker, startHost, startXvfb, stopAll, tempDir, until } from './procs.mjs';

after(stopAll);

const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');
const artifacts = join(ROOT, 'artifacts');
mkdirSync(artifacts, { recursive: true });
let display;
before(async () => { display = await startXvfb(1280, 720); });

/**
 * Writes data to a file named name in a folder of its own, removed once
 * the tests end, and returns its path: the console's uploads pick it from
 * disk, as a technician does (handed to the page as a buffer, 40 MB take
 * the test driver 20 s to pass).
 */
function pickFile(name, data) {
  const dir = tempDir('tether-pick-');
  writeFileSync(join(dir, name), data);
  return join(dir, name);
}

const prompts = (host) => host.out.stdout.split('Allow? ').length - 1;

/** Waits for the host's question number n (from 1) and allows all it asks. */
async function allowOnHost(host, n) {
  await until(`the host\u2019s question ${n}`, () => prompts(host) >= n, 30_000);
  host.type('all');
}

/**
 * A live session that asks for view and perms, with the user answering the
 * host's questions through host.type; returns the page and the host.
 */
async function liveSession(t, perms, hostArgs = []) {
  const broker = await startBroker();
  const created = await api(broker, 'POST', '/api/v1/sessions', { ticket: { id: 'INC-REVOKE' }, permissions: ['view', ...perms] });
  assert.equal(created.status, 201);
  const browser = await launch({ viewport: { width: 1440, height: 900 } });
  t.after(() => browser.close());
  const page = await browser.newPage();
  const pageErrors = collectErrors(page);
  await signIn(page, broker, `/#/session/${created.body.id}`);
  await page.locator('#conn-state[data-state="waiting"]').waitFor({ timeout: 15_000 });
  const host = startHost(broker, created.body.code, display, { answer: null, args: hostArgs });
  await host.ready;
  await allowOnHost(host, 1);
  await page.locator('#conn-state[data-state="live"]').waitFor({ timeout: 30_000 });
  await page.waitForFunction((n) => window.tether.permissions.granted.length === n, perms.length + 1);
  return { broker, sessionId: created.body.id, page, host, pageErrors };
}

test('a shell the host closes for a revoke says so, whichever word comes first', { timeout: 120_000 }, async (t) => {
  const { broker, sessionId, page, host, pageErrors } = await liveSession(t, ['shell']);
  const byId = (id) => page.getByTestId(id);
  const tab = (state) => page.locator(`[data-testid="shell-tab-1"][data-state="${state}"]`);
  const status = () => byId('shell-view-1').getByTestId('shell-status').locator('.shell-status-note').innerText();
  const terminal = () => byId('shell-view-1').locator('.xterm-rows').innerText();
  // A closed tab's number is used again, so every shell here is shell 1.
  const typeInShell = async (line) => {
    await byId('shell-view-1').locator('.xterm-screen').click();
    await page.keyboard.type(line + '\n');
  };
  let asked = 1;
  // The closed tab stays on show: the technician asks again with the
  // shell chip of the permission bar.
  const allowAgain = async () => {
    await page.locator('[data-testid="perm-chip"][data-perm="shell"]').click();
    await allowOnHost(host, ++asked);
    await page.waitForFunction(() => window.tether.permissions.granted.includes('shell'));
    await byId('shell-new').click();
    await tab('open').waitFor();
  };

  await byId('shell-open').click();
  await tab('open').waitFor({ timeout: 15_000 });
  // A job left running in the shell: the revoke ends it too.
  await typeInShell('sleep 600 & echo "job=$!"');
  const job = Number((await until('the job\u2019s pid', async () => (await terminal()).match(/job=(\d+)/)))[1]);
  assert.doesNotThrow(() => process.kill(job, 0), 'the job runs');

  // The user revokes on their terminal, twice: the host closes the shell
  // and the broker passes the revoke on, in whichever order they arrive;
  // either way the console says why the shell closed, and keeps saying it.
  for (let round = 1; round <= 2; round++) {
    if (round > 1) await allowAgain();
    host.type('revoke shell');
    await tab('closed').waitFor({ timeout: 10_000 });
    await page.waitForFunction(() => !window.tether.permissions.granted.includes('shell'));
    await page.waitForTimeout(500);
    assert.equal(await status(), 'Closed: the user revoked access to Terminal.', `round ${round}`);
  }
  await until('the job to end', () => {
    try { process.kill(job, 0); return false; } catch { return true; }
  }, 10_000);

  // A shell that ends by itself keeps its own words: no revoke is claimed.
  await allowAgain();
  await typeInShell('exit 3');
  await tab('closed').waitFor({ timeout: 10_000 });
  assert.equal(await status(), 'This terminal ended with exit code 3.');
  await page.waitForTimeout(500);
  assert.equal(await status(), 'This terminal ended with exit code 3.');
  assert.ok((await page.evaluate(() => window.tether.permissions.granted)).includes('shell'), 'shell access is still allowed');

  // The broker's trail has both revokes.
  const { events } = (await api(broker, 'GET', `/api/v1/sessions/${sessionId}/events`)).body;
  const revokes = events.filter((e) => e.type === 'consent.changed' && /revoked shell/.test(JSON.stringify(e.detail)));
  assert.equal(revokes.length, 2, JSON.stringify(events.map((e) => [e.type, e.detail])));
  assert.deepEqual(pageErrors.map(String), []);
});

test('a download the user revokes and allows again at once resumes where it stopped', { timeout: 120_000 }, async (t) => {
  // The host's file root is the user's home folder; this one is made up.
  const home = tempDir('tether-home-');
  const data = randomBytes(40 * 1024 * 1024);
  writeFileSync(join(home, 'app.log'), data);
  // -v: the host's log says where each send started.
  const { page, host, pageErrors } = await liveSession(t, ['files'], ['-v', '-files-root', home, '-files-inbox', join(home, 'in')]);
  const byId = (id) => page.getByTestId(id);

  await byId('files-open').click();
  const entry = page.locator('[data-testid="files-entry"][data-name="app.log"]');
  await entry.waitFor({ timeout: 15_000 });
  const download = page.waitForEvent('download', { timeout: 90_000 });
  download.catch(() => {}); // a failure below is the one to report
  await entry.click();
  const row = page.locator('[data-testid="transfer"][data-name="app.log"]');
  const percent = async () => Number(await row.locator('[role="progressbar"]').getAttribute('aria-valuenow'));
  await until('the download to get going', async () => (await percent()) >= 1, 30_000);

  // The user revokes file transfer mid-download: it stops and says why.
  host.type('revoke files');
  await page.locator('[data-testid="transfer"][data-name="app.log"][data-state="interrupted"]').waitFor({ timeout: 10_000 });
  const stoppedAt = await percent();
  assert.ok(stoppedAt > 0 && stoppedAt < 100, `stopped at ${stoppedAt}%`);
  assert.match(await row.innerText(), /Stopped at .*the user no longer allows Files; resumes if they allow it again/);

  // The technician asks again at once and the user allows it: the same
  // transfer goes on from where it stopped.
  await byId('files-request').click();
  await allowOnHost(host, 2);
  await page.locator('[data-testid="transfer"][data-name="app.log"][data-state="done"]').waitFor({ timeout: 60_000 });
  assert.match(await row.innerText(), /SHA-256 verified/);
  assert.equal(await row.count(), 1, 'one transfer, not a new one');
  const saved = readFileSync(await (await download).path());
  assert.equal(sha256(saved), sha256(data), 'the saved file is the user\u2019s file');

  // The host sent the file twice: from the start, then from where the
  // console had it (what was in flight at the revoke is sent again).
  const offsets = [...host.out.stdout.matchAll(/msg="sending a file".*? resume_at=(\d+)/g)].map((m) => Number(m[1]));
  assert.equal(offsets.length, 2, `sends: ${offsets}`);
  assert.equal(offsets[0], 0);
  const resumedAt = Math.floor((offsets[1] / data.length) * 100);
  assert.ok(offsets[1] > 0 && Math.abs(resumedAt - stoppedAt) <= 1, `resumed at ${offsets[1]} bytes (${resumedAt}%), stopped at ${stoppedAt}%`);
  assert.deepEqual(pageErrors.map(String), []);
});

test('an upload the user revokes says the part sent was removed, and starts again once allowed', { timeout: 120_000 }, async (t) => {
  const home = tempDir('tether-home-');
  const inbox = join(home, 'in');
  const { page, host, pageErrors } = await liveSession(t, ['files'], ['-files-root', home, '-files-inbox', inbox]);
  const byId = (id) => page.getByTestId(id);

  await byId('files-open').click();
  const data = randomBytes(40 * 1024 * 1024);
  await byId('files-input').setInputFiles(pickFile('tool.bin', data));
  const row = page.locator('[data-testid="transfer"][data-name="tool.bin"]');
  const percent = async () => Number(await row.locator('[role="progressbar"]').getAttribute('aria-valuenow'));
  await until('the upload to get going', async () => (await percent()) >= 1, 30_000);

  // The user takes Files back: the host removes what it received, and the
  // console does not promise to resume what is gone.
  host.type('revoke files');
  await page.locator('[data-testid="transfer"][data-name="tool.bin"][data-state="interrupted"]').waitFor({ timeout: 10_000 });
  assert.match(await row.innerText(), /Stopped at .*the user no longer allows Files, and the part sent was removed from their computer; starts again if they allow it again/);
  await until('the partial upload to be removed', () => !readdirSync(inbox).some((n) => n !== 'tool.bin'), 10_000);

  // Allowed again, the file goes whole.
  await byId('files-request').click();
  await allowOnHost(host, 2);
  await page.locator('[data-testid="transfer"][data-name="tool.bin"][data-state="done"]').waitFor({ timeout: 60_000 });
  assert.equal(sha256(readFileSync(join(inbox, 'tool.bin'))), sha256(data));
  assert.deepEqual(pageErrors.map(String), []);
});

test('an upload the user pauses says so, and carries on from where it stopped once they resume', { timeout: 120_000 }, async (t) => {
  const home = tempDir('tether-home-');
  const inbox = join(home, 'in');
  // -v: the host's log says where each upload started.
  const { page, host, pageErrors } = await liveSession(t, ['files'], ['-v', '-files-root', home, '-files-inbox', inbox]);
  const byId = (id) => page.getByTestId(id);

  await byId('files-open').click();
  // Large enough to pause half way.
  const data = randomBytes(40 * 1024 * 1024);
  await byId('files-input').setInputFiles(pickFile('setup.bin', data));
  const row = page.locator('[data-testid="transfer"][data-name="setup.bin"]');
  const percent = async () => Number(await row.locator('[role="progressbar"]').getAttribute('aria-valuenow'));
  // A tenth of the way, so that the pause lands well before the end
  // however fast the upload goes.
  await until('the upload to be a tenth of the way', async () => (await percent()) >= 10, 60_000);

  // The user pauses part way: the part sent stays on their computer, and
  // the panel says the upload goes on once they resume.
  host.type('pause');
  await page.locator('[data-testid="transfer"][data-name="setup.bin"][data-state="interrupted"]').waitFor({ timeout: 10_000 });
  const stoppedAt = await percent();
  assert.ok(stoppedAt > 0 && stoppedAt < 100, `stopped at ${stoppedAt}%`);
  assert.match(await row.innerText(), /Stopped at [\d.]+ MiB: the user paused the session; the upload carries on from where it stopped once they resume/);
  assert.doesNotMatch(await row.innerText(), /removed|no longer allows/);
  assert.equal(readdirSync(inbox).length, 1, 'the part sent is kept on the user\u2019s computer');
  // The panel says why Files cannot be used meanwhile, and asks nothing.
  assert.match(await byId('files-empty').innerText(), /The user paused the session/);
  assert.equal(await byId('files-empty').getByTestId('files-request').count(), 0, 'no asking for what the user already allowed');
  await page.screenshot({ path: join(artifacts, 'console-files-paused.png') });

  // The user resumes: the same upload goes on by itself, from where it
  // stopped, and the file arrives whole.
  host.type('resume');
  await page.locator('[data-testid="transfer"][data-name="setup.bin"][data-state="done"]').waitFor({ timeout: 60_000 });
  assert.equal(await row.count(), 1, 'one transfer, not a new one');
  assert.equal(sha256(readFileSync(join(inbox, 'setup.bin'))), sha256(data));
  await page.screenshot({ path: join(artifacts, 'console-files-paused-resumed.png') });
  const offsets = [...host.out.stdout.matchAll(/msg="receiving a file".*? resume_at=(\d+)/g)].map((m) => Number(m[1]));
  assert.equal(offsets.length, 2, `uploads: ${offsets}`);
  assert.equal(offsets[0], 0);
  const resumedAt = Math.floor((offsets[1] / data.length) * 100);
  assert.ok(offsets[1] > 0 && resumedAt <= stoppedAt, `resumed at ${offsets[1]} bytes (${resumedAt}%), stopped at ${stoppedAt}%`);
  assert.deepEqual(pageErrors.map(String), []);
});

// Transfers the Files panel cannot finish as planned: the user's computer
// stops part way, a transfer is cancelled early, the session ends under
// one. A real broker, a real host on Xvfb sharing a temporary folder, and
// headless Chromium; the files are sparse (made at once, no disk used).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { collectErrors, launch } from './browser.mjs';
import { openSession, ROOT, startBroker, startHost, startXvfb, stopAll, tempDir, until } from './procs.mjs';

after(stopAll);

const artifacts = join(ROOT, 'artifacts');
mkdirSync(artifacts, { recursive: true });
const MB = 1024 * 1024;
let display;
before(async () => { display = await startXvfb(640, 480); });

/** A sparse file of size bytes at path: made at once, reads as zeros. */
function sparse(path, size) {
  execFileSync('truncate', ['-s', String(size), path]);
  return path;
}

/**
 * A live session whose user shares home and allows Files, with the panel
 * open on home; returns the page and the host.
 */
async function filesSession(t, home, ticket) {
  const broker = await startBroker();
  const browser = await launch({ viewport: { width: 1440, height: 900 } });
  t.after(() => browser.close());
  const page = await browser.newPage();
  const pageErrors = collectErrors(page);
  const code = await openSession(page, broker, ticket);
  const host = startHost(broker, code, display, { args: ['-files-root', home, '-files-inbox', join(home, 'Downloads', 'Tether')] });
  await host.ready;
  await page.waitForSelector('[data-testid="conn-state"][data-state="live"]', { timeout: 30_000 });
  await page.getByTestId('files-open').click();
  await page.getByTestId('files-request').click();
  await page.locator('[data-testid="files-entry"]').first().waitFor({ timeout: 30_000 });
  return { page, host, pageErrors };
}

const row = (page, name) => page.locator(`[data-testid="transfer"][data-name="${name}"]`);

/** What the transfer's row shows: its state, its note, its bar, whether it offers Cancel. */
const shown = (page, name) => row(page, name).evaluate((el) => ({
  state: el.dataset.state,
  note: el.querySelector('.transfer-note').textContent,
  percent: Number(el.querySelector('[role="progressbar"]').getAttribute('aria-valuenow')),
  cancel: !el.querySelector('[data-testid="transfer-cancel"]').hidden,
}));

/** Waits for the transfer to be in one of states; fails saying what it shows instead. */
async function waitState(page, name, states, timeoutMs = 15_000) {
  let last;
  await until(() => `${name} to be ${states.join(' or ')}; it shows ${JSON.stringify(last)}`, async () => {
    last = await shown(page, name).catch(() => null);
    return last && states.includes(last.state);
  }, timeoutMs);
  return last;
}

test('a download the user\u2019s computer stops part way fails at once with its reason, and the panel goes on', { timeout: 120_000 }, async (t) => {
  const home = tempDir('tether-home-');
  mkdirSync(join(home, 'docs'));
  writeFileSync(join(home, 'docs', 'notes.txt'), 'hello');
  const mailbox = sparse(join(home, 'mailbox.pst'), 256 * MB);
  const { page, pageErrors } = await filesSession(t, home, 'INC-SHRUNK');
  let downloads = 0;
  page.on('download', () => { downloads++; });

  await page.locator('[data-testid="files-entry"][data-name="mailbox.pst"]').click();
  await waitState(page, 'mailbox.pst', ['running']);
  await page.waitForFunction(() => Number(document.querySelector('[data-testid="transfer"][data-name="mailbox.pst"] [role="progressbar"]').getAttribute('aria-valuenow')) >= 1);
  // The user's mail program compacts the file while it is being sent.
  truncateSync(mailbox, MB);
  const after = await waitState(page, 'mailbox.pst', ['failed', 'done', 'cancelled']);
  assert.equal(after.state, 'failed');
  assert.match(after.note, /^Reading mailbox\.pst failed \(did it change\?\)/);
  assert.ok(after.percent < 100, `the bar shows ${after.percent} %`);
  assert.equal(after.cancel, false, 'nothing left to cancel');
  await page.screenshot({ path: join(artifacts, 'console-files-shrunk.png') });

  // The panel is free again: a folder opens.
  await page.locator('[data-testid="files-entry"][data-name="docs"]').click();
  await page.locator('[data-testid="files-entry"][data-name="notes.txt"]').waitFor({ timeout: 10_000 });
  assert.equal(downloads, 0, 'nothing was saved');
  assert.deepEqual(pageErrors, []);
});

test('cancelling a file while its SHA-256 is computed lets the next one in the queue run', { timeout: 120_000 }, async (t) => {
  const home = tempDir('tether-home-');
  const inbox = join(home, 'Downloads', 'Tether');
  writeFileSync(join(home, 'notes.txt'), 'hello');
  const picked = tempDir('tether-pick-');
  // Large enough that computing its SHA-256 takes a moment.
  sparse(join(picked, 'install.iso'), 1024 * MB);
  writeFileSync(join(picked, 'second.txt'), 'second');
  const { page, pageErrors } = await filesSession(t, home, 'INC-HASHING');

  await page.getByTestId('files-input').setInputFiles([join(picked, 'install.iso'), join(picked, 'second.txt')]);
  const hashing = await waitState(page, 'install.iso', ['hashing', 'running', 'done']);
  assert.equal(hashing.state, 'hashing', 'the cancel comes while the SHA-256 is computed');
  assert.equal(hashing.note, 'Computing SHA-256\u2026');
  await row(page, 'install.iso').getByTestId('transfer-cancel').click();

  const second = await waitState(page, 'second.txt', ['done', 'failed', 'cancelled'], 30_000);
  assert.equal(second.state, 'done', second.note);
  assert.equal(readFileSync(join(inbox, 'second.txt'), 'utf8'), 'second');
  const first = await shown(page, 'install.iso');
  assert.equal(first.state, 'cancelled');
  assert.equal(first.note, 'Cancelled');
  assert.equal(existsSync(join(inbox, 'install.iso')), false);
  await page.screenshot({ path: join(artifacts, 'console-files-cancel-hashing.png') });
  assert.deepEqual(pageErrors, []);
});

test('an upload the user\u2019s computer cannot write stops at once and says why', { timeout: 120_000 }, async (t) => {
  const home = tempDir('tether-home-');
  const inbox = join(home, 'Downloads', 'Tether');
  writeFileSync(join(home, 'notes.txt'), 'hello');
  const backup = sparse(join(tempDir('tether-pick-'), 'backup.tar'), 64 * MB);
  const { page, host, pageErrors } = await filesSession(t, home, 'INC-NOWRITE');
  // The user's computer takes no file over 8 MB (as a quota or a FAT
  // drive would refuse more): writing the upload fails part way.
  execFileSync('prlimit', ['--pid', String(host.pid()), `--fsize=${8 * MB}`]);
  // Every state the row goes through, as the technician would see it.
  await page.evaluate(() => {
    window.seenStates = [];
    new MutationObserver(() => {
      const state = document.querySelector('[data-testid="transfer"][data-name="backup.tar"]')?.dataset.state;
      if (state && state !== window.seenStates.at(-1)) window.seenStates.push(state);
    }).observe(document.querySelector('[data-testid="transfers"]'), { subtree: true, childList: true, attributes: true });
  });

  await page.getByTestId('files-input').setInputFiles(backup);
  const after = await waitState(page, 'backup.tar', ['failed', 'done'], 60_000);
  assert.equal(after.state, 'failed');
  assert.match(after.note, /^Writing backup\.tar failed: .*file too large/);
  assert.ok(after.percent < 50, `the bar climbed to ${after.percent} % after the user's computer had stopped`);
  const seen = await page.evaluate(() => window.seenStates);
  assert.equal(seen.includes('verifying'), false, `the row went through ${seen.join(', ')}`);
  assert.deepEqual(existsSync(inbox) ? readdirSync(inbox) : [], [], 'nothing half written stays');
  await page.screenshot({ path: join(artifacts, 'console-files-write-failed.png') });
  assert.deepEqual(pageErrors, []);
});

test('an upload\u2019s bar shows what the user\u2019s computer has, not what was sent', { timeout: 120_000 }, async (t) => {
  const home = tempDir('tether-home-');
  const inbox = join(home, 'Downloads', 'Tether');
  writeFileSync(join(home, 'notes.txt'), 'hello');
  const tool = sparse(join(tempDir('tether-pick-'), 'tool.iso'), 24 * MB);
  const { page, host, pageErrors } = await filesSession(t, home, 'INC-PROGRESS');
  await page.getByTestId('files-input').setInputFiles(tool);
  await waitState(page, 'tool.iso', ['running']);
  // The user's computer freezes: what the page sends waits in the buffers
  // on the way (megabytes), and has not arrived.
  host.signal('SIGSTOP');
  t.after(() => { try { host.signal('SIGCONT'); } catch {} });
  await new Promise((r) => setTimeout(r, 3000));
  const frozen = await shown(page, 'tool.iso');
  const written = readdirSync(inbox).reduce((n, f) => n + statSync(join(inbox, f)).size, 0);
  assert.ok(frozen.percent <= Math.ceil((written / (24 * MB)) * 100),
    `with the user's computer frozen holding ${written} bytes, the bar says ${frozen.percent} %`);
  host.signal('SIGCONT');
  const after = await waitState(page, 'tool.iso', ['done', 'failed'], 60_000);
  assert.equal(after.state, 'done', after.note);
  assert.equal(after.percent, 100);
  assert.deepEqual(pageErrors, []);
});

test('a transfer under way when the session ends says the session ended', { timeout: 120_000 }, async (t) => {
  const home = tempDir('tether-home-');
  sparse(join(home, 'mailbox.pst'), 256 * MB);
  const { page, pageErrors } = await filesSession(t, home, 'INC-ENDED');

  await page.locator('[data-testid="files-entry"][data-name="mailbox.pst"]').click();
  await waitState(page, 'mailbox.pst', ['running']);
  await page.getByTestId('end-session').click();
  await page.getByTestId('confirm-ok').click();
  await page.getByTestId('session-ended').waitFor();
  const after = await waitState(page, 'mailbox.pst', ['interrupted', 'ended', 'failed', 'cancelled', 'done']);
  assert.match(after.note, /^Stopped at [\d.]+ [KMG]iB: the session ended$/);
  assert.equal(after.cancel, false, 'nothing left to cancel');
  // The panel says so too, and offers no question for a user who is gone.
  const panel = await page.getByTestId('files-panel').innerText();
  assert.match(panel, /The session ended\n/);
  assert.doesNotMatch(panel, /has not allowed|Ask to use/);
  await page.screenshot({ path: join(artifacts, 'console-files-session-ended.png') });
  await page.getByTestId('shell-open').click();
  const terminal = await page.getByTestId('shell-panel').innerText();
  assert.match(terminal, /The session ended\n/);
  assert.doesNotMatch(terminal, /has not allowed|Ask to use/);
  assert.deepEqual(pageErrors, []);
});

test('the folders can be browsed while a file is on its way', { timeout: 120_000 }, async (t) => {
  const home = tempDir('tether-home-');
  mkdirSync(join(home, 'logs'));
  writeFileSync(join(home, 'logs', 'setup.log'), 'installed');
  sparse(join(home, 'mailbox.pst'), 1024 * MB);
  const { page, pageErrors } = await filesSession(t, home, 'INC-BROWSE');

  await page.locator('[data-testid="files-entry"][data-name="mailbox.pst"]').click();
  await waitState(page, 'mailbox.pst', ['running']);
  const asked = Date.now();
  await page.locator('[data-testid="files-entry"][data-name="logs"]').click();
  await page.locator('[data-testid="files-entry"][data-name="setup.log"]').waitFor({ timeout: 5_000 });
  t.diagnostic(`the folder opened in ${Date.now() - asked} ms with a download under way`);
  const during = await shown(page, 'mailbox.pst');
  assert.equal(during.state, 'running', 'the download is still on its way');
  assert.ok(during.percent < 100, `the bar shows ${during.percent} %`);
  // And back up, by the path above the list.
  await page.getByTestId('files-crumbs').getByRole('button', { name: 'Home' }).click();
  await page.locator('[data-testid="files-entry"][data-name="mailbox.pst"]').waitFor({ timeout: 5_000 });
  assert.equal((await shown(page, 'mailbox.pst')).state, 'running');
  await page.screenshot({ path: join(artifacts, 'console-files-browse-during-transfer.png') });
  await row(page, 'mailbox.pst').getByTestId('transfer-cancel').click();
  await waitState(page, 'mailbox.pst', ['cancelled']);
  assert.deepEqual(pageErrors, []);
});

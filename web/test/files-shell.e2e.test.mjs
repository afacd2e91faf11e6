// File transfer and the remote shell through the real console: a real
// broker, a real host on Xvfb with its shared folder and inbox in a
// temporary directory, and headless Chromium driving the Files and
// Terminal panels.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { collectErrors, launch } from './browser.mjs';
import { openSession, ROOT, startBroker, startHost, startXvfb, stopAll, tempDir } from './procs.mjs';

after(stopAll);

const artifacts = join(ROOT, 'artifacts');
mkdirSync(artifacts, { recursive: true });
const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

// termText returns what shell tab n shows.
const termText = (page, n) => page.getByTestId(`shell-view-${n}`).locator('.xterm-rows').innerText();

async function waitTerm(page, n, re, timeout = 15_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const text = await termText(page, n);
    const m = text.match(re);
    if (m) return m;
    if (Date.now() > deadline) throw new Error(`terminal ${n} never showed ${re}:\n${text}`);
    await page.waitForTimeout(100);
  }
}

test('files and shell from the console', { timeout: 180_000 }, async () => {
  const home = tempDir('tether-home-');
  const inbox = join(home, 'Downloads', 'Tether');
  const report = randomBytes(3 * 1024 * 1024 + 17);
  writeFileSync(join(home, 'report.log'), report);
  mkdirSync(join(home, 'docs'));
  writeFileSync(join(home, 'docs', 'notes.txt'), 'hello');
  symlinkSync('/etc', join(home, 'escape'));
  execFileSync('mkfifo', [join(home, 'pipe')]);
  execFileSync('truncate', ['-s', String(3 * 1024 ** 3), join(home, 'backup image.img')]); // sparse: no disk used

  const display = await startXvfb(640, 480);
  const broker = await startBroker();
  const browser = await launch({ viewport: { width: 1440, height: 900 } });
  try {
    const page = await browser.newPage();
    const pageErrors = collectErrors(page);
    const code = await openSession(page, broker, 'INC-FILES');
    const host = startHost(broker, code, display, { args: ['-files-root', home, '-files-inbox', inbox, '-max-file-size', '6MiB'] });
    await host.ready;
    await page.waitForSelector('[data-testid="conn-state"][data-state="live"]', { timeout: 30_000 });

    // Files: not allowed yet; ask, the user allows, the home folder shows.
    await page.getByTestId('files-open').click();
    await page.getByTestId('files-request').click();
    await page.locator('[data-testid="files-entry"][data-name="report.log"]').waitFor({ timeout: 30_000 });
    const kinds = await page.getByTestId('files-entry').evaluateAll((els) => Object.fromEntries(els.map((e) => [e.dataset.name, e.dataset.kind])));
    assert.equal(kinds.docs, 'dir');
    assert.equal(kinds.pipe, 'special');
    assert.equal(kinds.escape, 'link');

    // Download, verified by SHA-256 in the browser.
    const [dl] = await Promise.all([
      page.waitForEvent('download'),
      page.locator('[data-testid="files-entry"][data-name="report.log"]').click(),
    ]);
    const saved = await dl.path();
    assert.equal(sha256(readFileSync(saved)), sha256(report), 'downloaded bytes differ');
    await page.locator('[data-testid="transfer"][data-name="report.log"][data-state="done"]').waitFor();
    assert.match(await page.locator('[data-testid="transfer"][data-name="report.log"]').innerText(), /SHA-256 verified/);

    // Into a folder and back.
    await page.locator('[data-testid="files-entry"][data-name="docs"]').click();
    await page.locator('[data-testid="files-entry"][data-name="notes.txt"]').waitFor();
    await page.getByTestId('files-up').click();
    // A link out of the shared folder is refused with a reason.
    await page.locator('[data-testid="files-entry"][data-name="escape"]').waitFor();
    await page.locator('[data-testid="files-entry"][data-name="escape"]').click();
    const refused = page.locator('[data-testid="transfer"][data-name="escape"][data-state="failed"]');
    await refused.waitFor();
    assert.match(await refused.innerText(), /outside the shared folder/);

    // Upload through the file picker.
    const payload = randomBytes(5 * 1024 * 1024 + 3);
    await page.getByTestId('files-input').setInputFiles({ name: 'tool.bin', mimeType: 'application/octet-stream', buffer: payload });
    await page.locator('[data-testid="transfer"][data-name="tool.bin"][data-state="done"]').waitFor({ timeout: 30_000 });
    assert.equal(sha256(readFileSync(join(inbox, 'tool.bin'))), sha256(payload));
    assert.match(await page.locator('[data-testid="transfer"][data-name="tool.bin"]').innerText(), /Saved as .*tool\.bin/);
    await page.screenshot({ path: join(artifacts, 'console-files.png') });

    // A name that starts with a dot (hidden, and the name of settings files
    // a shell runs), or one too long for the user's computer (150 accented
    // letters), is refused in words that say to rename it; nothing lands.
    for (const [name, says] of [['.bashrc', /".bashrc" starts with a dot.*Rename it/s], [`${'\u00e9'.repeat(150)}.txt`, /name is too long: 304 bytes, where the user.s computer allows at most 255.*Rename it/s]]) {
      await page.getByTestId('files-input').setInputFiles({ name, mimeType: 'text/plain', buffer: Buffer.from('echo hello\n') });
      const row = page.locator(`[data-testid="transfer"][data-name="${name}"][data-state="failed"]`);
      await row.waitFor();
      assert.match(await row.innerText(), says);
      assert.equal(existsSync(join(inbox, name)), false);
    }
    await page.screenshot({ path: join(artifacts, 'console-files-name-refused.png') });

    // Over the limit the user's computer announced (6 MiB here): refused
    // at once, in the units the panel uses, and nothing lands.
    await page.getByTestId('files-input').setInputFiles({ name: 'huge.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(7 * 1024 * 1024) });
    const overLimit = page.locator('[data-testid="transfer"][data-name="huge.bin"][data-state="failed"]');
    await overLimit.waitFor();
    assert.match(await overLimit.innerText(), /huge\.bin is 7 MiB: the user.s computer takes files of up to 6 MiB\./);
    assert.equal(existsSync(join(inbox, 'huge.bin')), false);

    // A file over the browser's limit (a sparse file: no disk used) is not
    // sent; the panel says what the limit is and, as a command to run, how
    // to send it instead.
    const big = join(tempDir('tether-big-'), 'disk image.iso');
    execFileSync('truncate', ['-s', String(3 * 1024 ** 3), big]);
    await page.getByTestId('files-input').setInputFiles(big);
    const tooLarge = page.locator('[data-testid="transfer"][data-name="disk image.iso"][data-state="too-large"]');
    await tooLarge.waitFor();
    assert.equal(await tooLarge.getByTestId('transfer-too-large').innerText(),
      'This file was not sent. The console can send files of up to 2 GiB, and this one is 3 GiB. '
      + 'To send it, use viewer, Tether\u2019s command-line program for technicians: run this command in a terminal on your computer, in the folder that holds the file.');
    const session = await page.evaluate(() => window.tether.session);
    assert.equal(await tooLarge.getByTestId('transfer-command').innerText(), `viewer -broker ${broker.url} push -session ${session} 'disk image.iso'`);
    assert.doesNotMatch(await page.getByTestId('files-panel').innerText(), /use viewer push/);
    assert.equal(existsSync(join(inbox, 'disk image.iso')), false);
    await page.screenshot({ path: join(artifacts, 'console-files-too-large.png') });

    // Nor is one fetched that the browser would have to hold whole in
    // memory: the panel gives the command that fetches it to disk.
    await page.locator('[data-testid="files-entry"][data-name="backup image.img"]').click();
    const tooLargeDown = page.locator('[data-testid="transfer"][data-name="backup image.img"][data-state="too-large"]');
    await tooLargeDown.waitFor();
    assert.equal(await tooLargeDown.getByTestId('transfer-too-large').innerText(),
      'This file was not fetched. The console can fetch files of up to 2 GiB, and this one is 3 GiB. '
      + 'To fetch it, use viewer, Tether\u2019s command-line program for technicians: run this command in a terminal on your computer, in the folder where you want the file.');
    assert.equal(await tooLargeDown.getByTestId('transfer-command').innerText(), `viewer -broker ${broker.url} pull -session ${session} 'backup image.img'`);
    assert.equal(await page.locator('[data-testid="transfer"][data-name="backup image.img"][data-state="running"]').count(), 0);
    await page.screenshot({ path: join(artifacts, 'console-files-too-large-fetch.png') });

    // Terminal: ask, open, type, see the output.
    await page.getByTestId('shell-open').click();
    assert.equal(await page.getByTestId('files-panel').isHidden(), true, 'one side panel at a time');
    await page.getByTestId('shell-request').click();
    await page.getByTestId('shell-start').click({ timeout: 30_000 });
    await page.locator('[data-testid="shell-tab-1"][data-state="open"]').waitFor();
    await page.getByTestId('shell-view-1').locator('.xterm-screen').click();
    await page.keyboard.type('echo hello-$((6*7)); stty size\n');
    const view = page.getByTestId('shell-view-1');
    let m = await waitTerm(page, 1, /hello-42\s+(\d+) (\d+)/);
    assert.equal(`${m[1]} ${m[2]}`, `${await view.getAttribute('data-rows')} ${await view.getAttribute('data-cols')}`);
    const before = Number(m[2]);

    // A password prompt (echo off, then the prompt, as getpass does): the
    // panel says the typing is hidden, and it is not a command.
    await page.keyboard.type('stty -echo; printf "Pass""word: "; read pw; stty echo; echo "got ${#pw}"\n');
    await waitTerm(page, 1, /Password:/);
    const status = view.getByTestId('shell-status');
    await status.waitFor();
    assert.match(await status.innerText(), /password prompt.*not recorded/);
    await page.screenshot({ path: join(artifacts, 'console-shell-password.png') });
    await page.keyboard.type('hunter2\n');
    await waitTerm(page, 1, /got 7/);
    await status.waitFor({ state: 'hidden' });

    // A narrower window: the remote terminal follows.
    await page.setViewportSize({ width: 1100, height: 760 });
    await page.waitForFunction((c) => Number(document.querySelector('[data-testid="shell-view-1"]').dataset.cols) !== c, before);
    await page.keyboard.type('echo "now=$(stty size)"\n');
    m = await waitTerm(page, 1, /now=(\d+) (\d+)/);
    assert.equal(`${m[1]} ${m[2]}`, `${await view.getAttribute('data-rows')} ${await view.getAttribute('data-cols')}`);
    assert.notEqual(Number(m[2]), before);
    // Every row the remote terminal has is on screen: the last (the prompt)
    // is not cut off, at heights that leave the fit more and less to spare.
    for (const height of [760, 764, 768]) {
      await page.setViewportSize({ width: 1100, height });
      await page.waitForTimeout(300); // the fit follows the resize
      const hidden = await view.evaluate((el) => {
        const r = el.querySelector('.xterm-rows > :last-child').getBoundingClientRect();
        const seen = document.elementFromPoint(r.left + 20, r.bottom - 2);
        return el.querySelector('.xterm').contains(seen) ? '' : `${seen?.tagName}.${seen?.className}`;
      });
      assert.equal(hidden, '', `at ${height} px the last row is under ${hidden}`);
    }

    // A second shell at once.
    await page.getByTestId('shell-new').click();
    await page.locator('[data-testid="shell-tab-2"][data-state="open"]').waitFor();
    await page.getByTestId('shell-view-2').locator('.xterm-screen').click();
    await page.keyboard.type('seq 300\n');
    await waitTerm(page, 2, /300/);
    await page.keyboard.type('echo second-$((2+3))\n');
    await waitTerm(page, 2, /second-5/);
    // Whatever scrolls in the panel has dark scrollbars, as the panel is
    // (headless Chromium hides scrollbars: their colours are checked).
    const light = await page.getByTestId('shell-panel').evaluate((panel) => [...panel.querySelectorAll('*')]
      .filter((el) => /auto|scroll/.test(getComputedStyle(el).overflowY + getComputedStyle(el).overflowX) && getComputedStyle(el).scrollbarColor === 'auto')
      .map((el) => el.className));
    assert.deepEqual(light, [], 'scrollbars in the browser\u2019s light default');
    const widths = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    assert.ok(widths[0] <= widths[1], `the session page is ${widths[0]} px wide in a ${widths[1]} px window`);
    await page.screenshot({ path: join(artifacts, 'console-shell.png') });

    // The user revokes the shell: both close at once, and say why.
    host.type('revoke shell');
    await page.locator('[data-testid="shell-tab-1"][data-state="closed"]').waitFor({ timeout: 5000 });
    await page.locator('[data-testid="shell-tab-2"][data-state="closed"]').waitFor({ timeout: 5000 });
    assert.match(await page.getByTestId('shell-view-2').getByTestId('shell-status').innerText(), /revoked/);
    await page.screenshot({ path: join(artifacts, 'console-shell-revoked.png') });

    // The activity panel tells the story: files both ways, the refusal,
    // the shells and what was typed.
    await page.getByTestId('activity-open').click();
    await page.locator('[data-testid="activity-row"][data-type="shell.command"]').first().waitFor();
    const activity = await page.getByTestId('activity-panel').innerText();
    for (const want of [/fetched report\.log \(3\.0 MiB\) from the user/, /sent tool\.bin \(5\.0 MiB\) to the user/, /refused to send escape: escape leads outside the shared folder/, /opened Terminal 1/, /opened Terminal 2/, /Terminal 1 closed/, /ran: echo second-\$\(\(2\+3\)\)/, /ran: stty -echo; printf/]) {
      assert.match(activity, want);
    }
    assert.doesNotMatch(activity, /hunter2/);
    assert.doesNotMatch(activity, /\bshells?\b/i, 'the activity panel calls Terminal a shell');
    await page.screenshot({ path: join(artifacts, 'console-activity-files-shell.png') });
    assert.ok(existsSync(join(inbox, 'tool.bin')));

    // The session's recording replays it: the timeline marks the shells
    // and both files, and the transcript shows what was typed and printed.
    const sessionId = await page.evaluate(() => window.tether.session?.id ?? location.hash.split('/').pop());
    await page.getByTestId('end-session').click();
    await page.getByTestId('confirm-ok').click();
    await page.getByTestId('session-ended').waitFor();
    // Over is over: the files panel offers nothing more to send.
    if (!(await page.getByTestId('files-panel').isVisible())) await page.getByTestId('files-open').click();
    await page.waitForTimeout(300);
    assert.equal(await page.getByTestId('files-upload').isEnabled() && await page.getByTestId('files-upload').isVisible(), false, 'Send files after the end');
    await page.goto(`${broker.url}/#/recording/${sessionId}`);
    await page.waitForFunction(() => window.tether.player?.ready === true || window.tether.player?.error, null, { timeout: 30_000 });
    assert.equal(await page.evaluate(() => window.tether.player.error), '');
    const markers = await page.evaluate(() => window.tether.player.markers);
    assert.ok(markers.shell >= 3 && markers.files >= 2, `markers ${JSON.stringify(markers)}`);
    await page.getByTestId('shell-player').waitFor();
    // The player names the features as the session page does: Terminal
    // and Files, in the legend, the event list and the transcript's tabs.
    assert.deepEqual(await page.locator('[data-testid="legend-item"][data-category="shell"], [data-testid="legend-item"][data-category="files"]')
      .evaluateAll((items) => items.map((b) => b.firstChild.nextSibling.textContent)), ['Files', 'Terminal']);
    const events = await page.getByTestId('event-list').innerText();
    for (const want of [/Terminal opened/, /Terminal 1 by /, /Terminal command/, /Terminal closed/, /File transferred/]) assert.match(events, want);
    assert.match(await page.getByTestId('player-shells').innerText(), /^Terminal transcript\s+Terminal 1 · \d+:\d\d\s+Terminal 2 · /);
    assert.doesNotMatch(await page.locator('main').innerText(), /\bshells?\b/i, 'the player calls Terminal a shell');
    // The transcripts' tabs are a tab list: one Tab stop, at the tab shown,
    // and the arrow keys go from tab to tab.
    const transcripts = page.getByTestId('player-shells').getByRole('tab');
    const tabState = () => transcripts.evaluateAll((tabs) => tabs.slice(0, 2).map((t) => `${t.getAttribute('aria-selected')} ${t.tabIndex} ${t === document.activeElement}`));
    await transcripts.first().focus();
    await page.keyboard.press('ArrowRight');
    assert.deepEqual(await tabState(), ['false -1 false', 'true 0 true'], 'Right from the first transcript\u2019s tab');
    assert.equal(await page.getByTestId('shell-stage').getAttribute('aria-labelledby'), await transcripts.nth(1).getAttribute('id'));
    await page.keyboard.press('Home');
    assert.deepEqual(await tabState(), ['true 0 true', 'false -1 false'], 'Home');
    await page.getByTestId('shell-player').waitFor();
    // A supervisor goes to the second command in the event list: the
    // transcript shows the first command and what it printed, as the
    // terminal was then (before the window narrowed and wrapped a line).
    // (Lines joined: with a long prompt the command wraps as it did live.)
    await page.locator('[data-testid="event-row"][data-type="shell.command"]').filter({ hasText: 'stty -echo' }).locator('button').click();
    await waitTranscript(page, /echo hello-\$\(\(6\*7\)\)[\s\S]*hello-42/);
    await page.getByTestId('timeline').focus();
    // At the end it shows the terminal as the technician last saw it.
    await page.keyboard.press('End');
    await waitTranscript(page, new RegExp(`now=${m[1]} ${m[2]}`));
    await page.screenshot({ path: join(artifacts, 'recording-console-session.png'), fullPage: true });
    assert.deepEqual(pageErrors.map(String), []);
  } finally {
    await browser.close();
  }
});

/**
 * A live session on a new 640x480 display: a page of browser signed in to
 * broker's console, showing the session for ticket, and bin/host started
 * with hostArgs, whose questions are answered. pageErrors collects the
 * page's errors.
 */
async function liveSession(browser, broker, ticket, hostArgs) {
  const display = await startXvfb(640, 480);
  const page = await browser.newPage();
  const pageErrors = collectErrors(page);
  const code = await openSession(page, broker, ticket);
  const host = startHost(broker, code, display, { args: hostArgs });
  await host.ready;
  await page.waitForSelector('[data-testid="conn-state"][data-state="live"]', { timeout: 30_000 });
  return { page, pageErrors, host };
}

test('a download cut by a reconnect resumes in the console', { timeout: 180_000 }, async () => {
  const home = tempDir('tether-home-');
  const big = randomBytes(64 * 1024 * 1024);
  writeFileSync(join(home, 'dump.bin'), big);
  const broker = await startBroker();
  const browser = await launch({ viewport: { width: 1440, height: 900 } });
  try {
    // -v: the host's log says where each transfer resumed.
    const { page, host } = await liveSession(browser, broker, 'INC-RESUME', ['-v', '-files-root', home, '-files-inbox', join(home, 'in')]);
    await page.getByTestId('files-open').click();
    await page.getByTestId('files-request').click();
    const entry = page.locator('[data-testid="files-entry"][data-name="dump.bin"]');
    await entry.waitFor({ timeout: 30_000 });
    const download = page.waitForEvent('download', { timeout: 120_000 });
    download.catch(() => {}); // a failure below is the one to report
    await entry.click();
    const bar = page.locator('[data-testid="transfer"][data-name="dump.bin"] [role="progressbar"]');
    await page.waitForFunction(() => Number(document.querySelector('[data-testid="transfer"][data-name="dump.bin"] [role="progressbar"]')?.getAttribute('aria-valuenow')) >= 5);
    const cutAt = Number(await bar.getAttribute('aria-valuenow'));
    // The technician's connection drops: signaling and media start over.
    await page.evaluate(() => window.tether.viewer.ws.close());
    await page.locator('[data-testid="transfer"][data-name="dump.bin"][data-state="interrupted"]').waitFor({ timeout: 15_000 });
    // A new connection is a new viewer: the user is asked again, and file
    // transfer was granted mid-session, so the technician asks once more.
    // The first question after the reconnect must be answered before the
    // console can ask for more: ask until the transfer moves again.
    const row = page.locator('[data-testid="transfer"][data-name="dump.bin"]');
    for (let i = 0; (await row.getAttribute('data-state')) === 'interrupted'; i++) {
      assert.ok(i < 30, 'the transfer never resumed');
      await page.getByTestId('files-request').click({ timeout: 30_000 }).catch(() => {});
      await page.waitForTimeout(1000);
    }
    await page.locator('[data-testid="transfer"][data-name="dump.bin"][data-state="done"]').waitFor({ timeout: 90_000 });
    const saved = await (await download).path();
    assert.equal(sha256(readFileSync(saved)), sha256(big), 'the resumed download differs');
    assert.ok(cutAt < 100);
    // The host sent the rest, not everything again.
    assert.match(host.out.stderr + host.out.stdout, /resume_at=[1-9]/);
  } finally {
    await browser.close();
  }
});

// waitTranscript waits for the replayed shell to show text matching re, and
// if it never does, says what it shows and where the player stands.
async function waitTranscript(page, re) {
  await page.waitForFunction((src) => new RegExp(src).test((document.querySelector('[data-testid="shell-player"]')?.innerText || '').replaceAll('\n', '')), re.source, { timeout: 15_000 })
    .catch(async (err) => {
      const seen = await page.evaluate(() => ({
        text: document.querySelector('[data-testid="shell-stage"]')?.innerText,
        player: { t: window.tether.player.t, duration: window.tether.player.duration, shellTime: window.tether.player.shellTime },
      }));
      throw new Error(`${err.message}; waiting for ${re}, the transcript shows ${JSON.stringify(seen)}`);
    });
}

test('cancelling a transfer lets the next one in the queue run; a long folder says it is cut short', { timeout: 180_000 }, async () => {
  const home = tempDir('tether-home-');
  const inbox = join(home, 'Downloads', 'Tether');
  writeFileSync(join(home, 'notes.txt'), 'hello');
  mkdirSync(join(home, 'logs'));
  for (let i = 1; i <= 1500; i++) writeFileSync(join(home, 'logs', `log-${String(i).padStart(4, '0')}.txt`), '');
  // Two files chosen at once: the first big enough to cancel half way.
  const picked = tempDir('tether-pick-');
  writeFileSync(join(picked, 'first.bin'), randomBytes(100 * 1024 * 1024));
  writeFileSync(join(picked, 'second.txt'), 'second');

  const broker = await startBroker();
  const browser = await launch({ viewport: { width: 1440, height: 900 } });
  try {
    const { page, pageErrors } = await liveSession(browser, broker, 'INC-CANCEL', ['-files-root', home, '-files-inbox', inbox]);
    await page.getByTestId('files-open').click();
    await page.getByTestId('files-request').click();
    await page.locator('[data-testid="files-entry"][data-name="notes.txt"]').waitFor({ timeout: 30_000 });

    await page.getByTestId('files-input').setInputFiles([join(picked, 'first.bin'), join(picked, 'second.txt')]);
    const first = page.locator('[data-testid="transfer"][data-name="first.bin"]');
    await page.locator('[data-testid="transfer"][data-name="first.bin"][data-state="running"]').waitFor({ timeout: 30_000 });
    await first.getByTestId('transfer-cancel').click();
    await page.locator('[data-testid="transfer"][data-name="first.bin"][data-state="cancelled"]').waitFor();

    // The second file arrives, whole, and the panel goes on working.
    await page.locator('[data-testid="transfer"][data-name="second.txt"][data-state="done"]').waitFor({ timeout: 30_000 });
    assert.equal(readFileSync(join(inbox, 'second.txt'), 'utf8'), 'second');
    const [dl] = await Promise.all([
      page.waitForEvent('download'),
      page.locator('[data-testid="files-entry"][data-name="notes.txt"]').click(),
    ]);
    assert.equal(readFileSync(await dl.path(), 'utf8'), 'hello');
    await page.locator('[data-testid="transfer"][data-name="notes.txt"][data-state="done"]').waitFor();
    assert.equal(await page.getByTestId('files-error').count(), 0);
    await page.screenshot({ path: join(artifacts, 'console-files-cancel.png') });

    // A folder too long to show whole shows its first entries by name, and
    // says so.
    await page.locator('[data-testid="files-entry"][data-name="logs"]').click();
    await page.getByTestId('files-cut').waitFor();
    assert.equal(await page.getByTestId('files-cut').innerText(), 'This folder holds 1500 entries; only the first 1000 are shown (folders first, then by name).');
    const names = await page.getByTestId('files-entry').evaluateAll((els) => els.map((e) => e.dataset.name));
    assert.equal(names.length, 1000);
    assert.equal(names[0], 'log-0001.txt');
    assert.equal(names.at(-1), 'log-1000.txt');
    await page.screenshot({ path: join(artifacts, 'console-files-long-folder.png') });
    await page.getByTestId('files-up').click();
    await page.locator('[data-testid="files-entry"][data-name="notes.txt"]').waitFor();

    // The cancelled file is in the activity, with how much of it was sent.
    await page.getByTestId('activity-open').click();
    const stopped = page.locator('[data-testid="activity-row"][data-type="file.interrupted"]');
    await stopped.waitFor();
    assert.match(await stopped.innerText(), /Sending first\.bin to the user\u2019s computer stopped after [\d.]+ (?:B|KiB|MiB) of 100 MiB: the transfer was cancelled/);
    await page.screenshot({ path: join(artifacts, 'console-activity-files-cancel.png') });
    assert.deepEqual(pageErrors, []);
  } finally {
    await browser.close();
  }
});

test('a file dropped on the remote screen is sent, to the folder the panel names; before Files is allowed the drop says how to get it', { timeout: 120_000 }, async () => {
  const home = tempDir('tether-home-');
  const inbox = join(home, 'Downloads', 'Tether');
  const broker = await startBroker();
  const browser = await launch({ viewport: { width: 1440, height: 900 } });
  try {
    const { page, pageErrors } = await liveSession(browser, broker, 'INC-DROP', ['-files-root', home, '-files-inbox', inbox]);
    const url = page.url();
    const dropOnScreen = async (name, text) => {
      const dataTransfer = await page.evaluateHandle(([n, t]) => {
        const dt = new DataTransfer();
        dt.items.add(new File([t], n, { type: 'text/plain' }));
        return dt;
      }, [name, text]);
      await page.dispatchEvent('video', 'dragover', { dataTransfer });
      await page.dispatchEvent('video', 'drop', { dataTransfer });
    };
    // The user has not allowed Files: the drop says so and opens the panel,
    // whose button asks; the page stays where it is.
    await dropOnScreen('early.txt', 'too soon');
    await page.getByText('early.txt: not sent. The user has not allowed Files now').waitFor();
    assert.equal(await page.getByTestId('files-request').isVisible(), true);
    assert.equal(page.url(), url);
    await page.getByTestId('files-request').click();
    await page.locator('[data-testid="files-entry"]').first().waitFor({ timeout: 30_000 }).catch(() => {});
    await page.waitForFunction(() => !document.querySelector('[data-testid="files-request"]')?.checkVisibility(), null, { timeout: 30_000 });
    // The panel names the folders the host was told to use, not its defaults.
    assert.equal(await page.getByTestId('files-dest').innerText(), `Files you send go to ${inbox} on the user\u2019s computer.`);
    assert.equal(await page.locator('.files-crumb').first().innerText(), home);
    await dropOnScreen('dropped.txt', 'sent by a drop');
    await page.locator('[data-testid="transfer"][data-name="dropped.txt"][data-state="done"]').waitFor({ timeout: 30_000 });
    assert.equal(readFileSync(join(inbox, 'dropped.txt'), 'utf8'), 'sent by a drop');
    assert.equal(existsSync(join(inbox, 'early.txt')), false);
    assert.deepEqual(pageErrors, []);
  } finally {
    await browser.close();
  }
});

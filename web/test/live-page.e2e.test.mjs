// The live session page as a technician works it, on the real stack: a real
// broker, a real host on Xvfb (the user answers its questions on its
// terminal), and headless Chromium. These check what the technician sees
// and where the keyboard focus goes: that nothing is left on <body>, that a
// request is announced once, and that the panels say what they do.

import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { collectErrors, launch, remotePoint } from './browser.mjs';
import { openSession, ROOT, startBroker, startHost, startXvfb, stopAll, tempDir, until } from './procs.mjs';

const ARTIFACTS = join(ROOT, 'artifacts');
mkdirSync(ARTIFACTS, { recursive: true });

after(stopAll);

/** What has the keyboard focus: its data-testid, or its tag name. */
const focused = (page) => page.evaluate(() => {
  const el = document.activeElement;
  return el?.dataset?.testid || el?.tagName.toLowerCase() || '';
});

test('the live session page', { timeout: 240_000 }, async (t) => {
  const home = tempDir('tether-home-');
  mkdirSync(join(home, 'Documents'));
  writeFileSync(join(home, 'Documents', 'notes.txt'), 'hello');
  writeFileSync(join(home, '.profile'), 'x'.repeat(182));
  mkdirSync(join(home, '.cache'));
  writeFileSync(join(home, 'report.txt'), 'report');

  const display = await startXvfb(1280, 720);
  const broker = await startBroker();
  const browser = await launch({ viewport: { width: 1280, height: 720 } });
  t.after(() => browser.close());
  const page = await browser.newPage();
  const pageErrors = collectErrors(page);
  const byId = (id) => page.getByTestId(id);
  const shot = (name) => page.screenshot({ path: join(ARTIFACTS, `live-page-${name}.png`) });
  // Ctrl+Alt+Shift, pressed and let go, gives the keyboard back to the page.
  const releaseKeyboard = async () => {
    for (const key of ['Control', 'Alt', 'Shift']) await page.keyboard.down(key);
    for (const key of ['Shift', 'Alt', 'Control']) await page.keyboard.up(key);
  };

  const code = await openSession(page, broker, 'INC-LIVE');
  const host = startHost(broker, code, display, { answer: null, args: ['-files-root', home, '-files-inbox', join(home, 'Downloads', 'Tether')] });
  await host.ready;
  // The user answers each question on the host's terminal.
  let answered = 0;
  const answer = async (line) => {
    await until('a question on the host terminal', () => host.out.stdout.split('Allow? ').length - 1 > answered, 20_000);
    answered++;
    host.type(line);
  };
  await answer('all');
  await page.locator('[data-testid="conn-state"][data-state="live"]').waitFor({ timeout: 30_000 });
  await page.waitForFunction(() => document.querySelector('[data-testid="remote-video"]')?.videoWidth > 0, null, { timeout: 20_000 });

  await t.test('while the keyboard is captured the picture says so, and how to get it back', async () => {
    await byId('mode-control').click();
    await page.waitForFunction(() => window.tether.control.enabled === true);
    const tag = byId('keyboard-captured');
    await tag.waitFor();
    assert.match(await tag.innerText(), /Keyboard captured[\s\S]*Ctrl[\s\S]*Alt[\s\S]*Shift[\s\S]*to release/);
    await page.waitForTimeout(5000); // longer than any passing hint
    assert.equal(await tag.isVisible(), true, 'the indicator stays while the keyboard is captured');
    await shot('1-captured');

    // The release shortcut gives the keyboard back to the mode switch.
    await releaseKeyboard();
    assert.equal(await focused(page), 'mode-control');
    await tag.waitFor({ state: 'hidden' });

    // Clicking into the picture captures it again, and says so again.
    const [x, y] = await remotePoint(page, 640, 600);
    await page.mouse.click(x, y);
    await tag.waitFor();
    assert.equal(await focused(page), 'remote-stage');
    // A click on the indicator is a click on the user's screen beneath:
    // the keyboard stays captured.
    const box = await tag.boundingBox();
    await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
    assert.equal(await tag.isVisible(), true);
    assert.equal(await focused(page), 'remote-stage');
    await page.keyboard.press('Tab'); // goes to the remote computer
    assert.equal(await focused(page), 'remote-stage');
  });

  await t.test('the clipboard panel sends no empty text, and closes when the focus moves on', async () => {
    await byId('mode-control').focus();
    await byId('clipboard-open').click();
    const send = byId('clipboard-send');
    await send.waitFor();
    assert.equal(await byId('clipboard-send-text').inputValue(), '');
    assert.equal(await send.isDisabled(), true, 'nothing to send: the user\u2019s clipboard would be wiped');
    assert.match(await send.getAttribute('data-tip'), /Type or paste/);
    await byId('clipboard-send-text').fill('ipconfig /all');
    assert.equal(await send.isEnabled(), true);
    await byId('clipboard-send-text').fill('');
    assert.equal(await send.isDisabled(), true);
    await shot('2-clipboard-empty');

    // From where the panel puts the focus, Tab walks down through it,
    // Fetch included, and out of it: the panel closes behind.
    await byId('clipboard-open').click(); // closes
    await byId('clipboard-open').click(); // opens afresh
    await byId('clipboard-send').waitFor();
    const seen = [];
    for (let i = 0; i < 10 && await page.locator('#clipboard-panel').isVisible(); i++) {
      seen.push(await focused(page));
      await page.keyboard.press('Tab');
    }
    assert.ok(seen.includes('clipboard-request'), `Fetch reached with Tab: ${seen.join(', ')}`);
    assert.ok(seen.indexOf('clipboard-request') < seen.indexOf('clipboard-send-text'), `reading order: ${seen.join(', ')}`);
    await page.locator('#clipboard-panel').waitFor({ state: 'hidden', timeout: 2000 });
    assert.notEqual(await focused(page), 'body');
  });

  await t.test('the focus goes somewhere sensible, never to the page', async () => {
    // The user takes control back; the technician asks again from the keyboard.
    host.type('revoke control');
    const ask = page.locator('[data-testid="request-perm"][data-perm="control"]');
    await ask.waitFor({ timeout: 15_000 });
    await ask.focus();
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelector('[data-testid="request-perm"][data-perm="control"]').classList.contains('is-asking'));
    assert.equal(await focused(page), 'request-perm', 'the focus stays on the button while the user answers');
    await answer('all');
    await page.waitForFunction(() => window.tether.control.enabled === true, null, { timeout: 15_000 });
    assert.equal(await focused(page), 'remote-stage', 'allowed: control taken, the keyboard on the remote screen');
    await releaseKeyboard();

    // Files, opened from the keyboard: the focus goes into the panel.
    await byId('files-open').focus();
    await page.keyboard.press('Enter');
    assert.equal(await focused(page), 'files-request');
    await page.keyboard.press('Enter');
    await answer('all');
    await byId('files-upload').waitFor({ timeout: 15_000 });
    assert.equal(await focused(page), 'files-upload', 'allowed: the focus moves on to what the panel now offers');
    const docs = page.locator('[data-testid="files-entry"][data-name="Documents"]');
    await docs.waitFor({ timeout: 15_000 });
    await docs.focus();
    await page.keyboard.press('Enter');
    await page.locator('[data-testid="files-entry"][data-name="notes.txt"]').waitFor();
    assert.equal(await focused(page), 'files-up', 'a folder opened with Enter: the focus on its first row');
    await page.keyboard.press('Enter');
    await docs.waitFor();
    assert.equal(await focused(page), 'files-entry');
    assert.equal(await page.evaluate(() => document.activeElement.dataset.name), 'Documents', 'back up: the focus on the folder it came from');

    await byId('shell-open').focus();
    await page.keyboard.press('Enter');
    assert.equal(await focused(page), 'shell-request');
    await byId('activity-open').focus();
    await page.keyboard.press('Enter');
    assert.equal(await focused(page), 'activity-panel');
    await page.keyboard.press('Escape');
  });

  await t.test('a question in progress is announced once, and asked once', async () => {
    host.type('revoke files');
    await page.locator('[data-testid="consent-toast"][data-kind="revoked"]:not([hidden])').waitFor({ timeout: 15_000 });
    await page.locator('.consent-toast-close').click();
    await byId('files-open').click();
    const ask = byId('files-request');
    await ask.waitFor({ timeout: 15_000 });
    // Asked from the chip in the header: the panel's button says so too.
    await page.locator('[data-testid="perm-chip"][data-perm="files"]').click();
    await until('the question on the host terminal', () => host.out.stdout.split('Allow? ').length - 1 > answered, 20_000);
    await page.waitForFunction(() => document.querySelector('[data-testid="files-request"]').getAttribute('aria-disabled') === 'true');
    assert.match(await ask.innerText(), /Asking the user/);
    assert.match(await byId('consent-status').innerText(), /Asking the user for Files · input held/);
    await page.waitForTimeout(1000);
    assert.equal(await byId('consent-pending').count(), 0, 'no banner over the picture');
    assert.equal(await byId('consent-toast').isVisible(), false, 'no toast');
    await page.mouse.move(0, 0);
    await shot('4-asking');
    await answer('no');
    await page.locator('[data-testid="consent-toast"]:not([hidden])').waitFor({ timeout: 15_000 });
    await page.waitForFunction(() => document.querySelector('[data-testid="files-request"]').getAttribute('aria-disabled') === 'false');
    assert.match(await ask.innerText(), /^Ask /);
  });

  await t.test('the files panel says where files go, and what each row does', async () => {
    await byId('files-request').click();
    await answer('all');
    await byId('files-upload').waitFor({ timeout: 15_000 });
    assert.match(await byId('files-dest').innerText(), /Downloads\/Tether/);
    assert.equal(await byId('files-dest').isVisible(), true, 'said before sending');
    await page.locator('[data-testid="files-entry"][data-name=".profile"]').waitFor({ timeout: 15_000 });
    const rows = await byId('files-entry').evaluateAll((els) => els.map((e) => [e.dataset.name, e.getAttribute('aria-label')]));
    const names = rows.map(([n]) => n);
    const firstDot = names.findIndex((n) => n.startsWith('.'));
    assert.ok(firstDot > 0 && names.slice(firstDot).every((n) => n.startsWith('.')), `hidden files last: ${names.join(', ')}`);
    assert.ok(names.indexOf('Documents') < names.indexOf('report.txt'), `folders first: ${names.join(', ')}`);
    const label = Object.fromEntries(rows);
    // What a click does, then what the row shows: its size and when it changed.
    assert.match(label['.profile'], /^Download \.profile, 182 bytes, \S/);
    assert.match(label.Documents, /^Open Documents, folder, \S/);
    assert.equal(await page.getByRole('button', { name: 'Download report.txt, 6 bytes' }).count(), 1);
    await shot('5-files');
  });

  await t.test('the terminal panel: an empty state without dead controls, and the picture keeps its room', async () => {
    await byId('shell-open').click();
    const tabBar = page.locator('#shell-panel .shell-tabbar');
    await byId('shell-request').waitFor();
    assert.equal(await tabBar.isVisible(), false, 'no empty tab strip');
    assert.equal(await byId('shell-copy').isDisabled(), true, 'nothing to copy from');
    assert.equal(await byId('shell-paste').isDisabled(), true, 'nowhere to paste');
    await byId('shell-request').click();
    await answer('all');
    await byId('shell-start').waitFor({ timeout: 15_000 });
    assert.equal(await tabBar.isVisible(), false);
    assert.equal(await byId('shell-paste').isDisabled(), true);
    // At 1280 x 720 the picture keeps most of the width.
    const [stageW, viewW] = await page.evaluate(() => [document.querySelector('[data-testid="remote-stage"]').getBoundingClientRect().width, window.innerWidth]);
    assert.ok(stageW >= 0.55 * viewW, `the picture is ${Math.round(stageW)} px of ${viewW}`);
    await shot('6-terminal-empty');

    await byId('shell-start').click();
    await page.locator('[data-testid="shell-tab-1"][data-state="open"]').waitFor({ timeout: 15_000 });
    assert.equal(await tabBar.isVisible(), true);
    assert.equal(await byId('shell-copy').isDisabled(), true, 'Copy waits for a selection');
    assert.equal(await byId('shell-paste').isEnabled(), true);
    // The tab strip scrolls sideways only: no up/down arrows beside "+".
    const scroll = await page.locator('#shell-panel .shell-tabs').evaluate((el) => [el.scrollHeight, el.clientHeight, getComputedStyle(el).overflowY]);
    assert.ok(scroll[0] <= scroll[1] || scroll[2] === 'hidden', `tab strip scrolls up and down: ${scroll}`);
    await shot('6-terminal-open');
  });

  await t.test('one name per feature: Files and Terminal; "Asked just now"', async () => {
    // The Terminal panel is open from the test before.
    const panelText = async (id) => page.getByTestId(id).innerText();
    const chipsText = await byId('perm-strip').innerText();
    assert.match(chipsText, /Files/);
    assert.match(chipsText, /Terminal/);
    const everything = [chipsText, await byId('consent-status').innerText(), await panelText('shell-panel'),
      await page.locator('[data-testid="consent-toast"]').innerText().catch(() => '')].join('\n');
    assert.doesNotMatch(everything, /\b[Ss]hell\b|[Ff]ile transfer/, everything);
    await byId('files-open').click();
    assert.doesNotMatch(await panelText('files-panel'), /[Ff]ile transfer|\b[Ss]hell\b/);
    // Asked: "Asked just now", not "Asked 0:00 ago".
    host.type('revoke shell');
    await page.locator('[data-testid="perm-chip"][data-perm="shell"][data-granted="false"]').waitFor({ timeout: 15_000 });
    await page.locator('[data-testid="perm-chip"][data-perm="shell"]').click();
    await until('the question on the host terminal', () => host.out.stdout.split('Allow? ').length - 1 > answered, 20_000);
    await page.locator('[data-testid="consent-status"][data-kind="pending"]').waitFor();
    assert.match(await byId('consent-status').innerText(), /Asking the user for Terminal · input held\s*Asked just now/);
    await page.waitForTimeout(6000);
    assert.match(await byId('consent-status').innerText(), /Asked \d+ s ago/);
    await shot('7-asked');
    await answer('all');
    await page.locator('[data-testid="consent-toast"]:not([hidden])').filter({ hasText: 'The user allowed Terminal.' }).waitFor({ timeout: 15_000 });
  });

  //@@MORE@@

  await t.test('when the session ends, the focus is on the way back', async () => {
    // The news that the session ended reaches the page before the broker's
    // answer to the End (as it may on a busy broker): the end shows under
    // the dialog, which closes after it.
    await page.route('**/api/v1/sessions/*/end', async (route) => {
      const answer = await route.fetch();
      await new Promise((r) => setTimeout(r, 1000));
      await route.fulfill({ response: answer });
    });
    await byId('end-session').click();
    await byId('confirm-ok').click();
    await byId('session-ended').waitFor({ timeout: 15_000 });
    await byId('end-session-dialog').waitFor({ state: 'detached', timeout: 5_000 });
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Back to sessions');
    await page.unroute('**/api/v1/sessions/*/end');
  });

  assert.deepEqual(pageErrors.map(String), []);
});

// The console's Terminal as a technician uses it through a session: a
// real broker, a real host on Xvfb and headless Chromium.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { collectErrors, launch } from './browser.mjs';
import { openSession, ROOT, startBroker, startHost, startXvfb, stopAll, tempDir, until } from './procs.mjs';

const artifacts = join(ROOT, 'artifacts');
mkdirSync(artifacts, { recursive: true });

let browser, page, host, pageErrors;

// termText returns what shell tab n shows.
const termText = (p, n) => p.getByTestId(`shell-view-${n}`).locator('.xterm-rows').innerText();

before(async () => {
  const display = await startXvfb(640, 480);
  const broker = await startBroker();
  browser = await launch({ viewport: { width: 1440, height: 900 } });
  await browser.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: broker.url });
  page = await browser.newPage();
  pageErrors = collectErrors(page);
  const code = await openSession(page, broker, 'INC-TERMINAL');
  host = startHost(broker, code, display);
  await host.ready;
  await page.waitForSelector('[data-testid="conn-state"][data-state="live"]', { timeout: 30_000 });
  await page.getByTestId('shell-open').click();
  await page.getByTestId('shell-request').click();
  await page.getByTestId('shell-start').click({ timeout: 30_000 });
  await page.locator('[data-testid="shell-tab-1"][data-state="open"]').waitFor();
  await page.getByTestId('shell-view-1').locator('.xterm-screen').click();
});

after(async () => {
  await browser?.close();
  stopAll();
});

test('a long paste reaches the shell whole', { timeout: 120_000 }, async () => {
  // A script or a config file of about 100 KB, pasted with Ctrl+Shift+V
  // into `cat` on the user's computer.
  const text = Array.from({ length: 1500 }, (_, i) => `line ${String(i).padStart(5, '0')} ${'x'.repeat(60)}`).join('\n') + '\n';
  const file = join(tempDir('tether-paste-'), 'pasted.txt');
  await page.keyboard.type(`cat > ${file}\n`);
  await until('cat to start', () => { try { statSync(file); return true; } catch { return false; } });
  await page.evaluate((t) => navigator.clipboard.writeText(t), text);
  await page.keyboard.press('Control+Shift+V');
  await until(() => `the pasted ${text.length} bytes in ${file} (${statSync(file).size} so far)`,
    () => statSync(file).size >= text.length, 30_000);
  await page.keyboard.press('Control+D');
  assert.equal(readFileSync(file, 'utf8'), text);
  assert.deepEqual(pageErrors, []);
});

test('Ctrl+C stops a command with fast output at once', { timeout: 120_000 }, async () => {
  // `yes` writes faster than any terminal draws; after some seconds of it
  // Ctrl+C is pressed and the prompt comes back, not the rest of a pile
  // of output received meanwhile.
  await page.keyboard.type('clear; yes\n');
  await page.waitForTimeout(8000);
  const pressed = Date.now();
  await page.keyboard.press('Control+C');
  await page.keyboard.type('echo stopped-$((6*7))\n');
  await until('the prompt after Ctrl+C', async () => /stopped-42/.test(await termText(page, 1)), 60_000);
  const took = Date.now() - pressed;
  await page.screenshot({ path: join(artifacts, 'console-shell-ctrl-c.png') });
  assert.ok(took < 3000, `the prompt came back ${took} ms after Ctrl+C`);
});

test('Copy is offered once text is selected in the terminal, and copies it', { timeout: 60_000 }, async () => {
  const copy = page.getByTestId('shell-copy');
  const view = page.getByTestId('shell-view-1');
  await view.locator('.xterm-screen').click();
  await page.keyboard.type('clear; echo copy-$((6*7))-me\n');
  const line = view.locator('.xterm-rows > div').filter({ hasText: /^copy-42-me\s*$/ });
  await line.waitFor();
  assert.equal(await copy.isDisabled(), true, 'Copy is offered with nothing selected');

  // A double click selects the word, as in any terminal.
  const box = await line.boundingBox();
  await page.mouse.dblclick(box.x + 20, box.y + box.height / 2);
  await until('Copy to be offered for the selection', () => copy.isEnabled(), 5000);
  await page.screenshot({ path: join(artifacts, 'console-shell-copy.png') });
  await copy.click();
  await until('the selection on the clipboard', async () => (await page.evaluate(() => navigator.clipboard.readText())) === 'copy-42-me', 5000);

  // A click in the terminal clears the selection: nothing to copy again.
  await view.locator('.xterm-screen').click();
  await until('Copy to be withdrawn', () => copy.isDisabled(), 5000);
  assert.deepEqual(pageErrors, []);
});

test('a pause closes the terminals and says it was a pause', { timeout: 120_000 }, async () => {
  const view = page.getByTestId('shell-view-1');
  await page.keyboard.type('sleep 4242\n');
  await until('sleep 4242 to run on the user\u2019s computer', () => running('sleep 4242'));
  host.type('pause');
  await page.locator('[data-testid="shell-tab-1"][data-state="closed"]').waitFor({ timeout: 10_000 });
  const status = await view.getByTestId('shell-status').innerText();
  assert.match(status, /paused the session/);
  assert.doesNotMatch(status, /revoked/);
  await until('the command to be stopped with the terminal', () => !running('sleep 4242'));
  await page.screenshot({ path: join(artifacts, 'console-shell-paused.png') });

  // With the tab closed the panel still says why no terminal can be opened.
  await page.getByTestId('shell-close-1').click();
  const empty = page.getByTestId('shell-empty');
  assert.match(await empty.innerText(), /The user paused the session/);
  assert.equal(await empty.getByTestId('shell-request').count(), 0, 'no asking for what the user already allowed');
  await page.screenshot({ path: join(artifacts, 'console-shell-paused-empty.png') });

  host.type('resume');
  await page.getByTestId('shell-start').click({ timeout: 15_000 });
  await page.locator('[data-testid="shell-tab-1"][data-state="open"]').waitFor();
  assert.deepEqual(pageErrors, []);
});

test('a new terminal that takes a closed one\u2019s number goes in its place among the tabs', { timeout: 60_000 }, async () => {
  const order = () => page.getByTestId('shell-panel').locator('[role="tab"]').evaluateAll((tabs) => tabs.map((t) => t.textContent));
  for (const n of [2, 3]) {
    await page.getByTestId('shell-new').click();
    await page.locator(`[data-testid="shell-tab-${n}"][data-state="open"]`).waitFor();
  }
  assert.deepEqual(await order(), ['Terminal 1', 'Terminal 2', 'Terminal 3']);
  await page.getByTestId('shell-close-2').click();
  assert.deepEqual(await order(), ['Terminal 1', 'Terminal 3']);
  await page.getByTestId('shell-new').click();
  await page.locator('[data-testid="shell-tab-2"][data-state="open"]').waitFor();
  assert.deepEqual(await order(), ['Terminal 1', 'Terminal 2', 'Terminal 3']);
  assert.equal(await page.getByTestId('shell-tab-2').getAttribute('aria-selected'), 'true');
  await page.screenshot({ path: join(artifacts, 'console-shell-tabs-in-order.png') });
  assert.deepEqual(pageErrors, []);
});

// running reports whether a process with this command line runs.
function running(cmdline) {
  return readdirSync('/proc').some((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim() === cmdline;
    } catch {
      return false;
    }
  });
}

// focused names what has the keyboard.
const focused = (p) => p.evaluate(() => document.activeElement?.dataset.testid || document.activeElement?.className || '');

test('after the Paste or Copy button the keyboard goes back to the terminal', { timeout: 60_000 }, async () => {
  await page.getByTestId('shell-tab-1').click();
  await page.getByTestId('shell-view-1').locator('.xterm-screen').click();
  await page.keyboard.press('Control+c');
  await page.keyboard.type('clear\n');
  await page.evaluate(() => navigator.clipboard.writeText('echo PASTED'));
  await page.getByTestId('shell-paste').click();
  await page.waitForTimeout(300);
  // Space and Enter on a button left with the focus would paste again.
  await page.keyboard.type(' again');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => /PASTED again\s*\n\s*PASTED again/.test(document.querySelector('[data-testid="shell-view-1"] .xterm-rows')?.innerText || ''), null, { timeout: 10_000 })
    .catch(async () => assert.fail(`the terminal shows ${JSON.stringify(await termText(page, 1))}; the focus is on ${await focused(page)}`));
  assert.doesNotMatch(await termText(page, 1), /PASTEDecho/);

  const line = page.getByTestId('shell-view-1').locator('.xterm-rows > div').filter({ hasText: /^PASTED again\s*$/ });
  const box = await line.boundingBox();
  await page.mouse.dblclick(box.x + 20, box.y + box.height / 2);
  await until('Copy to be offered for the selection', () => page.getByTestId('shell-copy').isEnabled(), 5000);
  await page.getByTestId('shell-copy').click();
  await page.waitForTimeout(300);
  assert.match(await focused(page), /xterm-helper-textarea/, 'Copy kept the keyboard');
  await page.screenshot({ path: join(artifacts, 'console-shell-paste-button.png') });
  assert.deepEqual(pageErrors, []);
});

test('a documented key leaves the terminal for its tabs; Tab and Escape stay the shell\u2019s', { timeout: 60_000 }, async () => {
  const hint = await page.getByTestId('shell-hint').innerText();
  assert.match(hint, /Ctrl\+Shift\+E/);
  await page.getByTestId('shell-view-1').locator('.xterm-screen').click();
  for (const key of ['Tab', 'Escape', 'Control+a']) {
    await page.keyboard.press(key);
    assert.match(await focused(page), /xterm-helper-textarea/, `${key} left the terminal`);
  }
  await page.keyboard.press('Control+c');
  await page.keyboard.type('echo before\n');
  await page.waitForTimeout(500);
  await page.keyboard.press('Control+Shift+E');
  assert.equal(await focused(page), 'shell-tab-1');
  // From the tab, Tab reaches the rest of the panel and the page, and
  // Enter goes back into the terminal.
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.activeElement?.classList.contains('xterm-helper-textarea'), null, { timeout: 5000 })
    .catch(async () => assert.fail(`Enter on the tab left the focus on ${await focused(page)}`));
  await page.keyboard.type('echo still-here\n');
  await page.waitForFunction(() => /\nstill-here/.test(document.querySelector('[data-testid="shell-view-1"] .xterm-rows')?.innerText || ''), null, { timeout: 5000 })
    .catch(async () => assert.fail(`the terminal shows ${JSON.stringify(await termText(page, 1))}`));
  assert.deepEqual(pageErrors, []);
});

test('the terminals\u2019 tabs are a tab list: the arrows, Home and End go from tab to tab, Delete closes one', { timeout: 60_000 }, async () => {
  const tablist = page.getByRole('tablist', { name: 'Terminals' });
  const tabs = tablist.getByRole('tab');
  // Terminals 1 to 3 are open, from the tests before. In the tab list only
  // the tabs: no close buttons among them.
  assert.deepEqual(await tabs.allTextContents(), ['Terminal 1', 'Terminal 2', 'Terminal 3']);
  assert.equal(await tablist.getByRole('button').count(), 0, 'a button in the tab list besides its tabs');
  /** What the tabs say of themselves, and what has the focus. */
  const state = () => page.evaluate(() => ({
    focus: document.activeElement?.dataset.testid,
    tabs: [...document.querySelectorAll('[data-testid="shell-panel"] [role="tab"]')].map((tab) => {
      const panel = document.getElementById(tab.getAttribute('aria-controls'));
      return {
        tab: tab.dataset.testid,
        selected: tab.getAttribute('aria-selected'),
        tabindex: tab.getAttribute('tabindex'),
        panel: panel && panel.getAttribute('role') === 'tabpanel' && panel.getAttribute('aria-labelledby') === tab.id ? (panel.hidden ? 'hidden' : 'shown') : 'none',
      };
    }),
  }));
  /** The state with tab n shown and the focus on focus. */
  const expect = (n, focus = `shell-tab-${n}`) => ({
    focus,
    tabs: [1, 2, 3].map((k) => ({
      tab: `shell-tab-${k}`, selected: String(k === n), tabindex: k === n ? '0' : '-1', panel: k === n ? 'shown' : 'hidden',
    })),
  });

  await page.getByTestId('shell-tab-1').click();
  await page.getByTestId('shell-view-1').locator('.xterm-screen').click();
  await page.keyboard.press('Control+Shift+E');
  assert.deepEqual(await state(), expect(1));
  await page.keyboard.press('ArrowRight');
  assert.deepEqual(await state(), expect(2), 'Right from the first tab');
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('ArrowRight');
  assert.deepEqual(await state(), expect(1), 'Right from the last tab goes round to the first');
  await page.keyboard.press('ArrowLeft');
  assert.deepEqual(await state(), expect(3), 'Left from the first tab goes round to the last');
  await page.keyboard.press('Home');
  assert.deepEqual(await state(), expect(1), 'Home');
  await page.keyboard.press('End');
  assert.deepEqual(await state(), expect(3), 'End');
  // The tab list is one Tab stop, at the tab shown.
  await page.keyboard.press('Tab');
  assert.equal(await focused(page), 'shell-new', 'Tab from a tab went on to another tab');
  await page.keyboard.press('Shift+Tab');
  assert.equal(await focused(page), 'shell-tab-3', 'Shift+Tab came back to another tab than the one shown');
  await page.screenshot({ path: join(artifacts, 'console-shell-tab-keys.png') });

  // Delete closes the tab; the focus goes to the tab shown in its place.
  await page.keyboard.press('ArrowLeft');
  await page.keyboard.press('Delete');
  await until('terminal 2 to close', async () => (await tabs.count()) === 2);
  assert.deepEqual(await tabs.allTextContents(), ['Terminal 1', 'Terminal 3']);
  const after = await state();
  assert.equal(after.focus, 'shell-tab-3', 'after Delete the focus is not on the tab shown next');
  assert.deepEqual(after.tabs.map((t) => [t.tab, t.selected, t.tabindex, t.panel]),
    [['shell-tab-1', 'false', '-1', 'hidden'], ['shell-tab-3', 'true', '0', 'shown']]);
  // Enter goes into the terminal shown.
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.activeElement?.closest('[data-testid="shell-view-3"]') && document.activeElement.classList.contains('xterm-helper-textarea'), null, { timeout: 5000 })
    .catch(async () => assert.fail(`Enter on the tab left the focus on ${await focused(page)}`));
  await page.getByTestId('shell-tab-1').click();
  assert.deepEqual(pageErrors, []);
});

test('a closed terminal looks closed and offers a new one', { timeout: 60_000 }, async () => {
  await page.getByTestId('shell-view-1').locator('.xterm-screen').click();
  await page.keyboard.type('exit\n');
  await page.locator('[data-testid="shell-tab-1"][data-state="closed"]').waitFor({ timeout: 10_000 });
  const view = page.getByTestId('shell-view-1');
  const action = view.getByTestId('shell-status-action');
  assert.equal(await action.innerText(), 'Open a new terminal');
  // The keyboard is not left in a terminal that takes nothing.
  assert.equal(await focused(page), 'shell-status-action');
  assert.equal(await view.locator('.xterm-cursor-blink').count(), 0, 'the cursor of a closed terminal blinks');
  await page.screenshot({ path: join(artifacts, 'console-shell-closed.png') });
  await page.keyboard.press('Enter');
  await page.locator('[data-testid="shell-tab-1"][data-state="open"]').waitFor({ timeout: 10_000 });
  assert.deepEqual(pageErrors, []);
});

test('a reconnect of the technician\u2019s connection is not reported as the user revoking Terminal', { timeout: 90_000 }, async () => {
  await page.locator('[data-testid="shell-tab-1"][data-state="open"]').waitFor();
  await page.evaluate(() => window.tether.viewer.ws.close()); // the technician's network blips
  await page.waitForSelector('[data-testid="conn-state"][data-state="live"]', { timeout: 30_000 });
  await page.waitForTimeout(1500);
  const view = page.getByTestId('shell-view-1');
  const status = await view.getByTestId('shell-status').innerText();
  await page.screenshot({ path: join(artifacts, 'console-shell-reconnect.png') });
  assert.doesNotMatch(status, /revoked/i);
  assert.match(status, /your connection to the session dropped/);
  // A new connection is a new viewer: the user is asked again, from here.
  assert.equal(await view.getByTestId('shell-status-action').innerText(), 'Ask to use Terminal');
  assert.match(await page.getByTestId('shell-new').getAttribute('data-tip'), /has not allowed Terminal/);
  assert.deepEqual(pageErrors, []);
});

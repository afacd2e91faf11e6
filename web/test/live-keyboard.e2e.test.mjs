// The live session page from the keyboard alone, on the real stack (a real
// broker, a real host on Xvfb that allows what it is asked, headless
// Chromium): the focus can be seen on the dark page, Escape closes the
// Files panel, a cancelled transfer keeps the focus, and each terminal tab
// can be closed without a mouse (Delete on the tab).

import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { collectErrors, launch } from './browser.mjs';
import { openSession, ROOT, startBroker, startHost, startXvfb, stopAll, tempDir } from './procs.mjs';

const ARTIFACTS = join(ROOT, 'artifacts');
mkdirSync(ARTIFACTS, { recursive: true });

after(stopAll);

/** What has the keyboard focus: its data-testid, or its tag name. */
const focused = (page) => page.evaluate(() => {
  const el = document.activeElement;
  return el?.dataset?.testid || el?.tagName.toLowerCase() || '';
});

// focusContrast runs in the page: the contrast between the focused
// element's focus ring (its outline, or else the outermost ring of its box
// shadow) and the background around it.
function focusContrast() {
  const el = document.activeElement;
  const parse = (c) => {
    const m = c.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const [r, g, b, a = 1] = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    return { r, g, b, a };
  };
  const lum = ({ r, g, b }) => {
    const f = (v) => {
      const s = v / 255;
      return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  let bg = null;
  for (let e = el.parentElement; e && !bg; e = e.parentElement) {
    const c = parse(getComputedStyle(e).backgroundColor);
    if (c && c.a >= 1) bg = c;
  }
  const cs = getComputedStyle(el);
  let ring = cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) > 0 ? parse(cs.outlineColor) : null;
  if (!ring && cs.boxShadow !== 'none') {
    const colors = cs.boxShadow.match(/rgba?\([^)]+\)/g) ?? [];
    ring = parse(colors.at(-1) ?? '');
  }
  if (!ring || !bg) return 1;
  const blended = { r: ring.r * ring.a + bg.r * (1 - ring.a), g: ring.g * ring.a + bg.g * (1 - ring.a), b: ring.b * ring.a + bg.b * (1 - ring.a) };
  const [hi, lo] = [lum(blended), lum(bg)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

test('the live session page from the keyboard', { timeout: 240_000 }, async (t) => {
  const home = tempDir('tether-home-');
  writeFileSync(join(home, 'report.txt'), 'report');
  const display = await startXvfb(1280, 720);
  const broker = await startBroker();
  const browser = await launch({ viewport: { width: 1280, height: 720 } });
  t.after(() => browser.close());
  const page = await browser.newPage();
  const pageErrors = collectErrors(page);
  const byId = (id) => page.getByTestId(id);
  const shot = (name) => page.screenshot({ path: join(ARTIFACTS, `live-keyboard-${name}.png`) });

  const code = await openSession(page, broker, 'INC-KEYS');
  const host = startHost(broker, code, display, { args: ['-files-root', home, '-files-inbox', join(home, 'Downloads', 'Tether')] });
  await host.ready;
  await page.locator('[data-testid="conn-state"][data-state="live"]').waitFor({ timeout: 30_000 });

  await t.test('the focus on a button can be seen on the dark page', async () => {
    await byId('fullscreen').focus();
    await page.keyboard.press('Tab');
    assert.equal(await focused(page), 'bring-in');
    await page.keyboard.press('Tab');
    assert.equal(await focused(page), 'end-session');
    await page.waitForTimeout(300); // the ring fades in
    const ratio = await page.evaluate(focusContrast);
    assert.ok(ratio >= 3, `the focus ring around End session is ${ratio.toFixed(2)}:1 against the bar`);
    await shot('1-end-focused');
  });

  await t.test('the remote-control toolbar is one stop for Tab; the arrow keys move along it', async () => {
    await byId('mode-view').focus();
    const along = [];
    for (let i = 0; i < 12; i++) {
      await page.keyboard.press('ArrowRight');
      along.push(await focused(page));
      if (along.at(-1) === 'mode-view') break;
    }
    // Not in control: the keys menu is disabled and left out.
    assert.deepEqual(along, ['mode-control', 'clipboard-open', 'fit-toggle', 'stats-toggle', 'fullscreen', 'mode-view']);
    await page.keyboard.press('ArrowLeft');
    assert.equal(await focused(page), 'fullscreen', 'Left from the first goes round to the last');
    await page.keyboard.press('Home');
    assert.equal(await focused(page), 'mode-view');
    await page.keyboard.press('End');
    await page.keyboard.press('ArrowLeft');
    assert.equal(await focused(page), 'stats-toggle');
    // Tab leaves the toolbar, and Shift+Tab comes back to where it was.
    await page.keyboard.press('Tab');
    assert.equal(await focused(page), 'bring-in');
    await page.keyboard.press('Shift+Tab');
    assert.equal(await focused(page), 'stats-toggle');
    // The arrow keys inside the clipboard panel are the panel's own.
    await byId('clipboard-open').focus();
    await page.keyboard.press('Enter');
    await byId('clipboard-send-text').focus();
    await page.keyboard.type('ab');
    await page.keyboard.press('ArrowLeft');
    assert.equal(await focused(page), 'clipboard-send-text');
    assert.equal(await byId('clipboard-send-text').evaluate((el) => el.selectionStart), 1);
    await byId('clipboard-send-text').fill('');
    await page.keyboard.press('Escape');
    await page.locator('#clipboard-panel').waitFor({ state: 'hidden', timeout: 2000 });
  });

  await t.test('Escape closes the Files panel and gives the focus back to its button', async () => {
    await byId('files-open').focus();
    await page.keyboard.press('Enter');
    await page.keyboard.press('Enter'); // ask the user, who allows it
    await byId('files-upload').waitFor({ timeout: 20_000 });
    assert.equal(await focused(page), 'files-upload');
    await page.keyboard.press('Escape');
    await byId('files-panel').waitFor({ state: 'hidden', timeout: 2000 });
    assert.equal(await focused(page), 'files-open');
    assert.equal(await byId('files-open').getAttribute('aria-pressed'), 'false');
  });

  await t.test('a transfer cancelled from the keyboard keeps the focus', async () => {
    await page.keyboard.press('Enter'); // opens Files again
    await byId('files-upload').waitFor();
    const dir = tempDir('tether-send-');
    const big = join(dir, 'disk-image.bin');
    writeFileSync(big, Buffer.alloc(400 << 20, 7));
    await byId('files-input').setInputFiles(big);
    const cancel = page.locator('[data-testid="transfer"][data-name="disk-image.bin"] [data-testid="transfer-cancel"]');
    await cancel.waitFor();
    await cancel.focus();
    await page.keyboard.press('Enter');
    await page.locator('[data-testid="transfer"][data-name="disk-image.bin"][data-state="cancelled"]').waitFor({ timeout: 10_000 });
    assert.equal(await focused(page), 'transfer', 'the focus is on the cancelled transfer, not on the page');
    await page.keyboard.press('Shift+Tab');
    assert.notEqual(await focused(page), 'body', 'and the keyboard goes on from there');
    await shot('2-cancelled');
  });

  await t.test('each terminal tab can be closed from the keyboard', async () => {
    await byId('shell-open').focus();
    await page.keyboard.press('Enter');
    await page.keyboard.press('Enter'); // ask the user, who allows it
    await byId('shell-start').waitFor({ timeout: 20_000 });
    assert.equal(await focused(page), 'shell-start');
    await page.keyboard.press('Enter');
    await page.locator('[data-testid="shell-tab-1"][data-state="open"]').waitFor({ timeout: 15_000 });
    await byId('shell-new').click();
    await page.locator('[data-testid="shell-tab-2"][data-state="open"]').waitFor({ timeout: 15_000 });

    // Delete on a tab closes it, as in any tab list.
    await byId('shell-tab-2').focus();
    await page.keyboard.press('ArrowLeft');
    assert.equal(await focused(page), 'shell-tab-1');
    await shot('3-tab-focused');
    await page.keyboard.press('Delete');
    await byId('shell-tab-1').waitFor({ state: 'detached' });
    assert.equal(await focused(page), 'shell-tab-2', 'the focus goes to the tab still open');
    assert.equal(await byId('shell-tab-2').getAttribute('aria-selected'), 'true');

    await page.keyboard.press('Delete');
    await byId('shell-start').waitFor();
    assert.equal(await focused(page), 'shell-start', 'the last one closed: the focus on what opens another');
  });

  assert.deepEqual(pageErrors.map(String), []);
});

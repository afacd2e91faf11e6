// Text in the console is readable against what is behind it: at least
// 4.5:1 (3:1 for large text), the contrast WCAG 2 AA asks of text, on each
// page a helpdesk uses every day. A real broker with a waiting session and
// a recording, and headless Chromium.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { launch } from './browser.mjs';
import { api, recordShellArchive, ROOT, signIn, startBroker, stopAll } from './procs.mjs';

const artifacts = join(ROOT, 'artifacts');
mkdirSync(artifacts, { recursive: true });
after(stopAll);

// lowContrast runs in the page: each visible text whose colour, blended
// with the backgrounds behind it, is too close to them, with its ratio.
// Text over a gradient or a picture, disabled controls and the terminal
// emulators (their colours are the remote program's) are not judged.
function lowContrast() {
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
  const over = (top, under) => ({
    r: top.r * top.a + under.r * (1 - top.a),
    g: top.g * top.a + under.g * (1 - top.a),
    b: top.b * top.a + under.b * (1 - top.a),
    a: 1,
  });
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const cs = getComputedStyle(e);
      if (cs.backgroundImage !== 'none') return null;
      const c = parse(cs.backgroundColor);
      if (c && c.a > 0) {
        layers.push(c);
        if (c.a >= 1) break;
      }
    }
    let bg = { r: 255, g: 255, b: 255, a: 1 };
    for (const c of layers.reverse()) bg = over(c, bg);
    return bg;
  };
  const found = [];
  const seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!n.textContent.trim() || seen.has(el)) continue;
    seen.add(el);
    if (!el.checkVisibility({ opacityProperty: true, visibilityProperty: true })) continue;
    const box = el.getBoundingClientRect();
    if (box.width <= 1 || box.height <= 1) continue;
    if (el.closest('[disabled], [aria-disabled="true"], .visually-hidden, .ap-player, .xterm')) continue;
    const bg = background(el);
    if (!bg) continue;
    const cs = getComputedStyle(el);
    let opacity = 1;
    for (let e = el; e; e = e.parentElement) opacity *= Number(getComputedStyle(e).opacity);
    const c = parse(cs.color);
    const fg = over({ ...c, a: c.a * opacity }, bg);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(cs.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(cs.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) {
      found.push(`"${n.textContent.trim().slice(0, 30)}" (${el.className || el.tagName}) ${ratio.toFixed(2)}:1, ${cs.color} on rgb(${Math.round(bg.r)}, ${Math.round(bg.g)}, ${Math.round(bg.b)})`);
    }
  }
  return found;
}

test('the console\u2019s text stands out from its background', { timeout: 90_000 }, async (t) => {
  const broker = await startBroker();
  const rec = await recordShellArchive(broker, 'INC-READ');
  await api(broker, 'POST', '/api/v1/sessions', {}); // waiting, with no ticket
  const browser = await launch({ viewport: { width: 1440, height: 900 } });
  t.after(() => browser.close());
  const page = await browser.newPage();
  await page.goto(broker.url);
  await page.getByTestId('login-username').waitFor();
  assert.deepEqual(await page.evaluate(lowContrast), [], 'sign-in page');
  await signIn(page, broker);
  await page.getByTestId('new-session').waitFor();

  const pages = [
    ['Sessions', '#/sessions', 'session-row'],
    ['Recordings', '#/recordings', 'recording-row'],
    ['the player', `#/recording/${rec.id}`, 'event-row'],
    ['Accounts', '#/admin/accounts', 'nav-accounts'],
    ['API keys', '#/admin/keys', 'nav-keys'],
    ['Account security', '#/account', 'nav-account'],
  ];
  for (const [name, hash, shown] of pages) {
    await t.test(name, async () => {
      await page.goto(`${broker.url}/${hash}`);
      await page.getByTestId(shown).first().waitFor();
      await page.waitForTimeout(800);
      const low = await page.evaluate(lowContrast);
      if (low.length) await page.screenshot({ path: join(artifacts, `contrast-${name.replaceAll(' ', '-')}.png`) });
      assert.deepEqual(low, []);
    });
  }
});

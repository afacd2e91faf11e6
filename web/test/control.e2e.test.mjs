// Remote control through the real console: a real broker, a real host on
// Xvfb, the input witness (testdata/xpattern -mode input) reporting what
// reaches the X server, and headless Chromium driving the console.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { collectErrors, launch, remotePoint } from './browser.mjs';
import { bin, openSession, ROOT, start, startHost, startXvfb, startBroker, stopAll } from './procs.mjs';

const WIDTH = 1280;
const HEIGHT = 720;

after(stopAll);

// waitLine resolves with the first witness line after `from` matching re.
async function waitLine(witness, re, from, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const lines = witness.out.stdout.split('\n').slice(from);
    const hit = lines.find((l) => re.test(l));
    if (hit) return hit;
    if (Date.now() > deadline) throw new Error(`no witness line ${re} in:\n${lines.join('\n')}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
const mark = (witness) => witness.out.stdout.split('\n').length - 1;
// clicked reports whether a button press reached the X server since from.
const clicked = (witness, from) => witness.out.stdout.split('\n').slice(from).some((l) => l.startsWith('button 1 down'));

test('technician controls the remote desktop from the console', { timeout: 120_000 }, async () => {
  const display = await startXvfb(WIDTH, HEIGHT);
  const witness = start(bin('xpattern'), ['-mode', 'input'], { env: { DISPLAY: display }, readyLine: /ready/ });
  await witness.ready;
  const broker = await startBroker();
  const browser = await launch();
  try {
    const page = await browser.newPage();
    const code = await openSession(page, broker);
    const host = startHost(broker, code, display);
    await host.ready;
    await page.waitForSelector('[data-testid="conn-state"][data-state="live"]', { timeout: 30_000 });
    await page.waitForFunction(() => document.querySelector('[data-testid="remote-video"]')?.videoWidth > 0);

    // View only: a click does nothing on the remote machine.
    let from = mark(witness);
    let [px, py] = await remotePoint(page, 50, 50);
    await page.mouse.click(px, py);
    await page.waitForTimeout(800);
    assert.ok(!witness.out.stdout.split('\n').slice(from).some((l) => l.startsWith('button')), 'view-only click reached the host');

    // Control: clicks land on the remote pixels, whatever the scaling.
    await page.getByTestId('mode-control').click();
    await page.waitForFunction(() => window.tether.control?.enabled === true);
    for (const [x, y] of [[100, 200], [1200, 650], [640, 360]]) {
      from = mark(witness);
      [px, py] = await remotePoint(page, x, y);
      await page.mouse.click(px, py);
      const line = await waitLine(witness, /^button 1 down /, from);
      const [, , , gx, gy] = line.split(' ').map(Number);
      assert.ok(Math.abs(gx - x) <= 1 && Math.abs(gy - y) <= 1, `click at ${x},${y} landed at ${gx},${gy}`);
    }

    // 1:1 mode: actual pixels, the same remote points.
    await page.getByTestId('fit-toggle').click();
    await page.waitForFunction((w) => document.querySelector('[data-testid="remote-video"]').getBoundingClientRect().width === w, WIDTH);
    for (const [x, y] of [[3, 400], [900, 20]]) { // inside the visible part of the scrolled picture
      from = mark(witness);
      [px, py] = await remotePoint(page, x, y);
      await page.mouse.click(px, py);
      const line = await waitLine(witness, /^button 1 down /, from);
      const [, , , gx, gy] = line.split(' ').map(Number);
      assert.ok(Math.abs(gx - x) <= 1 && Math.abs(gy - y) <= 1, `1:1 click at ${x},${y} landed at ${gx},${gy}`);
    }
    await page.getByTestId('fit-toggle').click();
    [px, py] = await remotePoint(page, 640, 360);
    await page.mouse.click(px, py); // the keyboard follows the focus back to the screen

    // Typing, with shifted characters, arrives as text.
    from = mark(witness);
    // As a person types it: Shift held for the capital and the "!".
    for (const keys of ['Shift+KeyH', 'KeyI', 'Shift+Digit1']) await page.keyboard.press(keys);
    const typed = [];
    for (let i = 0; i < 3; i++) {
      const line = await waitLine(witness, /^text /, from);
      from = witness.out.stdout.split('\n').indexOf(line, from) + 1;
      typed.push(line.slice(5));
    }
    assert.deepEqual(typed, ['H', 'i', '!']);

    // Clipboard from the technician to the user.
    await page.getByTestId('clipboard-open').click();
    await page.getByTestId('clipboard-send-text').fill('pasted from the console');
    await page.getByTestId('clipboard-send').click();
    const deadline = Date.now() + 10_000;
    let clip = '';
    while (Date.now() < deadline) {
      try { clip = execFileSync('xclip', ['-o', '-selection', 'clipboard'], { env: { ...process.env, DISPLAY: display } }).toString(); } catch { clip = ''; }
      if (clip === 'pasted from the console') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(clip, 'pasted from the console');
    await page.keyboard.press('Escape');

    // A held Ctrl is released when the page goes away: no stuck key.
    [px, py] = await remotePoint(page, 640, 360);
    await page.mouse.click(px, py);
    from = mark(witness);
    await page.keyboard.down('Control');
    await waitLine(witness, /^key down \d+ Control_L$/, from);
    await page.close();
    await waitLine(witness, /^key up \d+ Control_L$/, from, 15_000);
  } finally {
    await browser.close();
  }
});

test('control moves to the tab that takes it; the other tab says so and can take it back', { timeout: 120_000 }, async () => {
  const display = await startXvfb(WIDTH, HEIGHT);
  const witness = start(bin('xpattern'), ['-mode', 'input'], { env: { DISPLAY: display }, readyLine: /ready/ });
  await witness.ready;
  const broker = await startBroker();
  const browser = await launch();
  const artifacts = join(ROOT, 'artifacts');
  mkdirSync(artifacts, { recursive: true });
  try {
    // The same technician, the same session, two tabs.
    const first = await browser.newPage();
    const errors = collectErrors(first);
    const code = await openSession(first, broker);
    const host = startHost(broker, code, display);
    await host.ready;
    const second = await browser.newPage();
    errors.push(...collectErrors(second));
    await second.goto(first.url());
    for (const page of [first, second]) {
      await page.waitForSelector('[data-testid="conn-state"][data-state="live"]', { timeout: 30_000 });
      await page.waitForFunction(() => document.querySelector('[data-testid="remote-video"]')?.videoWidth > 0);
      await page.waitForSelector('[data-testid="mode-control"]:not([disabled])');
    }
    const tryClick = async (page, x, y) => {
      const from = mark(witness);
      const [px, py] = await remotePoint(page, x, y);
      await page.mouse.click(px, py);
      await page.waitForTimeout(800);
      return clicked(witness, from);
    };

    // The first tab takes control and holds Ctrl down.
    await first.bringToFront();
    await first.getByTestId('mode-control').click();
    await first.waitForFunction(() => window.tether.control?.enabled === true);
    assert.ok(await tryClick(first, 100, 100), 'the tab in control could not click');
    let from = mark(witness);
    await first.keyboard.down('Control');
    await waitLine(witness, /^key down \d+ Control_L$/, from);

    // The second tab takes it: the first one's Ctrl is let go, it shows
    // that control moved, and only the second one's clicks land.
    await second.bringToFront();
    await second.getByTestId('mode-control').click();
    await second.waitForFunction(() => window.tether.control?.enabled === true);
    await waitLine(witness, /^key up \d+ Control_L$/, from);
    await first.keyboard.up('Control');
    await first.waitForFunction(() => window.tether.control?.enabled === false, null, { timeout: 5000 });
    const moved = first.getByTestId('control-moved');
    await moved.waitFor({ timeout: 5000 });
    assert.match(await moved.textContent(), /another window/);
    assert.equal(await first.getByTestId('mode-view').getAttribute('aria-pressed'), 'true');
    await first.screenshot({ path: join(artifacts, 'console-control-moved-away.png') });
    await second.screenshot({ path: join(artifacts, 'console-control-moved-here.png') });
    assert.ok(!(await tryClick(first, 200, 200)), 'the tab that lost control still clicked on the remote computer');
    assert.ok(await tryClick(second, 300, 300), 'the tab that took control could not click');
    // It still says so a while later, when the technician looks again.
    await first.waitForTimeout(7000);
    assert.ok(await moved.isVisible(), 'the word that control moved went away on its own');

    // The first tab takes it back.
    await first.bringToFront();
    await first.getByTestId('mode-control').click();
    await first.waitForFunction(() => window.tether.control?.enabled === true);
    await moved.waitFor({ state: 'hidden' });
    await second.getByTestId('control-moved').waitFor({ timeout: 5000 });
    assert.equal(await second.evaluate(() => window.tether.control?.enabled), false);
    assert.ok(await tryClick(first, 400, 400), 'the tab that took control back could not click');
    assert.ok(!(await tryClick(second, 500, 500)), 'the tab that lost control still clicked on the remote computer');
    await second.screenshot({ path: join(artifacts, 'console-control-moved-back.png') });
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

// cutOff drops the page's connection to the broker, as a moment without
// network does, and keeps it from reconnecting until the returned function
// is called; the page then reconnects by itself.
async function cutOff(page) {
  let away = true;
  await page.routeWebSocket(/\/ws\/viewer$/, (ws) => (away ? ws.close() : ws.connectToServer()));
  await page.evaluate(() => window.tether.viewer.ws.close());
  await page.waitForSelector('[data-testid="conn-state"][data-state="reconnecting"]', { timeout: 10_000 });
  return () => { away = false; };
}

test('a tab that reconnects takes control back only if nobody took it meanwhile', { timeout: 180_000 }, async () => {
  const display = await startXvfb(WIDTH, HEIGHT);
  const witness = start(bin('xpattern'), ['-mode', 'input'], { env: { DISPLAY: display }, readyLine: /ready/ });
  await witness.ready;
  const broker = await startBroker();
  const browser = await launch();
  const artifacts = join(ROOT, 'artifacts');
  mkdirSync(artifacts, { recursive: true });
  try {
    const first = await browser.newPage();
    const code = await openSession(first, broker);
    const host = startHost(broker, code, display);
    await host.ready;
    const second = await browser.newPage();
    await second.goto(first.url());
    const live = async (page) => {
      await page.waitForSelector('[data-testid="conn-state"][data-state="live"]', { timeout: 30_000 });
      await page.waitForFunction(() => document.querySelector('[data-testid="remote-video"]')?.videoWidth > 0);
      await page.waitForSelector('[data-testid="mode-control"]:not([disabled])');
    };
    await live(first);
    await live(second);
    const tryClick = async (page, x, y) => {
      const from = mark(witness);
      const [px, py] = await remotePoint(page, x, y);
      await page.mouse.click(px, py);
      await page.waitForTimeout(800);
      return clicked(witness, from);
    };
    const enabled = (page) => page.evaluate(() => window.tether.control?.enabled);

    // The first tab is in control when its connection drops; the second
    // tab takes control meanwhile.
    await first.bringToFront();
    await first.getByTestId('mode-control').click();
    await first.waitForFunction(() => window.tether.control?.enabled === true);
    let back = await cutOff(first);
    await second.bringToFront();
    await second.getByTestId('mode-control').click();
    await second.waitForFunction(() => window.tether.control?.enabled === true);

    // Back, the first tab watches and says where control is; the second
    // keeps it.
    back();
    await live(first);
    const moved = first.getByTestId('control-moved');
    await moved.waitFor({ timeout: 5000 }).catch(() => {});
    await first.waitForTimeout(2000); // time enough for it to have taken control back
    assert.equal(await enabled(second), true, 'the tab that reconnected took control from the one that had taken it');
    assert.equal(await second.getByTestId('control-moved').isVisible(), false);
    assert.equal(await enabled(first), false);
    assert.equal(await first.getByTestId('mode-view').getAttribute('aria-pressed'), 'true');
    assert.ok(await moved.isVisible(), 'the tab that reconnected does not say where control went');
    assert.match(await moved.textContent(), /You took control in another window while this one was reconnecting\. Click Control to take it back here\./);
    await first.screenshot({ path: join(artifacts, 'console-control-taken-while-away.png') });
    assert.ok(!(await tryClick(first, 200, 200)), 'the tab that reconnected clicked on the remote computer');
    await second.bringToFront();
    assert.ok(await tryClick(second, 300, 300), 'the tab that took control could not click');

    // It takes control back; its connection drops again and nobody takes
    // control meanwhile: back, it has control again.
    await first.bringToFront();
    await first.getByTestId('mode-control').click();
    await first.waitForFunction(() => window.tether.control?.enabled === true);
    await moved.waitFor({ state: 'hidden' });
    await second.getByTestId('control-moved').waitFor({ timeout: 5000 });
    back = await cutOff(first);
    await first.waitForTimeout(1000);
    back();
    await live(first);
    await first.waitForFunction(() => window.tether.control?.enabled === true, null, { timeout: 10_000 });
    assert.equal(await moved.isVisible(), false);
    assert.equal(await enabled(second), false);
    assert.ok(await tryClick(first, 400, 400), 'the tab back in control could not click');
  } finally {
    await browser.close();
  }
});

test('a click right after switching to a display of another size lands where it points', { timeout: 120_000 }, async () => {
  // The user's screen is two monitors of different sizes side by side.
  const display = await startXvfb(2560, 1080);
  const env = { ...process.env, DISPLAY: display };
  execFileSync('xrandr', ['--setmonitor', '*Left', '1600/423x1080/286+0+0', 'screen'], { env });
  execFileSync('xrandr', ['--setmonitor', 'Right', '960/254x720/190+1600+0', 'none'], { env });
  const witness = start(bin('xpattern'), ['-mode', 'input'], { env: { DISPLAY: display }, readyLine: /ready/ });
  await witness.ready;
  const broker = await startBroker();
  const browser = await launch();
  try {
    const page = await browser.newPage();
    const errors = collectErrors(page);
    const code = await openSession(page, broker);
    const host = startHost(broker, code, display);
    await host.ready;
    await page.waitForSelector('[data-testid="conn-state"][data-state="live"]', { timeout: 30_000 });
    const pictureWidth = () => page.getByTestId('remote-video').evaluate((v) => v.videoWidth);
    await page.waitForFunction(() => document.querySelector('[data-testid="remote-video"]')?.videoWidth === 1600);
    await page.getByTestId('mode-control').click();
    await page.waitForFunction(() => window.tether.control?.enabled === true);
    const picker = page.getByTestId('display-picker');
    assert.deepEqual(await picker.locator('option').allTextContents(), ['Left · 1600 × 1080 · main', 'Right · 960 × 720']);

    // The technician picks the right monitor and clicks at once, again and
    // again, while the picture still shows the left one, until the right
    // one's picture comes; then once more. The page notes the picture's
    // width at each press: asking for it between clicks would let a quick
    // switch end before the first click.
    const [px, py] = await remotePoint(page, 700, 400);
    await page.evaluate(() => {
      window.pressedOn = [];
      addEventListener('pointerdown', () => window.pressedOn.push(document.querySelector('[data-testid="remote-video"]').videoWidth), true);
    });
    // A switch quicker than the first click proves nothing: then the left
    // monitor is picked again, and the switch tried once more.
    let from;
    let pressedOn = [];
    for (let attempt = 1; attempt <= 5 && !pressedOn.includes(1600); attempt++) {
      if (attempt > 1) {
        await picker.selectOption('0');
        await page.waitForFunction(() => document.querySelector('[data-testid="remote-video"]')?.videoWidth === 1600);
      }
      await page.evaluate(() => { window.pressedOn = []; });
      from = mark(witness);
      await picker.selectOption('1');
      for (const deadline = Date.now() + 10_000; Date.now() < deadline;) {
        await page.mouse.click(px, py);
        if (await pictureWidth() === 960) break;
      }
      assert.equal(await pictureWidth(), 960, 'the right monitor is shown');
      pressedOn = await page.evaluate(() => window.pressedOn);
    }
    assert.ok(pressedOn.includes(1600), `no click went while the left monitor was still shown, in 5 switches: pictures ${pressedOn}`);
    await page.mouse.click(px, py);
    // Where that point is on the right monitor's picture.
    const [rx, ry] = await page.getByTestId('remote-video').evaluate((v, [x, y]) => {
      const r = v.getBoundingClientRect();
      const scale = Math.min(r.width / v.videoWidth, r.height / v.videoHeight);
      const left = r.left + (r.width - v.videoWidth * scale) / 2;
      const top = r.top + (r.height - v.videoHeight * scale) / 2;
      return [Math.floor((x - left) / scale), Math.floor((y - top) / scale)];
    }, [px, py]);
    // Each click lands where the picture it was made on shows that point:
    // on the left monitor while it was shown and the host not yet switched,
    // else on the right one. None lands on the right monitor as if it
    // were the size of the left one (near 2300,400).
    const near = (line, x, y) => {
      const [gx, gy] = line.split(' ').slice(3).map(Number);
      return Math.abs(gx - x) <= 1 && Math.abs(gy - y) <= 1;
    };
    const downs = () => witness.out.stdout.split('\n').slice(from).filter((l) => l.startsWith('button 1 down'));
    const deadline = Date.now() + 10_000;
    while (!downs().some((l) => near(l, 1600 + rx, ry)) && Date.now() < deadline) await page.waitForTimeout(25);
    assert.ok(downs().some((l) => near(l, 1600 + rx, ry)), `no click on the right monitor near ${1600 + rx},${ry}: ${downs().join(', ')}`);
    for (const line of downs()) {
      assert.ok(near(line, 700, 400) || near(line, 1600 + rx, ry), `${line}, among the clicks: ${downs().join(', ')}`);
    }
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

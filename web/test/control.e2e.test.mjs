// Remote control through the real console: a real broker, a real host on
// Xvfb, the input witness (testdata/xpattern -mode input) reporting what
// reaches the X server, and headless Chromium driving the console (or, to
// turn a real mouse wheel, Chromium with a window on an Xvfb of its own).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { collectErrors, launch, remotePoint } from './browser.mjs';
import { api, bin, openSession, ROOT, signIn, start, startHost, startXvfb, startBroker, stopAll, until } from './procs.mjs';

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

/** A WIDTH x HEIGHT screen whose input the witness prints, and a broker. */
async function witnessed() {
  const display = await startXvfb(WIDTH, HEIGHT);
  const witness = start(bin('xpattern'), ['-mode', 'input'], { env: { DISPLAY: display }, readyLine: /ready/ });
  await witness.ready;
  return { display, witness, broker: await startBroker() };
}

test('technician controls the remote desktop from the console', { timeout: 120_000 }, async () => {
  const { display, witness, broker } = await witnessed();
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
  const { display, witness, broker } = await witnessed();
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
  const { display, witness, broker } = await witnessed();
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

test('a click right after switching to a display of another size lands where it points, and the header names its size', { timeout: 120_000 }, async () => {
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
    const sizeChip = page.getByTestId('display-size');
    assert.equal(await sizeChip.innerText(), '1600 × 1080');

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
    // The header names the monitor shown now, not the first one.
    await page.waitForFunction(() => document.querySelector('[data-testid="display-size"]').textContent === '960 \u00d7 720', null, { timeout: 5000 })
      .catch(async () => assert.fail(`the header says the remote display is ${await sizeChip.innerText()}`));
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test('what the technician types elsewhere on the page stays there when the user allows control', { timeout: 180_000 }, async () => {
  const { display, witness, broker } = await witnessed();
  const created = await api(broker, 'POST', '/api/v1/sessions', { ticket: { id: 'INC-FOCUS' }, permissions: ['view', 'control', 'clipboard', 'shell'] });
  assert.equal(created.status, 201);
  const browser = await launch({ viewport: { width: 1440, height: 900 } });
  const artifacts = join(ROOT, 'artifacts');
  mkdirSync(artifacts, { recursive: true });
  try {
    const page = await browser.newPage();
    const errors = collectErrors(page);
    await signIn(page, broker, `/#/session/${created.body.id}`);
    const host = startHost(broker, created.body.code, display, { answer: null });
    await host.ready;
    const asked = (n) => until(`question ${n} on the host`, () => host.out.stdout.split('Allow? ').length - 1 >= n, 20_000);
    const keysSince = (from) => witness.out.stdout.split('\n').slice(from).filter((l) => /^(key|text) /.test(l));
    const focused = () => page.evaluate(() => document.activeElement?.dataset?.testid || document.activeElement?.tagName.toLowerCase());
    const hint = page.getByTestId('capture-hint');
    const requestControl = page.locator('[data-testid="request-perm"][data-perm="control"]');

    // The user lets the technician see, share the clipboard and open a
    // terminal; not control, yet.
    await asked(1);
    host.type('view clipboard shell');
    await page.waitForSelector('[data-testid="conn-state"][data-state="live"]', { timeout: 30_000 });
    await page.waitForFunction(() => document.querySelector('[data-testid="remote-video"]')?.videoWidth > 0, null, { timeout: 20_000 });

    // The technician asks for control, and writes a text for the user's
    // clipboard while the user decides: the user's yes does not take the
    // keyboard from the text box.
    await requestControl.click();
    await asked(2);
    await page.getByTestId('clipboard-open').click();
    await page.getByTestId('clipboard-send-text').click();
    await page.keyboard.type('abc');
    let from = mark(witness);
    host.type('all');
    await page.waitForFunction(() => window.tether.control?.enabled === true, null, { timeout: 20_000 });
    await page.keyboard.type('xyz');
    await page.waitForTimeout(1000);
    assert.deepEqual(keysSince(from), [], 'keys typed into the clipboard box reached the user\u2019s computer');
    assert.equal(await page.getByTestId('clipboard-send-text').inputValue(), 'abcxyz');
    assert.equal(await focused(), 'clipboard-send-text');
    // The page says where the keyboard goes instead.
    assert.match(await hint.innerText(), /Click the screen to type there/);
    await page.screenshot({ path: join(artifacts, 'console-control-allowed-while-typing.png') });
    await page.keyboard.press('Escape');

    // The same in a terminal, once the user has taken control back and the
    // technician asked again.
    host.type('revoke control');
    await page.waitForFunction(() => window.tether.control?.enabled === false, null, { timeout: 15_000 });
    await page.getByTestId('shell-open').click();
    await page.locator('[data-testid="shell-tab-1"][data-state="open"]').waitFor({ timeout: 15_000 });
    await requestControl.click();
    await asked(3);
    await page.getByTestId('shell-view-1').locator('.xterm-screen').click();
    await page.keyboard.type('echo one\n');
    from = mark(witness);
    host.type('all');
    await page.waitForFunction(() => window.tether.control?.enabled === true, null, { timeout: 20_000 });
    await page.keyboard.type('echo tw""o\n');
    await page.waitForTimeout(1000);
    assert.deepEqual(keysSince(from), [], 'keys typed into the terminal reached the user\u2019s computer');
    await until('the second command\u2019s output in the terminal', async () => /^two$/m.test(await page.getByTestId('shell-view-1').locator('.xterm-rows').innerText()));
    assert.match(await hint.innerText(), /Click the screen to type there/);
    await page.screenshot({ path: join(artifacts, 'console-control-allowed-while-in-terminal.png') });

    // Control the technician takes with the button takes the keyboard.
    await page.getByTestId('mode-view').click();
    await page.waitForFunction(() => window.tether.control?.enabled === false, null, { timeout: 15_000 });
    await page.getByTestId('mode-control').click();
    await page.waitForFunction(() => window.tether.control?.enabled === true, null, { timeout: 15_000 });
    assert.equal(await focused(), 'remote-stage');
    from = mark(witness);
    await page.keyboard.type('k');
    await waitLine(witness, /^text k$/, from);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

/**
 * A live session of a WIDTH x HEIGHT screen whose input the witness
 * prints, in control from a page of a browser launched with opts.
 */
async function inControl(opts) {
  const { display, witness, broker } = await witnessed();
  const browser = await launch(opts);
  const page = await browser.newPage();
  const errors = collectErrors(page);
  const code = await openSession(page, broker);
  const host = startHost(broker, code, display);
  await host.ready;
  await page.waitForSelector('[data-testid="conn-state"][data-state="live"]', { timeout: 30_000 });
  await page.waitForFunction((w) => document.querySelector('[data-testid="remote-video"]')?.videoWidth === w, WIDTH, { timeout: 20_000 });
  await page.getByTestId('mode-control').click();
  await page.waitForFunction(() => window.tether.control?.enabled === true);
  return { witness, browser, page, errors };
}

test('in full screen every pixel of the user\u2019s screen takes a click, under the keyboard tag too', { timeout: 120_000 }, async () => {
  // The technician's screen has the shape of the user's: in full screen
  // the picture fills it, and nothing is left beside it for the tag.
  const { witness, browser, page, errors } = await inControl({ viewport: { width: WIDTH, height: HEIGHT } });
  try {
    await page.getByTestId('fullscreen').click();
    await page.waitForFunction(() => !!document.fullscreenElement);
    await page.waitForTimeout(600);
    let [px, py] = await remotePoint(page, 640, 360);
    await page.mouse.click(px, py);
    const tag = page.getByTestId('keyboard-captured');
    await tag.waitFor();

    // A click in the middle of the tag is a click on what the user's
    // screen shows there (a taskbar button, say); the keyboard stays with
    // the remote screen.
    const box = await tag.boundingBox();
    const [rx, ry] = await page.getByTestId('remote-video').evaluate((v, [x, y]) => {
      const r = v.getBoundingClientRect();
      const scale = Math.min(r.width / v.videoWidth, r.height / v.videoHeight);
      return [Math.floor((x - r.left - (r.width - v.videoWidth * scale) / 2) / scale), Math.floor((y - r.top - (r.height - v.videoHeight * scale) / 2) / scale)];
    }, [box.x + box.width / 2, box.y + box.height / 2]);
    assert.ok(rx >= 0 && ry >= 0 && rx < WIDTH && ry < HEIGHT, `the tag at ${JSON.stringify(box)} is not over the picture`);
    [px, py] = await remotePoint(page, rx, ry);
    const from = mark(witness);
    await page.mouse.click(px, py);
    const line = await waitLine(witness, /^button 1 down /, from, 5000);
    const [gx, gy] = line.split(' ').slice(3).map(Number);
    assert.ok(Math.abs(gx - rx) <= 1 && Math.abs(gy - ry) <= 1, `a click at ${rx},${ry} landed at ${gx},${gy}`);
    assert.equal(await page.evaluate(() => document.activeElement?.dataset.testid), 'remote-stage');
    assert.equal(await tag.isVisible(), true, 'the tag went with the click');
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test('at a device pixel ratio of 1.5, 1:1 shows one remote pixel on one screen pixel, and clicks land where they point', { timeout: 120_000 }, async () => {
  const { witness, browser, page, errors } = await inControl({ viewport: { width: 1000, height: 700 }, deviceScaleFactor: 1.5 });
  try {
    const check = async (how, x, y) => {
      const from = mark(witness);
      const [px, py] = await remotePoint(page, x, y);
      await page.mouse.click(px, py);
      const line = await waitLine(witness, /^button 1 down /, from);
      const [gx, gy] = line.split(' ').slice(3).map(Number);
      assert.ok(Math.abs(gx - x) <= 1 && Math.abs(gy - y) <= 1, `${how}: a click at ${x},${y} landed at ${gx},${gy}`);
    };
    await check('fit', 1000, 600);

    await page.getByTestId('fit-toggle').click();
    await page.waitForTimeout(500);
    const shown = await page.getByTestId('remote-video').evaluate((v) => {
      const r = v.getBoundingClientRect();
      return { width: r.width * devicePixelRatio, height: r.height * devicePixelRatio };
    });
    assert.ok(Math.abs(shown.width - WIDTH) < 0.5 && Math.abs(shown.height - HEIGHT) < 0.5,
      `1:1 shows the ${WIDTH}x${HEIGHT} remote screen on ${shown.width}x${shown.height} screen pixels`);
    await page.evaluate(() => {
      const s = document.querySelector('.stage-surface');
      s.scrollLeft = 100;
      s.scrollTop = 50;
    });
    await check('1:1, scrolled', 500, 300);
    await check('1:1, scrolled', 130, 70);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test('each notch of a real mouse wheel turns the user\u2019s wheel one notch, whatever the browser\u2019s zoom', { timeout: 150_000 }, async () => {
  // A browser with a window, on an X display of its own, where the wheel
  // is turned as a hand turns it (xdotool's buttons 4 and 5): Chromium
  // makes of each notch what it does of a real one, at every zoom.
  const screen = await startXvfb(1600, 1000);
  const xdotool = (...args) => execFileSync('xdotool', args.map(String), { env: { ...process.env, DISPLAY: screen } });
  const { witness, browser, page, errors } = await inControl({ headless: false, display: screen, viewport: { width: 1400, height: 860 } });
  try {

    // Where the page's top left corner is on that display: the pointer
    // moved there, the page says where it sees it.
    await page.evaluate(() => addEventListener('mousemove', (e) => { window.pointerAt = [e.clientX, e.clientY]; }, true));
    xdotool('mousemove', 400, 400);
    const [cx, cy] = await until('the pointer on the page', () => page.evaluate(() => window.pointerAt));
    const origin = [400 - cx, 400 - cy];

    const wheels = (from) => witness.out.stdout.split('\n').slice(from).filter((l) => l.startsWith('wheel'));
    const turns = [
      // Browser zoom as a technician sets it, to read small text or to see
      // more; each from the keyboard, away from the remote screen.
      { zoom: '100%', keys: [], fast: false },
      { zoom: '125%', keys: ['ctrl+plus', 'ctrl+plus'], fast: false },
      { zoom: '80%', keys: ['ctrl+0', 'ctrl+minus', 'ctrl+minus'], fast: true },
    ];
    for (const { zoom, keys, fast } of turns) {
      await page.evaluate(() => document.activeElement.blur());
      for (const k of keys) {
        xdotool('key', k);
        await page.waitForTimeout(400);
      }
      const ratio = await page.evaluate(() => devicePixelRatio);
      assert.equal(`${Math.round(ratio * 100)}%`, zoom, 'the browser\u2019s zoom');
      const [px, py] = await remotePoint(page, 640, 360);
      xdotool('mousemove', Math.round(origin[0] + px * ratio), Math.round(origin[1] + py * ratio));
      await page.waitForFunction(([x, y]) => Math.abs(window.pointerAt[0] - x) <= 2 && Math.abs(window.pointerAt[1] - y) <= 2, [px, py]);
      await page.waitForTimeout(500);
      const from = mark(witness);
      if (fast) {
        xdotool('click', '--repeat', 3, '--delay', 100, 5); // three notches in one quick turn
      } else {
        for (let i = 0; i < 3; i++) {
          xdotool('click', 5); // one notch, as a wheel turned slowly
          await page.waitForTimeout(700);
        }
      }
      await page.waitForTimeout(1000);
      assert.deepEqual(wheels(from), Array(3).fill('wheel down'), `at ${zoom}, three notches ${fast ? 'in one quick turn' : 'one by one'}`);
    }
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

// Remote control from the console at 1440x900, on the real stack: a real
// broker, a real host sharing a 1920x1080 Xvfb display, the input witness
// (testdata/xpattern -mode input) reporting what reaches the X server, and
// headless Chromium driving the console. The user answers the host's
// questions on its terminal, as a person would.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { collectErrors, launch } from './browser.mjs';
import { bin, openSession, ROOT, start, startBroker, startHost, startXvfb, stopAll, tempDir, until } from './procs.mjs';

const ARTIFACTS = join(ROOT, 'artifacts');
const WIDTH = 1920;
const HEIGHT = 1080;
const VIEWPORT = { width: 1440, height: 900 };

after(stopAll);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// until polls fn until it returns something truthy, and returns that;
// what (a string, or a function for a description made at the time) says

// startWitness covers the display with the input witness; its lines say
// what the X server delivered (see testdata/xpattern/input.go).
async function startWitness(display) {
  const proc = start(bin('xpattern'), ['-mode', 'input'], { env: { DISPLAY: display }, readyLine: /ready/ });
  await proc.ready;
  const all = () => proc.out.stdout.split('\n').filter(Boolean);
  const w = {
    mark: () => all().length,
    since: (from) => all().slice(from),
    // waitFor resolves with the first line after `from` matching re.
    waitFor: (re, from, ms = 10_000) => until(() => `a witness line ${re} in:\n${w.since(from).join('\n')}`, () => w.since(from).find((l) => re.test(l)), ms),
    // keys lists the key presses and releases after `from`: "Shift_L↓", "1↑".
    keys: (from) => w.since(from).map((l) => l.match(/^key (down|up) \d+ (\S+)$/)).filter(Boolean)
      .map(([, dir, name]) => `${name}${dir === 'down' ? '\u2193' : '\u2191'}`),
    texts: (from) => w.since(from).filter((l) => l.startsWith('text ')).map((l) => l.slice(5)),
    buttons: (from) => w.since(from).filter((l) => /^button /.test(l)),
  };
  return w;
}

// desktop puts a few ordinary X clients over the witness, so the remote
// screen looks like a desktop. They stay in the top corners: the clicks
// below land on the witness, and the keyboard focus stays with it.
function desktop(display, clients) {
  const env = { DISPLAY: display };
  for (const [cmd, ...args] of clients) start(cmd, args, { env });
}

function clipboardOf(display) {
  try {
    return execFileSync('xclip', ['-o', '-selection', 'clipboard'], { env: { ...process.env, DISPLAY: display } }).toString();
  } catch {
    return null; // nobody owns the clipboard
  }
}

// setClipboard copies text on the display as a user's program would; xclip
// stays in the background as the owner until someone else copies.
function setClipboard(display, text) {
  execFileSync('xclip', ['-i', '-selection', 'clipboard'], { input: text, env: { ...process.env, DISPLAY: display }, stdio: ['pipe', 'ignore', 'ignore'] });
}

// answerNext waits for the host's next consent question and answers it as
// the user on the terminal.
async function answerNext(host, line) {
  const asked = host.answered ?? 0;
  await until('a question on the host terminal', () => host.out.stdout.split('Allow? ').length - 1 > asked, 20_000);
  host.answered = asked + 1;
  host.type(line);
}

// newSession creates and opens a session from a console already signed in.
async function newSession(page, broker, ticket) {
  await page.goto(broker.url + '/');
  await page.getByTestId('new-session').click();
  await page.getByTestId('new-session-ticket').fill(ticket);
  await page.getByTestId('new-session-submit').click();
  const code = await page.getByTestId('session-code').getAttribute('data-code');
  await page.getByTestId('open-session').click();
  await page.getByTestId('conn-state').waitFor();
  return code;
}

async function goLive(page) {
  await page.locator('#conn-state[data-state="live"]').waitFor({ timeout: 30_000 });
}

test('remote control at 1440x900', { timeout: 240_000 }, async (t) => {
  mkdirSync(ARTIFACTS, { recursive: true });
  const display = await startXvfb(WIDTH, HEIGHT);
  const witness = await startWitness(display);
  desktop(display, [
    ['xterm', '-geometry', '96x26+48+40', '-e', 'sh', '-c', 'uname -a; echo; ls -l /usr; exec cat'],
    ['xclock', '-geometry', '200x200+1660+40', '-update', '1'],
    ['xeyes', '-geometry', '180x110+1670+290'],
  ]);
  const broker = await startBroker();
  const browser = await launch({ viewport: VIEWPORT });
  t.after(() => browser.close());
  await browser.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: broker.url });

  const page = await browser.newPage();
  const pageErrors = collectErrors(page);
  const shot = (name) => page.screenshot({ path: join(ARTIFACTS, `console-${name}-1440x900.png`), animations: 'disabled' });
  const byId = (id) => page.getByTestId(id);
  const stage = byId('remote-stage');
  const geometry = () => page.evaluate(() => {
    const v = document.querySelector('[data-testid="remote-video"]');
    const s = document.querySelector('[data-testid="remote-stage"]');
    const vr = v.getBoundingClientRect();
    const sr = s.getBoundingClientRect();
    return {
      video: { left: vr.left, top: vr.top, width: vr.width, height: vr.height },
      stage: { left: sr.left, top: sr.top, width: sr.width, height: sr.height },
      vw: v.videoWidth,
      vh: v.videoHeight,
    };
  });
  const controlEnabled = (on) => page.waitForFunction((want) => window.tether.control?.enabled === want, on, { timeout: 15_000 });

  const code = await openSession(page, broker, 'INC-20931');
  // The user lets the technician see and share the clipboard, not control.
  const host = startHost(broker, code, display, { answer: null });
  await host.ready;
  await answerNext(host, 'view clipboard');
  await goLive(page);
  // Full resolution before any geometry: the encoder may start smaller.
  await page.waitForFunction(() => document.querySelector('[data-testid="remote-video"]').videoWidth === 1920, null, { timeout: 20_000 });
  await byId('stage-overlay').waitFor({ state: 'hidden' });

  await t.test('view only sends no input; a refusal keeps it and says why', async () => {
    assert.equal(await byId('mode-view').getAttribute('aria-pressed'), 'true');
    assert.equal(await page.evaluate(() => window.tether.control.enabled), false);
    assert.equal(await byId('keys-menu').isDisabled(), true);
    assert.equal(await byId('clipboard-open').isDisabled(), false, 'the clipboard grant lets the technician read it in view only');
    // The console offers Control only once the user allows it, and says so.
    assert.equal(await byId('mode-control').isDisabled(), true);
    assert.equal(await byId('mode-control').getAttribute('data-tip'), 'The user has not allowed control');

    const from = witness.mark();
    const g = await geometry();
    await page.mouse.click(g.stage.left + g.stage.width / 2, g.stage.top + g.stage.height / 2);
    await page.keyboard.press('KeyA');
    await sleep(500);
    assert.deepEqual(witness.since(from), [], 'nothing reached the X server, not even a pointer move');
    assert.equal(await page.evaluate(() => window.tether.input.sent), 0);

    // The technician asks for control; the user refuses on the terminal.
    const ask = page.locator('[data-testid="request-perm"][data-perm="control"]');
    await ask.click();
    await answerNext(host, 'no');
    await until('the refusal on the terminal', () => /Denied\./.test(host.out.stdout));
    const toast = byId('consent-toast');
    await toast.waitFor();
    assert.match(await toast.textContent(), /The user declined\./);
    await page.mouse.move(700, 500);
    await shot('13-control-refused');
    assert.equal(await byId('mode-view').getAttribute('aria-pressed'), 'true');
    assert.equal(await byId('mode-control').getAttribute('aria-pressed'), 'false');
    assert.equal(await byId('mode-control').isDisabled(), true);
    assert.equal(await page.evaluate(() => window.tether.control.enabled), false);
    await page.keyboard.press('KeyA');
    await sleep(300);
    assert.deepEqual(witness.since(from), [], 'still nothing reached the X server');
  });

  await t.test('Control follows the broker\u2019s answer and takes the keyboard', async () => {
    // Asked again, the user allows control; the console takes it as soon as
    // the broker says it holds.
    await page.locator('[data-testid="request-perm"][data-perm="control"]').click();
    await answerNext(host, 'control');
    await controlEnabled(true);
    assert.equal(await byId('mode-control').getAttribute('aria-pressed'), 'true');
    assert.equal(await byId('mode-view').getAttribute('aria-pressed'), 'false');
    assert.equal(await page.evaluate(() => document.activeElement?.dataset.testid), 'remote-stage');
    await byId('keyboard-captured').waitFor();
    assert.match(await byId('keyboard-captured').textContent(), /Keyboard captured.*Ctrl.*Alt.*Shift.*to release/);
    // The keyboard now reaches the remote display.
    const from = witness.mark();
    await page.keyboard.press('KeyQ');
    await witness.waitFor(/^key up \d+ q$/, from);
    assert.deepEqual(witness.keys(from), ['q\u2193', 'q\u2191']);
    assert.deepEqual(witness.texts(from), ['q']);
  });

  await t.test('a click in fit mode lands on the right remote pixel, not on the letterbox', async () => {
    const g = await geometry();
    assert.deepEqual([g.vw, g.vh], [1920, 1080]);
    // object-fit: contain, worked out here independently of the console.
    const scale = Math.min(g.video.width / g.vw, g.video.height / g.vh);
    const left = g.video.left + (g.video.width - g.vw * scale) / 2;
    const top = g.video.top + (g.video.height - g.vh * scale) / 2;
    // The stage is wider or taller than 16:9: bars above and below, or on the sides.
    const barAbove = top - g.stage.top >= 8;
    assert.ok(barAbove || left - g.stage.left >= 8, `a letterbox bar beside the picture (${top - g.stage.top}, ${left - g.stage.left} px)`);

    const cx = Math.round(left + 1220.5 * scale);
    const cy = Math.round(top + 595.5 * scale);
    const want = [Math.floor((cx - left) / scale), Math.floor((cy - top) / scale)];
    assert.ok(Math.abs(want[0] - 1220) <= 1 && Math.abs(want[1] - 595) <= 1);
    let from = witness.mark();
    await page.mouse.click(cx, cy);
    await witness.waitFor(/^button 1 up /, from);
    assert.deepEqual(witness.buttons(from), [`button 1 down ${want.join(' ')}`, `button 1 up ${want.join(' ')}`]);
    // The pointer goes straight there: no motion anywhere else.
    const elsewhere = witness.since(from).filter((l) => l.startsWith('motion') && l !== `motion ${want.join(' ')}`);
    assert.deepEqual(elsewhere, [], 'no motion elsewhere');

    // The bar beside the picture is not the remote screen.
    from = witness.mark();
    if (barAbove) await page.mouse.click(cx, Math.floor((g.stage.top + top) / 2));
    else await page.mouse.click(Math.floor((g.stage.left + left) / 2), cy);
    await sleep(400);
    assert.deepEqual(witness.buttons(from), []);

    // A right click far right and low, clamped inside the display.
    from = witness.mark();
    await page.mouse.click(Math.floor(left + g.vw * scale) - 1, Math.floor(top + g.vh * scale) - 1, { button: 'right' });
    await witness.waitFor(/^button 3 up /, from);
    const right = witness.buttons(from);
    assert.equal(right.length, 2, right.join('\n'));
    for (const line of right) {
      const [, n, , x, y] = line.split(' ').map(Number);
      assert.equal(n, 3);
      assert.ok(x >= 1917 && x <= 1919 && y >= 1077 && y <= 1079, `near the bottom-right corner: ${line}`);
    }
  });

  await t.test('1:1 mode shows actual pixels and counts the scroll offset', async () => {
    await byId('fit-toggle').click();
    await page.waitForFunction(() => document.querySelector('[data-testid="remote-video"]').getBoundingClientRect().width === 1920);
    assert.equal(await byId('fit-toggle').getAttribute('data-mode'), 'actual');
    await page.evaluate(() => {
      const surface = document.querySelector('[data-testid="remote-stage"] .stage-surface');
      surface.scrollLeft = 300;
      surface.scrollTop = 150;
    });
    const g = await geometry();
    const scroll = await page.evaluate(() => {
      const surface = document.querySelector('[data-testid="remote-stage"] .stage-surface');
      return { left: surface.scrollLeft, top: surface.scrollTop };
    });
    assert.deepEqual(scroll, { left: 300, top: 150 });
    const cx = Math.round(g.stage.left + 640);
    const cy = Math.round(g.stage.top + 380);
    const want = `${Math.floor(cx - g.stage.left + scroll.left)} ${Math.floor(cy - g.stage.top + scroll.top)}`;
    const from = witness.mark();
    await page.mouse.click(cx, cy);
    await witness.waitFor(/^button 1 up /, from);
    assert.deepEqual(witness.buttons(from), [`button 1 down ${want}`, `button 1 up ${want}`]);
    await page.mouse.move(cx + 200, cy + 100);
    await shot('12-control-actual-size');
    await byId('fit-toggle').click();
    assert.equal(await byId('fit-toggle').getAttribute('data-mode'), 'fit');
  });

  await t.test('Shift+1 goes out as physical keys, with key repeat; Tab stays on the remote', async () => {
    await stage.focus();
    const from = witness.mark();
    await page.keyboard.press('Shift+Digit1');
    // A key held for a second: the console sends Chromium's repeated
    // key-down; the X server repeats a key held down itself, as a release
    // and a press per repeat.
    await page.keyboard.down('KeyA');
    await sleep(1000);
    await page.keyboard.down('KeyA');
    await page.keyboard.up('KeyA');
    await page.keyboard.press('Tab');
    await witness.waitFor(/^key up \d+ Tab$/, from);
    const keys = witness.keys(from).join(' ');
    assert.match(keys, /^Shift_L↓ 1↓ 1↑ Shift_L↑ a↓ (a↑ a↓ )+a↑ Tab↓ Tab↑$/);
    // The X server applied Shift to the physical 1: it typed "!".
    const texts = witness.texts(from);
    assert.equal(texts[0], '!');
    assert.ok(texts.length >= 3 && texts.slice(1).every((c) => c === 'a'), `typed ${texts}`);
    assert.equal(await page.evaluate(() => document.activeElement?.dataset.testid), 'remote-stage', 'Tab did not move the focus');
  });

  await t.test('characters without a physical key go as text', async () => {
    await stage.focus();
    const from = witness.mark();
    await page.evaluate(() => {
      const el = document.querySelector('[data-testid="remote-stage"]');
      // A virtual keyboard's key with no code, then an IME's composed text.
      el.dispatchEvent(new KeyboardEvent('keydown', { key: 'é', code: '', bubbles: true, cancelable: true }));
      el.dispatchEvent(new KeyboardEvent('keyup', { key: 'é', code: '', bubbles: true, cancelable: true }));
      el.dispatchEvent(new CompositionEvent('compositionend', { data: '日本語', bubbles: true }));
    });
    await until('four characters typed', () => witness.texts(from).length >= 4);
    await sleep(300);
    assert.deepEqual(witness.texts(from), ['é', '日', '本', '語']);
  });

  await t.test('leaving the page releases everything', async () => {
    await stage.focus();
    const from = witness.mark();
    await page.keyboard.down('AltLeft');
    await witness.waitFor(/^key down \d+ Alt_L$/, from);
    const session = page.url();
    await page.goto('about:blank');
    await witness.waitFor(/^key up \d+ Alt_L$/, from);
    assert.deepEqual(witness.keys(from), ['Alt_L\u2193', 'Alt_L\u2191']);
    await page.keyboard.up('AltLeft');

    // Back to the session at once: the technician keeps what the user
    // allowed, without a new question.
    const questions = host.out.stdout.split('Allow? ').length;
    await page.goto(session);
    await goLive(page);
    assert.equal(host.out.stdout.split('Allow? ').length, questions, 'the user was asked again');
    await page.waitForFunction(() => document.querySelector('[data-testid="remote-video"]')?.videoWidth === 1920, null, { timeout: 20_000 });
    await byId('mode-control').click();
    await controlEnabled(true);
    assert.deepEqual(witness.keys(from), ['Alt_L\u2193', 'Alt_L\u2191'], 'no key left to release');
  });

  await t.test('the wheel sends whole notches', async () => {
    const g = await geometry();
    const cx = g.stage.left + g.stage.width / 2;
    const cy = g.stage.top + g.stage.height / 2;
    await page.mouse.move(cx, cy);
    await sleep(100);
    let from = witness.mark();
    await page.mouse.wheel(0, 250); // a real wheel event: 2 notches, a little left over
    await witness.waitFor(/^wheel/, from);
    await sleep(300);
    const wheels = (since) => witness.since(since).filter((l) => l.startsWith('wheel'));
    assert.deepEqual(wheels(from), ['wheel down', 'wheel down']);

    // Back to back (Playwright waits ~2 s between real ones, and the
    // console forgets a remainder after a pause): pixels add up to 120 a
    // notch, a line is a notch, and big turns arrive whole.
    from = witness.mark();
    await page.evaluate(([x, y]) => {
      const el = document.elementFromPoint(x, y);
      const wheel = (deltaX, deltaY, deltaMode = 0) => el.dispatchEvent(new WheelEvent('wheel', {
        deltaX, deltaY, deltaMode, clientX: x, clientY: y, bubbles: true, cancelable: true,
      }));
      for (let i = 0; i < 5; i++) wheel(0, -40); // -200 px: 2 notches up
      wheel(0, 3, 1); // 3 lines down
      wheel(-120, 0); // 1 notch left
      wheel(0, 30_000); // 250 notches down
    }, [cx, cy]);
    await until('256 notches', () => wheels(from).length >= 256);
    await sleep(300);
    const others = witness.since(from).filter((l) => !l.startsWith('wheel'));
    assert.ok(others.every((l) => l.startsWith('motion')), `only moves to the pointer besides: ${others}`);
    const got = wheels(from);
    const vertical = ['wheel up', 'wheel up', ...Array(3).fill('wheel down'), ...Array(250).fill('wheel down')];
    assert.deepEqual(got.filter((l) => / (up|down)$/.test(l)), vertical);
    // The notch to the left, between the lines and the big turn down.
    assert.deepEqual(got.slice(4, 7), ['wheel down', 'wheel left', 'wheel down'], 'a turn of the wheel to the left scrolls left');
  });

  await t.test('blur sends release-all', async () => {
    await stage.focus();
    const from = witness.mark();
    await page.keyboard.down('ControlLeft');
    await witness.waitFor(/^key down \d+ Control_L$/, from);
    await stage.evaluate((el) => el.blur());
    await witness.waitFor(/^key up \d+ Control_L$/, from);
    await page.keyboard.up('ControlLeft');
    await sleep(300);
    assert.deepEqual(witness.keys(from), ['Control_L\u2193', 'Control_L\u2191'], 'released once, nothing after');
    assert.equal(await stage.evaluate((el) => el.classList.contains('is-captured')), false);
  });

  await t.test('the stats overlay shows live figures', async () => {
    await byId('stats-toggle').click();
    await byId('stats-overlay').waitFor();
    const figures = await until('figures', async () => {
      const f = await byId('stats-overlay').evaluate((el) => ({ fps: el.dataset.fps, kbps: el.dataset.kbps, rtt: el.dataset.rtt }));
      return f.fps && f.kbps && f.rtt && Number(f.kbps) > 0 && f;
    }, 15_000);
    for (const [name, value] of Object.entries(figures)) assert.match(value, /^\d+$/, `${name} is a number`);
    assert.match(await byId('stats-overlay').textContent(), /1920×1080/);
    await page.mouse.move(700, 500);
    await stage.focus();
    await shot('11-control-stats');
  });

  await t.test('the keys menu sends Ctrl+Alt+Del', async () => {
    await page.mouse.move(700, 500);
    await byId('keys-menu').click();
    await byId('key-ctrl-alt-del').waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.dataset.testid), 'key-ctrl-alt-del', 'focus on the first item');
    await byId('key-alt-tab').hover();
    await shot('09-control-keys-menu');
    let from = witness.mark();
    await byId('key-ctrl-alt-del').click();
    await witness.waitFor(/^key up \d+ Control_L$/, from);
    assert.deepEqual(witness.keys(from), ['Control_L\u2193', 'Alt_L\u2193', 'Delete\u2193', 'Delete\u2191', 'Alt_L\u2191', 'Control_L\u2191']);
    assert.equal(await byId('key-ctrl-alt-del').isVisible(), false, 'the menu closed');

    // Keyboard only: open with Enter, move down, pick with Enter.
    await byId('keys-menu').focus();
    await page.keyboard.press('Enter');
    await page.keyboard.press('ArrowDown');
    from = witness.mark();
    await page.keyboard.press('Enter');
    await witness.waitFor(/^key up /, from);
    await sleep(200);
    assert.deepEqual(witness.keys(from), ['Super_L\u2193', 'Super_L\u2191']);
  });

  await t.test('clipboard both ways, with the 64 KiB limit', async () => {
    // The user copies something on their computer.
    const text = 'Remote clipboard: \\\\fs01\\finance\\Q3 report.xlsx';
    setClipboard(display, text);
    await page.locator('[data-testid="clipboard-open"] .tool-dot:not([hidden])').waitFor({ timeout: 10_000 });
    await byId('clipboard-open').click();
    await byId('clipboard-remote').waitFor();
    assert.equal(await byId('clipboard-remote').textContent(), text);
    await byId('clipboard-copy').click();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), text);

    const sent = 'net use Z: \\\\fs01\\finance /persistent:yes';
    await byId('clipboard-send-text').fill(sent);
    await byId('clipboard-send').click();
    await until('the text on the user\u2019s clipboard', () => clipboardOf(display) === sent);
    await page.mouse.move(700, 500);
    await shot('10-control-clipboard');

    // The count says how near the limit a text is, and which side of it.
    const count = byId('clipboard-send-count');
    assert.equal(await count.textContent(), '41 B of 64 KiB');
    await byId('clipboard-send-text').fill('x'.repeat(64 * 1024 - 10));
    assert.equal(await count.textContent(), '65,526 of 65,536 bytes');
    await byId('clipboard-send-text').fill('x'.repeat(64 * 1024 + 1));
    assert.equal(await count.textContent(), '65,537 of 65,536 bytes: too long');
    await shot('10a-control-clipboard-too-long');
    await byId('clipboard-send').click();
    await byId('clipboard-error').waitFor();
    assert.match(await byId('clipboard-error').textContent(), /65,537 bytes.*at most 65,536 bytes \(64 KiB\)/);
    await sleep(500);
    assert.equal(clipboardOf(display), sent, 'the user\u2019s clipboard is unchanged');
    // "Sent" is about the text sent: an edit ends it.
    await byId('clipboard-send-text').fill('dir Z:');
    await byId('clipboard-send').click();
    await byId('clipboard-send').filter({ hasText: 'Sent' }).waitFor();
    await byId('clipboard-send-text').fill('dir Z:\\');
    assert.equal(await byId('clipboard-send').textContent(), 'Send to remote', '"Sent" for a text edited since');

    // The user copies more than can be shared: the panel says so, instead
    // of still offering what they copied before as what they copied now.
    setClipboard(display, 'Dec 05 08:21:07 fs01 smbd[811]: connection refused\n'.repeat(1400)); // 71,400 bytes
    await until('the panel to say the remote clipboard is too large', async () => (await byId('clipboard-remote').textContent()).includes('more than'));
    assert.equal(await byId('clipboard-remote').textContent(),
      'The remote clipboard holds more than the 64 KiB of text that can be shared. Ask the user to copy a shorter piece.');
    assert.equal(await byId('clipboard-copy').isDisabled(), true, 'nothing to copy');
    await shot('10b-control-clipboard-too-large');
    await byId('clipboard-send-text').fill('');
    await page.keyboard.press('Escape');
    assert.equal(await byId('clipboard-send-text').isVisible(), false);
  });

  await t.test('Ctrl+V puts the technician\u2019s clipboard on the remote first', async () => {
    // A terminal on the user's desktop that pastes the clipboard on Ctrl+V
    // and writes what it received to a file.
    const dir = tempDir('tether-paste-');
    const pasted = join(dir, 'pasted');
    const env = { DISPLAY: display };
    const xdotool = (...args) => execFileSync('xdotool', args, { env: { ...process.env, ...env } }).toString().trim();
    const witnessWindow = xdotool('getwindowfocus');
    const term = start('xterm', ['-T', 'paste-target', '-geometry', '60x4+700+760',
      '-xrm', 'XTerm*VT100.translations: #override Ctrl <Key>v: insert-selection(CLIPBOARD)',
      '-e', 'sh', '-c', `stty -icanon -echo; exec cat > ${pasted}`], { env });
    try {
      // Only a mapped window can take the focus.
      const win = xdotool('search', '--sync', '--onlyvisible', '--name', '^paste-target$');
      xdotool('windowfocus', '--sync', win);
      assert.notEqual(clipboardOf(display), 'pasted from the console');

      await page.evaluate(() => navigator.clipboard.writeText('pasted from the console'));
      await stage.focus();
      await page.keyboard.press('Control+KeyV');
      const received = () => {
        try {
          return readFileSync(pasted, 'utf8');
        } catch {
          return ''; // the terminal's shell has not made the file yet
        }
      };
      await until('the paste in the terminal', () => received().length > 0);
      await sleep(300);
      assert.equal(received(), 'pasted from the console', 'the terminal pasted the technician\u2019s text');
      assert.equal(clipboardOf(display), 'pasted from the console');
    } finally {
      term.child.kill();
      await term.exited;
      xdotool('windowfocus', '--sync', witnessWindow);
    }
  });

  await t.test('Ctrl+V when the browser does not let the console read the clipboard says so', async () => {
    await browser.context.clearPermissions();
    try {
      await stage.focus();
      const from = witness.mark();
      await page.keyboard.press('Control+KeyV');
      // The V still goes: the remote pastes its own clipboard, and the
      // technician learns that what landed is not theirs.
      await witness.waitFor(/^key up \d+ v$/, from);
      await byId('control-notice').waitFor();
      assert.equal(await byId('control-notice').textContent(),
        'Your clipboard could not be read, so the remote computer pasted its own. Allow clipboard access for this site.');
      // A notice this long wraps: it stays clear of the live figures.
      const said = await byId('control-notice').boundingBox();
      const figures = await byId('stats-overlay').boundingBox();
      assert.ok(figures, 'the live figures are showing');
      assert.ok(said.x + said.width <= figures.x, `the notice (${JSON.stringify(said)}) runs under the live figures (${JSON.stringify(figures)})`);
      await shot('10c-control-paste-not-read');
    } finally {
      await browser.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: broker.url });
    }
  });

  await t.test('two displays show the picker; choosing one selects it', async () => {
    assert.equal(await byId('display-picker').isVisible(), false, 'one display: no picker');

    // Another user's computer: one wide screen split into two monitors.
    const wide = await startXvfb(2560, 1080);
    const env = { ...process.env, DISPLAY: wide };
    execFileSync('xrandr', ['--setmonitor', '*Left', '1280/340x1080/290+0+0', 'screen'], { env });
    execFileSync('xrandr', ['--setmonitor', 'Right', '1280/340x1080/290+1280+0', 'none'], { env });
    const second = await startWitness(wide);
    desktop(wide, [['xclock', '-geometry', '300x300+1770+300', '-update', '1']]);
    const other = await browser.newPage();
    try {
      const otherCode = await newSession(other, broker, 'INC-20932');
      const otherHost = startHost(broker, otherCode, wide);
      await otherHost.ready;
      await goLive(other);
      const picker = other.getByTestId('display-picker');
      await picker.waitFor();
      assert.deepEqual(await picker.locator('option').allTextContents(), ['Left · 1280 × 1080 · main', 'Right · 1280 × 1080']);
      assert.equal(await picker.inputValue(), '0');
      await other.getByTestId('mode-control').click();
      await other.waitForFunction(() => window.tether.control?.enabled === true, null, { timeout: 15_000 });
      await picker.selectOption('1');
      // The right monitor's clock is in the picture now.
      await other.waitForFunction(() => {
        const v = document.querySelector('[data-testid="remote-video"]');
        const c = document.createElement('canvas');
        c.width = v.videoWidth;
        c.height = v.videoHeight;
        const ctx = c.getContext('2d');
        ctx.drawImage(v, 0, 0);
        return ctx.getImageData(500, 310, 1, 1).data[0] > 200; // a corner of the clock's window
      }, null, { timeout: 15_000 });
      assert.equal(await picker.inputValue(), '1');
      // The console says when the pointer goes to the new display: once
      // its picture is there.
      const seen = Date.now();
      await other.waitForFunction(() => document.querySelector('[data-testid="display-picker"]').getAttribute('aria-busy') === 'false', null, { timeout: 5_000 });
      t.diagnostic(`the pointer went to the new display ${Date.now() - seen} ms after its picture showed`);
      const video = other.getByTestId('remote-video');
      const [px, py] = await video.evaluate((v) => {
        const r = v.getBoundingClientRect();
        const scale = Math.min(r.width / v.videoWidth, r.height / v.videoHeight);
        const left = r.left + (r.width - v.videoWidth * scale) / 2;
        const top = r.top + (r.height - v.videoHeight * scale) / 2;
        return [left + 10.5 * scale, top + 20.5 * scale];
      });
      const from = second.mark();
      await other.mouse.click(px, py);
      await second.waitFor(/^button 1 up /, from);
      assert.deepEqual(second.buttons(from), ['button 1 down 1290 20', 'button 1 up 1290 20'], 'the click lands on the right monitor');

      // Back to the left monitor, of the same size, and a click at once, in
      // the same moment: it was aimed at the right monitor's picture still
      // shown, and is not sent; once the left one shows, clicks go again.
      const before = second.mark();
      await other.evaluate(([x, y]) => {
        const picker = document.querySelector('[data-testid="display-picker"]');
        picker.value = '0';
        picker.dispatchEvent(new Event('change'));
        const surface = document.querySelector('.stage-surface');
        const at = { clientX: x, clientY: y, bubbles: true, cancelable: true, pointerId: 1, isPrimary: true, button: 0 };
        surface.dispatchEvent(new PointerEvent('pointerdown', { ...at, buttons: 1 }));
        surface.dispatchEvent(new PointerEvent('pointerup', { ...at, buttons: 0 }));
      }, [px, py]);
      await other.waitForTimeout(1500);
      assert.deepEqual(second.buttons(before), [], 'a click on the picture of the display being left was sent');
      await other.mouse.click(px, py);
      await second.waitFor(/^button 1 up /, before);
      assert.deepEqual(second.buttons(before), ['button 1 down 10 20', 'button 1 up 10 20'], 'the click lands on the left monitor');
    } finally {
      await other.close();
      await page.bringToFront();
    }
  });

  await t.test('dropped input shows a small toast', async () => {
    // The technician keeps typing while the user pauses the session: what
    // was on its way when the broker stopped taking input is dropped. On a
    // busy machine the page may send nothing in the moment the pause takes
    // (the broker then drops nothing): it is paused again, at most three
    // times. Whenever the broker did drop something, the toast must show.
    const toast = byId('input-toast');
    for (let attempt = 1; ; attempt++) {
      await stage.focus();
      const from = witness.mark();
      const dropped = await page.evaluate(() => window.tether.control.dropped);
      const typing = page.evaluate(() => new Promise((resolve) => {
        const el = document.querySelector('[data-testid="remote-stage"]');
        const key = (type) => el.dispatchEvent(new KeyboardEvent(type, { key: 'Shift', code: 'ShiftLeft', bubbles: true, cancelable: true }));
        const ch = new MessageChannel();
        const end = performance.now() + 5000;
        ch.port1.onmessage = () => {
          if (!window.tether.control.enabled || performance.now() > end) return resolve();
          key('keydown');
          key('keyup');
          ch.port2.postMessage(0);
        };
        ch.port2.postMessage(0);
      }));
      await witness.waitFor(/^key up \d+ Shift_L$/, from);
      host.type('pause');
      let refused = false;
      try {
        await typing;
        // The broker's word on what it dropped comes within moments.
        await sleep(1000);
        refused = await page.evaluate((before) => window.tether.control.dropped > before, dropped);
        if (refused || attempt === 3) {
          assert.ok(refused, 'three pauses, and the broker never dropped anything the page sent');
          await toast.waitFor({ timeout: 5000 });
          assert.equal((await toast.textContent()).trim(), 'The user paused the session.');
          await shot('14-input-dropped');
          // Nothing is left pressed on the user's side.
          assert.equal(witness.keys(from).at(-1), 'Shift_L\u2191');
        }
      } finally {
        // The user resumes: control comes back by itself, and the notice
        // that they paused goes with the pause.
        host.type('resume');
        await controlEnabled(true);
      }
      if (refused) break;
      t.diagnostic(`pause ${attempt}: the broker dropped nothing`);
    }
    assert.equal(await toast.isHidden(), true, 'the pause\u2019s notice is still shown after the resume');
  });

  await t.test('full screen shows the stage alone, with a bar to leave it', async () => {
    await byId('fullscreen').click();
    await page.waitForFunction(() => document.fullscreenElement?.dataset.testid === 'remote-stage');
    await byId('fullscreen-exit').waitFor();
    assert.match(await page.locator('.fs-mode').textContent(), /In control/);
    await sleep(300); // the bar slides in
    await shot('15-control-fullscreen');
    await byId('fullscreen-exit').click();
    await page.waitForFunction(() => !document.fullscreenElement);
  });

  await t.test('View only releases everything and gives control back', async () => {
    await stage.focus();
    let from = witness.mark();
    await page.keyboard.down('ShiftLeft');
    await witness.waitFor(/^key down \d+ Shift_L$/, from);
    await byId('mode-view').click();
    await page.keyboard.up('ShiftLeft');
    await controlEnabled(false);
    await witness.waitFor(/^key up \d+ Shift_L$/, from);
    await sleep(300);
    assert.deepEqual(witness.keys(from), ['Shift_L\u2193', 'Shift_L\u2191'], 'one release, nothing else');
    assert.equal(await byId('mode-view').getAttribute('aria-pressed'), 'true');
    assert.equal(await byId('keys-menu').isDisabled(), true);
    await byId('clipboard-open').click();
    assert.equal(await byId('clipboard-send').isDisabled(), true, 'setting the remote clipboard needs control');
    assert.match(await byId('clipboard-panel-hint').textContent(), /Switch to Control/);
    await page.keyboard.press('Escape');
    await stage.focus();
    from = witness.mark();
    await page.keyboard.press('KeyB');
    await sleep(300);
    assert.deepEqual(witness.since(from), []);
  });

  assert.deepEqual(pageErrors.map(String), []);
});

// The bar between the remote screen and a side panel, as a technician uses
// it at 1280x720 on the real stack: a real broker, a real host sharing a
// 1280x720 Xvfb display covered by the input witness (testdata/xpattern
// -mode input, which reports where clicks land), and headless Chromium.
// Dragged or moved with the keyboard, it gives the picture or the panel
// more room, within limits; the picture follows, clicks still land on the
// right remote pixel, and the width chosen is there again after a reload.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { collectErrors, launch, remotePoint } from './browser.mjs';
import { bin, openSession, start, startBroker, startHost, startXvfb, stopAll, tempDir, until } from './procs.mjs';

const REMOTE = { width: 1280, height: 720 };
const VIEWPORT = { width: 1280, height: 720 };
const PANEL_MIN = 280;
const STAGE_SHARE = 0.4;

after(stopAll);

test('the side panel divider', { timeout: 240_000 }, async (t) => {
  const display = await startXvfb(REMOTE.width, REMOTE.height);
  const witness = start(bin('xpattern'), ['-mode', 'input'], { env: { DISPLAY: display }, readyLine: /ready/ });
  await witness.ready;
  const lines = () => witness.out.stdout.split('\n').filter(Boolean);
  const broker = await startBroker();
  const browser = await launch({ viewport: VIEWPORT });
  t.after(() => browser.close());
  const page = await browser.newPage();
  const pageErrors = collectErrors(page);
  // Reloading with a terminal open: the browser asks first; the test says leave.
  page.on('dialog', (d) => d.accept());
  const byId = (id) => page.getByTestId(id);
  const divider = page.getByRole('separator', { name: 'Resize the side panel' });

  const home = tempDir('tether-home-');
  const code = await openSession(page, broker, 'INC-RESIZE');
  const host = startHost(broker, code, display, { args: ['-files-root', home] });
  await host.ready;
  const live = async () => {
    await page.locator('[data-testid="conn-state"][data-state="live"]').waitFor({ timeout: 30_000 });
    // Full size before any geometry: the encoder may start smaller.
    await page.waitForFunction((w) => document.querySelector('[data-testid="remote-video"]')?.videoWidth === w, REMOTE.width, { timeout: 20_000 });
  };
  await live();

  /** Widths on the page now: the stage, the open panel, the picture shown in the stage. */
  const layout = () => page.evaluate(() => {
    const stage = document.querySelector('[data-testid="remote-stage"]').getBoundingClientRect();
    const panel = [...document.querySelectorAll('.viewer-body > aside')].find((p) => !p.hidden)?.getBoundingClientRect();
    const v = document.querySelector('[data-testid="remote-video"]');
    const r = v.getBoundingClientRect();
    // object-fit: contain, worked out here independently of the console.
    const scale = Math.min(r.width / v.videoWidth, r.height / v.videoHeight);
    return {
      body: document.querySelector('.viewer-body').getBoundingClientRect().width,
      stage: stage.width,
      stageHeight: stage.height,
      panel: panel?.width ?? 0,
      stageRight: stage.right,
      picture: v.videoWidth * scale,
    };
  });
  /** Drags the divider by dx pixels (positive: to the right), as a mouse does. */
  const drag = async (dx) => {
    const box = await divider.boundingBox();
    const x = box.x + box.width / 2;
    const y = box.y + box.height / 3; // off the grip, on the bare line
    await page.mouse.move(x, y);
    await page.mouse.down();
    await page.mouse.move(x + dx / 2, y, { steps: 5 });
    await page.mouse.move(x + dx, y, { steps: 5 });
    await page.mouse.up();
  };
  const near = (got, want, what, slack = 2) => assert.ok(Math.abs(got - want) <= slack, `${what}: ${got}, want ${want}`);
  const aria = async () => Object.fromEntries(await Promise.all(['aria-valuenow', 'aria-valuemin', 'aria-valuemax']
    .map(async (a) => [a.slice(10), Number(await divider.getAttribute(a))])));

  await t.test('no bar without a panel; the Terminal panel brings it', async () => {
    assert.equal(await byId('panel-divider').isVisible(), false, 'a bar with no panel beside the picture');
    await byId('shell-open').click();
    await byId('shell-panel').waitFor();
    await divider.waitFor({ timeout: 5_000 });
    assert.equal(await divider.getAttribute('aria-orientation'), 'vertical');
    assert.equal(await divider.getAttribute('tabindex'), '0');
    assert.equal(await divider.evaluate((el) => getComputedStyle(el).cursor), 'col-resize');
    // The bar lies on the panel's edge, and takes nothing from the picture.
    const box = await divider.boundingBox();
    const l = await layout();
    near(box.x, l.stageRight, 'the bar\u2019s left against the picture\u2019s edge', 0.5);
    assert.ok(box.width >= 6, `a bar ${box.width} px wide, too thin to grab`);
    near(l.stage + l.panel, l.body, 'the stage and the panel share the body');
    const v = await aria();
    near(v.now, l.stage, 'aria-valuenow (the remote screen\u2019s width)', 1);
    near(v.min, l.body - Math.floor(l.body * (1 - STAGE_SHARE)), 'aria-valuemin', 1);
    near(v.max, l.body - PANEL_MIN, 'aria-valuemax', 1);
  });

  await t.test('dragging the bar gives the picture the room, and the picture follows', async () => {
    // A terminal in the panel, to see it follow too.
    await byId('shell-request').click();
    await byId('shell-start').click({ timeout: 30_000 });
    const term = byId('shell-view-1');
    await page.locator('[data-testid="shell-tab-1"][data-state="open"]').waitFor({ timeout: 15_000 });
    const cols = async () => Number(await term.getAttribute('data-cols'));
    await until('the terminal sized', async () => (await cols()) > 0);
    const cols0 = await cols();
    // The shell counts the sizes it is told of (each a SIGWINCH).
    const shown = () => term.locator('.xterm-rows').innerText();
    await term.locator('.xterm-screen').click();
    await page.keyboard.type("n=0; trap 'n=$((n+1))' WINCH; echo armed\n");
    await until('the shell counting resizes', async () => /^armed$/m.test(await shown()));

    const before = await layout();
    // At 1280 px the picture is as wide as the stage: the width limits it.
    assert.ok(before.stage * REMOTE.height / REMOTE.width < before.stageHeight - 150, `stage ${before.stage}x${before.stageHeight}`);
    near(before.picture, before.stage, 'the picture before');
    await drag(200);
    const after1 = await layout();
    near(after1.panel, before.panel - 200, 'the panel after dragging 200 px right');
    near(after1.stage, before.stage + 200, 'the stage after dragging 200 px right');
    near(after1.picture, after1.stage, 'the picture re-fitted to the wider stage');
    near((await aria()).now, after1.stage, 'aria-valuenow', 1);
    // The terminal narrows with its panel.
    await until(async () => `fewer columns than ${cols0} (${await cols()})`, async () => (await cols()) < cols0);
    // The shell heard the size the drag settled on, once, not each column
    // on the way (the drag crossed tens of them).
    await page.keyboard.type('echo "resized=$n size=$(stty size)"\n');
    let m;
    await until('the shell saying how often it was resized', async () => (m = (await shown()).match(/resized=(\d+) size=(\d+) (\d+)/)));
    assert.ok(Number(m[1]) >= 1 && Number(m[1]) <= 2, `the shell was told of ${m[1]} sizes during one drag`);
    assert.equal(`${m[2]} ${m[3]}`, `${await term.getAttribute('data-rows')} ${await cols()}`, 'the shell’s size is the one on screen');

    // And back some way to the left.
    await drag(-120);
    const after2 = await layout();
    near(after2.panel, after1.panel + 120, 'the panel after dragging 120 px left');
    near(after2.picture, after2.stage, 'the picture re-fitted to the narrower stage');
  });

  await t.test('the mouse cannot push either side past its limit', async () => {
    await drag(-2000);
    let l = await layout();
    near(l.panel, Math.floor(l.body * (1 - STAGE_SHARE)), 'the widest panel', 1);
    assert.ok(l.stage >= STAGE_SHARE * l.body - 1, `the picture keeps ${l.stage} of ${l.body} px`);
    near(l.picture, l.stage, 'the picture in the narrowest stage');
    await drag(2000);
    l = await layout();
    near(l.panel, PANEL_MIN, 'the narrowest panel', 1);
    near(l.picture, l.stage, 'the picture in the widest stage');
    assert.equal(await page.evaluate(() => localStorage.getItem('tether.panelWidth')), String(PANEL_MIN));
  });

  await t.test('the keyboard moves the bar too', async () => {
    // From the remote screen, Tab reaches the bar, after what the stage
    // shows over the picture (view only: the screen does not hold on to
    // the keyboard).
    const focused = () => page.evaluate(() => document.activeElement?.dataset.testid);
    await byId('remote-stage').focus();
    for (let i = 0; i < 5 && await focused() !== 'panel-divider'; i++) await page.keyboard.press('Tab');
    assert.equal(await focused(), 'panel-divider');
    assert.equal(await divider.evaluate((el) => el.matches(':focus-visible')), true, 'the focus shows');
    // The ring is drawn: the line turns to the accent colour.
    await until('the accent line on the focused bar', () => divider.evaluate((el) => /^rgba?\(99, 102, 241(, 1)?\)$/.test(getComputedStyle(el, '::before').backgroundColor)), 2_000);

    let l = await layout();
    const start = l.panel;
    await page.keyboard.press('ArrowLeft');
    await page.keyboard.press('ArrowLeft');
    l = await layout();
    near(l.panel, start + 32, 'two steps left widen the panel', 1);
    await page.keyboard.press('ArrowRight');
    l = await layout();
    near(l.panel, start + 16, 'a step right narrows it', 1);
    near((await aria()).now, l.stage, 'aria-valuenow follows', 1);
    await page.keyboard.press('Home');
    l = await layout();
    near(l.panel, Math.floor(l.body * (1 - STAGE_SHARE)), 'Home: the widest panel', 1);
    const v = await aria();
    assert.equal(v.now, v.min, 'Home: aria-valuenow at its minimum');
    await page.keyboard.press('End');
    l = await layout();
    near(l.panel, PANEL_MIN, 'End: the narrowest panel', 1);
    assert.equal((await aria()).now, (await aria()).max, 'End: aria-valuenow at its maximum');
    await page.keyboard.press('ArrowRight');
    near((await layout()).panel, PANEL_MIN, 'no further than the limit', 1);
    await page.keyboard.press('Shift+ArrowLeft');
    near((await layout()).panel, PANEL_MIN + 64, 'Shift takes bigger steps', 1);
    await page.keyboard.press('Shift+ArrowLeft');
    l = await layout();
    near(l.panel, PANEL_MIN + 128, 'Shift takes bigger steps', 1);
    near(l.picture, l.stage, 'the picture re-fitted after the keys');
  });

  await t.test('in control, dragging clicks nothing remotely, and clicks land on the right remote pixel after it', async () => {
    await byId('mode-control').click();
    await page.waitForFunction(() => window.tether.control?.enabled === true, null, { timeout: 20_000 });
    /** Clicks page point (px, py) and returns the remote pixel the X server got. */
    const click = async (px, py) => {
      const from = lines().length;
      await page.mouse.click(px, py);
      // Its release too, so that it is not taken for one of what follows.
      const line = await until(() => `a click at ${px},${py} in:\n${lines().slice(from).join('\n')}`, () => {
        const got = lines().slice(from);
        return got.some((s) => s.startsWith('button 1 up ')) && got.find((s) => s.startsWith('button 1 down '));
      });
      return line.split(' ').slice(3).map(Number);
    };
    let [gx, gy] = await click(...await remotePoint(page, 100, 100));
    assert.ok(Math.abs(gx - 100) <= 1 && Math.abs(gy - 100) <= 1, `click at 100,100 landed at ${gx},${gy}`);

    // The bar is dragged across the picture: nothing is pressed on the
    // user's computer.
    const from = lines().length;
    await drag(-150);
    await page.waitForTimeout(500);
    assert.deepEqual(lines().slice(from).filter((s) => s.startsWith('button')), [], 'the drag pressed a button remotely');
    const l = await layout();
    near(l.picture, l.stage, 'the picture fits the stage');
    for (const [x, y] of [[700, 400], [1200, 650]]) {
      [gx, gy] = await click(...await remotePoint(page, x, y));
      assert.ok(Math.abs(gx - x) <= 1 && Math.abs(gy - y) <= 1, `click at ${x},${y} landed at ${gx},${gy}`);
    }
    // The picture's last column of screen pixels, right beside the bar:
    // a maximized window's close button is there.
    const g = await page.evaluate(() => {
      const v = document.querySelector('[data-testid="remote-video"]');
      const r = v.getBoundingClientRect();
      const scale = Math.min(r.width / v.videoWidth, r.height / v.videoHeight);
      return { left: r.left + (r.width - v.videoWidth * scale) / 2, top: r.top + (r.height - v.videoHeight * scale) / 2, scale };
    });
    const cx = Math.ceil(g.left + REMOTE.width * g.scale) - 1;
    const cy = Math.ceil(g.top);
    const want = [Math.floor((cx - g.left) / g.scale), Math.floor((cy - g.top) / g.scale)];
    assert.ok(want[0] >= REMOTE.width - 3 && want[1] <= 2, `the corner is at ${want}`);
    [gx, gy] = await click(cx, cy);
    assert.ok(Math.abs(gx - want[0]) <= 1 && Math.abs(gy - want[1]) <= 1, `click at the corner ${want} landed at ${gx},${gy}`);
    // Back to watching: the clicks below are for the page only.
    await byId('mode-view').click();
    await page.waitForFunction(() => window.tether.control?.enabled === false);
  });

  await t.test('one width for every panel, clamped to a narrower window', async () => {
    const chosen = (await layout()).panel;
    await byId('files-open').click();
    await byId('files-panel').waitFor();
    assert.equal(await byId('shell-panel').isVisible(), false);
    near((await layout()).panel, chosen, 'the Files panel takes the width chosen', 1);
    await byId('activity-open').click();
    await byId('activity-panel').waitFor();
    near((await layout()).panel, chosen, 'the Activity panel takes it too', 1);

    // A window too narrow for that width: the panel keeps to its limit,
    // and has the width chosen again once the window is wide again.
    await byId('shell-open').click();
    await drag(-2000);
    const widest = (await layout()).panel;
    await page.setViewportSize({ width: 1060, height: 720 });
    await until('the panel clamped to the narrower window', async () => {
      const l = await layout();
      return Math.abs(l.panel - Math.floor(l.body * (1 - STAGE_SHARE))) <= 1 && l.stage >= STAGE_SHARE * l.body - 1;
    });
    await page.setViewportSize(VIEWPORT);
    await until('the chosen width back', async () => Math.abs((await layout()).panel - widest) <= 1);
    assert.equal(await divider.isVisible(), true);

    // Where the panels slide over the picture, there is no bar.
    await page.setViewportSize({ width: 900, height: 720 });
    await until('the bar gone at 900 px', async () => !(await byId('panel-divider').isVisible()));
    const l = await layout();
    near(l.panel, Math.min(640, l.body - 80), 'the Terminal panel as it always was at 900 px', 1);
    near(l.stage, l.body, 'the picture under it keeps the whole width', 1);
    await page.setViewportSize(VIEWPORT);
  });

  await t.test('the width is there again after a reload; a double click restores the usual one', async () => {
    await drag(100);
    const chosen = (await layout()).panel;
    await page.reload();
    await live();
    await byId('shell-open').click();
    await byId('shell-panel').waitFor();
    await divider.waitFor();
    near((await layout()).panel, chosen, 'the Terminal panel after the reload', 1);
    await byId('files-open').click();
    near((await layout()).panel, chosen, 'the Files panel after the reload', 1);

    // Double click: each panel's own width again, and nothing remembered.
    await divider.dblclick();
    near((await layout()).panel, 420, 'the Files panel\u2019s own width', 1);
    assert.equal(await page.evaluate(() => localStorage.getItem('tether.panelWidth')), null);
    await byId('shell-open').click();
    near((await layout()).panel, Math.min(640, 0.4 * VIEWPORT.width), 'the Terminal panel\u2019s own width', 1);
    await page.reload();
    await live();
    await byId('shell-open').click();
    await divider.waitFor();
    near((await layout()).panel, Math.min(640, 0.4 * VIEWPORT.width), 'still its own width after a reload', 1);
  });

  assert.deepEqual(pageErrors, []);
});

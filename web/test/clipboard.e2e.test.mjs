// The clipboard on a user's computer whose clipboard cannot be used (no
// xclip or xsel there): the panel says so, rather than "Sent" for text that
// never reached the user's clipboard, or a wait for a clipboard that never
// comes. And on one whose clipboard program is slow: Ctrl+V pastes nothing
// rather than what the user's clipboard held before, and says so.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { collectErrors, launch } from './browser.mjs';
import { openSession, ROOT, start, startBroker, startHost, startXvfb, stopAll, tempDir, until } from './procs.mjs';

after(stopAll);

/** A console page on broker that may read and write the clipboard. */
async function clipboardPage(t, broker) {
  const browser = await launch({ viewport: { width: 1280, height: 800 } });
  t.after(() => browser.close());
  await browser.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: broker.url });
  const page = await browser.newPage();
  return { page, pageErrors: collectErrors(page), byId: (id) => page.getByTestId(id) };
}

test('a user\u2019s computer without a clipboard program', { timeout: 120_000 }, async (t) => {
  const display = await startXvfb(1280, 720);
  const broker = await startBroker();
  const { page, pageErrors, byId } = await clipboardPage(t, broker);

  // A PATH with what starting the host takes, and no xclip or xsel.
  const path = tempDir('tether-noclip-');
  for (const prog of ['script', 'sh']) symlinkSync(`/usr/bin/${prog}`, join(path, prog));
  const code = await openSession(page, broker, 'INC-20940');
  const host = startHost(broker, code, display, { env: { PATH: path } });
  await host.ready;
  await page.locator('#conn-state[data-state="live"]').waitFor({ timeout: 30_000 });
  await byId('mode-control').click();
  await page.waitForFunction(() => window.tether.control?.enabled === true, null, { timeout: 15_000 });

  await byId('clipboard-open').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="clipboard-remote"]').textContent === 'The remote clipboard could not be read.',
    null, { timeout: 10_000 });

  await byId('clipboard-send-text').fill('net use Z: \\\\fs01\\finance');
  await byId('clipboard-send').click();
  await byId('clipboard-error').waitFor({ timeout: 10_000 });
  assert.equal(await byId('clipboard-error').textContent(), "The user's clipboard could not be set.");
  assert.doesNotMatch(await byId('clipboard-send').textContent(), /Sent/);
  mkdirSync(join(ROOT, 'artifacts'), { recursive: true });
  await page.screenshot({ path: join(ROOT, 'artifacts', 'console-clipboard-unavailable-1280x800.png'), animations: 'disabled' });
  assert.deepEqual(pageErrors, []);
});

test('Ctrl+V the user\u2019s computer does not confirm in time pastes nothing, and says so', { timeout: 120_000 }, async (t) => {
  const display = await startXvfb(1280, 720);
  const env = { ...process.env, DISPLAY: display };
  const clipboardOf = () => execFileSync('xclip', ['-o', '-selection', 'clipboard'], { env }).toString();
  // What the user copied earlier; xclip stays in the background as its owner.
  execFileSync('xclip', ['-i', '-selection', 'clipboard'], { input: 'what the user copied earlier', env, stdio: ['pipe', 'ignore', 'ignore'] });
  // A terminal on the user's desktop that pastes the clipboard on Ctrl+V
  // and writes what it received to a file.
  const pasted = join(tempDir('tether-paste-'), 'pasted');
  writeFileSync(pasted, '');
  start('xterm', ['-T', 'paste-target', '-geometry', '100x30+0+0',
    '-xrm', 'XTerm*VT100.translations: #override Ctrl <Key>v: insert-selection(CLIPBOARD)',
    '-e', 'sh', '-c', `stty -icanon -echo; exec cat > ${pasted}`], { env: { DISPLAY: display } });
  const win = execFileSync('xdotool', ['search', '--sync', '--onlyvisible', '--name', '^paste-target$'], { env }).toString().trim();
  execFileSync('xdotool', ['windowfocus', '--sync', win], { env });
  // The user's clipboard program takes 3 s to take the first text (a busy
  // computer): the host confirms it after Ctrl+V's wait is over.
  const bin = tempDir('tether-slowclip-');
  writeFileSync(join(bin, 'xclip'), `#!/bin/sh
case " $* " in *" -in "*) [ -e "${bin}/slowed" ] || { touch "${bin}/slowed"; sleep 3; } ;; esac
exec /usr/bin/xclip "$@"
`);
  chmodSync(join(bin, 'xclip'), 0o755);

  const broker = await startBroker();
  const { page, pageErrors, byId } = await clipboardPage(t, broker);
  const code = await openSession(page, broker, 'INC-20941');
  const host = startHost(broker, code, display, { env: { PATH: `${bin}:${process.env.PATH}` } });
  await host.ready;
  await page.locator('#conn-state[data-state="live"]').waitFor({ timeout: 30_000 });
  await byId('mode-control').click();
  await page.waitForFunction(() => window.tether.control?.enabled === true, null, { timeout: 15_000 });

  await page.evaluate(() => navigator.clipboard.writeText('pasted from the console'));
  await byId('remote-stage').focus();
  await page.keyboard.press('Control+KeyV');
  // The text reaches the user's clipboard, late; the terminal got nothing
  // meanwhile, in particular not what the user had copied before.
  await until('the text on the user\u2019s clipboard', () => clipboardOf() === 'pasted from the console');
  await page.waitForTimeout(500);
  assert.equal(readFileSync(pasted, 'utf8'), '', 'the terminal pasted something');
  await byId('control-notice').waitFor({ timeout: 1000 });
  assert.equal(await byId('control-notice').textContent(),
    'The remote computer did not confirm your clipboard in time, so nothing was pasted. Press Ctrl+V again.');
  mkdirSync(join(ROOT, 'artifacts'), { recursive: true });
  await page.screenshot({ path: join(ROOT, 'artifacts', 'console-paste-unconfirmed-1280x800.png'), animations: 'disabled' });

  // Again, as the notice says: the text is pasted.
  await byId('remote-stage').focus();
  await page.keyboard.press('Control+KeyV');
  await until('the paste in the terminal', () => readFileSync(pasted, 'utf8').length > 0);
  await page.waitForTimeout(300);
  assert.equal(readFileSync(pasted, 'utf8'), 'pasted from the console');
  assert.deepEqual(pageErrors, []);
});

test('texts sent faster than the broker takes them: each says what became of it', { timeout: 120_000 }, async (t) => {
  const display = await startXvfb(1280, 720);
  const env = { ...process.env, DISPLAY: display };
  const broker = await startBroker();
  const { page, pageErrors, byId } = await clipboardPage(t, broker);
  const code = await openSession(page, broker, 'INC-20942');
  const host = startHost(broker, code, display);
  await host.ready;
  await page.locator('#conn-state[data-state="live"]').waitFor({ timeout: 30_000 });
  await byId('mode-control').click();
  await page.waitForFunction(() => window.tether.control?.enabled === true, null, { timeout: 15_000 });
  await byId('clipboard-open').click();

  // Eleven sends at once: the broker passes ten (its burst) and refuses the
  // eleventh, which says so at once.
  await byId('clipboard-send-text').fill('one of many');
  await page.evaluate(() => {
    const send = document.querySelector('[data-testid="clipboard-send"]');
    for (let i = 0; i < 11; i++) send.click();
  });
  await byId('clipboard-error').waitFor({ timeout: 3000 });
  assert.equal(await byId('clipboard-error').textContent(), 'Too many clipboard messages at once: wait a moment, then try again.');

  // A moment later one more goes through: its answer is its own, not taken
  // for the refused text's, so it says Sent and nothing times out after.
  await page.waitForTimeout(400);
  await byId('clipboard-send-text').fill('the last one');
  await byId('clipboard-send').click();
  await page.locator('[data-testid="clipboard-send"].is-done').waitFor({ timeout: 5000 });
  const clipboardOf = () => execFileSync('xclip', ['-o', '-selection', 'clipboard'], { env }).toString();
  await until('the last text on the user\u2019s clipboard', () => clipboardOf() === 'the last one');
  await page.waitForTimeout(5500); // past the wait for an answer that never came
  assert.equal(await byId('clipboard-error').isHidden(), true, `the panel says: ${await byId('clipboard-error').textContent()}`);
  assert.deepEqual(pageErrors, []);
});

test('the panel follows what the user copies: an empty clipboard, a page of markup, a Latin-1 word', { timeout: 120_000 }, async (t) => {
  const display = await startXvfb(1280, 720);
  const env = { ...process.env, DISPLAY: display };
  const copy = (input) => execFileSync('xclip', ['-i', '-selection', 'clipboard'], { input, env, stdio: ['pipe', 'ignore', 'ignore'] });
  const broker = await startBroker();
  const { page, pageErrors, byId } = await clipboardPage(t, broker);
  const code = await openSession(page, broker, 'INC-20941');
  const host = startHost(broker, code, display);
  await host.ready;
  await page.locator('#conn-state[data-state="live"]').waitFor({ timeout: 30_000 });
  const shows = (text) => page.waitForFunction((want) => document.querySelector('[data-testid="clipboard-remote"]').textContent === want, text, { timeout: 10_000 });

  // Nothing on the user's clipboard: opening the panel fetches it.
  await byId('clipboard-open').click();
  await shows('The remote clipboard is empty.');
  // A password copied, then 60 KB of an HTML table (within the limit,
  // three times that escaped as it used to be): the table replaces it.
  copy('hunter2');
  await shows('hunter2');
  const table = '<tr><td>1</td><td>2</td></tr>\n'.repeat(2000);
  copy(table);
  await shows(table);
  // A program that offers only Latin-1.
  copy(Buffer.from('caf\xe9 cr\xe8me', 'latin1'));
  await shows('café crème');
  assert.deepEqual(pageErrors, []);
});

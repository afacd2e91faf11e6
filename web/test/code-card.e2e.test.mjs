// The card with a fresh support code on the Sessions page follows the
// session: while the code waits it offers it to copy and read out; once the
// user joined it says so and leads to the session; once the session ended
// it says that, with nothing left to copy. A real broker, a real host on
// Xvfb and headless Chromium. Screenshots go to artifacts/.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { collectErrors, launch } from './browser.mjs';
import { api, ROOT, signIn, startBroker, startHost, startXvfb, stopAll, tempDir, until } from './procs.mjs';

const artifacts = join(ROOT, 'artifacts');
mkdirSync(artifacts, { recursive: true });
after(stopAll);

const TICKET = 'INC-4711 printer offline for Mrs. Very-Long-Surname-Customer at the Frankfurt branch office';

/** Signs in as the broker's first admin and creates a session with ticket; returns its code. */
async function createFromConsole(page, broker, ticket) {
  await signIn(page, broker);
  await page.getByTestId('new-session').click();
  await page.getByTestId('new-session-ticket').fill(ticket);
  await page.getByTestId('new-session-submit').click();
  await page.getByTestId('session-code').waitFor();
  return page.getByTestId('session-code').getAttribute('data-code');
}

test('the code card follows the session: waiting, joined, ended', { timeout: 90_000 }, async () => {
  const display = await startXvfb(1280, 720);
  const broker = await startBroker();
  const browser = await launch({ viewport: { width: 1440, height: 900 } });
  try {
    const page = await browser.newPage();
    const errors = collectErrors(page);
    const code = await createFromConsole(page, broker, TICKET);
    errors.length = 0; // the console's first look for a login answers 401
    const card = page.getByTestId('code-card');
    const copies = card.locator('.copy-btn');
    assert.ok(await copies.count() >= 3, 'a waiting code offers the code, the command and the link to copy');

    // The user joins with the code.
    const host = startHost(broker, code, display);
    await host.ready;
    await until('the card to say the user joined', async () => /^Connected/.test((await card.textContent()) ?? ''), 20_000);
    await page.mouse.move(0, 0);
    await page.screenshot({ path: join(artifacts, 'code-card-joined.png'), animations: 'disabled' });
    assert.match(await page.getByTestId('code-card-title').textContent(), /^Connected \u2014 INC-4711/);
    assert.doesNotMatch(await card.textContent(), /Support code ready/);
    assert.equal(await copies.count(), 0, 'a used code still offers things to copy');
    assert.equal(await card.getByTestId('session-code').count(), 0, 'the used code is still shown');
    assert.equal(await card.getByTestId('open-session').textContent(), 'Open session');

    // The session ends.
    const id = await page.getByTestId('session-row').first().getAttribute('data-session-id');
    assert.equal((await api(broker, 'POST', `/api/v1/sessions/${id}/end`)).status, 200);
    await until('the card to say the session ended', async () => /^Session ended/.test((await card.textContent()) ?? ''), 20_000);
    await page.mouse.move(0, 0);
    await page.screenshot({ path: join(artifacts, 'code-card-ended.png'), animations: 'disabled' });
    assert.equal(await copies.count(), 0);
    assert.equal(await card.getByTestId('open-session').count(), 0, 'an ended session is still offered to open as the main action');
    assert.deepEqual(errors.map(String), []);
  } finally {
    await browser.close();
  }
});

test('at 1280 px the command shows its code in full and the state stays beside the title', { timeout: 60_000 }, async () => {
  const broker = await startBroker();
  const browser = await launch({ viewport: { width: 1280, height: 720 } });
  try {
    const page = await browser.newPage();
    const code = await createFromConsole(page, broker, TICKET);
    await page.mouse.move(0, 0);
    await page.screenshot({ path: join(artifacts, 'code-card-1280.png'), animations: 'disabled' });
    const command = page.getByTestId('host-command');
    assert.match(await command.textContent(), new RegExp(`${code}$`));
    const clipped = await command.evaluate((el) => el.scrollWidth > el.clientWidth + 1);
    assert.equal(clipped, false, 'the command is cut off where its code is');
    // The code is drawn inside the command's box, not past its end.
    const { codeRight, boxRight } = await command.evaluate((el, code) => {
      const text = el.firstChild;
      const r = document.createRange();
      r.setStart(text, text.length - code.length);
      r.setEnd(text, text.length);
      const rects = [...r.getClientRects()];
      return { codeRight: Math.max(...rects.map((x) => x.right)), boxRight: el.getBoundingClientRect().right };
    }, code);
    assert.ok(codeRight <= boxRight + 1, `the code ends at ${codeRight}, its box at ${boxRight}`);
    // The waiting badge sits on the title's line, on one line of its own.
    const geo = await page.getByTestId('code-card').evaluate((card) => {
      const title = card.querySelector('.code-card-title .section-title').getBoundingClientRect();
      const badge = card.querySelector('.code-card-title .badge').getBoundingClientRect();
      return { titleMid: title.top + title.height / 2, badgeMid: badge.top + badge.height / 2, badgeHeight: badge.height };
    });
    assert.ok(Math.abs(geo.titleMid - geo.badgeMid) < 6, `the badge is on another line than the title: ${JSON.stringify(geo)}`);
    assert.ok(geo.badgeHeight < 32, `the badge wraps: ${geo.badgeHeight} px tall`);
    // The hint under the command speaks to a technician.
    const hint = await page.getByTestId('host-command-hint').textContent();
    assert.match(hint, /already has Tether installed/);
    assert.doesNotMatch(hint, /development certificate/);
  } finally {
    await browser.close();
  }
});

// A certificate of the admin's own for localhost, as -tls-cert and -tls-key
// take it; clients that trust cert trust the broker.
function ownCertificate(dir) {
  const cert = join(dir, 'broker.pem');
  const key = join(dir, 'broker.key');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { cert, key };
}

test('the command asks for -ca only while the broker serves its test certificate, and works as shown', { timeout: 120_000 }, async () => {
  const dir = tempDir('tether-code-card-');
  const tls = ownCertificate(dir);
  const display = await startXvfb(1280, 720);
  const browser = await launch({ viewport: { width: 1440, height: 900 } });
  try {
    for (const { name, broker, needsCA } of [
      { name: 'test-certificate', broker: await startBroker(), needsCA: true },
      { name: 'own-certificate', broker: await startBroker({ tls }), needsCA: false },
    ]) {
      const page = await browser.newPage();
      const code = await createFromConsole(page, broker, 'INC-4712');
      const card = page.getByTestId('code-card');
      await page.mouse.move(0, 0);
      await card.screenshot({ path: join(artifacts, `code-card-${name}.png`), animations: 'disabled' });
      const command = await page.getByTestId('host-command').textContent();
      const hint = await page.getByTestId('host-command-hint').textContent();
      assert.match(hint, /already has Tether installed/);
      if (needsCA) {
        assert.equal(command, `host -broker ${broker.url} -ca ca.pem ${code}`);
        assert.match(hint, /test broker: the user also needs its ca\.pem/);
      } else {
        assert.equal(command, `host -broker ${broker.url} ${code}`, 'a broker with its own certificate is given -ca');
        assert.doesNotMatch(hint, /-ca|ca\.pem|test broker/);
      }

      // The user runs it as shown: with -ca, from a folder the broker's
      // ca.pem was copied to; without, on a computer that trusts the
      // broker's certificate as it would one from a public CA.
      const cwd = mkdtempSync(join(dir, 'user-'));
      if (needsCA) copyFileSync(broker.ca, join(cwd, 'ca.pem'));
      const host = startHost(broker, code, display, needsCA ? { ca: 'ca.pem', cwd } : { ca: null, cwd, env: { SSL_CERT_FILE: tls.cert } });
      await host.ready;
      await until('the card to say the user joined', async () => /^Connected/.test((await card.textContent()) ?? ''), 20_000);
      host.child.kill('SIGKILL');
      await page.close();
    }
  } finally {
    await browser.close();
  }
});

test('a code that ran out stays "Code expired" after the broker ends its session', { timeout: 120_000 }, async () => {
  const broker = await startBroker();
  const browser = await launch({ viewport: { width: 1280, height: 800 } });
  try {
    const page = await browser.newPage();
    // The broker's shortest code lifetime (-code-ttl 1m).
    await page.route('**/api/v1/sessions', async (route) => {
      const req = route.request();
      if (req.method() !== 'POST') return route.continue();
      return route.continue({ postData: JSON.stringify({ ...JSON.parse(req.postData() || '{}'), code_ttl_seconds: 60 }) });
    });
    await createFromConsole(page, broker, 'INC-1');
    const card = page.getByTestId('code-card');
    const row = page.getByTestId('session-row').first();
    // The broker ends the session within a second of the expiry; the list
    // shows it at its next refresh.
    await until('the listed session to have ended', async () => (await row.getAttribute('data-state')) === 'ended', 90_000);
    await page.waitForTimeout(1500);
    await page.mouse.move(0, 0);
    await page.screenshot({ path: join(artifacts, 'code-card-expired.png'), animations: 'disabled' });
    assert.equal(await card.getAttribute('data-state'), 'expired', await card.textContent());
    assert.match(await page.getByTestId('code-card-title').textContent(), /^Code expired/);
    assert.equal(await card.getByTestId('open-recording').count(), 0, 'nothing was shared, yet a recording is offered');
    assert.equal(await card.getByTestId('code-card-new').count(), 1, 'no shortcut to a new code');
    // The row says so in words, not only in a tooltip.
    assert.equal(await row.locator('.badge').textContent(), 'Code expired');
    assert.equal(await row.getByTestId('end-reason').textContent(), 'The support code expired before the user joined.');
    assert.ok(await row.getByTestId('end-reason').isVisible());
    // The broker says why in a word too, which the console goes by.
    const listed = (await api(broker, 'GET', '/api/v1/sessions')).body.sessions;
    assert.deepEqual(listed.map((s) => [s.state, s.end_cause]), [['ended', 'code_expired']]);
  } finally {
    await browser.close();
  }
});

// An admin rotates a webhook's signing secret in the console, against a
// real broker delivering to a real HTTPS receiver (a ticket system that
// refuses requests it cannot verify) and headless Chromium. Screenshots
// go to artifacts/.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { collectErrors, launch } from './browser.mjs';
import { api, ROOT, signIn, startBroker, stopAll, tempDir, until } from './procs.mjs';

const artifacts = join(ROOT, 'artifacts');
mkdirSync(artifacts, { recursive: true });
after(stopAll);

// The broker calls no receiver on loopback: the ticket system listens on
// this machine's first other IPv4 address.
const address = Object.values(networkInterfaces()).flat().find((a) => a.family === 'IPv4' && !a.internal)?.address;

/** The receiver's check, from the README: some v1 is HMAC-SHA256(secret, "<t>.<body>"). */
function verifies(header, secret, body) {
  const parts = (header ?? '').split(',').map((p) => p.split('='));
  const t = parts.find(([k]) => k === 't')?.[1];
  const want = createHmac('sha256', secret).update(`${t}.${body}`).digest();
  return parts.some(([k, v]) => k === 'v1' && v.length === want.length * 2 && timingSafeEqual(Buffer.from(v, 'hex'), want));
}

/**
 * A ticket system's webhook receiver over HTTPS with a certificate for
 * address; the broker trusts it through SSL_CERT_FILE=cert. It answers 401
 * to a request that does not verify with the secret it has saved.
 */
async function ticketSystem(dir) {
  const cert = join(dir, 'receiver.pem');
  const key = join(dir, 'receiver.key');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', `/CN=${address}`, '-addext', `subjectAltName=IP:${address}`, '-keyout', key, '-out', cert], { stdio: 'ignore' });
  const ts = { cert, secret: '', requests: [] };
  const server = createServer({ cert: readFileSync(cert), key: readFileSync(key) }, (req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const ok = verifies(req.headers['tether-signature'], ts.secret, body);
      ts.requests.push({ signature: req.headers['tether-signature'], body, ok });
      res.writeHead(ok ? 204 : 401).end(ok ? undefined : 'invalid signature');
    });
  });
  await new Promise((res) => server.listen(0, address, res));
  after(() => server.close());
  ts.url = `https://${address}:${server.address().port}/tether`;
  return ts;
}

test('an admin rotates a webhook\u2019s secret: shown once, the old one keeps working for a day, deliveries verify with the new one', { skip: !address && 'no IPv4 address besides loopback', timeout: 90_000 }, async () => {
  const dir = tempDir('tether-webhook-secret-');
  const ts = await ticketSystem(dir);
  const broker = await startBroker({ env: { SSL_CERT_FILE: ts.cert } });
  const created = await api(broker, 'POST', '/api/v1/webhooks', { url: ts.url, events: ['session.created'], description: 'Helpdesk' });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const oldSecret = created.body.secret;
  ts.secret = oldSecret;

  const browser = await launch();
  try {
    const page = await browser.newPage();
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write']);
    const errors = collectErrors(page);
    await signIn(page, broker);
    await page.getByTestId('nav-webhooks').click();
    const card = page.getByTestId('webhook-card');
    await card.waitFor();

    // Asked first; nothing changes when the admin cancels.
    await card.getByTestId('webhook-rotate').click();
    const confirm = page.getByTestId('confirm-dialog');
    await confirm.waitFor();
    assert.match(await confirm.textContent(), /For 24 hours every delivery is signed with both the new and the current secret/);
    await page.screenshot({ path: join(artifacts, 'webhook-rotate-confirm.png'), animations: 'disabled' });
    await confirm.getByRole('button', { name: 'Cancel' }).click();
    await confirm.waitFor({ state: 'detached' });
    assert.equal((await api(broker, 'GET', `/api/v1/webhooks/${created.body.id}`)).body.old_secret_expires_at, undefined, 'cancelling rotated the secret');

    await card.getByTestId('webhook-rotate').click();
    await confirm.getByTestId('confirm-ok').click();
    const dialog = page.getByTestId('webhook-secret-dialog');
    await dialog.waitFor();
    const newSecret = await dialog.getByTestId('shown-secret').textContent();
    assert.match(newSecret, /^whsec_/);
    assert.notEqual(newSecret, oldSecret);
    assert.match(await dialog.textContent(), /The old secret keeps working for 24 hours, until /);
    assert.doesNotMatch(await dialog.textContent(), /keeps only a hash/, 'the broker keeps webhook secrets, not hashes');
    await page.screenshot({ path: join(artifacts, 'webhook-rotate-secret.png'), animations: 'disabled' });
    await dialog.getByTestId('copy-secret').click();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), newSecret);
    await dialog.getByRole('button', { name: 'I have saved it' }).click();
    await dialog.waitFor({ state: 'detached' });
    // The card says until when the old secret works.
    await card.getByTestId('webhook-old-secret').waitFor();
    assert.match(await card.getByTestId('webhook-old-secret').textContent(), /signed with the new and the old secret until/);
    await page.screenshot({ path: join(artifacts, 'webhook-rotated-card.png'), fullPage: true, animations: 'disabled' });

    // The ticket system has not saved the new secret yet: the next delivery
    // still verifies with the old one, and with the new one too.
    assert.equal((await api(broker, 'POST', '/api/v1/sessions', { ticket: { id: 'INC-1' } })).status, 201);
    const during = await until('the delivery after the rotation', () => ts.requests[0]);
    assert.ok(during.ok, `refused with the old secret: ${during.signature}`);
    assert.ok(verifies(during.signature, newSecret, during.body), `does not verify with the new secret: ${during.signature}`);
    // Its admin saves the secret the console showed; the next delivery verifies with it.
    ts.secret = newSecret;
    assert.equal((await api(broker, 'POST', '/api/v1/sessions', { ticket: { id: 'INC-2' } })).status, 201);
    const next = await until('the delivery after the new secret was saved', () => ts.requests[1]);
    assert.ok(next.ok, `refused with the new secret: ${next.signature}`);

    // The new secret leaked: the admin stops it at once with the next one.
    await card.getByTestId('webhook-rotate').click();
    await confirm.waitFor();
    assert.match(await confirm.textContent(), /The old secret kept from the last change stops working now/);
    await confirm.getByTestId('webhook-rotate-leaked').check();
    await page.screenshot({ path: join(artifacts, 'webhook-rotate-leaked.png'), animations: 'disabled' });
    await confirm.getByTestId('confirm-ok').click();
    await dialog.waitFor();
    const third = await dialog.getByTestId('shown-secret').textContent();
    assert.match(await dialog.textContent(), /the old secret has stopped working/);
    await dialog.getByTestId('copy-secret').click();
    await dialog.getByRole('button', { name: 'I have saved it' }).click();
    await dialog.waitFor({ state: 'detached' });
    await page.locator('[data-testid="webhook-card"]:not(:has([data-testid="webhook-old-secret"]))').waitFor();
    assert.deepEqual(errors.map(String), []);

    // The ticket system still holds the leaked secret: it refuses the next
    // delivery, which is signed with the newest secret alone.
    assert.equal((await api(broker, 'POST', '/api/v1/sessions', { ticket: { id: 'INC-3' } })).status, 201);
    const leaked = await until('the delivery after the leak', () => ts.requests[2]);
    assert.ok(!leaked.ok, `the leaked secret still verifies: ${leaked.signature}`);
    assert.ok(verifies(leaked.signature, third, leaked.body), `does not verify with the newest secret: ${leaked.signature}`);
  } finally {
    await browser.close();
  }
});

// Starts the real programs the browser end-to-end tests drive: a private
// Xvfb display, the test X client, the broker and the host, all built by
// `make build` into bin/. Every process is killed by stopAll().

import { createHmac } from 'node:crypto';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { collectErrors } from './browser.mjs';

export const ROOT = resolve(import.meta.dirname, '../..');
const procs = new Set();
const dirs = new Set();

export function bin(name) {
  const p = join(ROOT, 'bin', name);
  if (!existsSync(p)) throw new Error(`${p} is missing: run \`make test\` (it builds bin/ first)`);
  return p;
}

// start runs a program and collects its output; ready resolves when a line
// matching readyLine appears on stdout (or at once without one).
export function start(cmd, args, { env = {}, readyLine, timeoutMs = 15000, stdin = 'ignore', cwd } = {}) {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: [stdin, 'pipe', 'pipe'], cwd });
  procs.add(child);
  const out = { stdout: '', stderr: '' };
  const exited = new Promise((res) => child.on('exit', (code, signal) => { procs.delete(child); res({ code, signal }); }));
  const ready = new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`${cmd}: no "${readyLine}" after ${timeoutMs} ms\n${out.stderr}`)), timeoutMs);
    child.stdout.on('data', (d) => {
      out.stdout += d;
      if (!readyLine || readyLine.test(out.stdout)) { clearTimeout(timer); res(); }
    });
    child.stderr.on('data', (d) => { out.stderr += d; });
    exited.then(({ code }) => { clearTimeout(timer); rej(new Error(`${cmd} exited with ${code} before ready:\n${out.stderr}`)); });
    if (!readyLine) { clearTimeout(timer); res(); }
  });
  return { child, out, ready, exited };
}

// startXvfb starts Xvfb on a free display and resolves to ":N" once it
// accepts connections (learnt from -displayfd).
export async function startXvfb(width, height) {
  for (let n = 170; n < 250; n++) {
    // A display is taken while its lock file exists; a socket left behind by
    // a killed server is not (Xvfb replaces it).
    if (existsSync(`/tmp/.X${n}-lock`)) continue;
    const child = spawn('Xvfb', [`:${n}`, '-displayfd', '1', '-screen', '0', `${width}x${height}x24`, '-noreset', '-nolisten', 'tcp'],
      { stdio: ['ignore', 'pipe', 'ignore'] });
    procs.add(child);
    const ok = await new Promise((res) => {
      child.stdout.once('data', (d) => res(String(d).trim() === String(n)));
      child.once('exit', () => res(false));
    });
    if (ok) return `:${n}`;
    child.kill('SIGKILL');
  }
  throw new Error('no free X display in :170..:249');
}

export async function freeTCPPort() {
  const srv = createServer();
  await new Promise((res) => srv.listen(0, '127.0.0.1', res));
  const { port } = srv.address();
  await new Promise((res) => srv.close(res));
  return port;
}

export async function freeUDPPort() {
  const sock = createSocket('udp4');
  await new Promise((res) => sock.bind(0, '127.0.0.1', res));
  const { port } = sock.address();
  sock.close();
  return port;
}

// startBroker runs bin/broker on loopback with a fresh data directory and
// returns its URL and first admin. With a certificate of its own (tls: {
// cert, key }, PEM files for localhost) the broker serves that instead of
// its development CA's, and clients trust it through cert. env adds to the
// broker's environment (SSL_CERT_FILE: the roots it trusts webhook
// receivers through).
export async function startBroker({ tls, env } = {}) {
  const data = tempDir('tether-broker-');
  const port = await freeTCPPort();
  const udp = await freeUDPPort();
  const own = tls ? ['-tls-cert', tls.cert, '-tls-key', tls.key] : [];
  const broker = start(bin('broker'), ['-addr', `127.0.0.1:${port}`, '-udp', String(udp), '-data', data, ...own], { env, readyLine: /Console: / });
  await broker.ready;
  const admin = JSON.parse(readFileSync(join(data, 'initial-admin.json'), 'utf8'));
  return { ...broker, url: `https://localhost:${port}`, ca: tls ? tls.cert : join(data, 'certs', 'ca.pem'), admin, dataDir: data };
}

/**
 * One REST call to the broker from outside the browser, as a ticket system
 * or an admin's script would make it; resolves to { status, body }.
 */
export function call(broker, method, path, token, body) {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const headers = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };
  // Node sends a DELETE's body without a length unless told it.
  if (payload !== undefined) headers['Content-Length'] = Buffer.byteLength(payload);
  return new Promise((resolve, reject) => {
    const req = request(broker.url + path, {
      method,
      ca: readFileSync(broker.ca),
      headers,
    }, (res) => {
      let data = '';
      res.on('data', (d) => { data += d; });
      res.on('end', () => resolve({ status: res.statusCode, body: data ? JSON.parse(data) : null }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** call with the first admin's API key. */
export function api(broker, method, path, body) {
  return call(broker, method, path, broker.admin.api_key, body);
}

/** Creates a session for a ServiceNow ticket id with title as the first admin; resolves to it. */
export async function ticketSession(broker, id, title) {
  const s = await api(broker, 'POST', '/api/v1/sessions', { ticket: { id, system: 'servicenow', title } });
  if (s.status !== 201) throw new Error(`create a session for ${id}: ${s.status} ${JSON.stringify(s.body)}`);
  return s.body;
}

/**
 * Polls fn until it returns something truthy and returns that; fails after
 * timeoutMs saying what it waited for (a string, or a function giving one).
 */
export async function until(what, fn, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === 'function' ? what() : what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// tempDir makes a directory under the system's temporary directory that
// stopAll() removes.
export function tempDir(prefix) {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.add(d);
  return d;
}

export function stopAll() {
  for (const p of procs) p.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}

// startHost runs bin/host on a terminal (util-linux `script` gives it a
// pty), as a user who started it from a shell: that is where it asks for
// consent. Each "Allow?" prompt is answered with answer ("all" allows
// everything asked; null leaves the prompts to the test, through
// host.type(line)). Without a code (null) the host asks the broker for one
// and is ready once it shows it; host.code() reads it. ca is what it is
// given with -ca (null: no -ca), cwd the folder it runs in, env more of its
// environment.
export function startHost(broker, code, display, { answer = 'all', args = [], ca = broker.ca, cwd, env = {} } = {}) {
  const quote = (s) => `'${String(s).replaceAll("'", "'\\''")}'`;
  const cmd = [bin('host'), '-broker', broker.url, ...(ca === null ? [] : ['-ca', ca]), ...args, ...(code === null ? [] : [code])].map(quote).join(' ');
  const readyLine = code === null ? /Your support code: [\d ]{11}/ : /Connected/;
  // A home of its own: the shells it opens read none of the dotfiles of
  // whoever runs the tests (an rc file that waits on a lock left by a shell
  // killed in an earlier test would hang every later one).
  const home = tempDir('tether-host-home-');
  const host = start('script', ['-qfec', cmd, '/dev/null'], { env: { ...env, DISPLAY: display, HOME: home }, readyLine, stdin: 'pipe', cwd });
  host.code = () => (host.out.stdout.match(/Your support code: ([\d ]{11})/)?.[1] ?? '').replaceAll(' ', '');
  host.child.stdin.on('error', () => {});
  host.type = (line) => host.child.stdin.write(line + '\n');
  // signal sends sig to the host program itself, not to `script` around it:
  // SIGSTOP freezes it as a hung computer would be.
  host.signal = (sig) => process.kill(host.pid(), sig);
  // The host program's own process id (not that of `script` around it).
  host.pid = () => descendant(host.child.pid, 'host');
  let answered = 0;
  host.child.stdout.on('data', () => {
    const prompts = host.out.stdout.split('Allow? ').length - 1;
    while (answer !== null && answered < prompts) {
      answered++;
      host.type(answer);
    }
  });
  return host;
}

// descendant finds the process named comm among pid's children,
// grandchildren and so on.
function descendant(pid, comm) {
  const children = (p) => readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  for (const queue = children(pid); queue.length;) {
    const p = queue.shift();
    if (readFileSync(`/proc/${p}/comm`, 'utf8').trim() === comm) return p;
    queue.push(...children(p));
  }
  throw new Error(`no ${comm} process under ${pid}`);
}

// recordSession records a real session for the player to play: a broker,
// Xvfb at width x height, and a session for ticket whose host shares that
// display while `viewer join` watches it. during({ broker, session, paint })
// draws on the screen with paint(...xpatternArgs), which resolves once that
// bin/xpattern is up, and returns once enough is recorded; the session is
// then ended through the API. It gives back { broker, session, rec }:
// session is the API's new session ({ id, code, ... }), rec the sealed
// recording (GET /api/v1/recordings/{id}).
export async function recordSession({ ticket, width = 640, height = 480 }, during) {
  const display = await startXvfb(width, height);
  const broker = await startBroker();
  const session = (await api(broker, 'POST', '/api/v1/sessions', { ticket: { id: ticket } })).body;
  const host = startHost(broker, session.code, display);
  await host.ready;
  const viewer = start(bin('viewer'), ['-broker', broker.url, '-ca', broker.ca, '-api-key', broker.admin.api_key, 'join', '-session', session.id]);
  const paint = (...args) => start(bin('xpattern'), args, { env: { DISPLAY: display }, readyLine: /ready/ }).ready;
  await during({ broker, session, paint });
  const ended = await api(broker, 'POST', `/api/v1/sessions/${session.id}/end`, {});
  if (ended.status !== 200) throw new Error(`end session ${session.id}: ${ended.status} ${JSON.stringify(ended.body)}`);
  await host.exited;
  viewer.child.kill('SIGTERM');
  const rec = await until('the recording to be sealed', async () => {
    const r = (await api(broker, 'GET', `/api/v1/recordings/${session.id}`)).body;
    return r.state === 'complete' && r;
  });
  return { broker, session, rec };
}

// recordShellArchive creates a session for ticket on broker and has
// bin/shellrec write its archive as the broker's recorder would (a shell
// and file transfers); it gives back the API's new session ({ id, ... }).
export async function recordShellArchive(broker, ticket) {
  const session = (await api(broker, 'POST', '/api/v1/sessions', { ticket: { id: ticket } })).body;
  execFileSync(bin('shellrec'), ['-data', broker.dataDir, '-session', session.id]);
  return session;
}

// signIn opens path on the console and signs in as the broker's first
// admin.
export async function signIn(page, broker, path = '/') {
  await page.goto(broker.url + path);
  await page.getByTestId('login-username').fill(broker.admin.user);
  await page.getByTestId('login-password').fill(broker.admin.password);
  await page.getByTestId('login-submit').click();
}

// openRecording opens recording id in the player of a new page, signed
// in as the broker's first admin. errors collects the page's errors from
// the player on (the console's first look for a login answers 401).
export async function openRecording(browser, broker, id) {
  const page = await browser.newPage();
  const errors = collectErrors(page);
  await signIn(page, broker, `/#/recording/${id}`);
  errors.length = 0;
  await page.waitForFunction(() => window.tether.player?.ready === true || window.tether.player?.error, null, { timeout: 30_000 })
    .catch(async (err) => { throw new Error(`${err.message}: at ${page.url()}, player ${JSON.stringify(await page.evaluate(() => window.tether.player))}, errors ${errors.join(' / ')}`); });
  const failed = await page.evaluate(() => window.tether.player.error);
  if (failed) throw new Error(`the player could not open recording ${id}: ${failed}`);
  return { page, errors };
}

// openSession logs the page in as the broker's first admin, creates a
// session through the console and opens it; it returns the code shown.
export async function openSession(page, broker, ticket = '') {
  await signIn(page, broker);
  await page.getByTestId('new-session').click();
  if (ticket) await page.getByTestId('new-session-ticket').fill(ticket);
  await page.getByTestId('new-session-submit').click();
  const codeEl = page.getByTestId('session-code');
  await codeEl.waitFor();
  const code = await codeEl.getAttribute('data-code');
  await page.getByTestId('open-session').click();
  await page.getByTestId('conn-state').waitFor();
  return code;
}

/** RFC 6238 with the broker's parameters: SHA-1, 6 digits, 30 s. */
export function totp(secretB32, at = Date.now()) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of secretB32) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 1000 / 30)));
  const mac = createHmac('sha1', key).update(counter).digest();
  const off = mac[mac.length - 1] & 0xf;
  return String((mac.readUInt32BE(off) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

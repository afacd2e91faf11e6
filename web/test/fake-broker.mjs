// A stand-in for the broker's HTTP side, just enough to render the console's
// screens: it serves web/console the way the broker does (index.html at /,
// /console and /console/; assets under /console/) and answers the REST API v1
// from memory. Signaling (/ws/viewer) is not here: tests route that
// WebSocket inside the browser. The broker's media side is /peer, a page
// running fake-peer.js that tests open in a second tab.
//
// It enforces the parts of the contract the console must honour: the login
// cookie, X-CSRF-Token on every state-changing request, and the permission
// list a new session may ask for. Each session's audit trail
// (GET /sessions/{id}/events) is `state.events[id]`, which tests fill.

import { randomBytes, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CONSOLE_DIR = resolve(fileURLToPath(new URL('../console/', import.meta.url)));
const PEER_SCRIPT = fileURLToPath(new URL('./fake-peer.js', import.meta.url));

export const USER = { username: 'dana.reyes', role: 'technician' };
export const PASSWORD = 'correct horse battery staple';
export const NEW_CODE = '482193075';
const CSRF = 'csrf-test-token';
const COOKIE = 'tether_login';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

const ago = (ms) => new Date(Date.now() - ms).toISOString();
const MIN = 60_000;

// As internal/protocol: the permissions, and what a session asks for when it names none.
export const PERMISSIONS = ['view', 'control', 'clipboard', 'files', 'shell'];
export const DEFAULT_PERMISSIONS = ['view', 'control', 'clipboard'];

/** A realistic set of sessions for the list. */
export function sampleSessions() {
  return [
    {
      id: 's_3f9cA2x71Kd4eB6a', state: 'waiting', created_at: ago(1.2 * MIN),
      ticket: { id: 'INC-20931' }, code: '305718264', code_expires_at: new Date(Date.now() + 8 * MIN).toISOString(),
      permissions: ['view', 'control', 'clipboard'],
    },
    {
      id: 's_b71eQ4d9-2c3aF58', state: 'active', created_at: ago(14 * MIN),
      ticket: { id: 'INC-20927' }, host: { hostname: 'FIN-LT-0142', os: 'Windows 11 Pro', width: 1920, height: 1080 },
      permissions: ['view', 'control', 'clipboard', 'files'],
    },
    {
      id: 's_e2a8Zc16_5b9dE73', state: 'ended', created_at: ago(2.3 * 60 * MIN),
      ticket: { id: 'INC-20911' }, host: { hostname: 'MKT-MBP-07', os: 'macOS 14.5', width: 2560, height: 1600 },
      permissions: ['view'],
    },
    {
      id: 's_90d5Hf3b2-7a1cD8', state: 'ended', created_at: ago(26 * 60 * MIN),
      host: { hostname: 'ubuntu-dev-03', os: 'Ubuntu 24.04', width: 1920, height: 1200 },
      permissions: ['view', 'control', 'clipboard', 'files', 'shell'],
    },
    {
      id: 's_5c7aR9e02y3b4d4f', state: 'ended', created_at: ago(3 * 24 * 60 * MIN),
      ticket: { id: 'REQ-4410' }, host: { hostname: 'HR-DESK-21', os: 'Windows 10 Enterprise', width: 1680, height: 1050 },
      permissions: ['view', 'control', 'clipboard'],
    },
  ];
}

/**
 * Starts the fake on 127.0.0.1 and a free port.
 * Returns { origin, state, close() }; `state.sessions` and `state.events`
 * (session id → [{at, actor, type, detail}]) may be changed by tests;
 * `state.created` holds the body of every POST /sessions.
 */
export async function startFakeBroker() {
  const state = { sessions: sampleSessions(), logins: new Set(), events: {}, created: [] };

  const server = createServer(async (req, res) => {
    try {
      await handle(req, res, state, origin);
    } catch (err) {
      sendJSON(res, 500, { error: { code: 'internal', message: String(err) } });
    }
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const origin = `http://127.0.0.1:${server.address().port}`;
  return {
    origin,
    state,
    close: () => new Promise((ok) => {
      server.closeAllConnections();
      server.close(ok);
    }),
  };
}

// The real broker's headers (broker/server), so that a CSP violation fails here too.
const SECURITY_HEADERS = {
  'Content-Security-Policy': "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; connect-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
};

async function handle(req, res, state, origin) {
  for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
  const url = new URL(req.url, origin);
  const path = url.pathname;

  if (path.startsWith('/api/v1/')) return api(req, res, state, origin, path.slice('/api/v1'.length));
  if (path === '/' || path === '/console' || path === '/console/') return sendFile(res, 'index.html');
  if (path === '/blank') {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    return res.end('<!doctype html><title>peer</title>');
  }
  if (path === '/peer') {
    res.writeHead(200, { 'Content-Type': TYPES['.html'] });
    return res.end('<!doctype html><title>fake broker peer</title><script src="/peer.js"></script>');
  }
  if (path === '/peer.js') {
    res.writeHead(200, { 'Content-Type': TYPES['.js'], 'Cache-Control': 'no-store' });
    return res.end(await readFile(PEER_SCRIPT));
  }
  if (path.startsWith('/console/')) return sendFile(res, path.slice('/console/'.length));
  return sendJSON(res, 404, { error: { code: 'not_found', message: 'Not found.' } });
}

async function sendFile(res, rel) {
  const file = normalize(join(CONSOLE_DIR, decodeURIComponent(rel)));
  if (!file.startsWith(CONSOLE_DIR)) return sendJSON(res, 404, { error: { code: 'not_found', message: 'Not found.' } });
  try {
    const body = await readFile(file);
    res.writeHead(200, { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream', 'Cache-Control': 'no-store' });
    res.end(body);
  } catch {
    // Unknown paths under /console/ get the app, like the broker does.
    const body = await readFile(join(CONSOLE_DIR, 'index.html'));
    res.writeHead(200, { 'Content-Type': TYPES['.html'] });
    res.end(body);
  }
}

function sendJSON(res, status, body, headers = {}) {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...headers });
  res.end(body === undefined ? '' : JSON.stringify(body));
}

async function readJSON(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  if (!chunks.length) return {};
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

function loggedIn(req, state) {
  const m = /(?:^|;\s*)tether_login=([^;]+)/.exec(req.headers.cookie ?? '');
  return m && state.logins.has(m[1]);
}

function publicSession(s) {
  const out = { ...s };
  if (s.state !== 'waiting') {
    delete out.code;
    delete out.code_expires_at;
  }
  return out;
}

async function api(req, res, state, origin, path) {
  const method = req.method;
  const unauthorized = () => sendJSON(res, 401, { error: { code: 'unauthorized', message: 'Sign in to continue.' } });

  if (method === 'POST' && path === '/login') {
    const { username, password } = await readJSON(req);
    if (username === 'locked.out') {
      return sendJSON(res, 429, { error: { code: 'locked_out', message: 'Too many failed logins. Wait a moment and try again.' } }, { 'Retry-After': '30' });
    }
    if (username !== USER.username || password !== PASSWORD) {
      return sendJSON(res, 401, { error: { code: 'bad_credentials', message: 'Wrong username or password.' } });
    }
    const token = randomUUID();
    state.logins.add(token);
    return sendJSON(res, 200, { user: USER, csrf_token: CSRF }, {
      'Set-Cookie': `${COOKIE}=${token}; Path=/; HttpOnly; SameSite=Strict`,
    });
  }
  if (method === 'GET' && path === '/me') {
    return loggedIn(req, state) ? sendJSON(res, 200, { user: USER, csrf_token: CSRF }) : unauthorized();
  }

  if (!loggedIn(req, state)) return unauthorized();
  if (method !== 'GET' && req.headers['x-csrf-token'] !== CSRF) {
    return sendJSON(res, 403, { error: { code: 'csrf_failed', message: 'Missing or wrong CSRF token; reload the console.' } });
  }

  if (method === 'POST' && path === '/logout') {
    state.logins.clear();
    res.writeHead(204, { 'Set-Cookie': `${COOKIE}=; Path=/; Max-Age=0` });
    return res.end();
  }
  if (method === 'GET' && path === '/sessions') {
    return sendJSON(res, 200, { sessions: state.sessions.map(({ code, code_expires_at, ...s }) => s) });
  }
  if (method === 'POST' && path === '/sessions') {
    const body = await readJSON(req);
    state.created.push(body);
    const perms = body.permissions ?? DEFAULT_PERMISSIONS;
    const valid = Array.isArray(perms) && perms.length <= PERMISSIONS.length
      && perms.every((p, i) => PERMISSIONS.includes(p) && perms.indexOf(p) === i);
    if (!valid) {
      return sendJSON(res, 400, { error: { code: 'invalid_permissions', message: 'permissions must be a list of view, control, clipboard, files, shell without repeats.' } });
    }
    const id = `s_${randomBytes(12).toString('base64url').slice(0, 16)}`; // like the broker's ids
    const s = {
      id,
      code: NEW_CODE,
      code_expires_at: new Date(Date.now() + 10 * MIN).toISOString(),
      state: 'waiting',
      join_url: `${origin}/join/${NEW_CODE}`,
      console_url: `${origin}/#/session/${id}`,
      created_at: new Date().toISOString(),
      permissions: perms.length ? perms : DEFAULT_PERMISSIONS, // an empty list means the default, as in the broker
      ...(body.ticket?.id ? { ticket: { id: body.ticket.id } } : {}),
    };
    state.sessions.unshift(s);
    return sendJSON(res, 201, s);
  }
  const m = /^\/sessions\/([^/]+)(\/end|\/events)?$/.exec(path);
  if (m) {
    const s = state.sessions.find((x) => x.id === decodeURIComponent(m[1]));
    if (!s) return sendJSON(res, 404, { error: { code: 'not_found', message: 'No such session, or it is not yours.' } });
    if (method === 'GET' && !m[2]) return sendJSON(res, 200, publicSession(s));
    if (method === 'GET' && m[2] === '/events') return sendJSON(res, 200, { events: state.events[s.id] ?? [] });
    if (method === 'POST' && m[2] === '/end') {
      s.state = 'ended';
      return sendJSON(res, 200, publicSession(s));
    }
  }
  return sendJSON(res, 404, { error: { code: 'not_found', message: 'Not found.' } });
}

// ---- The input channel, decoded the way the host does -------------------------

const KINDS = { 1: 'move', 2: 'button', 3: 'wheel', 4: 'key', 5: 'text', 6: 'release-all' };

/**
 * Decodes one input message with the checks of internal/protocol
 * DecodeInput, independently of the console's encoder. Throws on anything
 * the host would refuse.
 */
export function decodeInput(bytes) {
  const b = Buffer.from(bytes);
  if (b.length === 0 || b.length > 80) throw new Error(`input message of ${b.length} bytes`);
  const kind = KINDS[b[0]];
  const body = b.subarray(1);
  const need = (n) => {
    if (body.length !== n) throw new Error(`${kind} needs ${n} bytes, got ${body.length}`);
  };
  switch (kind) {
    case 'move':
      need(4);
      return { kind, x: body.readUInt16BE(0), y: body.readUInt16BE(2) };
    case 'button':
      need(6);
      if (body[0] > 4 || body[1] > 1) throw new Error(`button ${body[0]} down ${body[1]}`);
      return { kind, button: body[0], down: body[1] === 1, x: body.readUInt16BE(2), y: body.readUInt16BE(4) };
    case 'wheel': {
      need(4);
      const dx = body.readInt16BE(0);
      const dy = body.readInt16BE(2);
      if (Math.abs(dx) > 100 || Math.abs(dy) > 100) throw new Error(`wheel ${dx},${dy}`);
      return { kind, dx, dy };
    }
    case 'key': {
      if (body.length < 2 || body[0] > 1) throw new Error('short key event');
      const n = body[1];
      if (n === 0 || n > 32) throw new Error(`key code of ${n} bytes`);
      need(2 + n);
      const code = body.subarray(2).toString('latin1');
      if (!/^[A-Za-z0-9]+$/.test(code)) throw new Error(`key code ${JSON.stringify(code)}`);
      return { kind, down: body[0] === 1, code };
    }
    case 'text': {
      const n = body[0];
      if (!n || n > 64) throw new Error(`text of ${n} bytes`);
      need(1 + n);
      const text = new TextDecoder('utf-8', { fatal: true }).decode(body.subarray(1));
      // eslint-disable-next-line no-control-regex
      if (/[\u0000-\u0008\u000b-\u001f\u007f]/.test(text)) throw new Error('control character in text');
      return { kind, text };
    }
    case 'release-all':
      need(0);
      return { kind };
    default:
      throw new Error(`unknown input kind ${b[0]}`);
  }
}

// The broker's REST API v1, as the console uses it.
//
// The login cookie is HttpOnly and travels by itself; the CSRF token comes
// with /login and /me and lives in memory only (never in storage), and goes
// out as X-CSRF-Token on every state-changing request.

let csrfToken = '';
let clockOffset = 0; // server clock minus local clock, in ms
let onUnauthorized = () => {};

/** An API failure: HTTP status plus the broker's error code and sentence. */
export class ApiError extends Error {
  constructor(status, code, message, retryAfter = 0) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter; // seconds, from Retry-After on 429
  }
}

/** Registers what to do when a request finds the login gone (401). */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

/** The current time on the broker's clock, in ms since the epoch. */
export function serverNow() {
  return Date.now() + clockOffset;
}

function learnClock(res) {
  const date = Date.parse(res.headers.get('Date') || '');
  if (Number.isNaN(date)) return;
  const offset = date - Date.now();
  // Date has one-second resolution: only correct a real skew.
  clockOffset = Math.abs(offset) > 3000 ? offset : 0;
}

async function request(method, path, body, { retryCsrf = true, quiet401 = false } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['X-CSRF-Token'] = csrfToken;

  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, 'network_error', 'Cannot reach the Tether broker. Check your connection and try again.');
  }
  learnClock(res);

  if (res.status === 204) return null;
  const data = await res.json().catch(() => null);
  if (res.ok) return data;

  const err = data?.error ?? {};
  const apiErr = new ApiError(
    res.status,
    err.code || `http_${res.status}`,
    err.message || defaultMessage(res.status),
    Number.parseInt(res.headers.get('Retry-After') || '0', 10) || 0,
  );

  // A stale CSRF token (e.g. the broker restarted): fetch a fresh one, retry once.
  if (res.status === 403 && retryCsrf && /csrf/i.test(apiErr.code) && method !== 'GET') {
    try {
      await me();
      return await request(method, path, body, { retryCsrf: false, quiet401 });
    } catch {
      throw apiErr;
    }
  }
  if (res.status === 401 && !quiet401) {
    csrfToken = '';
    onUnauthorized(apiErr);
  }
  throw apiErr;
}

function defaultMessage(status) {
  if (status === 401) return 'Your sign-in has expired. Please sign in again.';
  if (status === 403) return 'You do not have permission to do that.';
  if (status === 404) return 'Not found.';
  if (status === 429) return 'Too many attempts. Please wait a moment and try again.';
  if (status >= 500) return 'The broker ran into a problem. Please try again.';
  return `Request failed (HTTP ${status}).`;
}

/** Signs in; returns the user. */
export async function login(username, password) {
  const data = await request('POST', '/api/v1/login', { username, password }, { quiet401: true });
  csrfToken = data?.csrf_token || '';
  return data.user;
}

/** Signs out. Never throws: the console forgets the login either way. */
export async function logout() {
  try {
    await request('POST', '/api/v1/logout', undefined, { quiet401: true });
  } catch {
    // Already gone on the broker side.
  } finally {
    csrfToken = '';
  }
}

/** The logged-in user, or null when nobody is signed in. */
export async function me() {
  try {
    const data = await request('GET', '/api/v1/me', undefined, { quiet401: true });
    csrfToken = data?.csrf_token || '';
    return data.user;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return null;
    throw err;
  }
}

/**
 * Creates a support session, optionally for a ticket reference, asking the
 * user for `permissions` (the broker's default when not given).
 */
export function createSession(ticketId, permissions) {
  const body = ticketId ? { ticket: { id: ticketId } } : {};
  if (Array.isArray(permissions)) body.permissions = permissions;
  return request('POST', '/api/v1/sessions', body);
}

export async function listSessions() {
  const data = await request('GET', '/api/v1/sessions');
  return data?.sessions ?? [];
}

export function getSession(id) {
  return request('GET', `/api/v1/sessions/${encodeURIComponent(id)}`);
}

export function endSession(id) {
  return request('POST', `/api/v1/sessions/${encodeURIComponent(id)}/end`, {});
}

/** A session's audit trail, oldest first: [{at, actor, type, detail}]. */
export async function sessionEvents(id) {
  const data = await request('GET', `/api/v1/sessions/${encodeURIComponent(id)}/events`);
  return Array.isArray(data?.events) ? data.events : [];
}

// The broker's REST API v1, as the console uses it.
//
// The login cookie is HttpOnly and travels by itself; the CSRF token comes
// with /login and /me and lives in memory only (never in storage), and goes
// out as X-CSRF-Token on every state-changing request.

let csrfToken = '';
let clockOffset = 0; // server clock minus local clock, in ms
let onUnauthorized = () => {};
let onEnrolRequired = () => {};

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

/** Registers what to do when the broker says this login must first enrol in TOTP. */
export function setEnrolRequiredHandler(fn) {
  onEnrolRequired = fn;
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

// request calls the API and returns the answer's JSON, or with bytes its
// body as an ArrayBuffer; a failure throws an ApiError.
async function request(method, path, body, { retryCsrf = true, quiet401 = false, bytes = false } = {}) {
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
  if (res.ok && bytes) return res.arrayBuffer();
  const data = await res.json().catch(() => null);
  if (res.ok) return data;

  const err = data?.error ?? {};
  const apiErr = new ApiError(
    res.status,
    err.code || `http_${res.status}`,
    err.message || defaultMessage(res.status),
    Number.parseInt(res.headers.get('Retry-After') || '0', 10) || 0,
  );
  apiErr.fields = Array.isArray(err.fields) ? err.fields : []; // [{field, code, message}]

  // A stale CSRF token (e.g. the broker restarted): fetch a fresh one, retry once.
  if (res.status === 403 && retryCsrf && /csrf/i.test(apiErr.code) && method !== 'GET') {
    try {
      await me();
      return await request(method, path, body, { retryCsrf: false, quiet401, bytes });
    } catch {
      throw apiErr;
    }
  }
  if (res.status === 403 && apiErr.code === 'totp_enrolment_required') onEnrolRequired(apiErr);
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

/** The signed-in user as the console keeps it. */
function toUser(data) {
  return {
    ...data.user, mustEnrol: Boolean(data.must_enrol_totp), totp_required: Boolean(data.totp_required), scopes: data.scopes ?? [],
    recoveryCodesLeft: data.recovery_codes_left ?? null,
  };
}

/**
 * Signs in; returns the user. `totp` is the six-digit code or a recovery
 * code, for accounts with two-factor authentication (the broker answers
 * totp_required without).
 */
export async function login(username, password, totp) {
  const body = { username, password };
  if (totp) body.totp = totp;
  const data = await request('POST', '/api/v1/login', body, { quiet401: true });
  csrfToken = data?.csrf_token || '';
  return toUser(data);
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
    return toUser(data);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return null;
    throw err;
  }
}

// The broker gives a session's code only in the answer that creates it (it
// keeps a hash), so the session page, waiting for the user, shows it from
// here. Kept in this page's memory only.
const createdCodes = new Map(); // session id → { code, code_expires_at }

/**
 * Creates a support session, optionally for a ticket reference, asking the
 * user for `permissions` (the broker's default when not given).
 */
export async function createSession(ticketId, permissions) {
  const body = ticketId ? { ticket: { id: ticketId } } : {};
  if (Array.isArray(permissions)) body.permissions = permissions;
  const s = await request('POST', '/api/v1/sessions', body);
  if (s?.id && s.code) createdCodes.set(s.id, { code: s.code, code_expires_at: s.code_expires_at });
  return s;
}

/** Forgets the codes: someone else signs in. */
export function forgetCodes() {
  createdCodes.clear();
}

/** The code of a session created from this page, or null. */
export function createdCode(id) {
  return createdCodes.get(id) ?? null;
}

/**
 * Takes the computer of a user who started the host without a code and
 * read out the one it shows. `ticket` is { id, system?, title?, url? }.
 */
export function claimCode(code, ticket, permissions) {
  const body = { code, ticket };
  if (Array.isArray(permissions)) body.permissions = permissions;
  return request('POST', '/api/v1/sessions/claim', body);
}

// ---- One's own account ------------------------------------------------------

export function changePassword(current, next) {
  return request('POST', '/api/v1/me/password', { current_password: current, new_password: next });
}

/** Starts two-factor enrolment, given the account's password: { secret, otpauth_uri }. */
export function beginTOTP(password) {
  return request('POST', '/api/v1/me/totp', { password });
}

/** Puts the enrolment in force with a code; answers the recovery codes, shown once. */
export async function confirmTOTP(code) {
  return (await request('POST', '/api/v1/me/totp/confirm', { code })).recovery_codes;
}

/** Turns two-factor off, given the account's password and a current code (or a recovery code). */
export function disableTOTP(password, code) {
  return request('DELETE', '/api/v1/me/totp', { password, code });
}

/** Replaces the recovery codes, given the account's password and a code; answers the new ones. */
export async function newRecoveryCodes(password, code) {
  return (await request('POST', '/api/v1/me/totp/recovery-codes', { password, code })).recovery_codes;
}

// ---- Administration ---------------------------------------------------------

export async function listUsers() {
  return (await request('GET', '/api/v1/users'))?.users ?? [];
}

/** Creates an account; without a password the answer carries a made-up one. */
export function createUser(username, role, password) {
  const body = { username, role };
  if (password) body.password = password;
  return request('POST', '/api/v1/users', body);
}

export function updateUser(username, changes) {
  return request('PATCH', `/api/v1/users/${encodeURIComponent(username)}`, changes);
}

/** New password (in the answer), two-factor off, every login ended. */
export function resetUser(username) {
  return request('POST', `/api/v1/users/${encodeURIComponent(username)}/reset`);
}

export async function listKeys() {
  return (await request('GET', '/api/v1/keys'))?.keys ?? [];
}

/** expiresAt: an ISO time, or '' for a key that works until revoked. */
export function createKey(name, scopes, username, expiresAt) {
  const body = { name, scopes };
  if (username) body.username = username;
  if (expiresAt) body.expires_at = expiresAt;
  return request('POST', '/api/v1/keys', body);
}

export function revokeKey(id) {
  return request('DELETE', `/api/v1/keys/${encodeURIComponent(id)}`);
}

export function getSettings() {
  return request('GET', '/api/v1/settings');
}

export function putSettings(settings) {
  return request('PUT', '/api/v1/settings', settings);
}

export async function listWebhooks() {
  return (await request('GET', '/api/v1/webhooks'))?.webhooks ?? [];
}

export function createWebhook(url, events, description) {
  return request('POST', '/api/v1/webhooks', { url, events, description });
}

export function updateWebhook(id, changes) {
  return request('PATCH', `/api/v1/webhooks/${encodeURIComponent(id)}`, changes);
}

export function deleteWebhook(id) {
  return request('DELETE', `/api/v1/webhooks/${encodeURIComponent(id)}`);
}

/**
 * Gives a webhook a new signing secret; the answer holds it (shown once)
 * and old_secret_expires_at, until when the old secret keeps working:
 * graceSeconds from now (0: it stops at once), 24 hours when undefined.
 */
export function rotateWebhookSecret(id, graceSeconds) {
  const body = graceSeconds === undefined ? undefined : { grace_seconds: graceSeconds };
  return request('POST', `/api/v1/webhooks/${encodeURIComponent(id)}/secret`, body);
}

export async function webhookDeliveries(id) {
  return (await request('GET', `/api/v1/webhooks/${encodeURIComponent(id)}/deliveries?limit=20`))?.deliveries ?? [];
}

export function redeliver(id, delivery) {
  return request('POST', `/api/v1/webhooks/${encodeURIComponent(id)}/deliveries/${encodeURIComponent(delivery)}/redeliver`);
}

/**
 * One page of sessions, newest first: state (waiting, active or ended)
 * narrows it, limit caps it (the broker's default is 100, at most 500) and
 * after is the id of the last session of the page before.
 */
export async function listSessions({ state, limit, after } = {}) {
  const q = new URLSearchParams();
  if (state) q.set('state', state);
  if (limit) q.set('limit', String(limit));
  if (after) q.set('after', after);
  const data = await request('GET', `/api/v1/sessions${q.size ? `?${q}` : ''}`);
  return data?.sessions ?? [];
}

export function getSession(id) {
  return request('GET', `/api/v1/sessions/${encodeURIComponent(id)}`);
}

/** Ends a session; notes, when given, go to the ticket system with session.ended. */
export function endSession(id, notes = '') {
  return request('POST', `/api/v1/sessions/${encodeURIComponent(id)}/end`, notes ? { notes } : {});
}

/** Lets a colleague into a session (the user is asked first), or hands it over to them. */
export function bringIn(id, username, { handOver = false } = {}) {
  return request('POST', `/api/v1/sessions/${encodeURIComponent(id)}/${handOver ? 'handover' : 'invite'}`, { username });
}

/** A session's audit trail, oldest first: [{at, actor, type, detail}]. */
export async function sessionEvents(id) {
  const data = await request('GET', `/api/v1/sessions/${encodeURIComponent(id)}/events`);
  return Array.isArray(data?.events) ? data.events : [];
}

// ---- Recordings -------------------------------------------------------------

/**
 * Searches recordings. filter: { ticket, technician, host, from, to (dates
 * YYYY-MM-DD), shell, files (booleans), after (the session id of the last
 * recording of the page before) }. Returns { recordings, more }: the newest
 * hundred (after after), and whether older ones match too.
 */
export async function searchRecordings(filter = {}) {
  const q = new URLSearchParams();
  for (const key of ['ticket', 'technician', 'host', 'from', 'to', 'after']) {
    if (filter[key]) q.set(key, filter[key]);
  }
  const has = ['shell', 'files'].filter((k) => filter[k]);
  if (has.length) q.set('has', has.join(','));
  const data = await request('GET', `/api/v1/recordings${q.size ? `?${q}` : ''}`);
  return { recordings: data?.recordings ?? [], more: !!data?.more };
}

/** A recording's summary and manifest; opening it is audited as a playback. */
export function getRecording(id) {
  return request('GET', `/api/v1/recordings/${encodeURIComponent(id)}`);
}

/** The archive's events.jsonl, parsed: { events, complete, error }. */
export function recordingEvents(id) {
  return request('GET', `/api/v1/recordings/${encodeURIComponent(id)}/events`);
}

/** Checks the archive on the broker: { ok, problems, warnings, ... }. */
export function verifyRecording(id) {
  return request('POST', `/api/v1/recordings/${encodeURIComponent(id)}/verify`, {});
}

/** Where a part of an archive (a video segment, a shell transcript) is served. */
export function recordingPartURL(id, name) {
  return `/api/v1/recordings/${encodeURIComponent(id)}/parts/${encodeURIComponent(name)}`;
}

/** One part of a recording, as bytes. */
export function recordingPart(id, name) {
  return request('GET', recordingPartURL(id, name), undefined, { bytes: true });
}

/** The whole archive as a zip; each download is audited. */
export function recordingDownloadURL(id) {
  return `/api/v1/recordings/${encodeURIComponent(id)}/download`;
}

export const RECORDING_KEY_URL = '/api/v1/recordings/public-key';

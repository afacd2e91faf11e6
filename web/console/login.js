// Login screen.

import * as api from './api.js';
import { brand, h, holdUntilRetry, icon } from './ui.js';

/**
 * Shows the sign-in form in root. Calls onLogin(user) on success.
 * Returns an unmount function.
 */
export function mountLogin(root, { flash = '', onLogin }) {
  const username = h('input', {
    id: 'login-username', name: 'username', type: 'text', class: 'input',
    autocomplete: 'username', autocapitalize: 'off', spellcheck: 'false', required: true,
    'data-testid': 'login-username',
  });
  const password = h('input', {
    id: 'login-password', name: 'password', type: 'password', class: 'input',
    autocomplete: 'current-password', required: true,
    'data-testid': 'login-password',
  });
  // The second step, for accounts with two-factor authentication.
  const totp = h('input', {
    id: 'login-totp', name: 'totp', type: 'text', class: 'input input-code', inputmode: 'numeric',
    autocomplete: 'one-time-code', autocapitalize: 'off', spellcheck: 'false', maxlength: '7', placeholder: '123 456',
    'aria-describedby': 'login-totp-hint', 'data-testid': 'login-totp',
  });
  // Lost the phone: one of the recovery codes saved at enrolment does.
  const totpLabel = h('label', { for: 'login-totp', class: 'label', text: 'Two-factor code' });
  const totpHint = h('p', { class: 'field-hint', id: 'login-totp-hint', text: 'The six-digit code from your authenticator app.' });
  const recoveryToggle = h('button', { type: 'button', class: 'btn-link', 'data-testid': 'login-use-recovery' }, 'Use a recovery code');
  let recovery = false;
  recoveryToggle.addEventListener('click', () => {
    recovery = !recovery;
    totpLabel.textContent = recovery ? 'Recovery code' : 'Two-factor code';
    totpHint.textContent = recovery
      ? 'One of the recovery codes you saved when you set up two-factor authentication. Each works once.'
      : 'The six-digit code from your authenticator app.';
    recoveryToggle.textContent = recovery ? 'Use the code from your app' : 'Use a recovery code';
    Object.assign(totp, recovery
      ? { inputMode: 'text', maxLength: 11, placeholder: 'abcde-23456' }
      : { inputMode: 'numeric', maxLength: 7, placeholder: '123 456' });
    totp.classList.toggle('input-code-wide', recovery);
    totp.value = '';
    totp.focus();
  });
  const totpField = h('div', { class: 'field', hidden: true, 'data-testid': 'login-totp-field' },
    totpLabel, totp, totpHint, h('div', {}, recoveryToggle));
  const submitLabel = h('span', { text: 'Sign in' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block btn-lg', 'data-testid': 'login-submit' }, submitLabel);
  const errorText = h('span', {});
  const error = h('div', { class: 'alert alert-error', role: 'alert', 'data-testid': 'login-error', hidden: true },
    icon('alert', 16), errorText);
  const notice = flash
    ? h('div', { class: 'alert alert-info', role: 'status' }, icon('clock', 16), h('span', { text: flash }))
    : null;

  function showError(message) {
    errorText.textContent = message;
    error.hidden = false;
    notice?.remove();
  }

  function setBusy(busy, label = 'Sign in') {
    submit.disabled = busy;
    submit.classList.toggle('is-loading', busy);
    submitLabel.textContent = label;
    username.disabled = busy;
    password.disabled = busy;
    totp.disabled = busy;
    recoveryToggle.disabled = busy;
  }

  const form = h('form', { class: 'login-form', novalidate: true },
    h('div', { class: 'field' },
      h('label', { for: 'login-username', class: 'label', text: 'Username' }),
      username),
    h('div', { class: 'field' },
      h('label', { for: 'login-password', class: 'label', text: 'Password' }),
      password),
    totpField,
    submit);

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (submit.disabled) return;
    error.hidden = true;
    if (!username.value.trim() || !password.value) {
      showError('Enter your username and password.');
      (username.value.trim() ? password : username).focus();
      return;
    }
    setBusy(true, 'Signing in…');
    try {
      const user = await api.login(username.value.trim(), password.value, totp.value.replace(/\s+/g, ''));
      onLogin(user);
    } catch (err) {
      if (err.code === 'totp_required' || err.code === 'bad_totp') {
        // The password was right: ask for the code, keep the password.
        totpField.hidden = false;
        totp.value = '';
        if (err.code === 'bad_totp') showError(err.message);
        else error.hidden = true;
        setBusy(false);
        totp.focus();
        return;
      }
      password.value = '';
      totp.value = '';
      showError(err.message);
      setBusy(false);
      // Too many tries: the button counts down to when the broker takes
      // sign-ins again.
      holdUntilRetry(submit, err);
      password.focus();
    }
  });

  root.replaceChildren(h('main', { class: 'login-page' },
    h('div', { class: 'login-panel' },
      h('div', { class: 'login-brand' }, brand(36)),
      h('div', { class: 'card login-card' },
        h('h1', { class: 'login-title', text: 'Sign in to the console' }),
        h('p', { class: 'login-subtitle', text: 'Use your Tether account.' }),
        notice,
        error,
        form),
      h('p', { class: 'login-footnote' },
        icon('eye', 14),
        h('span', { text: 'Every session needs the user\u2019s consent and is recorded.' })))));

  username.focus();
  return () => {}; // the countdown, if any, stops once the button is gone
}

// How often the page waiting for the broker asks it again.
const RETRY_MS = 5000;

/**
 * Shows, in place of the sign-in form, that the broker cannot answer
 * right now (a problem with its database, a restart): a technician who is
 * signed in must not think they were logged out and type their password.
 * Calls check() every few seconds and when asked; check resolves to the
 * broker's new message while it still cannot answer, and the caller takes
 * the page over once it can. Returns an unmount function.
 */
export function mountUnavailable(root, { message, check }) {
  let timer = 0;
  let alive = true;
  const waiting = `The console asks the broker again every ${RETRY_MS / 1000} seconds, and opens the page you were on as soon as it answers.`;

  const messageText = h('span', { text: message, 'data-testid': 'broker-down-message' });
  const status = h('p', { class: 'login-subtitle', role: 'status', 'data-testid': 'broker-down-status', text: waiting });
  const retry = h('button', { type: 'button', class: 'btn btn-secondary btn-block', 'data-testid': 'broker-down-retry' },
    icon('refresh', 16), h('span', { text: 'Try again now' }));

  async function again() {
    clearTimeout(timer);
    retry.disabled = true;
    status.textContent = 'Asking the broker again\u2026';
    const stillDown = await check();
    if (!alive) return;
    messageText.textContent = stillDown;
    retry.disabled = false;
    status.textContent = waiting;
    timer = setTimeout(again, RETRY_MS);
  }
  retry.addEventListener('click', again);

  root.replaceChildren(h('main', { class: 'login-page', 'data-testid': 'broker-down' },
    h('div', { class: 'login-panel' },
      h('div', { class: 'login-brand' }, brand(36)),
      h('div', { class: 'card login-card' },
        h('h1', { class: 'login-title', text: 'Waiting for the broker' }),
        status,
        h('div', { class: 'alert alert-error', role: 'alert' }, icon('alert', 16), messageText),
        retry))));

  timer = setTimeout(again, RETRY_MS);
  return () => {
    alive = false;
    clearTimeout(timer);
  };
}

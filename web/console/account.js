// Account security: one's own password, two-factor authentication and
// its recovery codes.

import * as api from './api.js';
import { copyButton, errorBox, h, holdUntilRetry, icon, linkHints, toast } from './ui.js';
import { generate } from './vendor/lean-qr/index.mjs';

/** Mounts the account screen into main. Returns an unmount function. */
export function mountAccount(main, { user, onChange }) {
  const totpSlot = h('div', {});
  main.replaceChildren(
    h('header', { class: 'page-header' },
      h('div', {},
        h('h1', { class: 'page-title', text: 'Account security' }),
        h('p', { class: 'page-subtitle', text: `Signed in as ${user.username}.` }))),
    ...(user.mustEnrol
      ? [h('div', { class: 'alert alert-info', role: 'status', 'data-testid': 'enrol-required' }, icon('shield', 16),
        h('span', { text: 'Your role requires two-factor authentication. Set it up below to continue to the console.' }))]
      : []),
    h('div', { class: 'admin-grid' }, totpSlot, user.mustEnrol ? null : passwordCard()));
  renderTOTP();

  // Setting up or turning off two-factor authentication takes the
  // password: whoever sits at a console left signed in must not put their
  // own authenticator on the account and lock its owner out.
  function renderTOTP() {
    if (user.totp_enabled) {
      totpSlot.replaceChildren(enabledCard());
      return;
    }
    const password = passwordInput('totp-start-password', 'totp-password');
    const start = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'totp-start' }, icon('shield', 16), 'Set up two-factor authentication');
    const error = errorBox({ password });
    const form = h('form', { class: 'stack', novalidate: true },
      error.el,
      h('div', { class: 'field' }, h('label', { for: 'totp-start-password', class: 'label', text: 'Password' }), password,
        h('p', { class: 'field-hint', text: 'Enter the password you sign in with to set it up.' })),
      h('div', {}, start));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      start.disabled = true;
      try {
        enrol(await api.beginTOTP(password.value));
      } catch (err) {
        error.show(err);
        if (!holdUntilRetry(start, err)) start.disabled = false;
        password.select();
      }
    });
    totpSlot.replaceChildren(card('Two-factor authentication',
      h('p', { class: 'status-line', 'data-testid': 'totp-status' }, h('span', { class: 'badge badge-ended' }, h('span', { class: 'badge-dot' }), 'Off'),
        ' Protect your account with a code from an authenticator app (RFC 6238 TOTP) at each sign-in.'),
      form));
  }

  // Two-factor on: how many recovery codes are left, and one form that
  // makes new ones or, where the role allows, turns two-factor off; both
  // take the password and a code (from the app, or a recovery code).
  function enabledCard() {
    const password = passwordInput('totp-change-password', 'totp-password');
    const code = codeInput('totp-change-code', { recovery: true });
    code.id = 'totp-change-code';
    const renew = h('button', { type: 'submit', class: 'btn btn-secondary', 'data-testid': 'recovery-codes-new' }, 'New recovery codes');
    const off = user.totp_required ? null : h('button', { type: 'submit', class: 'btn btn-secondary', 'data-testid': 'totp-disable' }, 'Turn off');
    const error = errorBox({ password, code });
    const form = h('form', { class: 'stack', novalidate: true },
      error.el,
      h('p', { class: 'field-hint', text: off ? 'To make new recovery codes or turn two-factor off, enter your password and a code.' : 'To make new recovery codes, enter your password and a code.' }),
      h('div', { class: 'field' }, h('label', { for: 'totp-change-password', class: 'label', text: 'Password' }), password),
      h('div', { class: 'field' }, h('label', { for: 'totp-change-code', class: 'label', text: 'Code from your authenticator app, or a recovery code' }), code),
      h('div', { class: 'btn-row' }, renew, off));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const button = e.submitter === off ? off : renew;
      button.disabled = true;
      try {
        if (button === off) {
          await api.disableTOTP(password.value, code.value.trim());
          toast('Two-factor authentication is off.', 'success');
          onChange(await api.me());
          return;
        }
        const codes = await api.newRecoveryCodes(password.value, code.value.trim());
        toast('New recovery codes made: the old ones no longer work.', 'success');
        showRecoveryCodes(codes, 'Your new recovery codes');
      } catch (err) {
        error.show(err);
        if (!holdUntilRetry(button, err)) button.disabled = false;
      }
    });
    const left = user.recoveryCodesLeft;
    const few = left !== null && left <= 2;
    return card('Two-factor authentication',
      h('p', { class: 'status-line', 'data-testid': 'totp-status' }, h('span', { class: 'badge badge-active' }, h('span', { class: 'badge-dot' }), 'On'),
        ' Each sign-in asks for a code from your authenticator app.'),
      left === null ? null : h('p', { class: `recovery-left${few ? ' is-few' : ''}`, 'data-testid': 'recovery-codes-left', 'data-left': String(left) },
        icon(few ? 'alert' : 'lock', 14),
        h('span', { text: `${left} of 10 recovery codes left.${few ? ' Make new ones before you run out.' : ' Each signs you in once if you lose your phone.'}` })),
      user.totp_required
        ? h('p', { class: 'field-hint', 'data-testid': 'totp-required', text: 'Your role requires it, so it cannot be turned off. Lost your phone and your recovery codes? An admin can reset your account, and you set it up again.' })
        : null,
      form);
  }

  // The recovery codes, shown this once, until the user says they saved them.
  function showRecoveryCodes(codes, title) {
    const done = h('button', { type: 'button', class: 'btn btn-primary', 'data-testid': 'recovery-codes-done' }, 'I have saved them');
    done.addEventListener('click', async () => {
      done.disabled = true;
      onChange(await api.me());
    });
    const text = `Tether recovery codes for ${user.username} at ${location.host}\n${codes.join('\n')}\n`;
    const download = h('button', { type: 'button', class: 'btn btn-secondary btn-sm', 'data-testid': 'recovery-codes-download' }, icon('download', 14), h('span', { text: 'Download' }));
    download.addEventListener('click', () => {
      const a = h('a', { href: URL.createObjectURL(new Blob([text], { type: 'text/plain' })), download: `tether-recovery-codes-${user.username}.txt` });
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 1000);
    });
    totpSlot.replaceChildren(card(title,
      h('p', { text: 'If you lose your phone, each of these codes signs you in once in place of a code from the app. Keep them somewhere safe, away from this computer: they are shown only now.' }),
      h('ol', { class: 'recovery-codes', 'data-testid': 'recovery-codes', 'aria-label': 'Recovery codes' },
        ...codes.map((c) => h('li', { class: 'mono', 'data-testid': 'recovery-code', text: c }))),
      h('div', { class: 'btn-row' }, copyButton(() => text, { label: 'Copy codes', testid: 'recovery-codes-copy' }), download),
      h('div', {}, done)));
    done.focus();
  }

  function enrol({ secret, otpauth_uri: uri }) {
    const code = codeInput('totp-confirm-code');
    const confirm = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'totp-confirm' }, 'Turn on');
    const error = errorBox({ code });
    const form = h('form', { class: 'inline-form', novalidate: true }, code, confirm);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      confirm.disabled = true;
      try {
        const codes = await api.confirmTOTP(code.value.replace(/\s+/g, ''));
        toast('Two-factor authentication is on. You were signed out everywhere else.', 'success');
        showRecoveryCodes(codes, 'Save your recovery codes');
      } catch (err) {
        error.show(err);
        if (!holdUntilRetry(confirm, err)) confirm.disabled = false;
        code.select();
      }
    });
    const grouped = secret.match(/.{1,4}/g).join(' ');
    totpSlot.replaceChildren(card('Set up two-factor authentication',
      h('ol', { class: 'steps' },
        h('li', {}, 'Scan this code with your authenticator app:',
          h('img', { class: 'qr', src: qrDataURL(uri), width: '180', height: '180', alt: 'QR code of the two-factor key', 'data-testid': 'totp-qr' })),
        h('li', {}, 'Or add an account with this key (time-based):',
          h('div', { class: 'secret-row' },
            h('code', { class: 'secret', 'data-testid': 'totp-secret', 'data-secret': secret, text: grouped }),
            copyButton(() => secret, { label: 'Copy key', testid: 'copy-totp-secret' })),
          h('p', { class: 'field-hint' }, 'Or open this link on your phone: ',
            h('a', { href: uri, class: 'mono otpauth', 'data-testid': 'totp-uri', text: uri }))),
        h('li', {}, 'Enter the six-digit code the app shows:', error.el, form))));
    code.focus();
  }

  function passwordCard() {
    const current = h('input', { id: 'pw-current', type: 'password', class: 'input', autocomplete: 'current-password', 'data-testid': 'pw-current' });
    const next = h('input', { id: 'pw-new', type: 'password', class: 'input', autocomplete: 'new-password', minlength: '12', 'data-testid': 'pw-new' });
    const save = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'pw-save' }, 'Change password');
    const error = errorBox({ current_password: current, new_password: next });
    const form = h('form', { class: 'stack', novalidate: true },
      error.el,
      h('div', { class: 'field' }, h('label', { for: 'pw-current', class: 'label', text: 'Current password' }), current),
      h('div', { class: 'field' }, h('label', { for: 'pw-new', class: 'label', text: 'New password' }), next,
        h('p', { class: 'field-hint', text: 'At least 12 characters. A few unrelated words are easy to remember and hard to guess.' })),
      h('div', {}, save));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      save.disabled = true;
      try {
        await api.changePassword(current.value, next.value);
        current.value = '';
        next.value = '';
        error.hide();
        toast('Password changed.', 'success');
        save.disabled = false;
      } catch (err) {
        error.show(err);
        if (!holdUntilRetry(save, err)) save.disabled = false;
      }
    });
    return card('Password', form);
  }

  return () => {};
}

/** The otpauth:// URI as a QR code image (data: URL, allowed by the CSP). */
function qrDataURL(uri) {
  try {
    return generate(uri).toDataURL({ scale: 6, pad: 4 });
  } catch {
    return '';
  }
}

function card(title, ...content) {
  const el = h('section', { class: 'card admin-card' }, h('h2', { class: 'section-title', text: title }), ...content);
  linkHints(el);
  return el;
}

function passwordInput(id, testid) {
  return h('input', { id, type: 'password', class: 'input', autocomplete: 'current-password', 'data-testid': testid });
}

/** A code field: six digits, or with recovery, a recovery code too. */
function codeInput(testid, { recovery = false } = {}) {
  return h('input', {
    type: 'text', class: `input input-code${recovery ? ' input-code-wide' : ''}`, inputmode: recovery ? 'text' : 'numeric', autocomplete: 'one-time-code',
    autocapitalize: 'off', spellcheck: 'false', maxlength: recovery ? '11' : '7', placeholder: '123 456',
    'aria-label': recovery ? 'Code or recovery code' : 'Six-digit code', 'data-testid': testid,
  });
}

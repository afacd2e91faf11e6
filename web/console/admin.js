// Administration: accounts and the two-factor policy, API keys, webhooks.
// Secrets (a made-up password, an API key, a webhook's signing secret) are
// shown once, in a dialog, and never again.

import * as api from './api.js';
import { confirmDialog, copyButton, errorBox, formatDateTime, h, icon, modal, timeAgo, toast } from './ui.js';

const ROLES = [
  { id: 'technician', label: 'Technician', desc: 'Creates sessions and works on their own.' },
  { id: 'supervisor', label: 'Supervisor', desc: 'Sees and watches every session, read-only.' },
  { id: 'admin', label: 'Admin', desc: 'Everything, including accounts, keys and webhooks.' },
];

export const SCOPES = [
  { id: 'sessions:create', desc: 'Create sessions for tickets; claim a user\u2019s code' },
  { id: 'sessions:read', desc: 'List and read sessions and their audit trail' },
  { id: 'sessions:write', desc: 'End sessions, invite colleagues, hand over' },
  { id: 'sessions:join', desc: 'Connect to a session\u2019s screen (viewer CLI)' },
  { id: 'recordings:read', desc: 'List and replay recordings' },
  { id: 'webhooks:admin', desc: 'Manage webhooks' },
  { id: 'users:admin', desc: 'Manage accounts, API keys and settings' },
  { id: 'metrics:read', desc: 'Scrape the broker\u2019s metrics (GET /metrics, for Prometheus)' },
];

// The scopes each role holds, as the broker's policy (broker/auth) has it:
// a key can never do more than its account's role allows.
const ROLE_SCOPES = {
  technician: ['sessions:create', 'sessions:read', 'sessions:write', 'sessions:join', 'recordings:read'],
  supervisor: ['sessions:read', 'sessions:join', 'recordings:read'],
  admin: SCOPES.map((s) => s.id),
};
const DEFAULT_SCOPES = ['sessions:create', 'sessions:read'];

const EVENTS = ['session.created', 'host.connected', 'consent.granted', 'consent.denied', 'consent.revoked', 'session.started', 'session.ended', 'recording.ready'];

function page(main, title, subtitle, actions, ...content) {
  main.replaceChildren(
    h('header', { class: 'page-header' },
      h('div', {}, h('h1', { class: 'page-title', text: title }), h('p', { class: 'page-subtitle', text: subtitle })),
      h('div', { class: 'page-actions' }, actions)),
    ...content);
}

/** The header of a table's last column, its buttons: named for a screen reader, blank to the eye. */
function actionsHeader() {
  return h('th', { scope: 'col' }, h('span', { class: 'visually-hidden', text: 'Actions' }));
}

function loading(slot) {
  slot.replaceChildren(h('div', { class: 'skeleton-list' }, h('div', { class: 'skeleton skeleton-row' }), h('div', { class: 'skeleton skeleton-row' })));
}

function failed(slot, err, retry) {
  const again = h('button', { type: 'button', class: 'btn btn-secondary btn-sm', text: 'Try again' });
  again.addEventListener('click', retry);
  slot.replaceChildren(h('div', { class: 'empty empty-compact' },
    h('div', { class: 'empty-icon empty-icon-error' }, icon('alert', 20)),
    h('p', { class: 'empty-title', text: 'Could not load this list' }),
    h('p', { class: 'empty-text', text: err.message }), again));
}

/**
 * Shows a secret once, with a copy button, until the admin closes it. It is
 * never shown again, so closing it (X, Escape, a click outside) before it
 * was copied asks first; a second try closes it.
 */
function showSecret({ title, description, secret, testid, note = 'It is not shown again: the broker keeps only a hash of it.' }) {
  let copied = false;
  let warned = false;
  const done = h('button', { type: 'button', class: 'btn btn-primary', text: 'I have saved it' });
  const copy = copyButton(() => secret, { label: 'Copy', testid: 'copy-secret' });
  copy.addEventListener('click', () => { copied = true; });
  const warning = h('div', { class: 'alert alert-warning', role: 'alert', hidden: true, 'data-testid': 'secret-unsaved' },
    icon('alert', 16), h('span', { text: 'You have not copied it yet, and it cannot be shown again. Copy it now, or close again to discard it.' }));
  const m = modal({
    title,
    description,
    testid,
    size: 'md',
    content: h('div', { class: 'secret-box' },
      h('div', { class: 'secret-line' },
        h('code', { class: 'secret secret-lg', 'data-testid': 'shown-secret', text: secret }),
        copy),
      h('p', { class: 'secret-note' }, icon('lock', 14), h('span', { text: note })),
      warning),
    footer: [done],
    canClose: () => {
      if (copied || warned) return true;
      warned = true;
      warning.hidden = false;
      copy.focus();
      return false;
    },
  });
  // Copying by hand counts too.
  m.dialog.addEventListener('copy', () => { copied = true; });
  done.addEventListener('click', () => m.close());
  copy.focus();
}

function roleSelect(value, attrs = {}) {
  const sel = h('select', { class: 'input input-select', ...attrs },
    ROLES.map((r) => h('option', { value: r.id, text: r.label, selected: r.id === value })));
  sel.value = value;
  return sel;
}

/**
 * Runs draw, which draws a list in slot again, and puts the focus back on
 * the control it was on, in the same row of the new list (found by the
 * row's id and the control's test id): otherwise an action taken from the
 * keyboard sends the focus to the top of the page. A control that is gone
 * (a revoked key's Revoke) leaves the focus on its row.
 */
async function keepingFocus(slot, draw) {
  const was = document.activeElement;
  const row = slot.contains(was) ? was.closest('[data-username], [data-key-id], [data-webhook-id]') : null;
  const attr = row && ['data-username', 'data-key-id', 'data-webhook-id'].find((a) => row.hasAttribute(a));
  const control = was?.dataset.testid;
  await draw();
  if (!attr) return;
  const again = slot.querySelector(`[${attr}="${CSS.escape(row.getAttribute(attr))}"]`);
  const target = again?.querySelector(`[data-testid="${CSS.escape(control ?? '')}"]:not([disabled])`);
  if (target) {
    target.focus();
  } else if (again) {
    again.tabIndex = -1;
    again.focus();
  }
}

// ---- Accounts ------------------------------------------------------------------

/** Mounts the accounts screen. Returns an unmount function. */
export function mountAccounts(main, { user: me }) {
  const listSlot = h('div', { class: 'card table-card' });
  const policySlot = h('section', { class: 'card admin-card', 'data-testid': 'totp-policy' });
  const add = h('button', { type: 'button', class: 'btn btn-primary', 'data-testid': 'new-account' }, icon('plus', 16), 'New account');
  add.addEventListener('click', openCreate);
  page(main, 'Accounts', 'Who may sign in to the console, and with which role.', add,
    h('section', { class: 'section' }, listSlot),
    h('section', { class: 'section' }, policySlot));
  load();
  loadPolicy();

  async function load() {
    await keepingFocus(listSlot, async () => {
      loading(listSlot);
      try {
        render(await api.listUsers());
      } catch (err) {
        failed(listSlot, err, load);
      }
    });
  }

  function render(users) {
    listSlot.replaceChildren(h('table', { class: 'table', 'data-testid': 'accounts-table' },
      h('thead', {}, h('tr', {},
        ['Account', 'Role', 'Two-factor', 'Status', 'Created'].map((t) => h('th', { scope: 'col', text: t })), actionsHeader())),
      h('tbody', {}, users.map(row))));
  }

  function row(u) {
    const self = u.username === me.username;
    const role = roleSelect(u.role, { 'aria-label': `Role of ${u.username}`, 'data-testid': 'account-role' });
    // A closed list changes with an arrow key: a change is asked about,
    // for it also cuts the person off from what they are doing.
    role.addEventListener('change', async () => {
      const to = ROLES.find((r) => r.id === role.value);
      if (!await confirmDialog({
        title: `Make ${u.username} ${to.id === 'admin' ? 'an' : 'a'} ${to.label.toLowerCase()}?`,
        message: `${to.desc} They are signed out and cut off from any session they are in, and connect again with the new role.`,
        confirmLabel: `Make ${to.label.toLowerCase()}`,
        danger: to.id === 'admin',
      })) {
        role.value = u.role;
        return;
      }
      try {
        await api.updateUser(u.username, { role: to.id });
        u.role = to.id;
        toast(`${u.username} is now ${to.label.toLowerCase()}.`, 'success');
      } catch (err) {
        toast(err.message, 'error');
        role.value = u.role;
      }
    });
    const toggle = h('button', { type: 'button', class: 'btn btn-secondary btn-sm', 'data-testid': 'account-toggle', disabled: self },
      u.disabled ? 'Enable' : 'Disable');
    toggle.addEventListener('click', async () => {
      if (!u.disabled && !await confirmDialog({
        title: `Disable ${u.username}?`,
        message: 'They are signed out at once, cut off from any session they are in, cannot sign in, and their API keys stop working. You can enable the account again.',
        confirmLabel: 'Disable account',
      })) return;
      try {
        await api.updateUser(u.username, { disabled: !u.disabled });
        load();
      } catch (err) {
        toast(err.message, 'error');
      }
    });
    // Your own password and two-factor are under Account security: a reset
    // of your own account would only sign you out.
    const reset = h('button', { type: 'button', class: 'btn btn-ghost btn-sm', 'data-testid': 'account-reset', disabled: self,
      title: self ? 'Change your own password under Account security' : null }, 'Reset…');
    reset.addEventListener('click', async () => {
      if (!await confirmDialog({
        title: `Reset ${u.username}?`,
        message: 'They get a new password (shown to you once), two-factor authentication is turned off so they can enrol again, and every sign-in of theirs ends.',
        confirmLabel: 'Reset account',
      })) return;
      try {
        const out = await api.resetUser(u.username);
        showSecret({ title: `New password for ${u.username}`, description: 'Give it to them over a channel you trust; they can change it under Account security.', secret: out.password, testid: 'password-dialog' });
        load();
      } catch (err) {
        toast(err.message, 'error');
      }
    });
    return h('tr', { 'data-testid': 'account-row', 'data-username': u.username, 'data-disabled': String(u.disabled) },
      h('td', {}, h('span', { class: 'account-name' }, h('span', { class: 'avatar avatar-sm', 'aria-hidden': 'true', text: u.username.slice(0, 2).toUpperCase() }),
        h('span', { text: u.username }), self ? h('span', { class: 'chip', text: 'You' }) : null)),
      // Your own role is another admin's to change: shown, not offered.
      h('td', {}, self ? h('span', { 'data-testid': 'account-role', title: 'Another admin can change your role', text: ROLES.find((r) => r.id === u.role)?.label ?? u.role }) : role),
      h('td', {}, u.totp_enabled ? h('span', { class: 'chip chip-good' }, icon('shieldCheck', 13), 'On') : h('span', { class: 'muted', text: 'Off' })),
      h('td', {}, u.disabled
        ? h('span', { class: 'badge badge-ended' }, h('span', { class: 'badge-dot' }), 'Disabled')
        : h('span', { class: 'badge badge-active' }, h('span', { class: 'badge-dot' }), 'Active')),
      h('td', {}, h('span', { title: formatDateTime(u.created_at), text: timeAgo(u.created_at) })),
      h('td', {}, h('div', { class: 'row-actions' }, toggle, reset)));
  }

  function openCreate() {
    const username = h('input', { id: 'acc-username', class: 'input', autocomplete: 'off', spellcheck: 'false', placeholder: 'e.g. lee', 'data-testid': 'account-username' });
    const role = roleSelect('technician', { id: 'acc-role', 'data-testid': 'account-new-role' });
    const error = errorBox({ username, role });
    const cancel = h('button', { type: 'button', class: 'btn btn-secondary', text: 'Cancel' });
    const create = h('button', { type: 'submit', form: 'account-form', class: 'btn btn-primary', 'data-testid': 'account-create' }, 'Create account');
    const form = h('form', { id: 'account-form', class: 'stack', novalidate: true },
      error.el,
      h('div', { class: 'field' }, h('label', { for: 'acc-username', class: 'label', text: 'Username' }), username,
        h('p', { class: 'field-hint', text: '2 to 32 lower-case letters, digits, dots, dashes or underscores, starting with a letter or digit.' })),
      h('div', { class: 'field' }, h('label', { for: 'acc-role', class: 'label', text: 'Role' }), role,
        h('p', { class: 'field-hint', 'data-testid': 'role-desc', text: ROLES[0].desc })));
    role.addEventListener('change', () => { form.querySelector('[data-testid="role-desc"]').textContent = ROLES.find((r) => r.id === role.value).desc; });
    const m = modal({ title: 'New account', description: 'The broker makes up a first password, shown to you once.', content: form, footer: [cancel, create], testid: 'account-dialog' });
    cancel.addEventListener('click', () => m.close());
    username.focus();
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      create.disabled = true;
      try {
        const out = await api.createUser(username.value.trim(), role.value);
        m.close();
        showSecret({ title: `Password for ${out.username}`, description: 'Give it to them over a channel you trust; they can change it under Account security.', secret: out.password, testid: 'password-dialog' });
        load();
      } catch (err) {
        error.show(err);
        create.disabled = false;
      }
    });
  }

  async function loadPolicy() {
    try {
      renderPolicy((await api.getSettings()).totp_required_roles);
    } catch (err) {
      failed(policySlot, err, loadPolicy);
    }
  }

  function renderPolicy(required) {
    const boxes = ROLES.map((r) => {
      const box = h('input', { type: 'checkbox', id: `totp-${r.id}`, value: r.id, 'data-testid': 'totp-role', 'data-role': r.id, checked: required.includes(r.id) });
      box.checked = required.includes(r.id);
      return { box, el: h('label', { class: 'check-row', for: `totp-${r.id}` }, box, h('span', { text: `${r.label}s` })) };
    });
    const save = h('button', { type: 'button', class: 'btn btn-secondary btn-sm', 'data-testid': 'totp-policy-save' }, 'Save');
    save.addEventListener('click', async () => {
      const roles = boxes.filter((b) => b.box.checked).map((b) => b.box.value);
      if (roles.includes(me.role) && !me.totp_enabled && !required.includes(me.role) && !await confirmDialog({
        title: 'Set up two-factor authentication now?',
        message: 'You have not set it up, and your role will require it: once you save, the console takes you to set it up before anything else. Have your authenticator app at hand.',
        confirmLabel: 'Save and set it up',
        danger: false,
      })) return;
      save.disabled = true;
      try {
        const out = await api.putSettings({ totp_required_roles: roles });
        required = out.totp_required_roles;
        toast(out.totp_required_roles.length ? 'Two-factor authentication is now required for the roles ticked.' : 'Two-factor authentication is optional for everyone.', 'success');
      } catch (err) {
        toast(err.message, 'error');
      } finally {
        save.disabled = false;
      }
    });
    policySlot.replaceChildren(
      h('h2', { class: 'section-title', id: 'totp-policy-title', text: 'Require two-factor authentication' }),
      h('p', { class: 'field-hint', id: 'totp-policy-hint', text: 'Accounts of these roles must sign in with a code from an authenticator app. It applies at once: anyone of these roles without one, signed in now or later, must set it up before doing anything else.' }),
      // The boxes say only a role: the group says what ticking one does.
      h('div', { class: 'check-list', role: 'group', 'aria-labelledby': 'totp-policy-title', 'aria-describedby': 'totp-policy-hint' }, boxes.map((b) => b.el)),
      h('div', {}, save));
  }

  return () => {};
}

// ---- API keys ------------------------------------------------------------------

// How long a new key works; 0: until revoked.
const KEY_LIFETIMES = [
  { days: 30, label: 'In 30 days' },
  { days: 90, label: 'In 90 days' },
  { days: 365, label: 'In a year' },
  { days: 0, label: 'Never (until revoked)' },
];

/** Mounts the API keys screen. Returns an unmount function. */
export function mountKeys(main) {
  const listSlot = h('div', { class: 'card table-card' });
  const add = h('button', { type: 'button', class: 'btn btn-primary', 'data-testid': 'new-key' }, icon('plus', 16), 'New API key');
  add.addEventListener('click', openCreate);
  page(main, 'API keys', 'Keys let a ticket system or script use the REST API, within the scopes you give them.', add,
    h('section', { class: 'section' }, listSlot),
    h('p', { class: 'field-hint doc-link' }, icon('info', 14),
      h('span', {}, 'The API is described in ', h('a', { href: '/api/v1/openapi.yaml', target: '_blank', rel: 'noopener', text: 'OpenAPI 3' }), '.')));
  load();

  async function load() {
    await keepingFocus(listSlot, async () => {
      loading(listSlot);
      try {
        const keys = await api.listKeys();
        if (!keys.length) {
          listSlot.replaceChildren(h('div', { class: 'empty empty-compact' }, h('p', { class: 'empty-title', text: 'No API keys yet' })));
          return;
        }
        listSlot.replaceChildren(h('table', { class: 'table', 'data-testid': 'keys-table' },
          h('thead', {}, h('tr', {}, ['Name', 'Acts as', 'Scopes', 'Last used', 'Expires', 'Created'].map((t) => h('th', { scope: 'col', text: t })), actionsHeader())),
          h('tbody', {}, keys.map(row))));
      } catch (err) {
        failed(listSlot, err, load);
      }
    });
  }

  function row(k) {
    const revoked = Boolean(k.revoked_at);
    const revoke = revoked
      ? h('span', { class: 'badge badge-ended', title: formatDateTime(k.revoked_at) }, h('span', { class: 'badge-dot' }), 'Revoked')
      : h('button', { type: 'button', class: 'btn btn-secondary btn-sm', 'data-testid': 'key-revoke' }, 'Revoke');
    if (!revoked) {
      revoke.addEventListener('click', async () => {
        if (!await confirmDialog({ title: `Revoke \u201c${k.name}\u201d?`, message: 'Whatever uses this key is refused from now on, and cut off from any session it is in. This cannot be undone.', confirmLabel: 'Revoke key' })) return;
        try {
          await api.revokeKey(k.id);
          toast('Key revoked.', 'success');
          load();
        } catch (err) {
          toast(err.message, 'error');
        }
      });
    }
    // The broker refuses a disabled account's key, and the scopes its
    // role no longer holds, until that changes back: shown, not hidden.
    const dormant = k.dormant_scopes ?? [];
    return h('tr', { 'data-testid': 'key-row', 'data-key-id': k.id, class: revoked ? 'is-muted' : null },
      h('td', {}, h('div', { class: 'cell-title', text: k.name }), h('div', { class: 'mono muted cell-sub nowrap', text: k.id })),
      h('td', {}, h('div', {}, k.username),
        k.account_disabled && !revoked ? h('span', { class: 'chip chip-bad key-refused', 'data-testid': 'key-not-working', title: `${k.username}'s account is disabled: the key is refused until it is enabled again.` }, 'Not working: account disabled') : null),
      h('td', {}, h('div', { class: 'scope-list' }, k.scopes.map((s) => dormant.includes(s)
        ? h('span', { class: 'chip chip-mono chip-dormant', 'data-testid': 'key-scope-dormant', title: `${k.username}'s role no longer holds ${s}: refused until it does again.` },
          h('s', { text: s }), h('span', { class: 'visually-hidden', text: ' (refused: the role no longer holds it)' }))
        : h('span', { class: 'chip chip-mono', text: s })))),
      h('td', { class: 'nowrap', 'data-testid': 'key-last-used' }, k.last_used_at ? h('span', { title: formatDateTime(k.last_used_at), text: timeAgo(k.last_used_at) }) : h('span', { class: 'muted', text: 'Never' })),
      h('td', { class: 'nowrap', 'data-testid': 'key-expires' }, expiry(k, revoked)),
      h('td', { class: 'nowrap' }, h('span', { title: formatDateTime(k.created_at), text: timeAgo(k.created_at) })),
      h('td', {}, h('div', { class: 'row-actions' }, revoke)));
  }

  /** When a key stops working: never, "in 30 days", or that it has. */
  function expiry(k, revoked) {
    if (!k.expires_at) return h('span', { class: 'muted', text: 'Never' });
    if (k.expired && !revoked) {
      return h('span', { class: 'chip chip-bad key-refused', 'data-testid': 'key-expired', title: `Expired ${formatDateTime(k.expires_at)}: the key is refused. Create a new one for whatever used it.` }, 'Expired');
    }
    return h('span', { title: formatDateTime(k.expires_at), text: k.expired ? 'Expired' : timeAgo(k.expires_at) });
  }

  async function openCreate() {
    const name = h('input', { id: 'key-name', class: 'input', maxlength: '100', placeholder: 'e.g. ServiceNow production', 'data-testid': 'key-name' });
    const actsAs = h('select', { id: 'key-user', class: 'input input-select', 'data-testid': 'key-user' },
      h('option', { value: '', text: 'Me', 'data-role': window.tether.user?.role ?? 'admin' }));
    api.listUsers().then((users) => users.filter((u) => !u.disabled).forEach((u) => actsAs.append(h('option', { value: u.username, text: `${u.username} (${u.role})`, 'data-role': u.role })))).catch(() => {});
    const boxes = SCOPES.map((s) => {
      const box = h('input', { type: 'checkbox', id: `scope-${s.id}`, value: s.id, 'data-testid': 'key-scope', 'data-scope': s.id });
      return { box, el: h('label', { class: 'check-row', for: `scope-${s.id}` }, box, h('span', { class: 'mono', text: s.id }), h('span', { class: 'muted', text: s.desc })) };
    });
    // Only what the chosen account's role holds can be ticked: the broker
    // refuses a key with more.
    const fitScopes = () => {
      const held = ROLE_SCOPES[actsAs.selectedOptions[0]?.dataset.role] ?? ROLE_SCOPES.admin;
      for (const { box } of boxes) {
        box.disabled = !held.includes(box.value);
        if (box.disabled) box.checked = false;
      }
    };
    for (const { box } of boxes) box.checked = DEFAULT_SCOPES.includes(box.value);
    fitScopes();
    actsAs.addEventListener('change', fitScopes);
    const scopes = h('div', { class: 'check-list' }, boxes.map((b) => b.el));
    const expires = h('select', { id: 'key-expires', class: 'input input-select', 'data-testid': 'key-expires-in', 'aria-describedby': 'key-expires-hint' },
      KEY_LIFETIMES.map(({ days, label }) => h('option', { value: String(days), text: label, selected: days === 90 })));
    const error = errorBox({ name, username: actsAs, scopes, expires_at: expires });
    const cancel = h('button', { type: 'button', class: 'btn btn-secondary', text: 'Cancel' });
    const create = h('button', { type: 'submit', form: 'key-form', class: 'btn btn-primary', 'data-testid': 'key-create' }, 'Create key');
    const form = h('form', { id: 'key-form', class: 'stack', novalidate: true },
      error.el,
      h('div', { class: 'field' }, h('label', { for: 'key-name', class: 'label', text: 'Name' }), name,
        h('p', { class: 'field-hint', text: 'What the key is for, so you know what breaks if you revoke it.' })),
      h('div', { class: 'field' }, h('label', { for: 'key-user', class: 'label', text: 'Acts as' }), actsAs,
        h('p', { class: 'field-hint', text: 'Sessions it creates belong to this account; it can never do more than the account\u2019s role allows.' })),
      h('fieldset', { class: 'field' }, h('legend', { class: 'label', text: 'Scopes' }), scopes,
        h('p', { class: 'field-hint', text: 'Only the scopes the account\u2019s role holds can be chosen.' })),
      h('div', { class: 'field' }, h('label', { for: 'key-expires', class: 'label', text: 'Expires' }), expires,
        h('p', { id: 'key-expires-hint', class: 'field-hint', text: 'After that the key is refused, and whatever uses it stops working: make a new one before then.' })));
    const m = modal({ title: 'New API key', content: form, footer: [cancel, create], testid: 'key-dialog', size: 'md' });
    cancel.addEventListener('click', () => m.close());
    name.focus();
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      create.disabled = true;
      try {
        const days = Number(expires.value);
        const expiresAt = days ? new Date(api.serverNow() + days * 86_400_000).toISOString().replace(/\.\d+Z$/, 'Z') : '';
        const out = await api.createKey(name.value.trim(), boxes.filter((b) => b.box.checked).map((b) => b.box.value), actsAs.value, expiresAt);
        m.close();
        showSecret({ title: 'Your new API key', description: 'Send it as Authorization: Bearer <key>. Store it in your ticket system\u2019s secret store now.', secret: out.key, testid: 'key-secret-dialog' });
        load();
      } catch (err) {
        error.show(err);
        create.disabled = false;
      }
    });
  }

  return () => {};
}

// ---- Webhooks ------------------------------------------------------------------

/** Mounts the webhooks screen. Returns an unmount function. */
export function mountWebhooks(main) {
  const listSlot = h('div', { class: 'stack' });
  const add = h('button', { type: 'button', class: 'btn btn-primary', 'data-testid': 'new-webhook' }, icon('plus', 16), 'New webhook');
  add.addEventListener('click', openCreate);
  page(main, 'Webhooks', 'Tell your ticket system what happens in sessions. Deliveries are signed (HMAC-SHA256) and retried.', add, listSlot);
  load();

  async function load() {
    await keepingFocus(listSlot, drawWebhooks);
  }

  async function drawWebhooks() {
    loading(listSlot);
    try {
      const hooks = await api.listWebhooks();
      if (!hooks.length) {
        const first = h('button', { type: 'button', class: 'btn btn-primary', 'data-testid': 'new-webhook-empty' }, icon('plus', 16), 'New webhook');
        first.addEventListener('click', openCreate);
        listSlot.replaceChildren(h('div', { class: 'card empty empty-compact', 'data-testid': 'webhooks-empty' },
          h('div', { class: 'empty-icon' }, icon('link', 20)),
          h('p', { class: 'empty-title', text: 'No webhooks yet' }),
          h('p', { class: 'empty-text', text: 'Add your ticket system\u2019s address to hear about new sessions, consent and closing notes.' }),
          first));
        return;
      }
      listSlot.replaceChildren(...hooks.map(card));
    } catch (err) {
      failed(listSlot, err, load);
    }
  }

  function card(w) {
    const deliveries = h('div', { class: 'deliveries', 'data-testid': 'deliveries' });
    const toggle = h('button', { type: 'button', class: 'btn btn-secondary btn-sm', 'data-testid': 'webhook-toggle' }, w.enabled ? 'Disable' : 'Enable');
    toggle.addEventListener('click', async () => {
      try {
        await api.updateWebhook(w.id, { enabled: !w.enabled });
        load();
      } catch (err) {
        toast(err.message, 'error');
      }
    });
    const del = h('button', { type: 'button', class: 'btn btn-ghost btn-sm', 'data-testid': 'webhook-delete' }, 'Delete…');
    del.addEventListener('click', async () => {
      if (!await confirmDialog({ title: 'Delete this webhook?', message: `${w.url} hears nothing more, and its delivery history goes with it.`, confirmLabel: 'Delete webhook' })) return;
      try {
        await api.deleteWebhook(w.id);
        load();
      } catch (err) {
        toast(err.message, 'error');
      }
    });
    const show = h('button', { type: 'button', class: 'btn btn-ghost btn-sm', 'data-testid': 'webhook-deliveries' }, icon('history', 14), 'Deliveries');
    show.addEventListener('click', () => loadDeliveries(w, deliveries));
    const rotate = h('button', { type: 'button', class: 'btn btn-ghost btn-sm', 'data-testid': 'webhook-rotate' }, icon('refresh', 14), 'Rotate secret\u2026');
    rotate.addEventListener('click', () => rotateSecret(w));
    const edit = h('button', { type: 'button', class: 'btn btn-ghost btn-sm', 'data-testid': 'webhook-edit' }, 'Edit\u2026');
    edit.addEventListener('click', () => openEdit(w));
    return h('section', { class: 'card admin-card webhook-card', 'data-testid': 'webhook-card', 'data-webhook-id': w.id },
      h('div', { class: 'webhook-head' },
        h('div', { class: 'webhook-what' },
          h('div', { class: 'mono webhook-url', text: w.url }),
          w.description ? h('div', { class: 'muted', text: w.description }) : null),
        h('div', { class: 'row-actions' },
          w.enabled ? h('span', { class: 'badge badge-active' }, h('span', { class: 'badge-dot' }), 'Enabled')
            : h('span', { class: 'badge badge-ended' }, h('span', { class: 'badge-dot' }), 'Disabled'),
          show, edit, rotate, toggle, del)),
      h('div', { class: 'scope-list' }, w.events.map((e) => h('span', { class: 'chip chip-mono', text: e }))),
      w.old_secret_expires_at ? h('div', { class: 'alert alert-info', 'data-testid': 'webhook-old-secret' }, icon('info', 16),
        h('span', { text: `Deliveries are signed with the new and the old secret until ${formatDateTime(w.old_secret_expires_at)}; then the old one stops working.` })) : null,
      deliveries);
  }

  /**
   * A new signing secret, shown once. The broker keeps signing with the
   * old one too for a while, so the ticket system accepts deliveries until
   * its admin has saved the new one; the dialog says until when. An admin
   * whose secret leaked stops the old one at once instead.
   */
  async function rotateSecret(w) {
    const graceSeconds = await confirmRotate(w);
    if (graceSeconds === null) return;
    try {
      const out = await api.rotateWebhookSecret(w.id, graceSeconds);
      const until = out.old_secret_expires_at;
      showSecret({
        title: 'New signing secret',
        description: until
          ? `Save it in your ticket system now. The old secret keeps working for ${hoursFromNow(until)}, until ${formatDateTime(until)}; after that deliveries are signed with this one only.`
          : 'Save it in your ticket system now: the old secret has stopped working, and deliveries it refuses meanwhile are tried again later.',
        secret: out.secret,
        testid: 'webhook-secret-dialog',
        note: 'It is not shown again.',
      });
      load();
    } catch (err) {
      toast(err.message, 'error');
    }
  }

  /**
   * Asks before a new secret. Resolves to how long the old one keeps
   * working, in seconds (undefined: the broker's 24 hours), or null when
   * the admin cancels.
   */
  function confirmRotate(w) {
    return new Promise((resolve) => {
      let answer = null;
      const leaked = h('input', { type: 'checkbox', id: 'wh-leaked', 'data-testid': 'webhook-rotate-leaked' });
      const cancel = h('button', { type: 'button', class: 'btn btn-secondary', text: 'Cancel' });
      const ok = h('button', { type: 'button', class: 'btn btn-primary', 'data-testid': 'confirm-ok', text: 'Rotate secret' });
      const replaced = w.old_secret_expires_at ? ' The old secret kept from the last change stops working now.' : '';
      const m = modal({
        title: 'Rotate this webhook\u2019s secret?',
        description: `The broker makes a new signing secret for ${w.url}, shown to you once. For 24 hours every delivery is signed with both the new and the current secret, so your ticket system keeps accepting them until you save the new one there; then the current secret stops working.${replaced}`,
        content: h('div', { class: 'stack' },
          h('label', { class: 'check-row', for: 'wh-leaked' }, leaked, h('span', { text: 'The current secret leaked: stop it at once' })),
          h('p', { class: 'field-hint', text: 'Only if someone else may have it: deliveries your ticket system refuses until you save the new secret are then tried again later.' })),
        footer: [cancel, ok],
        testid: 'confirm-dialog',
        onClose: () => resolve(answer),
      });
      cancel.addEventListener('click', () => m.close());
      leaked.addEventListener('change', () => { ok.className = leaked.checked ? 'btn btn-danger' : 'btn btn-primary'; });
      ok.addEventListener('click', () => {
        answer = leaked.checked ? 0 : undefined;
        m.close();
      });
      ok.focus();
    });
  }

  async function loadDeliveries(w, slot) {
    loading(slot);
    try {
      const list = await api.webhookDeliveries(w.id);
      if (!list.length) {
        slot.replaceChildren(h('p', { class: 'muted', text: 'Nothing delivered yet.' }));
        return;
      }
      slot.replaceChildren(h('table', { class: 'table table-compact' },
        h('thead', {}, h('tr', {}, ['Event', 'State', 'Attempts', 'Last answer', 'When'].map((t) => h('th', { scope: 'col', text: t })), actionsHeader())),
        h('tbody', {}, list.map((d) => {
          const again = h('button', { type: 'button', class: 'btn btn-ghost btn-sm', 'data-testid': 'redeliver' }, icon('refresh', 14), 'Redeliver');
          again.addEventListener('click', async () => {
            try {
              await api.redeliver(w.id, d.id);
              toast('Queued for delivery again.', 'success');
              loadDeliveries(w, slot);
            } catch (err) {
              toast(err.message, 'error');
            }
          });
          const good = d.state === 'succeeded';
          return h('tr', { 'data-testid': 'delivery-row', 'data-state': d.state },
            h('td', { class: 'mono', text: d.event_type }),
            h('td', {}, h('span', { class: `chip ${good ? 'chip-good' : d.state === 'failed' ? 'chip-bad' : ''}`, text: d.state })),
            h('td', { class: 'tabular', text: String(d.attempt_count) }),
            h('td', {}, d.last_status_code ? `HTTP ${d.last_status_code}` : (d.last_error || '\u2014')),
            h('td', {}, h('span', { title: formatDateTime(d.updated_at), text: timeAgo(d.updated_at) })),
            h('td', {}, h('div', { class: 'row-actions' }, again)));
        }))));
    } catch (err) {
      failed(slot, err, () => loadDeliveries(w, slot));
    }
  }

  function openCreate() {
    webhookForm({
      title: 'New webhook',
      submitLabel: 'Add webhook',
      save: ({ url, events, description }) => api.createWebhook(url, events, description),
      saved(out) {
        showSecret({ title: 'Signing secret', description: 'Check each delivery\u2019s Tether-Signature header with it (HMAC-SHA256 over "<t>.<body>").', secret: out.secret, testid: 'webhook-secret-dialog', note: 'It is not shown again.' });
      },
    });
  }

  /** Changes a webhook's events and description; its address, secret and history stay. */
  function openEdit(w) {
    webhookForm({
      title: 'Edit webhook',
      submitLabel: 'Save changes',
      webhook: w,
      save: ({ events, description }) => api.updateWebhook(w.id, { events, description }),
      saved: () => toast('Webhook saved.', 'success'),
    });
  }

  /**
   * The webhook dialog: a new one's address, description and events, or
   * an existing one's description and events (webhook given; the address
   * is shown, not offered: another address is another webhook, with a
   * secret of its own). save gets what the form holds; once it resolves,
   * the dialog closes, saved gets its answer, and the list is drawn again.
   */
  function webhookForm({ title, submitLabel, webhook, save, saved }) {
    const url = h('input', { id: 'wh-url', class: 'input', type: 'url', placeholder: 'https://tickets.example.com/tether', 'data-testid': 'webhook-url' });
    const desc = h('input', { id: 'wh-desc', class: 'input', maxlength: '256', placeholder: 'e.g. ServiceNow work notes', 'data-testid': 'webhook-description' });
    if (webhook) {
      url.value = webhook.url;
      url.readOnly = true;
      desc.value = webhook.description;
    }
    const boxes = EVENTS.map((e) => {
      const box = h('input', { type: 'checkbox', id: `ev-${e}`, value: e, 'data-testid': 'webhook-event' });
      box.checked = webhook ? webhook.events.includes(e) : true;
      return { box, el: h('label', { class: 'check-row', for: `ev-${e}` }, box, h('span', { class: 'mono', text: e })) };
    });
    const events = h('div', { class: 'check-grid' }, boxes.map((b) => b.el));
    const error = errorBox({ url, description: desc, events });
    const cancel = h('button', { type: 'button', class: 'btn btn-secondary', text: 'Cancel' });
    const submit = h('button', { type: 'submit', form: 'wh-form', class: 'btn btn-primary', 'data-testid': 'webhook-create' }, submitLabel);
    const form = h('form', { id: 'wh-form', class: 'stack', novalidate: true },
      error.el,
      h('div', { class: 'field' }, h('label', { for: 'wh-url', class: 'label', text: 'Address' }), url,
        webhook ? h('p', { class: 'field-hint', text: 'To send to another address, add a webhook for it: it gets a secret of its own.' }) : null),
      h('div', { class: 'field' }, h('label', { for: 'wh-desc', class: 'label' }, 'Description ', h('span', { class: 'label-hint', text: '(optional)' })), desc),
      h('fieldset', { class: 'field' }, h('legend', { class: 'label', text: 'Events' }), events));
    const m = modal({ title, content: form, footer: [cancel, submit], testid: 'webhook-dialog', size: 'md' });
    cancel.addEventListener('click', () => m.close());
    (webhook ? desc : url).focus();
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      submit.disabled = true;
      try {
        const out = await save({ url: url.value.trim(), events: boxes.filter((b) => b.box.checked).map((b) => b.box.value), description: desc.value.trim() });
        m.close();
        saved(out);
        load();
      } catch (err) {
        error.show(inPlainWords(err));
        submit.disabled = false;
      }
    });
  }

  return () => {};
}

/** "24 hours", "45 minutes": how long from now until iso, roughly. */
function hoursFromNow(iso) {
  const min = Math.max(1, Math.round((Date.parse(iso) - api.serverNow()) / 60_000));
  if (min < 90) return min === 1 ? '1 minute' : `${min} minutes`;
  return `${Math.round(min / 60)} hours`;
}

/**
 * The broker names the webhook's field “url”, as its API does; the form
 * calls it the address. An error about it reads in the form's words.
 */
function inPlainWords(err) {
  const say = (m) => {
    if (/^url must (be an absolute URL|use https)/.test(m)) return 'The address must be a full https:// address, such as https://tickets.example.com/tether.';
    if (/^url is required/.test(m)) return 'Enter the address your ticket system receives webhooks at.';
    return m.replace(/ in url\.$/, '.').replace(/^url /, 'The address ');
  };
  return {
    message: say(err.message ?? ''),
    fields: err.fields?.map((f) => ({ ...f, message: f.field === 'url' ? say(f.message) : f.message })),
  };
}

// The Tether technician console: boot, hash router and app shell.
//
// Routes live in the URL fragment so the broker only ever serves index.html:
//   #/login            sign in
//   #/sessions         session list and "New support session"
//   #/session/<id>     the live remote screen of one session
//   #/account          one's password and two-factor authentication
//   #/admin/accounts   accounts, roles and the two-factor policy (admins)
//   #/admin/keys       API keys for integrations (admins)
//   #/admin/webhooks   webhook endpoints and their deliveries (admins)
//   #/recordings       search session recordings
//   #/recording/<id>   play one recording

import * as api from './api.js';
import { mountLogin, mountUnavailable } from './login.js';
import { forgetLatestCode, mountSessions } from './sessions.js';
import { mountSession } from './session.js';
import { mountAccount } from './account.js';
import { mountAccounts, mountKeys, mountWebhooks } from './admin.js';
import { mountRecordings } from './recordings.js';
import { mountPlayer } from './player.js';
import { brand, dismissModals, h, icon } from './ui.js';

const root = document.getElementById('app');

const app = {
  user: null, // { username, role } once signed in
  flash: '', // a notice for the login screen (e.g. "sign-in expired")
  down: '', // why the broker cannot tell who is signed in, while it cannot
  unmount: null,
};

// Hooks for browser tests and for support staff poking at the console.
// `state` is the session view's connection state (see session.js).
// The session view adds `input` ({ sent, lastSent }: messages sent on the
// input channel), `control` ({ enabled }: remote control granted) and
// `permissions` ({ granted, paused, pending, message }: what the user allows).
window.tether = { state: 'idle', session: null, user: null, viewer: null, input: null, control: null, permissions: null };

function parseRoute() {
  const path = location.hash.replace(/^#/, '') || '/sessions';
  const parts = path.split('/').filter(Boolean);
  if (parts[0] === 'login') return { name: 'login' };
  if (parts[0] === 'session' && parts[1]) return { name: 'session', id: decodeURIComponent(parts[1]) };
  if (parts[0] === 'account') return { name: 'account' };
  if (parts[0] === 'admin' && ['accounts', 'keys', 'webhooks'].includes(parts[1])) return { name: `admin-${parts[1]}` };
  if (parts[0] === 'recordings') return { name: 'recordings' };
  if (parts[0] === 'recording' && parts[1]) return { name: 'recording', id: decodeURIComponent(parts[1]) };
  return { name: 'sessions' };
}

export function navigate(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

function setUser(user) {
  // Codes shown to one technician are not for whoever signs in next.
  if (user?.username !== app.user?.username) {
    api.forgetCodes();
    forgetLatestCode();
  }
  // Nor what the last person on this tab searched for, or the page they
  // were on when their sign-in expired (a link opened before anyone
  // signed in is followed, by whoever does).
  const owner = sessionStorage.getItem('tether.owner');
  if (user && owner !== user.username) {
    sessionStorage.removeItem('tether.recordings.filter');
    if (owner) sessionStorage.removeItem('tether.next');
    sessionStorage.setItem('tether.owner', user.username);
  }
  app.user = user;
  window.tether.user = user ? { ...user } : null;
}

function render() {
  app.unmount?.();
  app.unmount = null;
  window.tether.state = 'idle';
  window.tether.session = null;
  window.tether.viewer = null;
  window.tether.input = null;
  window.tether.control = null;
  window.tether.permissions = null;

  const route = parseRoute();
  if (!app.user && app.down) {
    showUnavailable();
    return;
  }
  if (!app.user) {
    if (route.name !== 'login') sessionStorage.setItem('tether.next', location.hash);
    showLogin();
    return;
  }
  if (route.name === 'login') {
    navigate('#/sessions');
    return;
  }
  // A role that requires two-factor authentication: enrol first.
  if (app.user.mustEnrol && route.name !== 'account') {
    navigate('#/account');
    return;
  }
  if (route.name === 'account') {
    document.title = 'Account · Tether';
    app.unmount = mountAccount(shell('account'), {
      user: app.user,
      onChange(user) {
        setUser(user);
        render();
      },
    });
    return;
  }
  const admin = { 'admin-accounts': [mountAccounts, 'Accounts'], 'admin-keys': [mountKeys, 'API keys'], 'admin-webhooks': [mountWebhooks, 'Webhooks'] }[route.name];
  if (admin && app.user.role === 'admin') {
    document.title = `${admin[1]} · Tether`;
    app.unmount = admin[0](shell(route.name), { user: app.user });
    return;
  }
  if (route.name === 'session') {
    document.title = 'Session · Tether';
    app.unmount = mountSession(root, { id: route.id, navigate });
    return;
  }
  if (route.name === 'recordings') {
    document.title = 'Recordings · Tether';
    app.unmount = mountRecordings(shell('recordings'), { navigate, user: app.user });
    return;
  }
  if (route.name === 'recording') {
    document.title = 'Recording · Tether';
    app.unmount = mountPlayer(shell('recordings'), { id: route.id, navigate });
    return;
  }
  document.title = 'Sessions · Tether';
  const main = shell('sessions');
  app.unmount = mountSessions(main, { navigate, user: app.user });
}

function showLogin() {
  document.title = 'Sign in · Tether';
  const flash = app.flash;
  app.flash = '';
  app.unmount = mountLogin(root, {
    flash,
    onLogin(user) {
      setUser(user);
      // Go back where the technician was headed (a console link from a ticket).
      const next = sessionStorage.getItem('tether.next');
      sessionStorage.removeItem('tether.next');
      navigate(next && !next.startsWith('#/login') ? next : '#/sessions');
    },
  });
}

// The broker cannot say who is signed in: wait for it, on this page
// rather than the sign-in form. Once it answers, the page the address
// names opens, or the sign-in form when the login is gone.
function showUnavailable() {
  document.title = 'Waiting for the broker · Tether';
  app.unmount = mountUnavailable(root, {
    message: app.down,
    async check() {
      try {
        setUser(await api.me());
        app.down = '';
      } catch (err) {
        if (cannotAnswer(err)) return err.message;
        app.down = '';
        app.flash = err.message;
      }
      render();
      return '';
    },
  });
}

// cannotAnswer tells a broker that cannot answer now (its database cannot
// be read, a restart, a proxy in front that cannot reach it) from one
// that answered.
function cannotAnswer(err) {
  return err.status === 0 || err.status === 502 || err.status === 503 || err.status === 504;
}

/**
 * After a move to another page the link or button that led there is gone,
 * and the keyboard with it: it starts again at the new page's heading,
 * which a screen reader reads out, rather than at the top of the window.
 * A page that put the focus somewhere itself keeps it there.
 */
function focusPage() {
  const el = document.activeElement;
  if (el && el !== document.body && el.isConnected) return;
  const heading = root.querySelector('.shell main h1');
  if (!heading) return;
  heading.tabIndex = -1;
  heading.focus({ preventScroll: true });
}

/** Renders the sidebar layout and returns its main content element. */
function shell(active) {
  const user = app.user;
  const initials = (user.username || '?').replace(/[^a-z0-9]/gi, '').slice(0, 2).toUpperCase() || '?';
  const main = h('main', { class: 'main', id: 'main' });
  const logoutBtn = h('button', { type: 'button', class: 'btn btn-ghost btn-sm logout-btn', 'data-testid': 'logout', 'aria-label': 'Log out', 'data-tip': 'Log out' },
    icon('logout', 15), h('span', { text: 'Log out' }));
  logoutBtn.addEventListener('click', async () => {
    logoutBtn.disabled = true;
    await api.logout();
    setUser(null);
    sessionStorage.removeItem('tether.next');
    navigate('#/login');
  });

  root.replaceChildren(h('div', { class: 'shell' },
    h('aside', { class: 'sidebar' },
      h('div', { class: 'sidebar-brand' }, brand(28)),
      h('nav', { class: 'sidebar-nav', 'aria-label': 'Main' },
        // Until two-factor is set up, Account security is all there is.
        user.mustEnrol ? null : [
          h('div', { class: 'nav-section', text: 'Support' }),
          navItem('#/sessions', 'sessions', 'Sessions', active === 'sessions', 'nav-sessions'),
          navItem('#/recordings', 'history', 'Recordings', active === 'recordings', 'nav-recordings'),
        ],
        user.role === 'admin' && !user.mustEnrol ? [
          h('div', { class: 'nav-section', text: 'Administration' }),
          navItem('#/admin/accounts', 'user', 'Accounts', active === 'admin-accounts', 'nav-accounts'),
          navItem('#/admin/keys', 'lock', 'API keys', active === 'admin-keys', 'nav-keys'),
          navItem('#/admin/webhooks', 'link', 'Webhooks', active === 'admin-webhooks', 'nav-webhooks'),
        ] : null,
        h('div', { class: 'nav-section', text: 'You' }),
        navItem('#/account', 'shield', 'Account security', active === 'account', 'nav-account')),
      h('div', { class: 'sidebar-footer' },
        h('div', { class: 'user-card', 'data-testid': 'current-user' },
          h('span', { class: 'avatar', 'aria-hidden': 'true', text: initials }),
          h('span', { class: 'user-meta' },
            h('span', { class: 'user-name', text: user.username }),
            h('span', { class: 'user-role', text: roleLabel(user.role) }))),
        logoutBtn)),
    main));
  return main;
}

function navItem(href, iconName, label, isActive, testid) {
  // The name is the tooltip and accessible name where the sidebar shows icons only.
  return h('a', {
    href, class: `nav-item${isActive ? ' is-active' : ''}`, 'aria-current': isActive ? 'page' : null, 'data-testid': testid,
    'aria-label': label, 'data-tip': label,
  },
    icon(iconName, 18), h('span', { text: label }));
}

function roleLabel(role) {
  if (!role) return 'Technician';
  return role.charAt(0).toUpperCase() + role.slice(1).replace(/_/g, ' ');
}

api.setUnauthorizedHandler(() => {
  if (!app.user) return;
  setUser(null);
  app.flash = 'Your sign-in has expired. Please sign in again.';
  render();
});

// The admin required two-factor authentication for this role meanwhile.
api.setEnrolRequiredHandler(() => {
  if (!app.user || app.user.mustEnrol) return;
  setUser({ ...app.user, mustEnrol: true });
  navigate('#/account');
});

// A file dropped where nothing takes it would open in the tab, in place of
// the console (a live session with it): the drop is refused instead.
const carriesFiles = (e) => e.dataTransfer?.types.includes('Files');
window.addEventListener('dragover', (e) => { if (carriesFiles(e)) e.preventDefault(); });
window.addEventListener('drop', (e) => { if (carriesFiles(e)) e.preventDefault(); });

// The browser's Back button (or an address typed in) leaves a page as its
// own links do: a view that would drop something on the way (the session
// view: a terminal, a transfer, control) asks first, and the address goes
// back to that view while it does.
window.addEventListener('hashchange', async (e) => {
  // A dialog stays with its page; one that asks before it closes keeps
  // the page too.
  if (!dismissModals()) {
    history.pushState(null, '', e.oldURL);
    return;
  }
  // Sent to sign in or to enrol, the technician has no choice to make.
  const asking = app.user && !app.user.mustEnrol ? app.unmount?.askLeave?.() : null;
  if (!asking) {
    render();
    focusPage();
    return;
  }
  const to = location.hash;
  history.pushState(null, '', e.oldURL);
  if (await asking) navigate(to);
});

async function boot() {
  try {
    setUser(await api.me());
  } catch (err) {
    if (cannotAnswer(err)) app.down = err.message;
    else app.flash = err.message;
  }
  render();
}

boot();

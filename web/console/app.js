// The Tether technician console: boot, hash router and app shell.
//
// Routes live in the URL fragment so the broker only ever serves index.html:
//   #/login            sign in
//   #/sessions         session list and "New support session"
//   #/session/<id>     the live remote screen of one session

import * as api from './api.js';
import { mountLogin } from './login.js';
import { mountSessions } from './sessions.js';
import { mountSession } from './session.js';
import { brand, h, icon } from './ui.js';

const root = document.getElementById('app');

const app = {
  user: null, // { username, role } once signed in
  flash: '', // a notice for the login screen (e.g. "sign-in expired")
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
  return { name: 'sessions' };
}

export function navigate(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

function setUser(user) {
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
  if (!app.user) {
    if (route.name !== 'login') sessionStorage.setItem('tether.next', location.hash);
    showLogin();
    return;
  }
  if (route.name === 'login') {
    navigate('#/sessions');
    return;
  }
  if (route.name === 'session') {
    document.title = 'Session · Tether';
    app.unmount = mountSession(root, { id: route.id, navigate });
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

/** Renders the sidebar layout and returns its main content element. */
function shell(active) {
  const user = app.user;
  const initials = (user.username || '?').replace(/[^a-z0-9]/gi, '').slice(0, 2).toUpperCase() || '?';
  const main = h('main', { class: 'main', id: 'main' });
  const logoutBtn = h('button', { type: 'button', class: 'btn btn-ghost btn-sm logout-btn', 'data-testid': 'logout' },
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
        h('div', { class: 'nav-section', text: 'Support' }),
        h('a', { href: '#/sessions', class: `nav-item${active === 'sessions' ? ' is-active' : ''}`, 'aria-current': active === 'sessions' ? 'page' : null },
          icon('sessions', 18), h('span', { text: 'Sessions' }))),
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

window.addEventListener('hashchange', render);

async function boot() {
  try {
    setUser(await api.me());
  } catch (err) {
    // The broker is down or unreachable: the login screen says so on submit.
    app.flash = err.message;
  }
  render();
}

boot();

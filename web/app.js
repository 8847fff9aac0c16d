// conch's web UI: the login form, the live console list and a tab per open
// console. The address says what is shown: `/` the list (with ?filter= and
// ?state=), `/consoles/{name}` that console's terminal, so a ticket can link
// straight to it; back and forward move between them.
/* global document, window, location, history, URLSearchParams */
import { api, loadSession, login, logout, session, whenUnauthorized } from './api.js';
import { toast } from './dialogs.js';
import { ConsoleList } from './list.js';
import { TerminalTab } from './terminal.js';
import { consolePath, el } from './util.js';

const $ = (id) => document.getElementById(id);

/** the console list (one for the page; started at each login) */
let list = null;
/** open terminals by console name, in tab order */
const tabs = new Map();
/** 'list' or a console name */
let active = 'list';
let started = false;

function parseRoute() {
  const m = /^\/consoles\/([^/]+)\/?$/.exec(location.pathname);
  if (!m) return { console: null };
  try {
    return { console: decodeURIComponent(m[1]) };
  } catch {
    return { console: null };
  }
}

// ---- login ------------------------------------------------------------------------

function showLogin(message) {
  stopApp();
  $('login-view').hidden = false;
  $('list-view').hidden = true;
  $('who').hidden = true;
  $('tabs').hidden = true;
  const err = $('login-error');
  err.hidden = !message;
  err.textContent = message ?? '';
  $('login-user').focus();
}

async function onLogin(e) {
  e.preventDefault();
  const button = $('login-submit');
  button.disabled = true;
  $('login-error').hidden = true;
  try {
    await login($('login-user').value, $('login-password').value);
    $('login-password').value = '';
    $('login-view').hidden = true;
    startApp();
  } catch (err) {
    showLogin(err.message);
  } finally {
    button.disabled = false;
  }
}

async function onLogout() {
  try {
    await logout();
  } catch (e) {
    toast(`Log out: ${e.message}`, 'error');
  }
  showLogin();
}

/** Something came back 401: the session is gone (expired, daemon restarted): ask again. */
async function checkSession() {
  if (!started) return;
  try {
    await loadSession();
  } catch {
    return;
  }
  if (session.loginRequired) showLogin('Your session has ended: log in again.');
}

// ---- the app ------------------------------------------------------------------------

function startApp() {
  started = true;
  $('login-view').hidden = true;
  $('tabs').hidden = false;
  $('who').hidden = false;
  $('who-user').textContent = session.auth === 'none' ? `${session.user} (no login needed)` : session.user;
  $('logout').hidden = session.auth !== 'password';
  const q = new URLSearchParams(location.search);
  list.start({ filter: q.get('filter') ?? '', state: q.get('state') ?? '' });
  route();
}

function stopApp() {
  if (!started) return;
  started = false;
  for (const name of [...tabs.keys()]) closeTab(name, false);
  list.stop();
  active = 'list';
}

function route() {
  const r = parseRoute();
  if (r.console) openConsole(r.console, false);
  else activate('list', false);
}

// ---- tabs ------------------------------------------------------------------------

function openConsole(name, push = true) {
  let t = tabs.get(name);
  if (!t) {
    t = new TerminalTab(name, { info: () => (started ? list.get(name) : null) });
    tabs.set(name, t);
    $('terminals').append(t.root);
    const dot = el('span', { class: 'tab-dot', dataset: { state: list.get(name)?.state ?? 'unknown' } });
    t.tabDot = dot;
    t.tabEl = el(
      'div',
      { class: 'tab', role: 'tab', tabindex: 0, dataset: { tab: name }, title: name },
      dot,
      el('span', { class: 'tab-name' }, name),
      el('button', { type: 'button', class: 'tab-close', title: `Close ${name}`, 'aria-label': `Close ${name}`, onclick: (e) => (e.stopPropagation(), closeTab(name)) }, '×'),
    );
    t.tabEl.addEventListener('click', () => activate(name));
    t.tabEl.addEventListener('keydown', (e) => e.key === 'Enter' && activate(name));
    $('tabs').append(t.tabEl);
    t.update();
    activate(name, push);
    // as `conman NAME`: write access when nobody writes, else watch and say so
    t.connect('attach');
    return;
  }
  activate(name, push);
}

function closeTab(name, move = true) {
  const t = tabs.get(name);
  if (!t) return;
  const order = [...tabs.keys()];
  const i = order.indexOf(name);
  tabs.delete(name);
  t.tabEl.remove();
  t.dispose();
  if (move && active === name) {
    const next = order[i + 1] ?? order[i - 1];
    activate(next && tabs.has(next) ? next : 'list');
  }
}

function activate(key, push = true) {
  active = key;
  $('list-view').hidden = key !== 'list';
  const listTab = $('tab-list');
  listTab.classList.toggle('active', key === 'list');
  listTab.setAttribute('aria-selected', String(key === 'list'));
  for (const [name, t] of tabs) {
    const on = name === key;
    t.tabEl.classList.toggle('active', on);
    t.tabEl.setAttribute('aria-selected', String(on));
    t.show(on);
    if (on) t.tabEl.scrollIntoView({ block: 'nearest', inline: 'nearest' });
  }
  const url = key === 'list' ? (list.query() ? `/?${list.query()}` : '/') : consolePath(key);
  document.title = key === 'list' ? 'Consoles – conch' : `${key} – conch`;
  if (location.pathname + location.search !== url) {
    if (push) history.pushState(null, '', url);
    else history.replaceState(null, '', url);
  }
}

// ---- start --------------------------------------------------------------------------

async function main() {
  list = new ConsoleList({
    onOpen: (name) => openConsole(name),
    onConsole: (name) => tabs.get(name)?.update(),
    onUnauthorized: () => void checkSession(),
    onQuery: (q) => active === 'list' && history.replaceState(null, '', q ? `/?${q}` : '/'),
  });
  $('login').addEventListener('submit', (e) => void onLogin(e));
  $('logout').addEventListener('click', () => void onLogout());
  $('tab-list').addEventListener('click', () => activate('list'));
  $('brand').addEventListener('click', (e) => {
    if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    if (started) activate('list');
  });
  window.addEventListener('popstate', () => started && route());
  document.addEventListener('keydown', (e) => {
    // "/" jumps to the filter, as in many list views
    if (e.key === '/' && active === 'list' && started && document.activeElement?.tagName !== 'INPUT') {
      e.preventDefault();
      $('filter').focus();
    }
  });
  whenUnauthorized(() => void checkSession());
  try {
    await loadSession();
  } catch (e) {
    showLogin(`conchd cannot be reached: ${e.message}`);
    return;
  }
  if (session.loginRequired) showLogin();
  else startApp();
}

/** For tests and the curious: the open terminals and what they show. */
window.conch = {
  tabs,
  text: (name) => tabs.get(name)?.text() ?? null,
  list: () => list,
  api,
};

void main();

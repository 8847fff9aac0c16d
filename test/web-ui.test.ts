// The web UI in a real browser (Debian's chromium, headless, driven by
// playwright-core) against a real conchd whose IPMI consoles are conch-bmcsim
// BMCs, with a users file so that the login form is used: the static files
// and their headers, logging in, the live list and its filter, a terminal in
// which a command is typed at the simulated shell, the busy fallback of
// /consoles/{name} with join and force, a SOL takeover shown and taken back,
// break with SysRq, reset, the log download, the list following a console
// that goes down and one removed by a reload, and logging out.
//
// Screenshots go to a temporary directory, or to CONCH_SCREENSHOTS (e.g.
// `CONCH_SCREENSHOTS=docs/screenshots`, relative to the repository) to
// refresh the ones in the documentation. SHOW_PROBLEMS=1 prints what the
// pages logged as errors (expected ones: the wrong password's 401, …).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { Cleanup, waitFor } from './helpers/wait.js';
import { ROOT, startConchd, type RunningConchd } from './helpers/conchd.js';
import { haveChromium, launchBrowser, openPage, type PageProblems } from './helpers/browser.js';
import { control, startBmcsim, type SimFleet } from './bmcsim-rig.js';
import { hashPassword } from '../src/access/password.js';
import { UI_FILES, WEB_DIR } from '../src/web/ui-routes.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

const N = 6;
const names = Array.from({ length: N }, (_, i) => `node0${i + 1}`);
const PASSWORDS = { alice: 'wonderland-42', bob: 'builder-7' };

let sim: SimFleet;
let d: RunningConchd;
let base: string;
let browser: Browser;
let shots: string;
let resets: string;
const problems: PageProblems[] = [];
/** the pages the steps share: alice's (a laptop) and bob's */
let alice: Page;
let bob: Page;

/** A GET (or HEAD) sent as written: no URL normalisation, so `..` reaches the server. */
function raw(urlPath: string, opts: { method?: string; headers?: http.OutgoingHttpHeaders } = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: urlPath, method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Wait until console `name`'s terminal in `page` shows text matching `re`; returns the text. */
async function termShows(page: Page, name: string, re: RegExp, timeout = 20000): Promise<string> {
  try {
    await page.waitForFunction(([n, src, flags]) => new RegExp(src!, flags).test((window as any).conch.text(n) ?? ''), [name, re.source, re.flags], { timeout, polling: 100 });
  } catch (e) {
    const text = await page.evaluate((n) => (window as any).conch.text(n), name);
    throw new Error(`${(e as Error).message}\nterminal ${name} shows:\n${String(text).trimEnd().slice(-2000)}`);
  }
  return page.evaluate((n) => (window as any).conch.text(n) as string, name);
}

const row = (page: Page, name: string, extra = ''): ReturnType<Page['locator']> => page.locator(`#console-rows tr[data-name="${name}"]${extra}`);
const termView = (page: Page, name: string): ReturnType<Page['locator']> => page.locator(`section.term-view[data-console="${name}"]`);

async function logIn(page: Page, user: keyof typeof PASSWORDS, url = base): Promise<void> {
  await page.goto(url);
  await page.locator('#login-user').fill(user);
  await page.locator('#login-password').fill(PASSWORDS[user]);
  await page.locator('#login-submit').click();
  await page.locator('#login-view').waitFor({ state: 'hidden' });
}

async function shot(page: Page, file: string): Promise<void> {
  await page.screenshot({ path: path.join(shots, file) });
}

before(async () => {
  // a missing browser is an install step (scripts/debian-packages.txt), never a skip
  assert.ok(haveChromium(), 'no Chromium at /usr/bin/chromium (or $CONCH_CHROMIUM): apt-get install chromium');
  const dir = cleanup.dir('conch-webui-');
  shots = process.env.CONCH_SCREENSHOTS ? path.resolve(ROOT, process.env.CONCH_SCREENSHOTS) : path.join(dir, 'screenshots');
  fs.mkdirSync(shots, { recursive: true });
  resets = path.join(dir, 'resets');
  const users = path.join(dir, 'users');
  const cheap = { ln: 10, r: 8, p: 1 };
  fs.writeFileSync(users, `alice:${await hashPassword(Buffer.from(PASSWORDS.alice), cheap)}:ops\nbob:${await hashPassword(Buffer.from(PASSWORDS.bob), cheap)}:ops\n`, { mode: 0o600 });

  sim = await startBmcsim(cleanup, N, ['--heartbeat', '4']);
  const conf = names.map((n, i) => `console name="${n}" dev="ipmi:127.0.0.1:${sim.basePort + i}" ipmiopts="U:admin,P:password,C:3" log="%N.log"\n`).join('');
  fs.mkdirSync(path.join(dir, 'conchd'));
  d = await startConchd(cleanup, conf, {
    dir: path.join(dir, 'conchd'),
    extraHeader: `server httpport=0\nserver users="${users}"\nserver resetcmd="echo %N >> ${resets}"\n`,
  });
  const port = Number(/Listening on HTTP port (\d+)/.exec(await d.child.waitOutput(/Listening on HTTP port \d+/))![1]);
  base = `http://127.0.0.1:${port}`;
  browser = await launchBrowser(cleanup);
});

after(() => {
  if (process.env.SHOW_PROBLEMS) console.log(problems.flatMap((p) => p.errors));
  const errors = problems.flatMap((p) => p.errors).filter((e) => e.startsWith('pageerror'));
  assert.deepEqual(errors, [], 'no uncaught script errors in any page');
});

test('the UI is served from a fixed table, with its content types, CSP and ETags', async () => {
  const page = await raw('/');
  assert.equal(page.status, 200);
  assert.match(page.headers['content-type']!, /^text\/html; charset=utf-8/);
  assert.match(String(page.headers['content-security-policy']), /default-src 'self'; connect-src 'self'; script-src 'self'/);
  assert.equal(page.headers['cache-control'], 'no-cache');
  assert.doesNotMatch(page.body, /<script>|<script [^>]*>[^<]/, 'no inline script');
  // a console's own address is the same page
  assert.equal((await raw('/consoles/node01')).body, page.body);
  assert.equal((await raw('/consoles/no%20such')).status, 200, 'the page itself says when a console does not exist');

  const etag = String(page.headers.etag);
  assert.equal((await raw('/', { headers: { 'if-none-match': etag } })).status, 304);
  const head = await raw('/assets/app.js', { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.body, '');
  assert.match(head.headers['content-type']!, /^text\/javascript/);

  for (const [url, type] of [
    ['/assets/xterm/xterm.mjs', /^text\/javascript/],
    ['/assets/xterm/addon-fit.mjs', /^text\/javascript/],
    ['/assets/xterm/xterm.css', /^text\/css/],
    ['/assets/app.css', /^text\/css/],
    ['/favicon.svg', /^image\/svg\+xml/],
  ] as const) {
    const r = await raw(url);
    assert.equal(r.status, 200, url);
    assert.match(r.headers['content-type']!, type, url);
  }
  assert.match((await raw('/assets/xterm/xterm.mjs')).body, /export\s*\{[^}]*as Terminal\s*\}/);

  // nothing outside the table, however the path is spelled
  for (const p of ['/assets/../package.json', '/assets/%2e%2e/%2e%2e/package.json', '/assets/..%2f..%2fpackage.json', '/web/app.js', '/assets/index.html', '/assets/xterm/xterm.js', '/assets/app.js.map', '/assets/%2e%2e%2fweb%2fapp.js', '//etc/passwd']) {
    const r = await raw(p);
    assert.ok(r.status === 404 || r.status === 400, `${p}: ${r.status}`);
    assert.doesNotMatch(r.body, /"name": "conch"|root:/);
  }
  // every file of web/ is in the table, and the table names only files of web/
  const listed = new Set([...Object.values(UI_FILES), 'index.html']);
  assert.deepEqual(fs.readdirSync(WEB_DIR).sort(), [...listed].sort());
  // the API wants a login
  assert.equal((await raw('/api/v1/consoles')).status, 401);
});

test('log in through the form, see the live list, filter it', async () => {
  const p = await openPage(browser);
  problems.push(p.problems);
  alice = p.page;
  await alice.goto(base);
  await alice.locator('#login-view').waitFor();
  assert.equal(await alice.locator('#list-view').isHidden(), true, 'nothing but the form before a login');

  // a wrong password is refused with the server's message
  await alice.locator('#login-user').fill('alice');
  await alice.locator('#login-password').fill('not-her-password');
  await alice.locator('#login-submit').click();
  await alice.locator('#login-error').waitFor();
  assert.match(await alice.locator('#login-error').textContent() ?? '', /\S/);

  await alice.locator('#login-password').fill(PASSWORDS.alice);
  await alice.locator('#login-submit').click();
  await alice.locator('#list-view').waitFor();
  assert.match((await alice.locator('#who-user').textContent()) ?? '', /alice/);
  for (const n of names) await row(alice, n, '[data-state="up"]').waitFor({ timeout: 40000 });
  await alice.locator('.chip-up[data-count="6"]').waitFor();
  await alice.locator('#live.live').waitFor();

  // filter as you type: a regex, a substring, a broken regex matched as text
  const filter = alice.locator('#filter');
  await filter.fill('node0[12]');
  await waitFor(async () => (await alice.locator('#console-rows tr[data-name]').count()) === 2, 'two rows for node0[12]');
  assert.equal(await alice.locator('.chip-total').getAttribute('data-count'), '2');
  await filter.fill('05');
  await waitFor(async () => (await alice.locator('#console-rows tr[data-name]').count()) === 1, 'one row for 05');
  await filter.fill('node0[');
  await alice.locator('#filter-note').waitFor();
  await waitFor(async () => (await alice.locator('#console-rows tr[data-name]').count()) === 0, 'no row for "node0[" as text');
  assert.match(alice.url(), /\?filter=node0%5B$/, 'the filter is in the address');
  await filter.fill('');
  await waitFor(async () => (await alice.locator('#console-rows tr[data-name]').count()) === N, 'every row again');
});

test('open a console from the list: type a command at the simulated shell and see its output, in colour', async () => {
  await row(alice, 'node01').click();
  const view = termView(alice, 'node01');
  await view.locator('.mode-badge[data-mode="write"]').waitFor();
  assert.match(alice.url(), /\/consoles\/node01$/);
  await alice.locator('.tab[data-tab="node01"].active').waitFor();

  await view.locator('.xterm').click();
  // the simulated host: a login prompt that takes any password, then a small shell
  await alice.keyboard.type('root');
  await alice.keyboard.press('Enter');
  await termShows(alice, 'node01', /Password: /);
  await alice.keyboard.type('secret');
  await alice.keyboard.press('Enter');
  await termShows(alice, 'node01', /root@node01:~# $/m);
  await alice.keyboard.type('echo hello-from-chromium');
  await alice.keyboard.press('Enter');
  // the command's output on a line of its own (not just the echo of what was typed)
  await termShows(alice, 'node01', /^hello-from-chromium\s*$/m);
  await alice.keyboard.type('help');
  await alice.keyboard.press('Enter');
  await termShows(alice, 'node01', /^commands: help hostname/m);

  // colours: an SGR sequence reaches xterm as a red cell
  await alice.evaluate(() => (window as any).conch.tabs.get('node01').typed(new TextEncoder().encode('echo \x1b[31mRED\x1b[0m plain\r')));
  await termShows(alice, 'node01', /^RED plain\s*$/m);
  const fg = await alice.evaluate(() => {
    const b = (window as any).conch.tabs.get('node01').term.buffer.active;
    for (let y = b.length - 1; y >= 0; y--) {
      const line = b.getLine(y);
      if (/^RED plain\s*$/.test(line.translateToString(true))) {
        const cell = line.getCell(0);
        const plain = line.getCell(4);
        return { red: cell.isFgPalette() ? cell.getFgColor() : -1, plain: plain.isFgDefault() };
      }
    }
    return null;
  });
  assert.deepEqual(fg, { red: 1, plain: true });

  // the terminal follows the window's size
  const cols = await alice.evaluate(() => (window as any).conch.tabs.get('node01').term.cols as number);
  await alice.setViewportSize({ width: 900, height: 700 });
  await alice.waitForFunction((c) => (window as any).conch.tabs.get('node01').term.cols < c, cols);
  await alice.setViewportSize({ width: 1280, height: 800 });
  await alice.waitForFunction((c) => (window as any).conch.tabs.get('node01').term.cols === c, cols);

  // the list shows who is attached
  await alice.locator('#tab-list').click();
  await row(alice, 'node01').locator('.client-write', { hasText: 'alice' }).waitFor();
  await alice.locator('.tab[data-tab="node01"]').click();
  await alice.locator('section.term-view[data-console="node01"]:not([hidden])').waitFor();
  await termShows(alice, 'node01', /hello-from-chromium/);
  await shot(alice, 'terminal.png');
});

test('/consoles/{name} opens a console in use read-only and says so; join, then force', async () => {
  const p = await openPage(browser);
  problems.push(p.problems);
  bob = p.page;
  // straight to the console's own address: the login form, then the console
  await logIn(bob, 'bob', `${base}/consoles/node01`);
  const view = termView(bob, 'node01');
  await view.locator('.mode-badge[data-mode="monitor"]').waitFor();
  await view.locator('.term-banner', { hasText: /in use by alice@.*Watching read-only/ }).waitFor();
  // the replay filled the scrollback
  await termShows(bob, 'node01', /^hello-from-chromium\s*$/m);

  await view.locator('.term-banner button', { hasText: 'Join' }).click();
  await view.locator('.mode-badge[data-mode="write"]').waitFor();
  await view.locator('.xterm').click();
  await bob.keyboard.type('hostname');
  await bob.keyboard.press('Enter');
  // both writers see it
  await termShows(bob, 'node01', /^node01\s*$/m);
  await termShows(alice, 'node01', /^node01\s*$/m);

  // force: alice is cut off and told so (once bob's list knows she writes, he is asked to confirm)
  await waitFor(async () => (await row(bob, 'node01').locator('.client-write').count()) === 2, "bob's list to show two writers");
  await view.locator('[data-action="force"]').click();
  await bob.locator('dialog [data-confirm]').click();
  const aliceView = termView(alice, 'node01');
  await aliceView.locator('.term-banner', { hasText: /taken over by another client/ }).waitFor();
  await aliceView.locator('.mode-badge', { hasText: 'closed' }).waitFor();
  await view.locator('.mode-badge[data-mode="write"]').waitFor();
});

test('a SOL takeover is shown in the terminal and the list; "Take SOL back" ends it', async () => {
  const r = await control(sim, 'POST', '/bmcs/node01/steal', { seconds: 600 });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  const view = termView(bob, 'node01');
  await termShows(bob, 'node01', /SOL session taken over by another client/, 30000);
  await view.locator('.term-detail', { hasText: /held elsewhere/i }).waitFor({ timeout: 20000 });
  // the list says it too, and so does its event log
  await alice.locator('#tab-list').click();
  await row(alice, 'node01').locator('.detail', { hasText: /held elsewhere/i }).waitFor({ timeout: 20000 });
  await alice.locator('#event-log li', { hasText: /taken over by another client/ }).first().waitFor({ state: 'attached' });

  await view.locator('[data-action="sol"]').click();
  await bob.locator('dialog [data-confirm]').click();
  await bob.locator('.toast', { hasText: /Taking node01's SOL back/ }).waitFor();
  await waitFor(async () => ((await view.locator('.term-detail').textContent()) ?? 'x') === '', 'the held-elsewhere detail to go', 30000);
  await view.locator('[data-action="sol"]').waitFor({ state: 'hidden' });
});

test('break with a SysRq key, reset, and the log download', async () => {
  const view = termView(bob, 'node01');
  await view.locator('[data-action="break"]:not([disabled])').click();
  await bob.locator('#sysrq-key').selectOption('h');
  await bob.locator('dialog [data-confirm]').click();
  await termShows(bob, 'node01', /sysrq: HELP : loglevel/, 20000);

  await view.locator('[data-action="reset"]').click();
  await bob.locator('dialog [data-confirm]').click();
  await bob.locator('.toast', { hasText: 'Reset of node01 started' }).waitFor();
  await waitFor(() => fs.existsSync(resets) && fs.readFileSync(resets, 'utf8').includes('node01'), 'the reset command to run');

  const [download] = await Promise.all([bob.waitForEvent('download'), view.locator('a', { hasText: 'Log' }).click()]);
  const file = await download.path();
  assert.match(fs.readFileSync(file, 'latin1'), /hello-from-chromium/);
  assert.equal(download.suggestedFilename(), 'node01.log');
});

test('the list follows a console going down and one removed by a reload', async () => {
  await alice.locator('#tab-list').click();
  // node06's BMC restarts and stays silent; node05's SOL is held by someone else
  assert.equal((await control(sim, 'POST', '/bmcs/node06/restart', { seconds: 120 })).status, 200);
  assert.equal((await control(sim, 'POST', '/bmcs/node05/steal', { seconds: 600 })).status, 200);
  await row(alice, 'node06', ':not([data-state="up"])').waitFor({ timeout: 60000 });
  await alice.locator('.chip-up[data-count="5"]').waitFor();
  await row(alice, 'node05').locator('.detail', { hasText: /held elsewhere/i }).waitFor({ timeout: 30000 });
  await alice.locator('#event-log li', { hasText: /node06/ }).first().waitFor({ state: 'attached' });
  await shot(alice, 'console-list.png');

  // a reload that drops node04: its row goes
  const conf = fs.readFileSync(d.conf, 'utf8').split('\n').filter((l) => !l.includes('"node04"')).join('\n');
  fs.writeFileSync(d.conf, conf);
  process.kill(d.child.proc.pid!, 'SIGHUP');
  await row(alice, 'node04').waitFor({ state: 'detached', timeout: 30000 });
  await alice.locator('.chip-total[data-count="5"]').waitFor();
  // the state filter chips
  await alice.locator('.chip-up').click();
  await waitFor(async () => {
    const states = await alice.locator('#console-rows tr[data-name]').evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.state));
    return states.length === Number(await alice.locator('.chip-up').getAttribute('data-count')) && states.every((s) => s === 'up') && states.length > 0;
  }, 'only the consoles that are up');
  await alice.locator('.chip-total').click();
});

test('usable on a phone: the list as cards, a terminal with a row of keys', async () => {
  const p = await openPage(browser, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
  problems.push(p.problems);
  const phone = p.page;
  await logIn(phone, 'alice');
  await row(phone, 'node02', '[data-state="up"]').waitFor({ timeout: 30000 });
  await row(phone, 'node02').tap();
  const view = termView(phone, 'node02');
  await view.locator('.mode-badge[data-mode="write"]').waitFor();
  await view.locator('.keybar').waitFor();
  await view.locator('.xterm').tap();
  await phone.keyboard.type('root');
  await view.locator('.keybar .key', { hasText: '⏎' }).tap();
  await termShows(phone, 'node02', /Password: /);
  const cols = await phone.evaluate(() => (window as any).conch.tabs.get('node02').term.cols as number);
  assert.ok(cols >= 30 && cols < 60, `a phone-sized terminal (${cols} columns)`);
  await shot(phone, 'terminal-phone.png');
  await p.context.close();
});

test('log out: back to the form, and the API refuses', async () => {
  await alice.locator('#logout').click();
  await alice.locator('#login-view').waitFor();
  assert.equal(await alice.locator('.term-view').count(), 0, 'the terminals are closed');
  const status = await alice.evaluate(async () => (await fetch('/api/v1/consoles')).status);
  assert.equal(status, 401);
  // and in again: one list, one tab per console
  await alice.locator('#login-user').fill('alice');
  await alice.locator('#login-password').fill(PASSWORDS.alice);
  await alice.locator('#login-submit').click();
  await row(alice, 'node03', '[data-state="up"]').click();
  await termView(alice, 'node03').locator('.mode-badge[data-mode="write"]').waitFor();
  assert.equal(await alice.locator('.tab[data-tab]:not(#tab-list)').count(), 1);
});

test('without a users file a loopback browser needs no login', async () => {
  const dir = cleanup.dir('conch-webui-open-');
  const open = await startConchd(cleanup, 'console name="cat1" dev="/bin/cat"\n', { dir, extraHeader: 'server httpport=0\n' });
  const port = Number(/Listening on HTTP port (\d+)/.exec(await open.child.waitOutput(/Listening on HTTP port \d+/))![1]);
  const p = await openPage(browser);
  problems.push(p.problems);
  const page = p.page;
  await page.goto(`http://127.0.0.1:${port}/consoles/cat1`);
  const view = termView(page, 'cat1');
  await view.locator('.mode-badge[data-mode="write"]').waitFor();
  assert.equal(await page.locator('#login-view').isHidden(), true);
  assert.match((await page.locator('#who-user').textContent()) ?? '', /anonymous/);
  assert.equal(await page.locator('#logout').isHidden(), true, 'nothing to log out of');
  await view.locator('.xterm').click();
  await page.keyboard.type('no-login-needed');
  await page.keyboard.press('Enter');
  await termShows(page, 'cat1', /^no-login-needed\s*$/m);
  await page.locator('#tab-list').click();
  await row(page, 'cat1').locator('.client-write', { hasText: 'anonymous' }).waitFor();
  await p.context.close();
  await open.child.stop();
});

// The web listener's doors on a real conchd: no login on loopback without a
// users file (as the conman port), logins with cookies and CSRF tokens, and
// a console's WebSocket as just another client — the same busy, joined,
// stolen and refused semantics as conman's protocol, seen from both sides
// (a WebSocket and Debian's conman client on the same console), and a slow
// browser that loses only its own output.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { WebSocket } from 'ws';
import { Cleanup, waitFor, waitForFile } from './helpers/wait.js';
import { ROOT, startConchd, type RunningConchd } from './helpers/conchd.js';
import { conman } from './helpers/protocol-harness.js';
import { hashPassword } from '../src/access/password.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

const HOST = path.join(ROOT, 'dist/src/bin/conch-host.js');
const hostConsole = (n: string): string => `console name="${n}" dev="${process.execPath} ${HOST} --name %N --interval 0 --no-boot" log="%N.log"\n`;

async function webPort(d: RunningConchd): Promise<number> {
  const out = await d.child.waitOutput(/Listening on HTTP port (\d+)/);
  return Number(/Listening on HTTP port (\d+)/.exec(out)![1]);
}

/** A console socket: what it received (output as text, control messages), and how it closed. */
class Sock {
  readonly ws: WebSocket;
  text = '';
  controls: Record<string, unknown>[] = [];
  closeCode: number | null = null;
  opened: Promise<void>;
  constructor(url: string, headers: Record<string, string> = {}) {
    this.ws = new WebSocket(url, { headers });
    this.ws.on('message', (d: Buffer, bin) => {
      if (bin) this.text += d.toString('latin1');
      else this.controls.push(JSON.parse(d.toString()) as Record<string, unknown>);
    });
    this.ws.on('close', (code) => (this.closeCode = code));
    this.ws.on('error', () => {});
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      this.ws.once('error', reject);
    });
    cleanup.add(() => this.ws.terminate());
  }
  async has(needle: string): Promise<void> {
    await waitFor(() => this.text.includes(needle), `${needle} on the socket (got ${JSON.stringify(this.text.slice(-300))})`);
  }
  async closed(): Promise<number> {
    await waitFor(() => this.closeCode !== null, 'the socket to close');
    return this.closeCode!;
  }
  type(s: string): void {
    this.ws.send(Buffer.from(s), { binary: true });
  }
  /** log in to the simulated host's shell */
  async shell(): Promise<void> {
    this.type('\r');
    await this.has('login: ');
    this.type('root\r');
    await this.has('Password:');
    this.type('secret\r');
    await this.has('# ');
  }
}

test('no users file: loopback needs no login; a WebSocket is busy, joins, forces and is stolen like a conman client', async () => {
  const d = await startConchd(cleanup, hostConsole('n1'), { extraHeader: 'server httpport=0\n' });
  const port = await webPort(d);
  const base = `http://127.0.0.1:${port}`;
  const session = (await (await fetch(`${base}/api/v1/session`)).json()) as { user: string; loginRequired: boolean };
  assert.deepEqual([session.user, session.loginRequired], ['anonymous', false]);

  const ws = (mode: string): Sock => new Sock(`ws://127.0.0.1:${port}/api/v1/consoles/n1/stream?mode=${mode}`);
  const a = ws('attach');
  await a.opened;
  await waitFor(() => a.controls.some((c) => c.type === 'hello' && c.mode === 'write'), 'the hello');
  await a.shell();
  a.type('echo typed-in-the-browser\r');
  await a.has('\r\ntyped-in-the-browser\r\n');

  // Debian's conman client watching the same console sees the browser's notices
  const watcher = conman(cleanup, d.port, '-m', 'n1');
  await watcher.opened('n1');

  const busy = ws('attach');
  assert.equal(await busy.closed(), 4409);
  assert.match(String(busy.controls[0]?.message), /^Console \[n1\] is in use by anonymous@localhost/);

  const j = ws('join');
  await j.opened;
  await j.has('Console [n1] joined with <anonymous@localhost>');
  await a.has('Console [n1] joined by <anonymous@localhost>');
  await watcher.waitOutput('Console [n1] joined by <anonymous@localhost>');

  const f = ws('force');
  await f.opened;
  assert.equal(await a.closed(), 4001);
  assert.equal(await j.closed(), 4001);
  assert.ok(a.controls.some((c) => c.type === 'closed' && c.reason === 'stolen'));
  await watcher.waitOutput('Console [n1] stolen by <anonymous@localhost>');
  f.type('echo after-force\r');
  await f.has('\r\nafter-force\r\n');
  const log = await waitForFile(path.join(d.logdir, 'n1.log'), 'after-force');
  assert.match(log, /stolen by <anonymous@localhost>/);

  // unknown console, bad mode: refused before the upgrade
  await assert.rejects(new Sock(`ws://127.0.0.1:${port}/api/v1/consoles/nope/stream`).opened, /HTTP 404/);
  await assert.rejects(new Sock(`ws://127.0.0.1:${port}/api/v1/consoles/n1/stream?mode=steal`).opened, /HTTP 400/);
  // a page from another site cannot open a console socket
  await assert.rejects(new Sock(`ws://127.0.0.1:${port}/api/v1/consoles/n1/stream?mode=monitor`, { origin: 'http://evil.example' }).opened, /HTTP 403/);
});

test('with users: login, cookie and CSRF; rules apply to the socket; the audit log names the web user', async () => {
  const dir = cleanup.dir('web-users-');
  fs.writeFileSync(
    path.join(dir, 'users'),
    `alice:${await hashPassword(Buffer.from('wonderland'), { ln: 10, r: 8, p: 1 })}:\nmon:${await hashPassword(Buffer.from('watch'), { ln: 10, r: 8, p: 1 })}:\n`,
    { mode: 0o600 },
  );
  fs.writeFileSync(path.join(dir, 'rules'), 'alice .* all\nmon .* monitor\n');
  const audit = path.join(dir, 'audit.log');
  const d = await startConchd(cleanup, hostConsole('n1'), {
    dir,
    extraHeader: `server httpport=0 users="${dir}/users" access="${dir}/rules" auditlog="${audit}"\n`,
  });
  const port = await webPort(d);
  const base = `http://127.0.0.1:${port}`;

  const anon = (await (await fetch(`${base}/api/v1/session`)).json()) as { loginRequired: boolean };
  assert.equal(anon.loginRequired, true);
  await assert.rejects(new Sock(`ws://127.0.0.1:${port}/api/v1/consoles/n1/stream`).opened, /HTTP 401/);

  const login = (user: string, password: string) =>
    fetch(`${base}/api/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user, password }) });
  const bad = await login('alice', 'nope');
  assert.equal(bad.status, 401);
  assert.deepEqual(await bad.json(), { error: 'Authentication failed', status: 401 });
  const ok = await login('mon', 'watch');
  assert.equal(ok.status, 200);
  const cookie = ok.headers.get('set-cookie')!;
  assert.match(cookie, /HttpOnly/);
  assert.match(cookie, /SameSite=Strict/);
  const jar = cookie.split(';')[0]!;
  const { csrf } = (await ok.json()) as { csrf: string };

  // logout is public but a cookie-carrying change elsewhere needs the CSRF header: session shows who we are
  const me = (await (await fetch(`${base}/api/v1/session`, { headers: { cookie: jar } })).json()) as { user: string; csrf: string };
  assert.equal(me.user, 'mon');
  assert.equal(me.csrf, csrf);

  // mon may only monitor: attach is refused with 4403, monitor works, typing and force go nowhere
  const origin = `http://127.0.0.1:${port}`;
  const denied = new Sock(`ws://127.0.0.1:${port}/api/v1/consoles/n1/stream?mode=attach`, { cookie: jar, origin });
  assert.equal(await denied.closed(), 4403);
  assert.match(String(denied.controls[0]?.message), /mon has no attach right on console \[n1\]/);
  const m = new Sock(`ws://127.0.0.1:${port}/api/v1/consoles/n1/stream?mode=monitor`, { cookie: jar, origin });
  await m.opened;
  m.type('echo MON-TYPED\r');
  m.ws.send(JSON.stringify({ type: 'mode', mode: 'force' }));
  await m.has('Console [n1] write access refused: no force right');

  // alice, logged in, types; mon's bytes never arrived
  const a = await login('alice', 'wonderland');
  const aj = a.headers.get('set-cookie')!.split(';')[0]!;
  const w = new Sock(`ws://127.0.0.1:${port}/api/v1/consoles/n1/stream?mode=attach`, { cookie: aj, origin });
  await w.opened;
  await w.shell();
  w.type('echo ALICE-WEB\r');
  await m.has('\r\nALICE-WEB\r\n');
  const log = await waitForFile(path.join(d.logdir, 'n1.log'), 'ALICE-WEB\r\n');
  assert.ok(!log.includes('MON-TYPED'), 'the monitor typed nothing into the host');
  assert.match(log, /joined by <alice@localhost>/);

  await waitFor(() => fs.existsSync(audit) && fs.readFileSync(audit, 'utf8').includes('"action":"attach"'), 'the audit lines');
  const lines = fs.readFileSync(audit, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(lines.some((l) => l.action === 'auth-failed' && l.user === 'alice' && l.transport === 'web'));
  assert.ok(lines.some((l) => l.action === 'denied' && l.user === 'mon' && l.missing === 'attach'));
  assert.ok(lines.some((l) => l.action === 'denied' && l.user === 'mon' && l.missing === 'force'));
  assert.ok(lines.some((l) => l.action === 'attach' && l.user === 'alice' && l.transport === 'web' && l.auth === 'password'));

  // logout ends the session
  await fetch(`${base}/api/v1/logout`, { method: 'POST', headers: { cookie: jar } });
  const after = (await (await fetch(`${base}/api/v1/session`, { headers: { cookie: jar } })).json()) as { loginRequired: boolean };
  assert.equal(after.loginRequired, true);
});

test('a browser that does not read loses its own output, with a notice; the log and other clients lose nothing', async () => {
  const d = await startConchd(cleanup, 'console name="loud" dev="test:" testopts="b:4096,m:5,n:1,p:100" log="%N.log"\n', {
    extraHeader: 'server httpport=0 clientbuffer=65536\n',
  });
  const port = await webPort(d);
  const slow = new Sock(`ws://127.0.0.1:${port}/api/v1/consoles/loud/stream?mode=monitor`);
  await slow.opened;
  const raw = (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
  raw.pause();
  const fast = new Sock(`ws://127.0.0.1:${port}/api/v1/consoles/loud/stream?mode=monitor`);
  await fast.opened;
  const log = path.join(d.logdir, 'loud.log');
  await waitFor(() => fs.existsSync(log) && fs.statSync(log).size > 8 * 1024 * 1024, 'the log to pass 8 MiB while one browser is stuck', 60000);
  assert.ok(fast.text.length > 4 * 1024 * 1024, `the reading browser kept up (${fast.text.length} bytes)`);
  raw.resume();
  await slow.has('lost');
  assert.match(slow.text, /<ConMan> Console \[loud\] lost \d+ bytes for this client \(slow reader\)/);
});

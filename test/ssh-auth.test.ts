// The SSH console device (src/devices/ssh.ts) against an in-process ssh2
// server, for what the test sshd cannot show as root without touching the
// system's passwords: password and keyboard-interactive logins with the
// pswdfile's password (never in a reason), sshhostkeys=strict with a hashed
// known_hosts, a console waiting on a refused key until the file is fixed,
// and a dead peer noticed by keepalives.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import ssh2 from 'ssh2';
import type { Connection, ServerChannel } from 'ssh2';
import { SshDevice, type SshTiming } from '../src/devices/ssh.js';
import { defaultSshOpts } from '../src/config/opts.js';
import type { SshHostKeys, SshOpts } from '../src/config/types.js';
import { fingerprint } from '../src/devices/ssh-known-hosts.js';
import { newEd25519Key } from '../src/simulator/ssh-keys.js';
import type { DeviceHandler } from '../src/devices/device.js';
import { Cleanup, waitFor } from './helpers/wait.js';

const { Server, utils } = ssh2;
const cleanup = new Cleanup();
after(() => cleanup.run());
const dir = cleanup.dir('conch-ssh-auth-');

const PASSWORD = 'correct horse, battery: staple';
const hostKey = newEd25519Key('conch-test').private;
const hostBlob = (utils.parseKey(hostKey) as ssh2.ParsedKey).getPublicSSH();

interface Served {
  port: number;
  /** login methods tried, in order */
  tried: string[];
  /** what the console received */
  input: string;
  /** channels open now */
  channels: ServerChannel[];
  clients: Connection[];
}

/** an SSH server that takes `methods` with PASSWORD and gives a shell printing a banner */
async function serve(methods: ('password' | 'keyboard-interactive')[]): Promise<Served> {
  const s: Served = { port: 0, tried: [], input: '', channels: [], clients: [] };
  const srv = new Server({ hostKeys: [hostKey] }, (client) => {
    s.clients.push(client);
    client.on('error', () => {});
    client.on('authentication', (ctx) => {
      s.tried.push(ctx.method);
      if (ctx.method === 'password' && methods.includes('password') && ctx.password === PASSWORD) return ctx.accept();
      if (ctx.method === 'keyboard-interactive' && methods.includes('keyboard-interactive')) {
        ctx.prompt([{ prompt: 'Password: ', echo: false }], 'BMC login', (answers) => (answers[0] === PASSWORD ? ctx.accept() : ctx.reject()));
        return;
      }
      ctx.reject(methods);
    });
    client.on('ready', () =>
      client.on('session', (accept) => {
        const session = accept();
        session.on('pty', (ok) => ok?.());
        session.on('shell', (ok) => {
          const ch = ok();
          s.channels.push(ch);
          ch.on('data', (d: Buffer) => (s.input += d.toString('latin1')));
          ch.write('BMC console ready\r\n');
        });
      }),
    );
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  s.port = (srv.address() as net.AddressInfo).port;
  cleanup.add(() => {
    for (const c of s.clients) c.end();
    return new Promise((r) => srv.close(() => r(undefined)));
  });
  return s;
}

interface Seen {
  data: string;
  ups: number;
  downs: string[];
  notices: string[];
  ready: number;
  h: DeviceHandler;
}

function handler(): Seen {
  const seen: Seen = {
    data: '',
    ups: 0,
    downs: [],
    notices: [],
    ready: 0,
    h: {
      onData: (b) => (seen.data += b.toString('latin1')),
      onUp: () => seen.ups++,
      onDown: (r) => seen.downs.push(r),
      onReady: () => seen.ready++,
      onNotice: (t) => seen.notices.push(t),
    },
  };
  return seen;
}

function device(port: number, o: Partial<SshOpts>, knownHosts: string, hostKeys: SshHostKeys = 'accept-new', timing: Partial<SshTiming> = {}): SshDevice {
  const opts = { ...defaultSshOpts(), user: 'admin', ...o };
  const d = new SshDevice({ host: '127.0.0.1', port, opts }, { consoleName: 't', knownHosts, hostKeys, timing });
  cleanup.add(() => d.close());
  return d;
}

test('password login with the pswdfile password; a wrong one is refused without being shown', async () => {
  const s = await serve(['password']);
  const kh = path.join(dir, 'kh-password');
  const d = device(s.port, { password: Buffer.from(PASSWORD) }, kh);
  const seen = handler();
  d.connect(seen.h);
  await waitFor(() => seen.data.includes('BMC console ready'), 'the console');
  assert.equal(seen.ups, 1);
  assert.deepEqual(s.tried, ['password']);
  d.write(Buffer.from('typed\r'));
  await waitFor(() => s.input.includes('typed\r'), 'typed input');
  await d.close();
  // none sent: the session was not ended by the device's own close
  assert.deepEqual(seen.downs, []);

  const bad = device(s.port, { password: Buffer.from('wrong-secret') }, kh);
  const b = handler();
  bad.connect(b.h);
  await waitFor(() => b.downs.length === 1, 'refused');
  assert.equal(b.downs[0], 'authentication refused for user "admin" (tried password, keyboard-interactive)');
  assert.ok(!JSON.stringify(b).includes('wrong-secret'));
});

test('keyboard-interactive login (as BMCs ask for the password)', async () => {
  const s = await serve(['keyboard-interactive']);
  const d = device(s.port, { password: Buffer.from(PASSWORD) }, path.join(dir, 'kh-kbd'));
  const seen = handler();
  d.connect(seen.h);
  await waitFor(() => seen.data.includes('BMC console ready'), 'the console');
  assert.ok(s.tried.includes('keyboard-interactive'));
});

test('no credentials at all: said so', async () => {
  const s = await serve(['password']);
  const d = device(s.port, {}, path.join(dir, 'kh-none'));
  const seen = handler();
  d.connect(seen.h);
  await waitFor(() => seen.downs.length === 1, 'refused');
  assert.match(seen.downs[0]!, /no key= in sshopts and no password for this host in the pswdfile/);
});

test('strict: an unknown key is refused; a hashed known_hosts entry is trusted; a refused console waits for the file to change', async () => {
  const s = await serve(['password']);
  const kh = path.join(dir, 'kh-strict');
  const d = device(s.port, { password: Buffer.from(PASSWORD) }, kh, 'strict');
  const seen = handler();
  d.connect(seen.h);
  await waitFor(() => seen.downs.length === 1, 'refused');
  assert.equal(seen.downs[0], `host key ${fingerprint(hostBlob)} (ssh-ed25519) of [127.0.0.1]:${s.port} is not in ${kh} (server sshhostkeys=strict): add it there to trust it`);
  assert.equal(fs.existsSync(kh), false, 'nothing pinned');
  assert.equal(seen.data, '', 'nothing from the console');

  // the engine, in backoff, asks the device to watch; an operator adds the key (hashed, as OpenSSH does)
  d.watch(seen.h);
  fs.writeFileSync(`${kh}.plain`, `[127.0.0.1]:${s.port} ssh-ed25519 ${hostBlob.toString('base64')}\n`);
  const r = spawnSync('ssh-keygen', ['-H', '-f', `${kh}.plain`], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  fs.renameSync(`${kh}.plain`, kh);
  await waitFor(() => seen.ready === 1, 'told the file changed', 10000);
  d.connect(seen.h);
  await waitFor(() => seen.ups === 1, 'connected with the hashed entry');
  assert.ok(fs.readFileSync(kh, 'utf8').startsWith('|1|'), 'the file is left as it was');
});

test('a peer that stops answering is noticed by keepalives', async () => {
  const s = await serve(['password']);
  // a proxy that can be frozen: the BMC "dies" without closing anything
  let frozen = false;
  const socks: net.Socket[] = [];
  const proxy = net.createServer((c) => {
    const up = net.connect(s.port, '127.0.0.1');
    socks.push(c, up);
    c.on('data', (d) => frozen || up.write(d));
    up.on('data', (d) => frozen || c.write(d));
    c.on('error', () => {});
    up.on('error', () => {});
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  cleanup.add(() => {
    for (const x of socks) x.destroy();
    return new Promise((r) => proxy.close(() => r(undefined)));
  });
  const port = (proxy.address() as net.AddressInfo).port;
  const d = device(port, { password: Buffer.from(PASSWORD) }, path.join(dir, 'kh-ka'), 'accept-new', { keepaliveMs: 300 });
  const seen = handler();
  d.connect(seen.h);
  await waitFor(() => seen.ups === 1, 'up');
  frozen = true;
  const t0 = performance.now();
  await waitFor(() => seen.downs.length === 1, 'down by keepalive', 10000);
  assert.match(seen.downs[0]!, /^no answer to keepalives for 1 s \(the BMC or the link is down\)$/);
  assert.ok(performance.now() - t0 < 2000, `${performance.now() - t0} ms`);
});

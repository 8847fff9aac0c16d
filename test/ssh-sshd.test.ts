// conchd with `ssh://` consoles against OpenSSH's sshd as the BMC's SSH
// server (test/helpers/sshd.ts: a private sshd whose ForceCommand plays an
// OpenBMC console): logging, typing, the break request, the leave sequence
// on stop, host keys pinned and a changed one refused, sshd restarted, bad
// servers that must not hold up other consoles, and IPv6.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Cleanup, freePort, waitFor, waitForFile } from './helpers/wait.js';
import { startConchd, type RunningConchd } from './helpers/conchd.js';
import { startSshd, type Sshd } from './helpers/sshd.js';
import { conman } from './helpers/protocol-harness.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

/** a console line for the test sshd */
function sshConsole(name: string, s: Sshd, extra = ''): string {
  return `console name="${name}" dev="ssh://${s.user}@${s.hostForDev}:${s.port}" sshopts="key=${s.clientKey}${extra}" log="%N.log"\n`;
}

/** how many times the console log says the console connected */
function connects(log: string, name: string): number {
  if (!fs.existsSync(log)) return 0;
  return fs.readFileSync(log, 'latin1').split(`Console [${name}] connected to`).length - 1;
}

/** runs `body`; a failure also says `state()` */
async function explained(state: () => string, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (e) {
    if (e instanceof Error) e.message += `\n${state()}`;
    throw e;
  }
}

/** attach a client and leave at once: a console in backoff is tried again now (conman does the same) */
async function poke(d: RunningConchd, name: string): Promise<void> {
  const c = conman(cleanup, d.port, '-m', name);
  await c.opened(name);
  c.type('&.');
  await c.exited;
}

test('an OpenBMC-style SSH console: log, type, break request, host key pinned, leave sequence on stop', async () => {
  const s = await startSshd(cleanup, { mode: 'openbmc' });
  const d = await startConchd(cleanup, sshConsole('bmc1', s));
  const log = path.join(d.logdir, 'bmc1.log');
  await waitForFile(log, `Console [bmc1] connected to <ssh://127.0.0.1:${s.port}>`, 30000);

  // accept-new: the first key is pinned in the state directory's known_hosts
  const kh = fs.readFileSync(path.join(d.dir, 'state', 'known_hosts'), 'utf8');
  assert.match(kh, new RegExp(`^\\[127\\.0\\.0\\.1\\]:${s.port} ssh-ed25519 `, 'm'));
  assert.ok(d.child.output.includes(`SSH host key ${s.hostFingerprint} (ssh-ed25519) of [127.0.0.1]:${s.port} pinned`), d.child.output);

  await s.bmc.started(1);
  s.bmc.write('kernel: hello from the host behind the BMC\r\n');
  await waitForFile(log, 'hello from the host behind the BMC', 30000);

  const a = conman(cleanup, d.port, 'bmc1');
  await a.opened('bmc1');
  a.type('uptime\r');
  await waitFor(() => s.bmc.received.includes('uptime\r'), 'typed input at the host', 30000);
  // an RFC 4335 break request: sshd names it (it applies it to its pty with tcsendbreak, which a
  // program on the pty's other side cannot see)
  a.type('&B');
  await waitFor(() => /session_input_channel_req: session \d+ req break/.test(s.log), 'the break request at sshd', 30000);
  a.type('&.');
  assert.equal(await a.exited, 0);

  process.kill(d.child.proc.pid!, 'SIGTERM');
  assert.equal(await d.child.exited, 0);
  // obmc-console's escape, after a CR, before the session closed
  assert.ok(s.bmc.received.endsWith('\r~.'), JSON.stringify(s.bmc.received.slice(-20)));
  assert.equal(s.bmc.count('leave'), 1);
  await waitFor(() => s.bmc.live === 0, 'the session at the BMC to end', 10000);
});

test('sshd restarted: the console comes back; a changed host key is refused with both fingerprints until known_hosts is fixed', async () => {
  const s = await startSshd(cleanup, { mode: 'openbmc' });
  const d = await startConchd(cleanup, sshConsole('bmc2', s));
  const log = path.join(d.logdir, 'bmc2.log');
  const state = (): string =>
    `console log:\n${fs.existsSync(log) ? fs.readFileSync(log, 'latin1') : ''}\nconchd:\n${d.child.output.slice(-3000)}\nsshd:\n${s.log.slice(-3000)}\nBMC: ${JSON.stringify(s.bmc.messages.filter((m) => m.t !== 'in'))}`;
  await explained(state, async () => {
    await waitFor(() => connects(log, 'bmc2') === 1, 'first connection', 30000);
    await s.bmc.started(1);
    const oldFp = s.hostFingerprint;

    // the BMC restarts (every sshd process killed): the console notices at once, and is back
    await s.restart();
    await waitForFile(log, 'Console [bmc2] disconnected from', 30000);
    await poke(d, 'bmc2');
    await waitFor(() => connects(log, 'bmc2') === 2, 'the console back after the sshd restart', 30000);
    await s.bmc.started(2);
    s.bmc.write('back after restart\r\n');
    await waitForFile(log, 'back after restart', 30000);

    // now with a new host key
    s.newHostKey();
    const newFp = s.hostFingerprint;
    assert.notEqual(newFp, oldFp);
    await s.restart();
    await poke(d, 'bmc2');
    const why = await d.child.waitOutput(/host key of \[127\.0\.0\.1\]:\d+ changed[^\n]*/, 30000);
    const line = /Console \[bmc2\][^\n]*host key of[^\n]*/.exec(why)![0];
    assert.ok(line.includes(newFp) && line.includes(oldFp), line);
    assert.equal(connects(log, 'bmc2'), 2, 'not connected with the changed key');
    assert.equal(s.bmc.count('hello'), 2, 'no session was opened at the BMC');

    // the operator removes the old key: the console connects by itself, pinning the new one
    const kh = path.join(d.dir, 'state', 'known_hosts');
    const r = spawnSync('ssh-keygen', ['-R', `[127.0.0.1]:${s.port}`, '-f', kh], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    await waitFor(() => connects(log, 'bmc2') === 3, 'the console back once known_hosts is fixed', 30000);
    assert.ok(d.child.output.includes(`SSH host key ${newFp} (ssh-ed25519)`), 'the new key is pinned');
  });
});

test('a server that floods garbage and one that stalls mid-handshake do not hold up another console', async () => {
  const s = await startSshd(cleanup, { mode: 'openbmc' });
  // garbage: no SSH identification, bytes as fast as the socket takes them
  const garbage = net.createServer((c) => {
    c.on('error', () => {});
    const junk = Buffer.alloc(64 * 1024, 'GET / HTTP/1.0 garbage ');
    const pump = (): void => {
      while (!c.destroyed && c.write(junk));
    };
    c.on('drain', pump);
    pump();
  });
  // stall: a valid identification line, then nothing, ever
  const held: net.Socket[] = [];
  const stall = net.createServer((c) => {
    held.push(c);
    c.on('error', () => {});
    c.write('SSH-2.0-OpenSSH_9.2 stalled\r\n');
  });
  const gPort = await freePort();
  const sPort = await freePort();
  await new Promise<void>((r) => garbage.listen(gPort, '127.0.0.1', r));
  await new Promise<void>((r) => stall.listen(sPort, '127.0.0.1', r));
  cleanup.add(() => new Promise((r) => garbage.close(r)));
  cleanup.add(() => {
    for (const c of held) c.destroy();
    return new Promise((r) => stall.close(r));
  });

  const d = await startConchd(
    cleanup,
    sshConsole('good', s) +
      `console name="garbage" dev="ssh://root@127.0.0.1:${gPort}" sshopts="timeout=3" log="%N.log"\n` +
      `console name="stall" dev="ssh://root@127.0.0.1:${sPort}" sshopts="timeout=3" log="%N.log"\n`,
  );
  const log = path.join(d.logdir, 'good.log');
  await waitForFile(log, 'Console [good] connected to', 30000);
  await s.bmc.started(1);
  // while the others fail, the good console logs each line within moments
  const t0 = performance.now();
  for (let i = 0; i < 8; i++) {
    const t = performance.now();
    s.bmc.write(`line ${i} while others fail\r\n`);
    await waitForFile(log, `line ${i} while others fail`, 5000);
    assert.ok(performance.now() - t < 2000, `line ${i} took ${performance.now() - t} ms`);
  }
  await d.child.waitOutput(/Console \[garbage\] connection to <ssh:\/\/127\.0\.0\.1:\d+> failed: [^\n]+/, 30000);
  await d.child.waitOutput(/Console \[stall\] connection to <ssh:\/\/127\.0\.0\.1:\d+> failed: no SSH session within 3 s/, 30000);
  const g = /Console \[garbage\] connection to[^\n]*?failed: ([^\n]*)/.exec(d.child.output)![1]!;
  // what it sent is quoted, bounded
  assert.match(g, /^SSH handshake failed: .*; the server sent "GET \/ HTTP\/1\.0 garbage/);
  assert.ok(g.length < 300, `a short reason: ${g}`);
  assert.ok(performance.now() - t0 < 60000);
  // the daemon still answers clients
  const q = conman(cleanup, d.port, '-q');
  assert.equal(await q.exited, 0);
  assert.match(q.output, /good/);
});

test('an SSH console over IPv6 (::1)', async () => {
  const s = await startSshd(cleanup, { mode: 'openbmc', address: '::1' });
  const d = await startConchd(cleanup, sshConsole('v6', s));
  const log = path.join(d.logdir, 'v6.log');
  await waitForFile(log, `Console [v6] connected to <ssh://[::1]:${s.port}>`, 30000);
  await s.bmc.started(1);
  s.bmc.write('hello over v6\r\n');
  await waitForFile(log, 'hello over v6', 30000);
  const kh = fs.readFileSync(path.join(d.dir, 'state', 'known_hosts'), 'utf8');
  assert.match(kh, new RegExp(`^\\[::1\\]:${s.port} ssh-ed25519 `, 'm'));
});

test('a reload keeps an unchanged SSH console connected; one that removes it sends the leave sequence first', async () => {
  const s = await startSshd(cleanup, { mode: 'openbmc' });
  const d = await startConchd(cleanup, sshConsole('keep', s));
  const log = path.join(d.logdir, 'keep.log');
  await waitForFile(log, 'Console [keep] connected to', 30000);
  await s.bmc.started(1);

  fs.appendFileSync(d.conf, 'console name="other" dev="test:"\n');
  process.kill(d.child.proc.pid!, 'SIGHUP');
  await d.child.waitOutput(/Reloaded [^\n]*: 1 added, 0 removed, 0 changed, 1 unchanged/, 30000);
  s.bmc.write('still the same session\r\n');
  await waitForFile(log, 'still the same session', 30000);
  assert.equal(s.bmc.count('hello'), 1, 'no new session at the BMC');

  fs.writeFileSync(d.conf, fs.readFileSync(d.conf, 'utf8').replace(/console name="keep"[^\n]*\n/, ''));
  process.kill(d.child.proc.pid!, 'SIGHUP');
  await d.child.waitOutput(/Reloaded [^\n]*: 0 added, 1 removed/, 30000);
  await waitFor(() => s.bmc.count('leave') === 1, 'the leave sequence at the BMC', 30000);
  assert.ok(s.bmc.received.endsWith('\r~.'));
  await waitFor(() => s.bmc.live === 0, 'the session at the BMC to end', 10000);
});

// conch-bmcsim's SSH mode (docs/simulator.md): its fronts checked with
// OpenSSH's own `ssh` client on a pty (host key, key and password logins,
// the host's console, the break request, OpenBMC's `~.`, iLO's `vsp` and
// "in use", iDRAC, ILOM and XCC), and conchd's ssh:// consoles on it:
// logging, typing, break, a serial port in use waited for and then taken,
// the leave sequence of every vendor dialog on stop, and a serial port taken
// over while conchd is in it (every vendor's front): noticed within seconds,
// told, waited out and entered again; a prompt-like line from the host is not
// taken for one.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cleanup, waitFor, waitForFile, type Child } from './helpers/wait.js';
import { startConchd } from './helpers/conchd.js';
import { keygen } from './helpers/sshd.js';
import { conman } from './helpers/protocol-harness.js';
import { PtyProc, cleanEnv, conchPlain } from './client-rig.js';
import { BMCSIM, control } from './bmcsim-rig.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

const SSH = '/usr/bin/ssh';

interface SshSim {
  child: Child;
  dir: string;
  /** name → TCP port */
  ports: Map<string, number>;
  control: string;
  /** the client key the simulator authorizes */
  key: string;
  hostKey: string;
  fingerprint: string;
  /** the conman.conf and conman.pswd it wrote */
  conf: string;
  pswd: string;
}

/** conch-bmcsim with `n` SSH hosts on any free ports, heartbeats every 0.3 s, a client key authorized */
async function startSshSim(n: number, front: string): Promise<SshSim> {
  const dir = cleanup.dir('conch-bmcsim-ssh-');
  const key = path.join(dir, 'client_ed25519');
  keygen(key);
  const hostKey = path.join(dir, 'host_key');
  const conf = path.join(dir, 'sim.conf');
  const pswd = path.join(dir, 'conman.pswd');
  const args = ['--ssh-count', String(n), '--ssh-base-port', '0', '--ssh-front', front, '--ssh-host-key', hostKey, '--ssh-authorized-keys', `${key}.pub`];
  const child = cleanup.child(process.execPath, [BMCSIM, ...args, '--control-port', '0', '--heartbeat', '0.3', '--conman-conf', conf, '--conman-pswd', pswd], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out = await child.waitOutput('# ready');
  assert.match(out, new RegExp(`# ready: 0 BMCs \\(ipmi_sim\\), 0 telnet hosts, ${n} SSH hosts \\(${front}\\)`));
  const ports = new Map([...out.matchAll(/^# ssh\t(\S+)\t127\.0\.0\.1\t(\d+)\t/gm)].map((m) => [m[1]!, Number(m[2])]));
  const fp = /^# ssh host key (\S+) (SHA256:\S+)$/m.exec(out);
  assert.ok(fp && ports.size === n, out);
  return { child, dir, ports, control: /# control (\S+)/.exec(out)![1]!, key, hostKey, fingerprint: fp[2]!, conf, pswd };
}

function ctl(sim: SshSim, method: 'GET' | 'POST', url: string, body?: unknown): Promise<{ status: number; json: any }> {
  return control({ child: sim.child, basePort: 0, control: sim.control }, method, url, body);
}

/** OpenSSH's ssh to a simulated host, on a pty of its own; `extra` before the destination */
function ssh(sim: SshSim, name: string, extra: string[]): PtyProc {
  const args = ['-p', String(sim.ports.get(name)), '-o', 'StrictHostKeyChecking=accept-new', '-o', `UserKnownHostsFile=${path.join(sim.dir, 'known_hosts')}`, '-o', 'HashKnownHosts=no', '-o', 'LogLevel=ERROR', ...extra, 'admin@127.0.0.1'];
  const p = new PtyProc(SSH, args, cleanEnv());
  cleanup.add(() => p.kill());
  return p;
}

/** logs in with the authorized key only */
const withKey = (sim: SshSim): string[] => ['-i', sim.key, '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes'];

/** what `p` printed after the last `marker` */
const tail = (p: PtyProc, marker: string): string => p.output.slice(p.output.lastIndexOf(marker) + marker.length);

test('OpenSSH ssh on the OpenBMC front: host key, key login, the console, typing, ~B break, ~. of obmc-console', async () => {
  const sim = await startSshSim(2, 'openbmc');
  const a = ssh(sim, 'ssh01', withKey(sim));
  await a.waitOutput(/\[seq \d+\] ssh01 heartbeat/, 30000);
  // the fleet's host key is what ssh pinned
  const pub = fs.readFileSync(`${sim.hostKey}.pub`, 'utf8').split(' ').slice(0, 2).join(' ');
  assert.match(fs.readFileSync(path.join(sim.dir, 'known_hosts'), 'utf8'), new RegExp(`^\\[127\\.0\\.0\\.1\\]:${sim.ports.get('ssh01')} ${pub.replace(/[+/]/g, '\\$&')}$`, 'm'));
  a.write('\x03root\r');
  await a.waitOutput('Password: ', 30000);
  a.write('secret\r');
  await a.waitOutput('root@ssh01:~# ', 30000);
  a.write('hostname\r');
  await waitFor(() => /\r\nssh01\r\n/.test(tail(a, 'hostname')), 'hostname answered', 30000);
  // ssh's ~B escape: an RFC 4335 break request; the next key is a SysRq
  a.write('\r~B');
  await waitFor(async () => (await ctl(sim, 'GET', '/ssh/ssh01')).json.counters.breaks === 1, 'the break request at the host', 30000);
  a.write('h');
  await a.waitOutput('sysrq: HELP', 30000);
  a.write('\r~.');
  await a.waitExit(30000);

  // obmc-console's own ~. (ssh's escape off): the simulator ends the session, exit status 0
  const b = ssh(sim, 'ssh02', [...withKey(sim), '-e', 'none']);
  await b.waitOutput(/\[seq \d+\] ssh02 heartbeat/, 30000);
  b.write('\r~.');
  assert.equal(await b.waitExit(30000), 0);
  const st = (await ctl(sim, 'GET', '/ssh/ssh02')).json;
  assert.equal(st.counters.leaves, 1);
  assert.equal(st.counters.sessions, 1);
});

test('OpenSSH ssh on the iLO front: password login, vsp, "in use" while another session holds it, ESC (, the control switch', async () => {
  const sim = await startSshSim(1, 'ilo');
  const pw = ['-o', 'PubkeyAuthentication=no', '-o', 'PreferredAuthentications=keyboard-interactive,password', '-o', 'NumberOfPasswordPrompts=1'];
  const a = ssh(sim, 'ssh01', pw);
  await a.waitOutput(/password: ?$/i, 30000);
  a.write('password\r');
  await a.waitOutput('</>hpiLO-> ', 30000);
  a.write('vsp\r');
  await a.waitOutput("Press 'ESC (' to return to the CLI Session.", 30000);
  await waitFor(() => /\[seq \d+\] ssh01 heartbeat/.test(tail(a, 'CLI Session.')), 'the console after vsp', 30000);

  // a second session while the first holds the virtual serial port
  const b = ssh(sim, 'ssh01', withKey(sim));
  await b.waitOutput('</>hpiLO-> ', 30000);
  b.write('vsp\r');
  await b.waitOutput('Virtual Serial Port is currently in use by another session.\r\n\r\n</>hpiLO-> ', 30000);
  // the first leaves with ESC (: back at its prompt, the second may have it
  a.write('\x1b(');
  await waitFor(() => tail(a, 'CLI Session.').endsWith('</>hpiLO-> '), 'the prompt after ESC (', 30000);
  b.write('vsp\r');
  await waitFor(() => tail(b, 'vsp').includes("Press 'ESC ("), 'vsp started for the second session', 30000);

  // the control channel's switch: another session takes the port (the holder goes back to its prompt)
  assert.equal((await ctl(sim, 'POST', '/ssh/ssh01/inuse', { on: true })).status, 200);
  await waitFor(() => tail(b, 'CLI Session.').endsWith('\r\n</>hpiLO-> '), 'the second session back at its prompt', 30000);
  assert.equal((await ctl(sim, 'GET', '/ssh/ssh01')).json.counters.takeovers, 1);
  a.write('vsp\r');
  await waitFor(() => (tail(a, 'vsp').match(/currently in use by another session/g) ?? []).length === 1, '"in use" while switched on', 30000);
  await ctl(sim, 'POST', '/ssh/ssh01/inuse', { on: false });
  a.write('vsp\r');
  await waitFor(() => tail(a, 'vsp').includes('Starting virtual serial port.'), 'vsp once the switch is off', 30000);
  const st = (await ctl(sim, 'GET', '/ssh/ssh01')).json;
  assert.equal(st.counters.busyAnswers, 2);
  assert.equal(st.counters.consoleStarts, 3);
  b.write('exit\r');
  assert.equal(await b.waitExit(30000), 0);
});

test('OpenSSH ssh on the iDRAC, ILOM and XCC fronts: the console command, its answer, its leave sequence', async () => {
  const sim = await startSshSim(3, 'idrac');
  await ctl(sim, 'POST', '/ssh/ssh02/front', { front: 'ilom' });
  await ctl(sim, 'POST', '/ssh/ssh03/front', { front: 'xcc' });
  const cases = [
    { name: 'ssh01', prompt: 'racadm>> ', cmd: 'console com2\r', started: 'Connected to Serial Device 2. To end type: ^\\', leave: '\x1c' },
    { name: 'ssh02', prompt: '-> ', cmd: 'start /HOST/console\r', confirm: '(y/n)? ', started: 'Serial console started.  To stop, type ESC (', leave: '\x1b(' },
    { name: 'ssh03', prompt: 'system> ', cmd: 'console 1\r', started: 'SOL session started', leave: '\x1b(' },
  ];
  for (const c of cases) {
    const p = ssh(sim, c.name, withKey(sim));
    await p.waitOutput(c.prompt, 30000);
    p.write(c.cmd);
    if (c.confirm) {
      await p.waitOutput(c.confirm, 30000);
      p.write('y\r');
    }
    await p.waitOutput(c.started, 30000);
    await waitFor(() => new RegExp(`\\[seq \\d+\\] ${c.name} heartbeat`).test(tail(p, c.started)), `${c.name}: the console`, 30000);
    p.write(c.leave);
    await waitFor(() => tail(p, c.started).endsWith(c.prompt), `${c.name}: the prompt after the leave sequence`, 30000);
    p.write('exit\r');
    assert.equal(await p.waitExit(30000), 0);
  }
});

/** conchd on the simulator's conman.conf and conman.pswd; `sshopts` overrides some consoles' */
async function conchdOn(sim: SshSim, sshopts: Record<string, string> = {}): ReturnType<typeof startConchd> {
  let body = fs
    .readFileSync(sim.conf, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('console '))
    .join('\n');
  for (const [name, opts] of Object.entries(sshopts)) body = body.replace(new RegExp(`(name="${name}" .*sshopts=)"[^"]*"`), `$1"${opts}"`);
  return startConchd(cleanup, `global log="%N.log"\n${body}\n`, { extraHeader: `server pswdfile="${sim.pswd}"\n` });
}

const seqs = (log: string, name: string): number[] => [...log.matchAll(new RegExp(`\\[seq (\\d+)\\] ${name} heartbeat`, 'g'))].map((m) => Number(m[1]));

test('conchd ssh:// consoles on the simulator (OpenBMC, password from the pswdfile): logging, typing, &B break', async () => {
  const sim = await startSshSim(2, 'openbmc');
  const d = await conchdOn(sim);
  for (const name of ['ssh01', 'ssh02']) {
    const log = path.join(d.logdir, `${name}.log`);
    await waitFor(() => fs.existsSync(log) && seqs(fs.readFileSync(log, 'latin1'), name).length >= 5, `${name}: 5 heartbeats logged`, 30000);
    const got = seqs(fs.readFileSync(log, 'latin1'), name);
    for (let i = 1; i < got.length; i++) assert.equal(got[i], got[i - 1]! + 1, `${name}: [seq ${got[i]}] after [seq ${got[i - 1]}]`);
  }
  assert.match(d.child.output, new RegExp(`SSH host key ${sim.fingerprint.replace(/[+/]/g, '\\$&')} \\(ssh-ed25519\\) of \\[127\\.0\\.0\\.1\\]:${sim.ports.get('ssh01')} pinned`));

  const log = path.join(d.logdir, 'ssh01.log');
  const c = conman(cleanup, d.port, 'ssh01');
  await c.opened('ssh01');
  c.type('\x03root\rsecret\recho typed-through-ssh\r');
  await waitForFile(log, /typed-through-ssh\r\ntyped-through-ssh\r\n/, 30000);
  c.type('&B');
  await waitFor(async () => (await ctl(sim, 'GET', '/ssh/ssh01')).json.counters.breaks === 1, 'the break request at the host', 30000);
  c.type('h');
  await waitForFile(log, 'sysrq: HELP', 30000);
  c.type('&.');
  assert.equal(await c.exited, 0);
  const st = (await ctl(sim, 'GET', '/ssh/ssh01')).json;
  assert.equal(st.counters.sessions, 1, 'one SSH login');
  assert.equal(st.counters.authFailures, 0);

  process.kill(d.child.proc.pid!, 'SIGTERM');
  assert.equal(await d.child.exited, 0);
  // conchd left with obmc-console's ~. before closing
  await waitFor(async () => (await ctl(sim, 'GET', '/ssh/ssh01')).json.counters.leaves === 1, 'the leave sequence', 10000);
});

test('conchd on a simulated iLO: a serial port in use is waited for, then taken; ESC ( on stop', async () => {
  const sim = await startSshSim(1, 'ilo');
  await ctl(sim, 'POST', '/ssh/ssh01/inuse', { on: true });
  const d = await conchdOn(sim);
  const log = path.join(d.logdir, 'ssh01.log');
  await waitForFile(log, 'serial port in use by another session (the BMC said "Virtual Serial Port is currently in use by another session."); waiting for it to be released', 30000);
  await waitFor(async () => (await ctl(sim, 'GET', '/ssh/ssh01')).json.counters.busyAnswers >= 1, 'vsp answered "in use"', 10000);
  assert.equal(seqs(fs.readFileSync(log, 'latin1'), 'ssh01').length, 0, 'nothing of the host while the port is held');

  await ctl(sim, 'POST', '/ssh/ssh01/inuse', { on: false });
  const freed = performance.now();
  await waitForFile(log, /serial port taken at [^\r\n]* in use by another session/, 30000);
  assert.ok(performance.now() - freed < 30000);
  await waitFor(() => seqs(fs.readFileSync(log, 'latin1'), 'ssh01').length >= 3, 'heartbeats after the port was taken', 30000);
  const st = (await ctl(sim, 'GET', '/ssh/ssh01')).json;
  assert.equal(st.counters.sessions, 1, 'asked again in the same SSH session');
  assert.equal(st.inConsole, 1);

  process.kill(d.child.proc.pid!, 'SIGTERM');
  assert.equal(await d.child.exited, 0);
  const end = (await ctl(sim, 'GET', '/ssh/ssh01')).json;
  assert.equal(end.counters.leaves, 1, 'ESC ( before the session closed');
});

test('conchd on simulated iDRAC, ILOM and XCC command lines: each dialog reaches the console and leaves it on stop', async () => {
  const sim = await startSshSim(3, 'idrac');
  await ctl(sim, 'POST', '/ssh/ssh02/front', { front: 'ilom' });
  await ctl(sim, 'POST', '/ssh/ssh03/front', { front: 'xcc' });
  const d = await conchdOn(sim, { ssh02: 'entry=ilom', ssh03: 'entry=xcc' });
  for (const name of ['ssh01', 'ssh02', 'ssh03']) {
    const log = path.join(d.logdir, `${name}.log`);
    await waitFor(() => fs.existsSync(log) && seqs(fs.readFileSync(log, 'latin1'), name).length >= 3, `${name}: heartbeats logged`, 30000);
  }
  // every dialog recognised its BMC's answer (no "no confirmation" fallback) and kept the CLI out of the log
  assert.doesNotMatch(d.child.output, /no confirmation from the BMC/);
  for (const name of ['ssh01', 'ssh02', 'ssh03']) assert.doesNotMatch(fs.readFileSync(path.join(d.logdir, `${name}.log`), 'latin1'), /racadm>>|system>|-> $/m);
  process.kill(d.child.proc.pid!, 'SIGTERM');
  assert.equal(await d.child.exited, 0);
  const all = (await ctl(sim, 'GET', '/ssh')).json as { name: string; counters: { leaves: number; consoleStarts: number } }[];
  for (const h of all) assert.deepEqual([h.name, h.counters.consoleStarts, h.counters.leaves], [h.name, 1, 1]);
});

const TAKEN_OVER = /serial port taken over by another session at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+ \(([^\r\n]*)\); waiting for it to be released, asking again every 10 s/;
const RESUMED = /serial port resumed at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+ after (\d+)s/;

test('conchd on simulated iLO, iDRAC, ILOM and XCC: a serial port taken over is noticed within seconds, told, waited out without re-entry, and resumed', async () => {
  const sim = await startSshSim(4, 'ilo');
  const fronts = { ssh02: 'idrac', ssh03: 'ilom', ssh04: 'xcc' };
  for (const [name, front] of Object.entries(fronts)) await ctl(sim, 'POST', `/ssh/${name}/front`, { front });
  const d = await conchdOn(sim, { ssh02: 'entry=idrac', ssh03: 'entry=ilom', ssh04: 'entry=xcc' });
  const names = ['ssh01', 'ssh02', 'ssh03', 'ssh04'];
  const logOf = (name: string): string => path.join(d.logdir, `${name}.log`);
  const read = (name: string): string => (fs.existsSync(logOf(name)) ? fs.readFileSync(logOf(name), 'latin1') : '');
  for (const name of names) await waitFor(() => seqs(read(name), name).length >= 3, `${name}: heartbeats logged`, 30000);
  const c = conman(cleanup, d.port, 'ssh01');
  await c.opened('ssh01');

  // another session takes every serial port
  const took = performance.now();
  await ctl(sim, 'POST', '/ssh/*/inuse', { on: true });
  const noticed: Record<string, number> = {};
  await Promise.all(
    names.map(async (name) => {
      await waitForFile(logOf(name), TAKEN_OVER, 30000);
      noticed[name] = Math.round(performance.now() - took);
    }),
  );
  for (const name of names) assert.ok(noticed[name]! < 5000, `${name}: noticed ${noticed[name]} ms after the takeover`);
  console.log(`# takeover noticed after (ms): ${JSON.stringify(noticed)}`);
  const said = Object.fromEntries(names.map((n) => [n, TAKEN_OVER.exec(read(n))![1]]));
  assert.deepEqual(said, {
    ssh01: 'the BMC is back at its prompt "</>hpiLO->"',
    ssh02: 'the BMC said "Serial Device 2 disconnected: taken over by another session." and is back at its prompt "racadm>>"',
    ssh03: 'the BMC said "Serial console stopped." and is back at its prompt "->"',
    ssh04: 'the BMC is back at its prompt "system>"',
  });
  // the attached client and the daemon log are told too
  await c.waitOutput(/<ConMan> serial port taken over by another session at /, 10000);
  assert.match(d.child.output, /Console \[ssh01\] serial port taken over by another session at /);
  const q = await conchPlain(cleanup, ['-d', `127.0.0.1:${d.port}`, '-q', '-v', 'ssh03']);
  assert.match(q.stdout, /^ssh03 +up since [^;]*; serial port in use by another session since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d; no clients$/m);

  // conchd asks again politely (every 8-12 s) and is told "in use": no re-entry, nothing of the host logged
  const darkFrom = Object.fromEntries(names.map((n) => [n, read(n).length]));
  await waitFor(async () => ((await ctl(sim, 'GET', '/ssh')).json as { counters: { busyAnswers: number } }[]).every((h) => h.counters.busyAnswers >= 1), 'every port asked for again and found in use', 30000);
  for (const h of (await ctl(sim, 'GET', '/ssh')).json as { name: string; inConsole: number; counters: Record<string, number> }[]) {
    assert.deepEqual([h.name, h.inConsole, h.counters.consoleStarts, h.counters.takeovers, h.counters.sessions], [h.name, 0, 1, 1, 1]);
    assert.equal(seqs(read(h.name).slice(darkFrom[h.name]), h.name).length, 0, `${h.name}: nothing of the host while the port is held`);
  }

  // the other session lets go: entered again in the same SSH session, "resumed after N s" logged, the host flows again
  const freed = performance.now();
  await ctl(sim, 'POST', '/ssh/*/inuse', { on: false });
  const back: Record<string, number> = {};
  await Promise.all(
    names.map(async (name) => {
      const text = await waitForFile(logOf(name), RESUMED, 30000);
      back[name] = Math.round(performance.now() - freed);
      const gap = Number(RESUMED.exec(text)![1]);
      assert.ok(gap >= Math.floor((freed - took) / 1000) - 1, `${name}: resumed after ${gap} s`);
    }),
  );
  console.log(`# resumed after the release (ms): ${JSON.stringify(back)}`);
  for (const name of names) assert.ok(back[name]! < 15000, `${name}: resumed ${back[name]} ms after the release`);
  await c.waitOutput(/<ConMan> serial port resumed at /, 10000);
  for (const name of names) {
    await waitFor(() => seqs(read(name).slice(read(name).lastIndexOf('serial port resumed at ')), name).length >= 2, `${name}: heartbeats after the resume`, 30000);
  }
  for (const h of (await ctl(sim, 'GET', '/ssh')).json as { name: string; inConsole: number; counters: Record<string, number> }[]) {
    assert.deepEqual([h.name, h.inConsole, h.counters.consoleStarts, h.counters.sessions], [h.name, 1, 2, 1]);
  }
  assert.doesNotMatch(d.child.output, /not taken over after all/);

  process.kill(d.child.proc.pid!, 'SIGTERM');
  assert.equal(await d.child.exited, 0);
  for (const h of (await ctl(sim, 'GET', '/ssh')).json as { name: string; counters: { leaves: number } }[]) assert.deepEqual([h.name, h.counters.leaves], [h.name, 1]);
});

test('conchd on simulated iLO and ILOM: the host printing prompt-like lines in its output is not taken for a takeover', async () => {
  const sim = await startSshSim(2, 'ilo');
  await ctl(sim, 'POST', '/ssh/ssh02/front', { front: 'ilom' });
  const d = await conchdOn(sim, { ssh02: 'entry=ilom' });
  for (const name of ['ssh01', 'ssh02']) {
    const log = path.join(d.logdir, `${name}.log`);
    await waitFor(() => fs.existsSync(log) && seqs(fs.readFileSync(log, 'latin1'), name).length >= 2, `${name}: heartbeats logged`, 30000);
    const c = conman(cleanup, d.port, name);
    await c.opened(name);
    c.type(`\x03root\rsecret\r`);
    await c.waitOutput(`root@${name}:~# `, 30000);
    // lines just like the BMC's at the start of a line, in the middle of the host's output
    const lines = name === 'ssh01' ? ['</>hpiLO->', '</>hpiLO-> vsp', '[the serial port was taken over by another session]'] : ['Serial console stopped.', '->'];
    for (const l of lines) c.type(`echo ${l}\r`);
    await waitForFile(log, `\r\n${lines.at(-1)}\r\nroot@${name}:~# `, 30000);
    const at = fs.readFileSync(log, 'latin1').length;
    // the heartbeats go on for longer than the quiet time a takeover needs (1.5 s)
    await waitFor(() => seqs(fs.readFileSync(log, 'latin1').slice(at), name).length >= 8, `${name}: 8 heartbeats after the lines`, 30000);
    assert.doesNotMatch(fs.readFileSync(log, 'latin1'), /taken over by another session at|not taken over after all/);
    assert.doesNotMatch(c.output, /<ConMan> serial port/);
  }
  assert.doesNotMatch(d.child.output, /serial port taken over/);
  for (const h of (await ctl(sim, 'GET', '/ssh')).json as { name: string; counters: Record<string, number> }[]) {
    assert.deepEqual([h.name, h.counters.consoleStarts, h.counters.busyAnswers], [h.name, 1, 0], 'entered once, never asked again');
  }
});

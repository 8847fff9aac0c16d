// Live reload of conman.conf (SIGHUP, conchd -r) against a real conchd,
// real clients (Debian conman, conch) and real peers (telnet and unix
// servers, process consoles, conch-bmcsim BMCs): unchanged consoles are not
// touched, added ones start, removed ones let their clients go, changed ones
// keep their clients; a broken file changes nothing; rotation loses nothing;
// the listener moves.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Cleanup, freePort, processAlive, waitFor, waitForPort } from './helpers/wait.js';
import { CONCHD, startConchd, type RunningConchd } from './helpers/conchd.js';
import { conman } from './helpers/protocol-harness.js';
import { conchPty } from './client-rig.js';
import { control, startBmcsim } from './bmcsim-rig.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

/** the server lines startConchd writes, with `port` */
function header(d: RunningConchd, port = d.port, extra = ''): string {
  return `server port=${port}\nserver loopback=on\nserver logdir="${d.logdir}"\nserver pidfile="${d.pidfile}"\nserver statedir="${path.join(d.dir, 'state')}"\n${extra}`;
}

const count = (s: string, re: RegExp): number => (s.match(new RegExp(re.source, 'g')) ?? []).length;

/** Rewrite the file, SIGHUP, and wait for this reload's summary (or refusal) line. */
async function reload(d: RunningConchd, text: string, how: 'signal' | 'cli' = 'signal'): Promise<string> {
  const done = /Reloaded \S+: \d+ added|Reload of \S+ refused/;
  const before = count(d.child.output, done);
  fs.writeFileSync(d.conf, text);
  if (how === 'signal') process.kill(d.child.proc.pid!, 'SIGHUP');
  else {
    const r = cleanup.child(process.execPath, [CONCHD, '-r', '-c', d.conf]);
    await r.exited;
  }
  await waitFor(() => count(d.child.output, done) > before, 'the reload to finish', 30000);
  return d.child.output.split('\n').filter((l) => done.test(l)).at(-1)!;
}

const log = (d: RunningConchd, name: string): string => {
  try {
    return fs.readFileSync(path.join(d.logdir, `${name}.log`), 'latin1');
  } catch {
    return '';
  }
};

test('clients of other consoles stay attached and see nothing; a changed console keeps its clients, a removed one lets them go', async () => {
  const t = 'dev="test:" testopts="b:40,m:50,n:50"';
  const d = await startConchd(cleanup, `console name="keep" ${t} log="%N.log"\nconsole name="chg" ${t}\nconsole name="gone" ${t}\n`);
  const cm = conman(cleanup, d.port, 'keep');
  const cc = conchPty(cleanup, ['-d', `127.0.0.1:${d.port}`, '-m', 'keep']);
  const onChg = conman(cleanup, d.port, 'chg');
  const onGone = conman(cleanup, d.port, 'gone');
  await Promise.all([cm.opened('keep'), onChg.opened('chg'), onGone.opened('gone'), cc.waitOutput('opened')]);
  await waitFor(() => cm.output.length > 500 && cc.output.length > 500, 'output to the keep clients');
  const at = { cm: cm.output.length, cc: cc.output.length };

  const line = await reload(d, header(d) + `console name="keep" ${t} log="%N.log"\nconsole name="chg" dev="test:" testopts="b:80,m:50,n:50"\nconsole name="new" ${t}\n`);
  assert.match(line, /Reloaded .*conman\.conf: 1 added, 1 removed, 1 changed, 1 unchanged$/);

  // the changed console's client: the notice, then output again, still attached
  await onChg.waitOutput(/Console \[chg\] configuration changed by a reload \(testopts\): reconnecting/);
  const mark = onChg.output.length;
  await waitFor(() => onChg.output.length > mark + 500, 'output on [chg] after its restart');
  assert.equal(onChg.exitCode, null, 'the [chg] client is still attached');
  // the removed console's client: the notice, then its connection closes
  await onGone.waitOutput('Console [gone] removed from the configuration');
  await waitFor(() => onGone.exitCode !== null, 'the [gone] client to be disconnected');
  // bystanders: still attached, still receiving, no notice at all
  await waitFor(() => cm.output.length > at.cm + 2000 && cc.output.length > at.cc + 2000, 'more output to the keep clients');
  assert.equal(cm.exitCode, null);
  assert.equal(cc.exitCode, undefined);
  assert.ok(!cm.output.slice(at.cm).includes('<ConMan>'), `conman saw a notice: ${cm.output.slice(at.cm).match(/<ConMan>[^\n]*/)}`);
  assert.ok(!cc.output.slice(at.cc).includes('<ConMan>'), 'conch saw a notice');
  // and the log of [keep] has no gap notice either
  assert.equal(count(log(d, 'keep'), /log (opened|closed)/), 2, 'opened at start, and reopened once by the SIGHUP');
  // the new console answers
  const onNew = conman(cleanup, d.port, 'new');
  await onNew.opened('new');
});

/** A TCP or unix server that greets each connection and counts them. */
async function peer(where: number | string, name: string): Promise<{ conns: () => number; open: () => number; close: () => void }> {
  let conns = 0;
  const socks = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    conns++;
    socks.add(s);
    s.on('error', () => {});
    s.on('close', () => socks.delete(s));
    s.resume(); // read, so that the daemon's close is seen
    s.write(`hello from ${name}\r\n`);
  });
  await new Promise<void>((r) => (typeof where === 'number' ? srv.listen(where, '127.0.0.1', r) : srv.listen(where, r)));
  const close = (): void => {
    for (const s of socks) s.destroy();
    srv.close();
  };
  cleanup.add(close);
  return { conns: () => conns, open: () => socks.size, close };
}

const alive = processAlive;

test('a reload that adds, removes and changes telnet, unix, process and IPMI consoles; the unchanged ones are not touched', async () => {
  const sim = await startBmcsim(cleanup, 4, ['--heartbeat', '0.5', '--no-boot']);
  const dir = cleanup.dir('conch-reload-peers-');
  const tport = await Promise.all([0, 1, 2, 3, 4].map(() => freePort()));
  const tel = await Promise.all(tport.map((p, i) => peer(p, `tel${i}`)));
  const upath = [0, 1, 2, 3].map((i) => path.join(dir, `u${i}.sock`));
  const uni = await Promise.all(upath.map((p, i) => peer(p, `unix${i}`)));
  const ticker = path.join(dir, 'ticker.sh');
  fs.writeFileSync(ticker, '#!/bin/sh\nwhile :; do echo "tick $$"; sleep 0.2; done\n', { mode: 0o755 });
  const ipmi = (i: number, extra = ''): string => `dev="ipmi:127.0.0.1:${sim.basePort + i}" ipmiopts="U:admin,P:password${extra}"`;

  const before = [
    `console name="tel_keep" dev="127.0.0.1:${tport[0]}" log="%N.log"`,
    `console name="tel_chg" dev="127.0.0.1:${tport[1]}"`,
    `console name="tel_gone" dev="127.0.0.1:${tport[2]}"`,
    `console name="unix_keep" dev="unix:${upath[0]}" log="%N.log"`,
    `console name="unix_chg" dev="unix:${upath[1]}" log="%N.log"`,
    `console name="unix_gone" dev="unix:${upath[2]}"`,
    `console name="proc_keep" dev="${ticker}" log="%N.log"`,
    `console name="proc_chg" dev="${ticker}"`,
    `console name="proc_gone" dev="${ticker}"`,
    `console name="node01" ${ipmi(0)} log="%N.log"`,
    `console name="node02" ${ipmi(1)} log="%N.log"`,
    `console name="node03" ${ipmi(2)}`,
  ];
  const d = await startConchd(cleanup, before.join('\n') + '\n');
  const connected = (name: string): number => count(d.child.output, new RegExp(`Console \\[${name}\\] connected to`));
  const up = ['tel_keep', 'tel_chg', 'tel_gone', 'unix_keep', 'unix_chg', 'unix_gone', 'proc_keep', 'proc_chg', 'proc_gone', 'node01', 'node02', 'node03'];
  await waitFor(() => up.every((n) => connected(n) === 1), 'every console up', 30000);
  const pidOf = (name: string): number => Number(new RegExp(`Console \\[${name}\\] connected to "ticker.sh" \\(pid (\\d+)\\)`).exec(d.child.output)![1]);
  const [keepPid, gonePid] = [pidOf('proc_keep'), pidOf('proc_gone')];
  const bmc = async (i: number): Promise<{ sessions: number; activations: number; open: number; owner: string | null }> => {
    const s = (await control(sim, 'GET', `/bmcs/node${String(i + 1).padStart(2, '0')}`)).json;
    return { sessions: s.counters.sessions, activations: s.counters.activations, open: s.sessions, owner: s.solOwner };
  };
  const node01 = await bmc(0);
  const node02 = await bmc(1);
  assert.equal(node01.activations, 1);

  const after = [
    `console name="tel_keep" dev="127.0.0.1:${tport[0]}" log="%N.log"`,
    `console name="tel_chg" dev="127.0.0.1:${tport[3]}"`,
    `console name="tel_new" dev="127.0.0.1:${tport[4]}"`,
    `console name="unix_keep" dev="unix:${upath[0]}" log="%N.log"`,
    `console name="unix_chg" dev="unix:${upath[1]}" log="%N.log" logopts="timestamp"`,
    `console name="unix_new" dev="unix:${upath[3]}"`,
    `console name="proc_keep" dev="${ticker}" log="%N.log"`,
    `console name="proc_chg" dev="${ticker}" ptymode=cooked`,
    `console name="proc_new" dev="${ticker}"`,
    `console name="node01" ${ipmi(0)} log="%N.log"`,
    `console name="node02" ${ipmi(1, ',C:17')} log="%N.log"`,
    `console name="node04" ${ipmi(3)}`,
  ];
  const line = await reload(d, header(d) + after.reverse().join('\n') + '\n');
  assert.match(line, /: 4 added, 4 removed, 4 changed, 4 unchanged$/);
  await waitFor(() => ['tel_new', 'unix_new', 'proc_new', 'node04'].every((n) => connected(n) === 1), 'the added consoles up', 30000);
  await waitFor(() => ['tel_chg', 'unix_chg', 'proc_chg', 'node02'].every((n) => connected(n) === 2), 'the changed consoles up again', 30000);
  assert.match(d.child.output, /Console \[node02\] changed by a reload: ipmiopts/);
  assert.match(d.child.output, /Console \[unix_chg\] changed by a reload: logopts/);

  // unchanged: the same connection, process and IPMI session
  for (const n of ['tel_keep', 'unix_keep', 'proc_keep', 'node01']) assert.equal(connected(n), 1, `${n} reconnected`);
  assert.equal(tel[0]!.conns(), 1);
  assert.equal(tel[0]!.open(), 1);
  assert.equal(uni[0]!.conns(), 1);
  assert.ok(alive(keepPid), 'proc_keep\'s program runs on');
  const n01 = await bmc(0);
  assert.equal(n01.sessions, node01.sessions, 'no new session on node01');
  assert.equal(n01.activations, node01.activations, 'no new activation on node01');
  // changed: the old peer let go, the new one taken
  await waitFor(() => tel[1]!.open() === 0, 'tel_chg\'s old peer let go');
  assert.equal(tel[3]!.conns(), 1);
  assert.equal(uni[1]!.conns(), 2);
  const n02 = await bmc(1);
  assert.equal(n02.activations, node02.activations + 1);
  // removed: released
  await waitFor(() => tel[2]!.open() === 0 && uni[2]!.open() === 0, 'the removed consoles\' connections closed');
  await waitFor(() => !alive(gonePid), 'proc_gone\'s program killed');
  await waitFor(async () => (await bmc(2)).owner === null && (await bmc(2)).open === 0, 'node03\'s payload deactivated and session closed');
  // added
  assert.equal(tel[4]!.conns(), 1);
  assert.equal(uni[3]!.conns(), 1);
  assert.equal((await bmc(3)).activations, 1);
  // unix_chg's log: closed by the reload, the new one with timestamps
  await waitFor(() => /log settings changed by a reload/.test(log(d, 'unix_chg')), 'unix_chg old log closed');
  await waitFor(() => /\n\d{4}-\d\d-\d\d \d\d:\d\d:\d\d hello from unix1/.test(log(d, 'unix_chg')), 'unix_chg logging with timestamps');
});

test('a broken file changes nothing: every error named with file:line:col, consoles and clients run on, logs reopened', async () => {
  const body = 'console name="a" dev="test:" testopts="b:20,m:50,n:50" log="%N.log"\nconsole name="b" dev="test:"\n';
  const d = await startConchd(cleanup, body);
  const c = conman(cleanup, d.port, 'a');
  await c.opened('a');
  await waitFor(() => log(d, 'a').length > 200, 'a logging');
  fs.renameSync(path.join(d.logdir, 'a.log'), path.join(d.logdir, 'a.log.1'));
  const broken = header(d) + body + 'console name="c" dev="test:" bogus=1\nconsole name="a" dev="test:"\nserver port=notaport\n';
  const hdr = header(d).split('\n').length - 1;
  const line = await reload(d, broken, 'cli');
  assert.match(line, /Reload of \S+conman\.conf refused: 3 errors; nothing changed/);
  const out = d.child.output;
  assert.match(out, new RegExp(`conman\\.conf:${hdr + 3}:30: unknown CONSOLE key "bogus"`));
  assert.match(out, new RegExp(`conman\\.conf:${hdr + 4}:\\d+: .*"a"`));
  assert.match(out, new RegExp(`conman\\.conf:${hdr + 5}:13: `));
  assert.match(out, /Reopened logs/);
  // still running the old configuration: [a] logs into a fresh file, its client is attached, [b] is there
  await waitFor(() => log(d, 'a').length > 200, 'a logging into the reopened file');
  const mark = c.output.length;
  await waitFor(() => c.output.length > mark + 200, 'output to the client after the refusal');
  assert.equal(c.exitCode, null);
  const b = conman(cleanup, d.port, 'b');
  await b.opened('b');
  assert.ok(!/Reloaded/.test(out));
});

test('a log rotated (mv) and SIGHUPed in a reload that changes other consoles loses no line', async () => {
  const sim = await startBmcsim(cleanup, 3, ['--heartbeat', '0.05', '--no-boot']);
  const ipmi = (i: number): string => `console name="node0${i + 1}" dev="ipmi:127.0.0.1:${sim.basePort + i}" ipmiopts="U:admin,P:password" log="%N.log"\n`;
  const d = await startConchd(cleanup, ipmi(0) + ipmi(1));
  const seqs = (text: string, name: string): number[] => [...text.matchAll(new RegExp(`\\[seq (\\d+)\\] ${name} heartbeat`, 'g'))].map((m) => Number(m[1]));
  await waitFor(() => seqs(log(d, 'node01'), 'node01').length > 20, 'node01 logging', 30000);
  for (const n of ['node01', 'node02']) fs.renameSync(path.join(d.logdir, `${n}.log`), path.join(d.logdir, `${n}.log.1`));
  // the same reload adds node03 and changes node02's log options
  const line = await reload(d, header(d) + ipmi(0) + ipmi(1).replace('log=', 'logopts="timestamp" log=') + ipmi(2));
  assert.match(line, /1 added, 0 removed, 1 changed, 1 unchanged/);
  await waitFor(() => seqs(log(d, 'node01'), 'node01').length > 20 && seqs(log(d, 'node03'), 'node03').length > 5, 'logging after the reload', 30000);
  const last = Number((await control(sim, 'GET', '/bmcs/node01')).json.host.lastSeq);
  await waitFor(() => seqs(log(d, 'node01'), 'node01').at(-1)! >= last, 'node01 logged up to the host\'s last line', 10000);
  const all = [...seqs(fs.readFileSync(path.join(d.logdir, 'node01.log.1'), 'latin1'), 'node01'), ...seqs(log(d, 'node01'), 'node01')];
  assert.ok(all.length > 40);
  assert.deepEqual(all, all.map((_, k) => all[0]! + k), 'node01: every line once, in order, across the rotation');
});

test('server port= changed: the new port answers, the old one is closed, an attached client stays', async () => {
  const body = 'console name="a" dev="test:" testopts="b:20,m:50,n:50"\n';
  const d = await startConchd(cleanup, body);
  const c = conman(cleanup, d.port, 'a');
  await c.opened('a');
  const port2 = await freePort();
  await reload(d, header(d, port2) + body);
  assert.match(d.child.output, new RegExp(`Listening on TCP port ${port2} \\(loopback\\): moved by a reload from port ${d.port}`));
  await waitForPort(port2);
  const refused = await new Promise<boolean>((resolve) => {
    const s = net.connect(d.port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
  assert.ok(refused, 'the old port no longer answers');
  const mark = c.output.length;
  await waitFor(() => c.output.length > mark + 200, 'output to the attached client');
  assert.equal(c.exitCode, null);
  const c2 = conman(cleanup, port2, '-m', 'a');
  await c2.opened('a');
});

test('on IPMI threads: added consoles join the threads, removed and changed ones leave them, unchanged sessions stay', async () => {
  const sim = await startBmcsim(cleanup, 4, ['--heartbeat', '0.2', '--no-boot']);
  const ipmi = (i: number, extra = ''): string =>
    `console name="node0${i + 1}" dev="ipmi:127.0.0.1:${sim.basePort + i}" ipmiopts="U:admin,P:password${extra}" log="%N.log"\n`;
  const d = await startConchd(cleanup, ipmi(0) + ipmi(1) + ipmi(2), { extraHeader: 'server ipmithreads=2\n' });
  // said by the start line, which follows the listening line
  await d.child.waitOutput(/IPMI on 2 threads/);
  const bmc = async (i: number): Promise<any> => (await control(sim, 'GET', `/bmcs/node0${i + 1}`)).json;
  await waitFor(async () => (await Promise.all([0, 1, 2].map(bmc))).every((b) => b.counters.activations === 1), 'three SOL sessions', 30000);
  const n01 = (await bmc(0)).counters;
  const line = await reload(d, header(d, d.port, 'server ipmithreads=2\n') + ipmi(0) + ipmi(1, ',C:17') + ipmi(3));
  assert.match(line, /1 added, 1 removed, 1 changed, 1 unchanged/);
  await waitFor(async () => (await bmc(3)).counters.activations === 1 && (await bmc(1)).counters.activations === 2, 'node04 and node02 active', 30000);
  await waitFor(async () => (await bmc(2)).solOwner === null, 'node03 released', 30000);
  const after = (await bmc(0)).counters;
  assert.equal(after.sessions, n01.sessions);
  assert.equal(after.activations, n01.activations);
  // the added console logs through its thread
  await waitFor(() => /\[seq \d+\] node04 heartbeat/.test(log(d, 'node04')), 'node04 logging', 30000);
});

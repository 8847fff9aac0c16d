// conch on a real terminal: the tty settings are the same after the client
// as before it, whether the session ends by &., by the daemon dying or by
// SIGTERM; and an expect script written for conman runs unchanged.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EXPECT_SCRIPT } from './helpers/expect-script.js';
import { Cleanup, waitFor, waitForFile } from './helpers/wait.js';
import { CONCH, Conmand, PtyProc, childPids, cleanEnv } from './client-rig.js';

/** A shell on a pty that saves `stty -g` before and after running conch. */
function shellAroundConch(c: Cleanup, dir: string, args: string[]): PtyProc {
  const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  const script =
    `stty -g > ${q(path.join(dir, 'before'))}; ` +
    `${q(process.execPath)} ${q(CONCH)} ${args.map(q).join(' ')}; ` +
    `echo "conch-rc=$?"; stty -g > ${q(path.join(dir, 'after'))}; echo shell-done`;
  const p = new PtyProc('/bin/sh', ['-c', script], cleanEnv());
  c.add(() => p.kill());
  return p;
}

async function assertRestored(p: PtyProc, dir: string): Promise<void> {
  await p.waitOutput('shell-done');
  const before = await waitForFile(path.join(dir, 'before'), ':');
  const after = await waitForFile(path.join(dir, 'after'), ':');
  assert.equal(after, before, 'stty -g after conch differs from before');
}

test('terminal restored and "terminated by server" when the daemon is killed mid-session', async () => {
  const c = new Cleanup();
  try {
    const d = await Conmand.start(c, ['n1']);
    const p = shellAroundConch(c, d.dir, ['-d', d.dest, 'n1']);
    await p.waitOutput('Connection to console [n1] opened.');
    p.write('alive\r');
    await p.waitOutput('alive\r');
    d.kill();
    await p.waitOutput('\r\n<ConMan> Connection to console [n1] terminated by server.\r\n');
    await p.waitOutput('conch-rc=0');
    await assertRestored(p, d.dir);
  } finally {
    await c.run();
  }
});

test('terminal restored on SIGTERM, which ends the session; SIGINT/SIGHUP are ignored', async () => {
  const c = new Cleanup();
  try {
    const d = await Conmand.start(c, ['n1']);
    const p = shellAroundConch(c, d.dir, ['-d', d.dest, 'n1']);
    await p.waitOutput('Connection to console [n1] opened.');
    const conch = await waitFor(() => childPids(p.pid)[0], 'conch under the shell');
    process.kill(conch, 'SIGINT');
    process.kill(conch, 'SIGHUP');
    p.write('after-signals\r');
    await p.waitOutput('after-signals\r'); // still attached
    process.kill(conch, 'SIGTERM');
    await p.waitOutput('Connection to console [n1] terminated by server.');
    await p.waitOutput('conch-rc=0');
    await assertRestored(p, d.dir);
  } finally {
    await c.run();
  }
});

test('terminal restored after &. and after a refused request', async () => {
  const c = new Cleanup();
  try {
    const d = await Conmand.start(c, ['n1']);
    const p = shellAroundConch(c, d.dir, ['-d', d.dest, 'n1']);
    await p.waitOutput('Connection to console [n1] opened.');
    p.write('&.');
    await p.waitOutput('conch-rc=0');
    await assertRestored(p, d.dir);

    fs.rmSync(path.join(d.dir, 'before'));
    fs.rmSync(path.join(d.dir, 'after'));
    const r = shellAroundConch(c, d.dir, ['-d', d.dest, 'nosuch']);
    await r.waitOutput('ERROR: Found no matching consoles.');
    await r.waitOutput('conch-rc=2');
    await assertRestored(r, d.dir);
  } finally {
    await c.run();
  }
});


test('an expect script written for conman runs unchanged with conch', async () => {
  const c = new Cleanup();
  try {
    const d = await Conmand.start(c, ['n1']);
    const script = path.join(d.dir, 'session.exp');
    fs.writeFileSync(script, EXPECT_SCRIPT);
    // The script is valid for the real conman client ...
    const withConman = c.child('expect', ['-f', script], { env: cleanEnv({ CLIENT: `conman -d ${d.dest}` }) });
    assert.equal(await withConman.exited, 0, withConman.output);
    // ... and for conch, unchanged.
    const client = `${process.execPath} ${CONCH} -d ${d.dest}`;
    const withConch = c.child('expect', ['-f', script], { env: cleanEnv({ CLIENT: client }) });
    assert.equal(await withConch.exited, 0, withConch.output);
    assert.match(withConch.stdout, /expect-ping/);
  } finally {
    await c.run();
  }
});

test('&Z suspends conch under a job-control shell and fg resumes the session', async () => {
  const c = new Cleanup();
  try {
    const d = await Conmand.start(c, ['n1']);
    const sh = new PtyProc('/bin/bash', ['--norc', '--noprofile', '-i'], cleanEnv({ PS1: 'prompt> ' }));
    c.add(() => sh.kill());
    await sh.waitOutput('prompt> ');
    sh.write(`stty -g > ${d.dir}/before; ${process.execPath} ${CONCH} -d ${d.dest} n1\r`);
    await sh.waitOutput('Connection to console [n1] opened.');
    sh.write('&Z');
    await sh.waitOutput('\r\n<ConMan> Connection to console [n1] suspended.\r\n');
    await sh.waitOutput(/Stopped/);
    // While suspended the terminal is back in its normal mode.
    sh.write(`stty -g > ${d.dir}/during\r`);
    const during = await waitForFile(path.join(d.dir, 'during'), ':');
    assert.equal(during, fs.readFileSync(path.join(d.dir, 'before'), 'latin1'));
    sh.write('fg\r');
    await sh.waitOutput('\r\n<ConMan> Connection to console [n1] resumed.\r\n');
    sh.write('after-resume\r'); // the daemon un-suspended our output too
    await sh.waitOutput('after-resume\r');
    sh.write('&.');
    await sh.waitOutput(/Connection to console \[n1\] closed\.\r\n[^]*prompt> /);
    sh.write('echo "conch-rc=$?"\r');
    await sh.waitOutput('conch-rc=0');
    sh.write('exit\r');
    await sh.exited;
  } finally {
    await c.run();
  }
});

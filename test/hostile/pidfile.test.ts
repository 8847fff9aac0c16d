// Pidfiles an attacker (or a crash) left behind: a planted pid never makes
// `conchd -k` signal a process that is not the conchd of this configuration,
// nor stops a start; a planted symlink is never written through; a restart
// right after kill -9 is not refused; and a non-root daemon's default
// pidfile is not a predictable name in /tmp.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { Cleanup, processAlive, waitFor } from '../helpers/wait.js';
import { CONCHD, ROOT, runConchd, startConchd } from '../helpers/conchd.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

const TEST_CONSOLE = 'console name="t1" dev="test:" testopts="b:10,m:100,n:50,p:100"\n';

const conchd = runConchd;

const alive = processAlive;

test('a planted pid of another process: -k and -r refuse to signal it, and the daemon still starts', { timeout: 60000 }, async () => {
  const c = new Cleanup();
  try {
    const victim = c.child('sleep', ['600']);
    const pid = victim.proc.pid!;
    const dir = c.dir('pidfile-');
    const pidfile = path.join(dir, 'conchd.pid');
    const conf = path.join(dir, 'conman.conf');
    fs.writeFileSync(conf, `server port=0\nserver loopback=on\nserver pidfile="${pidfile}"\n${TEST_CONSOLE}`);
    fs.writeFileSync(pidfile, `${pid}\n`);
    for (const flag of ['-k', '-r']) {
      const r = conchd([flag, '-c', conf]);
      assert.equal(r.code, 1, r.out);
      assert.match(r.out, /no daemon running/);
    }
    assert.ok(alive(pid), 'the unrelated process was not signalled');
    const d = await startConchd(c, TEST_CONSOLE, { dir });
    // the pidfile is written once the daemon has started (just after it says it listens)
    await waitFor(() => fs.readFileSync(d.pidfile, 'utf8').trim() === String(d.child.proc.pid), 'the stale pidfile to be replaced');
    assert.ok(alive(pid));
  } finally {
    await c.run();
  }
});

test('a pidfile naming the conchd of another configuration is not trusted by -k', { timeout: 60000 }, async () => {
  const c = new Cleanup();
  try {
    const a = await startConchd(c, TEST_CONSOLE);
    const dir = c.dir('pidfile-other-');
    const pidfile = path.join(dir, 'b.pid');
    const conf = path.join(dir, 'b.conf');
    fs.writeFileSync(conf, `server port=0\nserver loopback=on\nserver pidfile="${pidfile}"\n${TEST_CONSOLE}`);
    fs.writeFileSync(pidfile, `${a.child.proc.pid}\n`);
    const r = conchd(['-k', '-c', conf]);
    assert.equal(r.code, 1, r.out);
    // a's own config does find it
    const q = conchd(['-q', '-c', a.conf]);
    assert.equal(q.code, 0, q.out);
    assert.equal(q.out.trim(), String(a.child.proc.pid));
    assert.ok(alive(a.child.proc.pid!));
  } finally {
    await c.run();
  }
});

test('a symlink planted at the pidfile is refused, never written through', { timeout: 60000 }, async () => {
  const c = new Cleanup();
  try {
    const dir = c.dir('pidfile-link-');
    const target = path.join(dir, 'precious');
    fs.writeFileSync(target, 'precious data\n');
    const pidfile = path.join(dir, 'conchd.pid');
    fs.symlinkSync(target, pidfile);
    const conf = path.join(dir, 'conman.conf');
    fs.writeFileSync(conf, `server port=0\nserver loopback=on\nserver pidfile="${pidfile}"\n${TEST_CONSOLE}`);
    const child = c.child(process.execPath, [CONCHD, '-F', '-c', conf]);
    const code = await child.exited;
    assert.equal(code, 1, child.output);
    assert.match(child.output, /symbolic link/);
    assert.equal(fs.readFileSync(target, 'utf8'), 'precious data\n');
    // a dangling one creates nothing either
    fs.rmSync(target);
    const child2 = c.child(process.execPath, [CONCHD, '-F', '-c', conf]);
    assert.equal(await child2.exited, 1, child2.output);
    assert.ok(!fs.existsSync(target), 'nothing created through a dangling link');
  } finally {
    await c.run();
  }
});

test('a restart right after kill -9 is not refused as "already running"', { timeout: 120000 }, async () => {
  const c = new Cleanup();
  try {
    const dir = c.dir('pidfile-restart-');
    for (let round = 0; round < 3; round++) {
      const d = await startConchd(c, TEST_CONSOLE, { dir });
      d.child.proc.kill('SIGKILL');
      // no wait for the exit: the next start races the dying process, as an operator's would
      const next = await startConchd(c, TEST_CONSOLE, { dir });
      await waitFor(() => fs.existsSync(next.pidfile) && fs.readFileSync(next.pidfile, 'utf8').trim() === String(next.child.proc.pid), 'the new pidfile');
      await next.child.stop();
    }
  } finally {
    await c.run();
  }
});

test('a non-root daemon keeps its default pidfile in a private directory, not in /tmp', { timeout: 30000 }, async () => {
  const c = new Cleanup();
  try {
    const home = c.dir('pidfile-home-');
    fs.chmodSync(home, 0o755);
    const script = `import(${JSON.stringify(path.join(ROOT, 'dist/src/daemon/pidfile.js'))}).then((m) => console.log(m.defaultPidfile('/etc/conman.conf')))`;
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: home };
    const asRoot = process.getuid?.() === 0;
    const out = await new Promise<string>((resolve, reject) => {
      // as root, ask as the unprivileged user `nobody` would
      const p = spawn(process.execPath, ['-e', script], { env, ...(asRoot ? { uid: 65534, gid: 65534 } : {}) });
      let s = '';
      p.stdout.on('data', (d: Buffer) => (s += d.toString()));
      p.on('error', reject);
      p.on('exit', () => resolve(s.trim()));
    });
    assert.ok(out.startsWith(path.join(home, '.local', 'state', 'conch') + path.sep), out);
    const withRuntime = spawnSync(process.execPath, ['-e', script], { env: { ...env, XDG_RUNTIME_DIR: path.join(home, 'run') }, encoding: 'utf8', ...(asRoot ? { uid: 65534, gid: 65534 } : {}) });
    assert.ok(withRuntime.stdout.trim().startsWith(path.join(home, 'run') + path.sep), withRuntime.stdout + withRuntime.stderr);
  } finally {
    await c.run();
  }
});

// Attacks on the console logs of a live conchd (docs/architecture.md, "Logs
// and signals" and "Hostile input"): a log that cannot be opened at start, a
// symbolic link planted at a log path (pointing outside the log directory, or
// dangling), and a disk that fills up under a log. The daemon must keep
// serving and the bystanders keep logging meanwhile; a log comes back by
// itself (no SIGHUP) once it can, and says in the file how many bytes it lost;
// a link is never followed unless `server logsymlinks=on`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Cleanup, waitFor } from '../helpers/wait.js';
import { startFortress, underAttack, fileSize, type Fortress } from './harness.js';

// the bystanders (and the consoles here that give no log=) log to logdir/%N.log
const HEADER = 'global log="%N.log"\n';
// a console that prints ~10 KB/s
const TALKER = 'testopts="b:400,m:40,n:20"';
const MARKER = /\r\n<ConMan> Console \[(\w+)\] log resumed at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+: (\d+) bytes lost while the log could not be written\.\r\n/;
const isRoot = process.getuid?.() === 0;

const read = (f: string): string => (fs.existsSync(f) ? fs.readFileSync(f, 'latin1') : '');
const lines = (f: Fortress, re: RegExp): string[] => f.child.output.split('\n').filter((l) => re.test(l));

test('a log directory that is unusable at start: the log opens by itself once it is fixed, with a marker', { timeout: 120_000 }, async () => {
  const cleanup = new Cleanup();
  try {
    const dir = cleanup.dir('hostile-logs-');
    const logdir = path.join(dir, 'log');
    const sub = path.join(logdir, 'sub');
    fs.mkdirSync(logdir);
    // root writes into a 0555 directory anyway: there, a regular file where the directory should be fails the open
    if (isRoot) fs.writeFileSync(sub, 'in the way\n');
    else fs.mkdirSync(sub, { mode: 0o555 });
    const f = await startFortress(cleanup, `console name="ro" dev="test:" ${TALKER} log="sub/%N.log"\n`, { header: HEADER, dir });
    const file = path.join(sub, 'ro.log');
    await underAttack(f, async () => {
      await waitFor(() => lines(f, /Console \[ro\] cannot open log/).length > 0, 'the open error', 10_000);
      // a few retries go by quietly (one line per outage)
      const t0 = Date.now();
      await waitFor(() => Date.now() - t0 > 1500, 'retries to pass', 5000);
      assert.equal(lines(f, /Console \[ro\] cannot open log/).length, 1, f.child.output);
      if (isRoot) {
        fs.rmSync(sub);
        fs.mkdirSync(sub);
      } else fs.chmodSync(sub, 0o755);
      // no SIGHUP: the backoff (1 s, 2 s, 4 s … at most 60 s) brings it back
      await waitFor(() => MARKER.test(read(file)), 'the log to open with its marker', 30_000);
      await waitFor(() => lines(f, /Console \[ro\] log .*ro\.log opened after failing: \d+ bytes lost/).length === 1, 'the resume line', 5000);
      // and it goes on logging
      const size = fileSize(file);
      await waitFor(() => fileSize(file) > size, 'the log to grow', 10_000);
    });
    const text = read(file);
    assert.match(text, /^\r\n<ConMan> Console \[ro\] log opened at [^\r]+\.\r\n\r\n<ConMan> Console \[ro\] log resumed at /);
    assert.equal(MARKER.exec(text)![1], 'ro');
  } finally {
    await cleanup.run();
  }
});

test('symbolic links planted at log paths are refused and reported; other consoles keep logging; removing the link brings the log back', { timeout: 120_000 }, async () => {
  const cleanup = new Cleanup();
  try {
    const dir = cleanup.dir('hostile-logs-');
    const outside = cleanup.dir('hostile-logs-outside-');
    const logdir = path.join(dir, 'log');
    fs.mkdirSync(logdir);
    const precious = path.join(outside, 'precious');
    fs.writeFileSync(precious, 'root-owned data\n');
    const created = path.join(outside, 'created-by-conchd');
    fs.symlinkSync(precious, path.join(logdir, 'linked.log'));
    fs.symlinkSync(created, path.join(logdir, 'dangling.log'));
    const f = await startFortress(cleanup, `console name="linked" dev="test:" ${TALKER}\nconsole name="dangling" dev="test:" ${TALKER}\n`, {
      header: HEADER,
      dir,
    });
    await underAttack(f, async () => {
      for (const n of ['linked', 'dangling']) {
        const p = path.join(logdir, `${n}.log`);
        await waitFor(() => lines(f, new RegExp(`Console \\[${n}\\] cannot open log ${p.replace(/\./g, '\\.')}: it is a symbolic link`)).length > 0, `${n} refused`, 10_000);
      }
      // a retry or two later, still nothing written through either link
      const t0 = Date.now();
      await waitFor(() => Date.now() - t0 > 1500, 'retries to pass', 5000);
      assert.equal(read(precious), 'root-owned data\n');
      assert.equal(fs.existsSync(created), false);
      // the operator removes the link: the log comes back without a SIGHUP
      const linked = path.join(logdir, 'linked.log');
      fs.rmSync(linked);
      await waitFor(() => MARKER.test(read(linked)), 'the linked console log to open', 30_000);
      assert.ok(!fs.lstatSync(linked).isSymbolicLink());
    });
    assert.equal(read(precious), 'root-owned data\n');
    assert.equal(fs.existsSync(created), false);
    assert.ok(fs.lstatSync(path.join(logdir, 'dangling.log')).isSymbolicLink());
  } finally {
    await cleanup.run();
  }
});

test('server logsymlinks=on: a link at a log path is followed', { timeout: 120_000 }, async () => {
  const cleanup = new Cleanup();
  try {
    const dir = cleanup.dir('hostile-logs-');
    const outside = cleanup.dir('hostile-logs-outside-');
    const logdir = path.join(dir, 'log');
    fs.mkdirSync(logdir);
    const target = path.join(outside, 'shared.log');
    fs.writeFileSync(target, 'before\n');
    fs.symlinkSync(target, path.join(logdir, 'follow.log'));
    const f = await startFortress(cleanup, `console name="follow" dev="test:" ${TALKER}\n`, { header: `${HEADER}server logsymlinks=on\n`, dir });
    await underAttack(f, () => waitFor(() => read(target).includes('<ConMan> Console [follow] log opened at'), 'the log written through the link', 10_000));
    assert.ok(read(target).startsWith('before\n'));
    assert.equal(lines(f, /symbolic link/).length, 0);
  } finally {
    await cleanup.run();
  }
});

/**
 * Mount a tmpfs of `size` at `dir`, inside the test's own directory: a real
 * disk that fills up. The suite runs as root (README); a failure to mount
 * fails the test, it is never skipped.
 */
function mountTmpfs(dir: string, size: string): void {
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'conch-test', dir], { stdio: 'pipe', timeout: 10_000 });
}

test('a disk that fills under a log: one error line, the log resumes by itself when space returns, a marker counts the gap', { timeout: 120_000 }, async () => {
  const cleanup = new Cleanup();
  try {
    const dir = cleanup.dir('hostile-logs-');
    const logdir = path.join(dir, 'log');
    const tiny = path.join(logdir, 'tiny');
    fs.mkdirSync(tiny, { recursive: true });
    mountTmpfs(tiny, '256k');
    cleanup.add(() => {
      try {
        execFileSync('umount', [tiny], { stdio: 'ignore', timeout: 10_000 });
      } catch {
        execFileSync('umount', ['-l', tiny], { stdio: 'ignore', timeout: 10_000 });
      }
    });
    const f = await startFortress(cleanup, `console name="full" dev="test:" ${TALKER} log="tiny/%N.log"\n`, { header: HEADER, dir });
    const file = path.join(tiny, 'full.log');
    await waitFor(() => fileSize(file) > 0, 'the log on the small disk', 10_000);
    const filler = path.join(tiny, 'filler');
    await underAttack(f, async () => {
      // fill the disk
      const fd = fs.openSync(filler, 'w');
      const chunk = Buffer.alloc(4096, 0x2e);
      try {
        for (;;) fs.writeSync(fd, chunk);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
      } finally {
        fs.closeSync(fd);
      }
      await waitFor(() => lines(f, /Console \[full\] cannot write log .*ENOSPC/).length > 0, 'the write error', 15_000);
      // a few failed retries: still one line for the outage
      const t0 = Date.now();
      await waitFor(() => Date.now() - t0 > 2500, 'retries to pass', 5000);
      assert.equal(lines(f, /Console \[full\] cannot write log/).length, 1, f.child.output);
      fs.rmSync(filler);
      await waitFor(() => lines(f, /Console \[full\] log .*full\.log resumed: \d+ bytes lost/).length === 1, 'the resume line', 30_000);
      await waitFor(() => MARKER.test(read(file)), 'the marker in the log', 5000);
    });
    const m = MARKER.exec(read(file))!;
    assert.equal(m[1], 'full');
    assert.ok(Number(m[2]) > 0, 'the bytes that did not fit are counted');
    // the marker starts a line of its own even after a write cut mid-line
    assert.ok(m[0].startsWith('\r\n<ConMan>'));
  } finally {
    await cleanup.run();
  }
});

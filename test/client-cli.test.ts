// conch's command line as a user sees it: help, version, license, bad
// options (exit 1), -F files, and IPv6 destinations (through socat, since
// conmand itself listens on IPv4 only).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cleanup, freePort, waitForPort } from './helpers/wait.js';
import { Conmand, REPO, cleanEnv, conchPlain } from './client-rig.js';

async function withCleanup(fn: (c: Cleanup) => Promise<void>): Promise<void> {
  const c = new Cleanup();
  try {
    await fn(c);
  } finally {
    await c.run();
  }
}

test('-V prints the version from package.json', () =>
  withCleanup(async (c) => {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string };
    const r = await conchPlain(c, ['-V']);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, `conch-${pkg.version}\n`);
  }));

test('-h (and no console at all) prints the usage with the current destination', () =>
  withCleanup(async (c) => {
    const r = await conchPlain(c, ['-h', '-d', '10.1.2.3:4242', '-e', '^']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^Usage: conch \[OPTIONS\] \[CONSOLES\]\n\n  -b        Broadcast to multiple consoles/);
    assert.match(r.stdout, /  -d HOST   Specify server destination\. \[10\.1\.2\.3:4242\]\n/);
    assert.match(r.stdout, /  -e CHAR   Specify escape character\. \[\^\]\n/);
    assert.match(r.stdout, /enter "\^\." to close the session,\n    or "\^\?" to see a list/);
    const bare = await conchPlain(c, [], cleanEnv({ CONMAN_HOST: 'example.org:99' }));
    assert.equal(bare.code, 0);
    assert.match(bare.stdout, /\[example\.org:99\]/);
  }));

test('-L prints the license', () =>
  withCleanup(async (c) => {
    const r = await conchPlain(c, ['-L']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /GNU General Public License/);
  }));

test('bad options are fatal local errors: exit 1, conman\'s message', () =>
  withCleanup(async (c) => {
    const bad = await conchPlain(c, ['-Z', 'n1']);
    assert.equal(bad.code, 1);
    assert.equal(bad.stderr, 'ERROR:     CMDLINE: invalid option "Z"\n');
    const missing = await conchPlain(c, ['n1', '-d']);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, 'ERROR:     CMDLINE: invalid option "d"\n');
    const noFile = await conchPlain(c, ['-F', '/nonexistent/list']);
    assert.equal(noFile.code, 1);
    assert.equal(noFile.stderr, 'ERROR:     Unable to open "/nonexistent/list": No such file or directory\n');
  }));

test('-F reads patterns from a file (comments and blanks skipped)', () =>
  withCleanup(async (c) => {
    const d = await Conmand.start(c);
    const list = path.join(d.dir, 'list');
    fs.writeFileSync(list, '# my consoles\n  n10  \n\nn2\n');
    const r = await conchPlain(c, ['-d', d.dest, '-q', '-F', list]);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, 'n2\nn10\n');
  }));

test('-d [::1]:port reaches a daemon over IPv6', () =>
  withCleanup(async (c) => {
    const d = await Conmand.start(c, ['n1']);
    const port6 = await freePort('::1');
    c.child('socat', [`TCP6-LISTEN:${port6},bind=[::1],reuseaddr,fork`, `TCP4:127.0.0.1:${d.port}`]);
    await waitForPort(port6, '::1');
    const r = await conchPlain(c, ['-q', '-d', `[::1]:${port6}`]);
    assert.equal(r.stderr, '');
    assert.equal(r.code, 0);
    assert.equal(r.stdout, 'n1\n');
  }));

test('-q with -l logs the listing between the log notices', () =>
  withCleanup(async (c) => {
    const d = await Conmand.start(c, ['n1', 'n2']);
    const log = path.join(d.dir, 'q.log');
    const r = await conchPlain(c, ['-q', '-l', log, '-d', d.dest]);
    assert.equal(r.code, 0);
    assert.match(fs.readFileSync(log, 'latin1'), /^\r\n<ConMan> Log started at .*\.\r\nn1\nn2\n\r\n<ConMan> Log finished at .*\.\r\n$/);
  }));

// conch against the real Debian conmand 0.2.7: query, sessions, escapes,
// busy/join/force/monitor, error texts and exit codes as conman prints them.
// Every test starts its own daemon and kills its process group at the end.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Cleanup, waitFor, waitForFile } from './helpers/wait.js';
import { Conmand, cleanEnv, conchPlain, conchPty } from './client-rig.js';

const me = os.userInfo().username;

async function withDaemon(fn: (d: Conmand, c: Cleanup) => Promise<void>): Promise<void> {
  const c = new Cleanup();
  try {
    await fn(await Conmand.start(c), c);
  } finally {
    await c.run();
  }
}

test('-q lists the consoles one per line in the daemon order', () =>
  withDaemon(async (d, c) => {
    const all = await conchPlain(c, ['-d', d.dest, '-q']);
    assert.equal(all.code, 0);
    assert.equal(all.stdout, 'n1\nn2\nn10\n');
    // Comma- and space-separated patterns, glob matching done by the daemon.
    const some = await conchPlain(c, ['-q', 'n1,n2', '-d', d.dest]);
    assert.equal(some.stdout, 'n1\nn2\n');
    const glob = await conchPlain(c, ['-d', d.dest, '-q', 'n1*']);
    assert.equal(glob.stdout, 'n1\nn10\n');
  }));

test('CONCH_HOST wins over CONMAN_HOST; CONMAN_HOST alone is honoured', () =>
  withDaemon(async (d, c) => {
    const both = await conchPlain(c, ['-q'], cleanEnv({ CONMAN_HOST: '127.0.0.1:1', CONCH_HOST: d.dest }));
    assert.equal(both.stdout, 'n1\nn2\nn10\n');
    const conman = await conchPlain(c, ['-q'], cleanEnv({ CONMAN_HOST: '127.0.0.1', CONMAN_PORT: String(d.port) }));
    assert.equal(conman.stdout, 'n1\nn2\nn10\n');
  }));

test('an unknown console is refused with exit 2 and conman\'s message', () =>
  withDaemon(async (d, c) => {
    const r = await conchPlain(c, ['-d', d.dest, 'nosuch']);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, 'ERROR: Found no matching consoles.\n\n');
    assert.equal(r.stdout, '');
  }));

test('several matches without -b: the list and the broadcast hint', () =>
  withDaemon(async (d, c) => {
    const r = await conchPlain(c, ['-d', d.dest, 'n*']);
    assert.equal(r.code, 2);
    assert.equal(
      r.stderr,
      'ERROR: Found 3 matching consoles.\n\nn1\nn2\nn10\n\nDo you want to broadcast (-b) to multiple consoles?\n\n',
    );
  }));

test('attach, type, break, literal escape and 0xFF, then &. closes with exit 0', () =>
  withDaemon(async (d, c) => {
    const p = conchPty(c, ['-d', d.dest, 'n1']);
    await p.waitOutput('\r\n<ConMan> Connection to console [n1] opened.\r\n');
    p.write('hello-conch\r');
    await p.waitOutput('hello-conch\r');
    p.write('&B');
    await p.waitOutput('[BREAK-RECEIVED]');
    // `&&` sends one `&`, `&x` sends both keys, 0xFF reaches the console once.
    p.write(Buffer.from('A&&B&xC\xffD\r', 'latin1'));
    await p.waitOutput('A&B&xC\xffD\r');
    p.write('&.');
    await p.waitOutput('&.\r\n<ConMan> Connection to console [n1] closed.\r\n');
    assert.equal(await p.waitExit(), 0);
    assert.doesNotMatch(p.output, /terminated by server/);
  }));

test('&? lists the R/W escapes and &I names the console and server', () =>
  withDaemon(async (d, c) => {
    const p = conchPty(c, ['-d', d.dest, 'n2']);
    await p.waitOutput('Connection to console [n2] opened.');
    p.write('&?');
    await p.waitOutput('   &Z  -  Suspend the client.\r\n');
    assert.match(p.output, /\r\nSupported ConMan Escape Sequences:\r\n   &\?  -  Display this help message\.\r\n/);
    assert.match(p.output, /   &B  -  Transmit a serial-break\.\r\n/);
    assert.doesNotMatch(p.output, /&F  -/); // only offered in monitor mode
    p.write('&I');
    await p.waitOutput(new RegExp(`\\r\\n<ConMan> Connected R/W to console \\[n2\\] on <[^>]+:${d.port}>\\.\\r\\n`));
    p.write('&.');
    assert.equal(await p.waitExit(), 0);
  }));

test('a second plain attach is refused with who has it, the hint and exit 2', () =>
  withDaemon(async (d, c) => {
    const first = conchPty(c, ['-d', d.dest, 'n1']);
    await first.waitOutput('Connection to console [n1] opened.');
    const r = await conchPlain(c, ['-d', d.dest, 'n1']);
    assert.equal(r.code, 2);
    const m = new RegExp(
      '^ERROR: Found console already in use\\.\\n\\n' +
        `Console \\[n1\\] open R/W by <${me}@[^>]+> on pts/\\d+ \\(idle \\d+s\\)\\.\\n` +
        '\\nDo you want to force \\(-f\\) or join \\(-j\\) the connection\\?\\n\\n$',
    );
    assert.match(r.stderr, m);
  }));

test('-j joins: both writers see each other and the join/depart notices', () =>
  withDaemon(async (d, c) => {
    const a = conchPty(c, ['-d', d.dest, 'n1']);
    await a.waitOutput('Connection to console [n1] opened.');
    const b = conchPty(c, ['-j', '-d', d.dest, 'n1']);
    await b.waitOutput('Connection to console [n1] opened.');
    await b.waitOutput(new RegExp(`<ConMan> Console \\[n1\\] joined with <${me}@[^>]+> on pts/\\d+ at `));
    await a.waitOutput(new RegExp(`<ConMan> Console \\[n1\\] joined by <${me}@[^>]+> on pts/\\d+ at `));
    b.write('from-b\r');
    await a.waitOutput('from-b\r');
    await b.waitOutput('from-b\r');
    b.write('&.');
    assert.equal(await b.waitExit(), 0);
    await a.waitOutput(/Console \[n1\] departed by /);
    a.write('&.');
    assert.equal(await a.waitExit(), 0);
  }));

test('-f steals: the first client is told and exits 0 with "terminated by server"', () =>
  withDaemon(async (d, c) => {
    const a = conchPty(c, ['-d', d.dest, 'n2']);
    await a.waitOutput('Connection to console [n2] opened.');
    const b = conchPty(c, ['-f', '-d', d.dest, 'n2']);
    await b.waitOutput(/Console \[n2\] stolen from </);
    await a.waitOutput(/Console \[n2\] stolen by </);
    await a.waitOutput('\r\n<ConMan> Connection to console [n2] terminated by server.\r\n');
    assert.equal(await a.waitExit(), 0);
    b.write('still-b\r');
    await b.waitOutput('still-b\r');
    b.write('&.');
    assert.equal(await b.waitExit(), 0);
  }));

test('-m monitors read-only, offers &F/&J, and &J upgrades to a writer', () =>
  withDaemon(async (d, c) => {
    const a = conchPty(c, ['-d', d.dest, 'n10']);
    await a.waitOutput('Connection to console [n10] opened.');
    const m = conchPty(c, ['-m', '-d', d.dest, 'n10']);
    await m.waitOutput('Connection to console [n10] opened.');
    a.write('seen-by-monitor\r');
    await m.waitOutput('seen-by-monitor\r');
    m.write('&?');
    await m.waitOutput('   &Z  -  Suspend the client.\r\n');
    assert.match(m.output, /   &F  -  Force write-privileges \(console-stealing\)\.\r\n/);
    assert.match(m.output, /   &J  -  Join write-privileges \(console-sharing\)\.\r\n/);
    assert.doesNotMatch(m.output, /&B  -/);
    m.write('&I');
    await m.waitOutput(/Connected R\/O to console \[n10\]/);
    // Joining from monitor mode makes it a writer: the other side hears about it.
    m.write('&J');
    await a.waitOutput(/Console \[n10\] joined by </);
    m.write('from-monitor\r');
    await a.waitOutput('from-monitor\r');
    m.write('&.');
    assert.equal(await m.waitExit(), 0);
    a.write('&.');
    assert.equal(await a.waitExit(), 0);
  }));

test('-b broadcasts to several consoles (write-only)', () =>
  withDaemon(async (d, c) => {
    const b = conchPty(c, ['-b', '-d', d.dest, 'n1', 'n2']);
    await b.waitOutput('\r\n<ConMan> Broadcast to 2 consoles opened.\r\n');
    b.write('to-all\r');
    await waitForFile(d.log('n1'), 'to-all');
    await waitForFile(d.log('n2'), 'to-all');
    b.write('&I');
    await b.waitOutput(new RegExp(`Broadcasting to 2 consoles on <[^>]+:${d.port}>\\.`));
    b.write('&.');
    await b.waitOutput('Broadcast to 2 consoles closed.');
    assert.equal(await b.waitExit(), 0);
  }));

test('-e changes the escape character', () =>
  withDaemon(async (d, c) => {
    const p = conchPty(c, ['-e', '#', '-d', d.dest, 'n1']);
    await p.waitOutput('Connection to console [n1] opened.');
    p.write('a&.b\r'); // `&` is plain data now
    await p.waitOutput('a&.b\r');
    p.write('#.');
    await p.waitOutput('#.\r\n<ConMan> Connection to console [n1] closed.\r\n');
    assert.equal(await p.waitExit(), 0);
  }));

test('-l writes a session log framed by Log started/finished notices', () =>
  withDaemon(async (d, c) => {
    const logFile = path.join(d.dir, 'session.log');
    const p = conchPty(c, ['-l', logFile, '-d', d.dest, 'n2']);
    await p.waitOutput('Connection to console [n2] opened.');
    p.write('logged-line\r');
    await p.waitOutput('logged-line\r');
    p.write('&.');
    assert.equal(await p.waitExit(), 0);
    const log = await waitForFile(logFile, 'Log finished at');
    assert.match(log, /^\r\n<ConMan> Log started at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+\.\r\n/);
    assert.match(log, /logged-line\r/);
    assert.match(log, /\r\n<ConMan> Log finished at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+\.\r\n$/);
    assert.equal(fs.statSync(logFile).mode & 0o777, 0o600);
  }));

test('without a terminal a session is refused like conman (exit 1)', () =>
  withDaemon(async (d, c) => {
    const r = await conchPlain(c, ['-d', d.dest, 'n1']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'ERROR:     Standard Input is not a terminal device\n');
  }));

test('a refused connection is reported with exit 2', async () => {
  const c = new Cleanup();
  try {
    const d = await Conmand.start(c, ['n1']);
    d.kill();
    await d.child.exited;
    const r = await conchPlain(c, ['-d', d.dest, 'n1']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, new RegExp(`^ERROR: Unable to connect to <[^>]+:${d.port}>: Connection refused\\.\\n\\n$`));
  } finally {
    await c.run();
  }
});

test('&R is offered and sent only when the daemon has a reset command', async () => {
  const c = new Cleanup();
  try {
    const d = await Conmand.start(c, ['n1'], ['server resetcmd="touch %DIR%/reset-%N"']);
    const p = conchPty(c, ['-d', d.dest, 'n1']);
    await p.waitOutput('Connection to console [n1] opened.');
    p.write('&?');
    await p.waitOutput('   &R  -  Reset node associated with this console.\r\n');
    p.write('&R');
    await p.waitOutput(new RegExp(`<ConMan> Console \\[n1\\] reset by <${me}@[^>]+>`));
    await waitFor(() => fs.existsSync(path.join(d.dir, 'reset-n1')), 'the reset command to run');
    p.write('&.');
    assert.equal(await p.waitExit(), 0);
  } finally {
    await c.run();
  }
});

// End to end, as a user runs it: a real conchd process holding a simulated
// server on a process console, and both the Debian `conman` client and our
// `conch` client attached to it.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cleanup, waitForFile } from './helpers/wait.js';
import { ROOT, startConchd } from './helpers/conchd.js';
import { conman } from './helpers/protocol-harness.js';
import { conchPty, conchPlain, cleanEnv, CONCH } from './client-rig.js';
import { EXPECT_SCRIPT } from './helpers/expect-script.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

const HOST = path.join(ROOT, 'dist/src/bin/conch-host.js');

test('conman and conch clients on a real conchd: log in, run a command, SysRq via &B, log and replay', async () => {
  const d = await startConchd(
    cleanup,
    `console name="host1" dev="${process.execPath} ${HOST} --name %N --interval 0" log="%N.log"\n`,
  );
  const log = path.join(d.logdir, 'host1.log');
  await waitForFile(log, 'host1 login:');

  // the query, from our client
  const q = await conchPlain(cleanup, ['-d', `127.0.0.1:${d.port}`, '-q']);
  assert.equal(q.code, 0);
  assert.equal(q.stdout, 'host1\n');

  // Debian's conman client: log in and run a command
  const a = conman(cleanup, d.port, 'host1');
  await a.opened('host1');
  a.type('\r');
  await a.waitOutput('host1 login:');
  a.type('root\r');
  await a.waitOutput('Password:');
  a.type('secret\r');
  await a.waitOutput('root@host1:~# ');
  a.type('hostname\r');
  await a.waitOutput(/hostname\r\nhost1\r\n/);
  // &B reaches the process console as the bytes "&B" (conman's rule), which
  // the simulated host takes as a BREAK: the next key is a SysRq command
  a.type('&B');
  a.type('t');
  await a.waitOutput('sysrq: Show State');
  a.type('&.');
  assert.equal(await a.exited, 0);

  // our client joins and replays (&L) what happened
  const b = conchPty(cleanup, ['-d', `127.0.0.1:${d.port}`, 'host1']);
  await b.waitOutput('<ConMan> Connection to console [host1] opened.');
  b.write('&L');
  await b.waitOutput(/Begin log replay of console \[host1\][\s\S]*sysrq: Show State[\s\S]*End log replay of console \[host1\]/);
  b.write('echo typed-by-conch\r');
  await b.waitOutput(/\r\ntyped-by-conch\r\n/);
  b.write('&.');
  await b.waitOutput('Connection to console [host1] closed.');

  // everything the users saw is in the console log, with who joined and left
  const text = await waitForFile(log, 'typed-by-conch');
  assert.match(text, /sysrq: Show State/);
  assert.match(text, /<ConMan> Console \[host1\] joined by <[^>]+>/);
  assert.match(text, /<ConMan> Console \[host1\] departed by <[^>]+>/);
  await d.child.stop();
});

test('an expect script written for conman runs unchanged against conchd, with conman and with conch', async () => {
  const clients: [string, (dest: string) => string][] = [
    ['conman', (dest) => `conman -d ${dest}`],
    ['conch', (dest) => `${process.execPath} ${CONCH} -d ${dest}`],
  ];
  for (const [name, cmd] of clients) {
    // a fresh daemon and host each time: the script expects a login prompt that echoes
    const d = await startConchd(cleanup, `console name="n1" dev="${process.execPath} ${HOST} --name %N --interval 0 --no-boot"\n`);
    const script = path.join(d.dir, 'session.exp');
    fs.writeFileSync(script, EXPECT_SCRIPT);
    const run = cleanup.child('expect', ['-f', script], { env: cleanEnv({ CLIENT: cmd(`127.0.0.1:${d.port}`) }) });
    assert.equal(await run.exited, 0, `${name}: ${run.output}`);
    await d.child.stop();
  }
});

// conchd with an `ssh://` console behind an HPE iLO-style command line
// (sshopts entry=ilo) on OpenSSH's sshd: the virtual serial port in use by
// another session is waited for, never forced, and taken within 30 s of its
// release; `ESC (` goes out before the session closes when conchd stops; a
// virtual serial port taken over while conchd is in it (back at the iLO
// prompt) is noticed within seconds, waited out and resumed.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cleanup, waitFor, waitForFile } from './helpers/wait.js';
import { startConchd } from './helpers/conchd.js';
import { startSshd } from './helpers/sshd.js';
import { conchPlain } from './client-rig.js';
import { conman } from './helpers/protocol-harness.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

test('iLO: "in use by another session" is waited out politely, the port taken within 30 s of its release, ESC ( sent on stop', async () => {
  const s = await startSshd(cleanup, { mode: 'ilo' });
  s.bmc.setBusy(true);
  const d = await startConchd(
    cleanup,
    `console name="ilo1" dev="ssh://${s.user}@127.0.0.1:${s.port}" sshopts="key=${s.clientKey},entry=ilo" log="%N.log"\n`,
  );
  const log = path.join(d.logdir, 'ilo1.log');
  await waitForFile(log, `Console [ilo1] connected to <ssh://127.0.0.1:${s.port}>`, 30000);
  await waitForFile(log, 'serial port in use by another session (the BMC said "Virtual Serial Port is currently in use by another session."); waiting for it to be released', 30000);
  // asked again, in the same CLI session, and never anything but vsp
  await waitFor(() => s.bmc.count('cli', 'busy') >= 2, 'vsp asked again', 30000);
  assert.equal(s.bmc.count('hello'), 1, 'one SSH session');
  assert.deepEqual(
    s.bmc.messages.filter((m) => m.t === 'cli').map((m) => m.cmd),
    s.bmc.messages.filter((m) => m.t === 'cli').map(() => 'vsp'),
  );

  // conch -q -v says so
  const q = await conchPlain(cleanup, ['-d', `127.0.0.1:${d.port}`, '-q', '-v', 'ilo1']);
  assert.match(q.stdout, /^ilo1 +up since [^;]*; serial port in use by another session since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d; no clients$/m);

  // the other session lets go: taken within 30 s
  s.bmc.setBusy(false);
  const freed = performance.now();
  await waitForFile(log, /serial port taken at [^\r\n]* in use by another session/, 30000);
  const took = performance.now() - freed;
  assert.ok(took < 30000, `taken ${took} ms after the release`);
  assert.equal(s.bmc.count('cli', 'console'), 1);

  s.bmc.write('host: login: \r\n');
  await waitForFile(log, 'host: login:', 30000);
  const text = (await waitForFile(log, 'host: login:')).toString();
  assert.ok(!text.includes('hpiLO->'), 'the CLI is not in the console log');

  process.kill(d.child.proc.pid!, 'SIGTERM');
  assert.equal(await d.child.exited, 0);
  assert.ok(s.bmc.received.endsWith('\x1b('), JSON.stringify(s.bmc.received.slice(-10)));
  assert.equal(s.bmc.count('leave'), 1);
});

test('iLO on OpenSSH sshd: the virtual serial port taken over is noticed within seconds, told to a client, not re-entered while held, resumed after', async () => {
  const s = await startSshd(cleanup, { mode: 'ilo' });
  const d = await startConchd(
    cleanup,
    `console name="ilo2" dev="ssh://${s.user}@127.0.0.1:${s.port}" sshopts="key=${s.clientKey},entry=ilo" log="%N.log"\n`,
  );
  const log = path.join(d.logdir, 'ilo2.log');
  await waitFor(() => s.bmc.count('cli', 'console') === 1 && s.bmc.live === 1, 'conchd in the virtual serial port', 30000);
  s.bmc.write('[1] host line\r\nlogin: ');
  await waitForFile(log, 'login: ', 30000);
  const c = conman(cleanup, d.port, 'ilo2');
  await c.opened('ilo2');

  // someone else takes the port: held by them, the session put back at </>hpiLO->
  s.bmc.setBusy(true);
  const took = performance.now();
  s.bmc.takeOver();
  await waitForFile(log, 'serial port taken over by another session at ', 30000);
  const noticed = performance.now() - took;
  assert.ok(noticed < 5000, `noticed after ${noticed} ms`);
  assert.match(await waitForFile(log, 'asking again'), /serial port taken over by another session at [^(]*\(the BMC is back at its prompt "<\/>hpiLO->"\); waiting for it to be released, asking again every 10 s/);
  await c.waitOutput('<ConMan> serial port taken over by another session at ', 10000);
  // typed while taken over: dropped, not typed at the iLO's command line
  c.type('typed-while-held\r');
  await waitFor(() => s.bmc.count('cli', 'busy') >= 1, 'vsp asked again and found in use', 30000);
  assert.deepEqual(
    s.bmc.messages.filter((m) => m.t === 'cli').map((m) => `${m.cmd} ${m.result}`),
    ['vsp console', 'vsp busy'],
  );
  assert.ok(!s.bmc.received.includes('typed-while-held'));

  s.bmc.setBusy(false);
  const freed = performance.now();
  await waitForFile(log, /serial port resumed at [^\r\n]* after \d+s/, 30000);
  const back = performance.now() - freed;
  assert.ok(back < 15000, `resumed ${back} ms after the release`);
  console.log(`# OpenSSH sshd iLO: takeover noticed after ${noticed} ms, resumed ${back} ms after the release`);
  await c.waitOutput('<ConMan> serial port resumed at ', 10000);
  s.bmc.write('[2] host line after\r\n');
  await waitForFile(log, '[2] host line after', 30000);
  assert.equal(s.bmc.count('hello'), 1, 'one SSH session throughout');
  assert.equal(s.bmc.count('takenover'), 1);
  const text = fs.readFileSync(log, 'latin1');
  assert.ok(text.indexOf('[2] host line after') > text.indexOf('serial port resumed at'));
});

// The migration an operator makes: stop Debian's conmand, start conchd with
// the same conman.conf, and find the same log files carrying on.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cleanup, freePort, waitFor, waitForFile, waitForPort } from './helpers/wait.js';
import { CONCHD } from './helpers/conchd.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

test('conmand → conchd on the same conman.conf writes the same log files', async () => {
  const dir = cleanup.dir('compat-');
  const [port, telPort] = [await freePort(), await freePort()];
  const logdir = path.join(dir, 'logs');
  const sock = path.join(dir, 'vm.sock');

  // the consoles' far ends: a raw TCP terminal server (socat), a unix-socket
  // VM console (socat), and a program (python3) — each greets every connection
  cleanup.child('socat', [`TCP-LISTEN:${telPort},bind=127.0.0.1,reuseaddr,fork`, 'SYSTEM:"echo hello-from-terminal-server; sleep 600"']);
  cleanup.child('socat', [`UNIX-LISTEN:${sock},fork`, 'SYSTEM:"echo hello-from-vm; sleep 600"']);
  await waitForPort(telPort);
  await waitFor(() => fs.existsSync(sock), 'the unix socket');
  const prog = path.join(dir, 'bmc-console.py');
  fs.writeFileSync(
    prog,
    '#!/usr/bin/env python3\nimport sys, time\nprint("hello-from-program", sys.argv[1], flush=True)\ntime.sleep(600)\n',
    { mode: 0o755 },
  );

  const conf = path.join(dir, 'conman.conf');
  fs.writeFileSync(
    conf,
    [
      `SERVER port=${port}`,
      'SERVER loopback=on',
      `SERVER logdir="${logdir}"`,
      `SERVER pidfile="${path.join(dir, 'daemon.pid')}"`,
      'GLOBAL log="console.%N"',
      'GLOBAL logopts="sanitize,timestamp"',
      `CONSOLE name="tel1" dev="127.0.0.1:${telPort}"`,
      `CONSOLE name="vm1" dev="unix:${sock}" log="vms/%N-%D.log"`,
      `CONSOLE name="prog1" dev="${prog} %N"`,
      '',
    ].join('\n'),
  );
  const expected: Record<string, string> = {
    'console.tel1': 'hello-from-terminal-server',
    'vms/vm1-vm.sock.log': 'hello-from-vm',
    'console.prog1': 'hello-from-program prog1',
  };

  // 1. Debian's conmand
  const conmand = cleanup.child('conmand', ['-F', '-c', conf]);
  for (const [f, text] of Object.entries(expected)) await waitForFile(path.join(logdir, f), text, 30000);
  await conmand.stop();
  const before: Record<string, number> = {};
  for (const f of Object.keys(expected)) before[f] = fs.statSync(path.join(logdir, f)).size;
  const conmanFiles = listFiles(logdir);

  // 2. conchd on the very same file
  const conchd = cleanup.child(process.execPath, [CONCHD, '-F', '-c', conf]);
  await conchd.waitOutput(/Listening on TCP port/);
  for (const [f, text] of Object.entries(expected)) {
    const file = path.join(logdir, f);
    await waitFor(() => {
      const tail = fs.readFileSync(file, 'latin1').slice(before[f]);
      return tail.includes('log opened') && tail.includes(text);
    }, `conchd to append "${text}" to ${f}`, 30000);
    const tail = fs.readFileSync(file, 'latin1').slice(before[f]);
    // logopts=timestamp: the greeting line carries a `YYYY-MM-DD HH:MM:SS ` stamp
    assert.match(tail, new RegExp(`\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d ${text}`), `${f}: ${JSON.stringify(tail)}`);
  }
  assert.deepEqual(listFiles(logdir), conmanFiles, 'conchd wrote no other log files than conmand did');
  await conchd.stop();
});

function listFiles(dir: string, prefix = ''): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? listFiles(path.join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`]))
    .sort();
}

// Pattern alerts on an IPMI console: conchd holds a conch-bmcsim BMC's SOL,
// and the simulated host, driven through the simulator's control channel
// (typing at its serial port), prints a panic line and reboots. The line
// reaches conchd in SOL packets; the alert fires once, with the typed command
// (whose echo quotes the panic text but is not anchored like the kernel's
// line) in its context and not firing; the reboot's `reboot: Restarting
// system` and boot banner make one reboot alert with a count.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cleanup, waitForFile } from './helpers/wait.js';
import { startConchd } from './helpers/conchd.js';
import { control, startBmcsim } from './bmcsim-rig.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

test('an IPMI console (conch-bmcsim): a panic printed by the host fires once, a reboot fires the reboot rule', async () => {
  const sim = await startBmcsim(cleanup, 1, ['--heartbeat', '0', '--no-boot']);
  const dir = cleanup.dir('conch-alerts-ipmi-');
  const rules = path.join(dir, 'alerts.rules');
  fs.writeFileSync(rules, 'rule sentinel notice holddown=0 after=0 /^SENTINEL [0-9]+$/\n');
  const d = await startConchd(cleanup, `console name="node01" dev="ipmi:127.0.0.1:${sim.basePort}" ipmiopts="U:admin,P:password,C:3" log="%N.log"\n`, {
    dir,
    extraHeader: `server alerts="${rules}"\n`,
  });
  const log = path.join(d.logdir, 'node01.log');
  await waitForFile(log, /connected to/, 30000);
  const type = async (text: string): Promise<void> => {
    const r = await control(sim, 'POST', '/bmcs/node01/input', { data: text });
    assert.equal(r.status, 200, JSON.stringify(r.json));
  };
  await type('\r');
  await waitForFile(log, 'node01 login:', 30000);
  await type('root\r');
  await waitForFile(log, 'Password:', 30000);
  await type('secret\r');
  await waitForFile(log, 'root@node01:~# ', 30000);

  await type('echo Kernel panic - not syncing: Fatal exception in interrupt\r');
  await d.child.waitOutput('Console [node01] alert kernel-panic (crit): Kernel panic - not syncing: Fatal exception in interrupt', 30000);
  await type('echo SENTINEL 1\r');
  await d.child.waitOutput('Console [node01] alert sentinel (notice): SENTINEL 1', 30000);
  const fired = d.child.output.split('\n').filter((l) => /Console \[node01\] alert \S+ \(\w+\): /.test(l));
  assert.deepEqual(fired.map((l) => l.replace(/^.*alert (\S+).*$/, '$1')), ['kernel-panic', 'sentinel'], 'the typed command line did not fire');
  await waitForFile(log, '<ConMan> Console [node01] alert kernel-panic (crit): Kernel panic - not syncing: Fatal exception in interrupt', 30000);

  await type('reboot\r');
  await d.child.waitOutput('Console [node01] alert reboot (notice): reboot: Restarting system', 30000);
  // the boot banner that follows counts into the same alert (hold-down 5 min): no second line
  await waitForFile(log, /Linux version 6\.1\.0-conch[^\r]*\r\n[\s\S]*node01 login:/, 30000);
  await type('x\r'); // the login prompt: any user,
  await type('x\r'); // any password
  await type('echo SENTINEL 2\r');
  await d.child.waitOutput('Console [node01] alert sentinel (notice): SENTINEL 2', 30000);
  assert.equal(d.child.output.split('\n').filter((l) => /alert reboot \(notice\): /.test(l)).length, 1);
  await d.child.stop();
});

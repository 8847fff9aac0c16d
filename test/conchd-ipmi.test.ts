// conchd with an `ipmi:` console on the real ipmi_sim (OpenIPMI), as an
// operator runs it: host output in the log, typing and break through the
// Debian conman client, and nothing left active on the BMC after shutdown.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Cleanup, waitFor, waitForFile } from './helpers/wait.js';
import { startConchd } from './helpers/conchd.js';
import { startSim, SIM_PASSWORD, SIM_USER } from './helpers/ipmi-sim.js';
import { conman } from './helpers/protocol-harness.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

// every suite runs with the IPMI sessions on the main thread and on IPMI threads
for (const threads of [0, 2])
  test(`an ipmi: console on ipmi_sim: log, type, break, and a clean BMC after conchd stops (ipmithreads=${threads})`, async () => {
  const sim = await startSim(cleanup);
  // credentials in a conman.pswd-style file, not in conman.conf
  const dir = cleanup.dir();
  const pswd = path.join(dir, 'conman.pswd');
  fs.writeFileSync(pswd, `127\\.0\\.0\\.1 : ${SIM_USER} : ${SIM_PASSWORD}\n`, { mode: 0o600 });
  const d = await startConchd(
    cleanup,
    `server pswdfile="${pswd}"\nconsole name="bmc1" dev="ipmi:127.0.0.1:${sim.bmcPort}" ipmiopts="C:3" log="%N.log"\n`,
    { dir, extraHeader: `server ipmithreads=${threads}\n` },
  );
  const log = path.join(d.logdir, 'bmc1.log');
  await waitForFile(log, `Console [bmc1] connected to <127.0.0.1:${sim.bmcPort}>`, 30000);
  sim.host.write('kernel: hello from the host behind the BMC\r\n');
  await waitForFile(log, 'hello from the host behind the BMC', 30000);

  const a = conman(cleanup, d.port, 'bmc1');
  await a.opened('bmc1');
  a.type('uptime\r');
  await waitFor(() => sim.host.received.includes('uptime\r'), 'typed input at the host', 30000);
  a.type('&B');
  a.type('t');
  // ipmi_sim hands a SOL break to its tcp: device as telnet BREAK (ff f3)
  await waitFor(() => sim.host.received.includes(Buffer.from([0xff, 0xf3, 0x74])), 'BREAK then t at the host', 30000);
  a.type('&.');
  assert.equal(await a.exited, 0);

  process.kill(d.child.proc.pid!, 'SIGTERM');
  assert.equal(await d.child.exited, 0);
  // Get Payload Activation Status (SOL): 01 00 00 = one instance possible, none active
  const status = execFileSync(
    'ipmitool',
    ['-I', 'lanplus', '-H', '127.0.0.1', '-p', String(sim.bmcPort), '-U', SIM_USER, '-P', SIM_PASSWORD, '-C', '3', 'raw', '0x06', '0x4a', '0x01', '0x01'],
    { encoding: 'utf8', timeout: 30000 },
  );
  assert.equal(status.trim(), '01 00 00');
  assert.ok(!d.child.output.includes(SIM_PASSWORD), 'no password in the daemon log');
  assert.ok(!fs.readFileSync(log, 'latin1').includes(SIM_PASSWORD), 'no password in the console log');
});

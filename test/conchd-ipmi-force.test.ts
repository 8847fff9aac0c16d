// Operator force end to end on the real ipmi_sim: a person's ipmitool takes
// the console's SOL, conchd (polite) leaves it alone, and an operator who
// attaches with `conch -f` takes it back; the console log names the operator,
// host output reaches the conch client again and typing reaches the host.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cleanup, waitFor, waitForFile } from './helpers/wait.js';
import { startConchd } from './helpers/conchd.js';
import { ipmitool, IpmitoolSol, startSim, SIM_PASSWORD, SIM_USER } from './helpers/ipmi-sim.js';
import { conchPty } from './client-rig.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

// every suite runs with the IPMI sessions on the main thread and on IPMI threads
for (const threads of [0, 2])
  test(`conch -f takes SOL back from ipmitool and the log says who did (ipmithreads=${threads})`, { timeout: 240000 }, async () => {
  const sim = await startSim(cleanup);
  const d = await startConchd(
    cleanup,
    `console name="bmc1" dev="ipmi:127.0.0.1:${sim.bmcPort}" ipmiopts="U:${SIM_USER},P:${SIM_PASSWORD},C:3" log="%N.log"\n`,
    { extraHeader: `server ipmithreads=${threads}\n` },
  );
  const log = path.join(d.logdir, 'bmc1.log');
  await waitForFile(log, `Console [bmc1] connected to <127.0.0.1:${sim.bmcPort}>`, 30000);
  sim.host.write('host: before the takeover\r\n');
  await waitForFile(log, 'host: before the takeover', 30000);

  // a person takes the console with ipmitool (deactivate, then activate)
  const deact = await ipmitool(sim.bmcPort, cleanup, 'sol', 'deactivate');
  assert.equal(deact.proc.exitCode, 0, deact.output);
  const person = new IpmitoolSol(sim.bmcPort, cleanup);
  await person.operational();
  await waitForFile(log, /SOL session taken over by another client at /, 30000);
  sim.host.write('host: for the person\r\n');
  await waitFor(() => person.out.includes('host: for the person'), 'host output at ipmitool', 30000);

  // the operator forces
  const op = conchPty(cleanup, ['-d', `127.0.0.1:${d.port}`, '-f', 'bmc1']);
  await op.waitOutput('Connection to console [bmc1] opened', 30000);
  const text = await waitForFile(log, /SOL session resumed at [^\r\n]* after \d+s/, 30000);
  assert.match(text, /SOL session taken back from another client by <[^>@]+@[^>]+>/);
  // the operator sees the same line
  await op.waitOutput('SOL session taken back from another client by <', 30000);

  sim.host.write('host: back at conch\r\n');
  await op.waitOutput('host: back at conch', 30000);
  await waitForFile(log, 'host: back at conch', 30000);
  sim.host.received = Buffer.alloc(0);
  op.write('whoami\r');
  await waitFor(() => sim.host.received.toString('latin1').includes('whoami\r'), 'operator input at the host', 30000);
  // what the person typed at ipmitool no longer reaches the host; conch keeps SOL
  assert.ok(!fs.readFileSync(log, 'latin1').includes('host: for the person'), 'output meant for ipmitool is not in the log');

  op.write('&.');
  await op.waitExit(30000);
  await d.child.stop();
  // (the daemon warns that the config file "holds IPMI passwords": that word is not the secret)
  assert.ok(!d.child.output.replaceAll('IPMI passwords', '').includes(SIM_PASSWORD), 'no password in the daemon log');
  assert.ok(!fs.readFileSync(log, 'latin1').includes(SIM_PASSWORD), 'no password in the console log');
});

// Keepalive on the real ipmi_sim: it drops a session that carries only SOL
// for 30 s (conmand's ~30 s of console, then ~60 s of nothing). With host
// output every 5 s, a conchd console stays live for 3 minutes: every line
// arrives once, in order, and no disconnect is logged. No C: is configured,
// so conch picks the suite itself: 3, and the log says so. (Own file: it is
// long, and runs in parallel with the other tests.)

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cleanup, waitForFile } from './helpers/wait.js';
import { startConchd } from './helpers/conchd.js';
import { startSim, SIM_PASSWORD, SIM_USER } from './helpers/ipmi-sim.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

const RUN_MS = 180_000;
const EVERY_MS = 5_000;

test('a conchd console on ipmi_sim stays live for 3 minutes with output every 5 s', { timeout: RUN_MS + 120_000 }, async () => {
  const sim = await startSim(cleanup);
  const d = await startConchd(cleanup, `console name="bmc1" dev="ipmi:127.0.0.1:${sim.bmcPort}" ipmiopts="U:${SIM_USER},P:${SIM_PASSWORD}" log="%N.log"\n`);
  const log = path.join(d.logdir, 'bmc1.log');
  await waitForFile(log, `Console [bmc1] connected to <127.0.0.1:${sim.bmcPort}>`, 30000);
  assert.match(fs.readFileSync(log, 'latin1'), /IPMI session uses cipher suite 3\.\r\n/);

  // the host prints a numbered line every 5 s (the stimulus, not a wait)
  const lines = Math.floor(RUN_MS / EVERY_MS) + 1;
  let n = 0;
  sim.host.write(`tick ${n++} of ${lines}\r\n`);
  const timer = setInterval(() => {
    if (n < lines) sim.host.write(`tick ${n++} of ${lines}\r\n`);
  }, EVERY_MS);
  cleanup.add(() => clearInterval(timer));
  const text = await waitForFile(log, `tick ${lines - 1} of ${lines}\r\n`, RUN_MS + 60_000);
  clearInterval(timer);

  const got = [...text.matchAll(/tick (\d+) of \d+/g)].map((m) => Number(m[1]));
  assert.deepEqual(got, [...Array(lines).keys()], 'every line once, in order');
  assert.ok(!/disconnected from/.test(text), `no disconnect in the log:\n${text.slice(-600)}`);
  assert.ok(!/taken over/.test(text), 'no false takeover');
  await d.child.stop();
});

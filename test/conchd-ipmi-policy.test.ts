// The steal policies `never` and `always` in a real conchd on a conch-bmcsim
// fleet, set as conman.conf extensions both ways: GLOBAL solsteal=always for
// every console, CONSOLE solsteal=never for one. `never` stays off after a
// takeover even once SOL is free, until an operator forces with `conman -f`;
// `always` takes SOL from another client at start-up and after a takeover.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cleanup, waitFor, waitForFile } from './helpers/wait.js';
import { startConchd } from './helpers/conchd.js';
import { conman } from './helpers/protocol-harness.js';
import { control, startBmcsim, type SimFleet } from './bmcsim-rig.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

function seqs(text: string, name: string): number[] {
  return [...text.matchAll(new RegExp(`\\[seq (\\d+)\\] ${name} heartbeat`, 'g'))].map((m) => Number(m[1]));
}

async function bmc(sim: SimFleet, name: string): Promise<{ solOwner: string | null; counters: Record<string, number> }> {
  const r = await control(sim, 'GET', `/bmcs/${name}`);
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return r.json;
}

async function steal(sim: SimFleet, name: string, seconds: number): Promise<void> {
  const r = await control(sim, 'POST', `/bmcs/${name}/steal`, { seconds });
  assert.equal(r.status, 200, JSON.stringify(r.json));
}

const read = (f: string): string => (fs.existsSync(f) ? fs.readFileSync(f, 'latin1') : '');

// every suite runs with the IPMI sessions on the main thread and on IPMI threads
for (const threads of [0, 2])
  test(`solsteal=never waits for an operator; solsteal=always takes SOL at start-up and after a takeover (ipmithreads=${threads})`, { timeout: 300000 }, async () => {
  const sim = await startBmcsim(cleanup, 2, ['--heartbeat', '1']);
  // someone already holds node02's SOL when conchd starts
  await steal(sim, 'node02', 600);
  const conf =
    'global solsteal=always\n' +
    `console name="node01" dev="ipmi:127.0.0.1:${sim.basePort}" ipmiopts="U:admin,P:password,C:3" solsteal=never log="%N.log"\n` +
    `console name="node02" dev="ipmi:127.0.0.1:${sim.basePort + 1}" ipmiopts="U:admin,P:password,C:3" log="%N.log"\n`;
  const d = await startConchd(cleanup, conf, { extraHeader: `server ipmithreads=${threads}\n` });
  const log1 = path.join(d.logdir, 'node01.log');
  const log2 = path.join(d.logdir, 'node02.log');

  // always (from GLOBAL): taken at once, and the log says so
  await waitForFile(log2, 'SOL session taken back from another client at start-up (steal policy "always")', 30000);
  await waitFor(() => seqs(read(log2), 'node02').length >= 3, 'node02 heartbeats after the start-up takeover', 30000);
  assert.notEqual((await bmc(sim, 'node02')).solOwner, 'injected-steal');

  await waitFor(() => seqs(read(log1), 'node01').length >= 3, 'node01 heartbeats', 30000);

  // both are taken over; never leaves node01 alone, always takes node02 back
  await steal(sim, 'node01', 3);
  await steal(sim, 'node02', 600);
  await waitForFile(log1, /SOL session taken over by another client at /, 30000);
  await waitForFile(log1, 'SOL session left to the other client (steal policy "never")', 30000);
  // (no resume line at start-up: there was no gap; this one follows the take-back)
  const t2 = await waitForFile(log2, /SOL session resumed at [^\r\n]* after /, 40000);
  assert.match(t2, /SOL session taken over by another client at [^\r\n]*\r\n[^]*SOL session taken back from another client \(steal policy "always"\)/);
  const n2 = seqs(t2, 'node02').length;
  await waitFor(() => seqs(read(log2), 'node02').length >= n2 + 3, 'node02 heartbeats after taking it back', 30000);
  assert.notEqual((await bmc(sim, 'node02')).solOwner, 'injected-steal');

  // node01's SOL is free again, and conchd has polled it several times since: still off
  await waitFor(async () => (await bmc(sim, 'node01')).solOwner === null, 'the other client on node01 to leave', 30000);
  const p0 = (await bmc(sim, 'node01')).counters.packetsIn;
  // never: only the keepalive, every 8-12 s
  await waitFor(async () => (await bmc(sim, 'node01')).counters.packetsIn >= p0 + 4, 'four more keepalives of node01', 90000);
  assert.equal((await bmc(sim, 'node01')).solOwner, null, 'never: SOL not reactivated');
  const before = read(log1);
  assert.ok(!before.includes('SOL session resumed'), 'never: no resume without an operator');

  // the operator forces with the Debian conman client
  const op = conman(cleanup, d.port, '-f', 'node01');
  await op.opened('node01');
  const t1 = await waitForFile(log1, /SOL session resumed at [^\r\n]* after /, 30000);
  assert.match(t1, /SOL session reactivated by <[^>@]+@[^>]+>/);
  await op.waitOutput(/\[seq \d+\] node01 heartbeat/, 30000);
  assert.notEqual((await bmc(sim, 'node01')).solOwner, null);
  op.type('&.');
  assert.equal(await op.exited, 0);
  await d.child.stop();
});

// conchd with its IPMI consoles on IPMI threads (`server ipmithreads=`):
// consoles dealt to two threads each log every line, take typing from the
// Debian conman client, sit out a takeover and close their BMC sessions at
// shutdown, as on the main thread.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cleanup, waitFor, waitForFile } from './helpers/wait.js';
import { startConchd } from './helpers/conchd.js';
import { conman } from './helpers/protocol-harness.js';
import { control, startBmcsim } from './bmcsim-rig.js';
import { autoIpmiThreads } from '../src/devices/ipmi-threads.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

/** The [seq N] numbers of `name`'s heartbeat lines in a log, in order. */
function seqs(text: string, name: string): number[] {
  return [...text.matchAll(new RegExp(`\\[seq (\\d+)\\] ${name} heartbeat`, 'g'))].map((m) => Number(m[1]));
}

test('ipmithreads=2: six BMCs on two IPMI threads log every line, echo typing, sit out a takeover, close cleanly', async () => {
  const n = 6;
  const sim = await startBmcsim(cleanup, n, ['--heartbeat', '1']);
  const names = Array.from({ length: n }, (_, i) => `node0${i + 1}`);
  const conf =
    'server ipmithreads=2\n' +
    names.map((name, i) => `console name="${name}" dev="ipmi:127.0.0.1:${sim.basePort + i}" ipmiopts="U:admin,P:password" log="%N.log"\n`).join('');
  const d = await startConchd(cleanup, conf);
  await d.child.waitOutput('conchd started with 6 consoles (IPMI on 2 threads)', 30000);
  const logs = names.map((name) => path.join(d.logdir, `${name}.log`));
  for (const [i, log] of logs.entries()) {
    await waitFor(() => fs.existsSync(log) && seqs(fs.readFileSync(log, 'latin1'), names[i]!).length >= 3, `heartbeats in ${log}`, 30000);
  }

  // consoles are dealt in turn: node05 runs on the first thread, node06 on the second
  for (const name of ['node05', 'node06']) {
    const a = conman(cleanup, d.port, name);
    await a.opened(name);
    a.type(`typed-at-${name}`);
    await a.waitOutput(`typed-at-${name}`, 30000);
    a.type('&.');
    assert.equal(await a.exited, 0);
    await waitForFile(path.join(d.logdir, `${name}.log`), `typed-at-${name}`, 30000);
  }

  // someone else takes node04's SOL (second thread) for 6 seconds
  const r = await control(sim, 'POST', '/bmcs/node04/steal', { seconds: 6 });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  await waitForFile(logs[3]!, /SOL session taken over by another client at /, 25000);
  await waitForFile(logs[3]!, /SOL session resumed at [^\r\n]* after /, 40000);

  await d.child.stop();
  for (const [i, log] of logs.entries()) {
    const got = seqs(fs.readFileSync(log, 'latin1'), names[i]!);
    // nothing duplicated or out of order; no gap except while node04's SOL was held elsewhere
    for (let k = 1; k < got.length; k++) assert.ok(got[k]! > got[k - 1]!, `${names[i]}: seq ${got[k]} after ${got[k - 1]}`);
    if (i !== 3) assert.deepEqual(got, got.map((_, k) => got[0]! + k), `${names[i]} has no gap`);
  }
  // every BMC saw its session closed: no SOL owner, no session left
  const bmcs = (await control(sim, 'GET', '/bmcs')).json as { name: string; sessions: number; solOwner: string | null }[];
  for (const b of bmcs) assert.deepEqual([b.name, b.sessions, b.solOwner], [b.name, 0, null]);
});

test('a few IPMI consoles stay on the main thread unless ipmithreads says otherwise', async () => {
  const sim = await startBmcsim(cleanup, 1, ['--heartbeat', '1']);
  const line = `console name="node01" dev="ipmi:127.0.0.1:${sim.basePort}" ipmiopts="U:admin,P:password" log="%N.log"\n`;
  for (const [setting, said] of [
    ['', /conchd started with 1 console\r?\n/],
    ['server ipmithreads=1\n', 'conchd started with 1 console (IPMI on 1 thread)'],
  ] as const) {
    const d = await startConchd(cleanup, setting + line);
    await d.child.waitOutput(said, 30000);
    await waitFor(() => seqs(fs.readFileSync(path.join(d.logdir, 'node01.log'), 'latin1'), 'node01').length >= 2, `heartbeats with "${setting.trim()}"`, 30000);
    await d.child.stop();
  }
});

test('ipmithreads=auto: none below 500 IPMI consoles, then one per 500, at least two, at most one per CPU', () => {
  assert.deepEqual(
    [0, 1, 499, 500, 1000, 1001, 5000, 10000].map((n) => autoIpmiThreads(n, 2)),
    [0, 0, 0, 2, 2, 2, 2, 2],
  );
  assert.deepEqual([500, 1500, 2000, 10000].map((n) => autoIpmiThreads(n, 8)), [2, 3, 4, 8]);
  assert.equal(autoIpmiThreads(5000, 1), 1);
});

// conchd on a conch-bmcsim fleet: cipher suites 3 and 17 (ipmi_sim has no
// SHA-256), every sequence-numbered line logged once and in order, and the
// polite steal policy when someone else takes a BMC's SOL for a while.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cleanup, waitFor, waitForFile } from './helpers/wait.js';
import { startConchd } from './helpers/conchd.js';
import { control, startBmcsim } from './bmcsim-rig.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

/** The [seq N] numbers of `name`'s heartbeat lines in a log, in order. */
function seqs(text: string, name: string): number[] {
  return [...text.matchAll(new RegExp(`\\[seq (\\d+)\\] ${name} heartbeat`, 'g'))].map((m) => Number(m[1]));
}

// every suite runs with the IPMI sessions on the main thread and on IPMI threads
for (const threads of [0, 2])
  test(`suites 3 and 17 log every heartbeat once; a steal is logged, waited out and resumed (ipmithreads=${threads})`, async () => {
  const sim = await startBmcsim(cleanup, 2, ['--heartbeat', '1']);
  const conf = [0, 1]
    .map((i) => {
      const suite = i === 0 ? 3 : 17;
      return `console name="node0${i + 1}" dev="ipmi:127.0.0.1:${sim.basePort + i}" ipmiopts="U:admin,P:password,C:${suite}" log="%N.log"\n`;
    })
    .join('');
  const d = await startConchd(cleanup, conf, { extraHeader: `server ipmithreads=${threads}\n` });
  const logs = [1, 2].map((i) => path.join(d.logdir, `node0${i}.log`));
  for (const [i, log] of logs.entries()) {
    await waitFor(() => fs.existsSync(log) && seqs(fs.readFileSync(log, 'latin1'), `node0${i + 1}`).length >= 5, `heartbeats in ${log}`, 30000);
  }

  // someone else takes node02's SOL for 8 seconds
  const r = await control(sim, 'POST', '/bmcs/node02/steal', { seconds: 8 });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  await waitForFile(logs[1]!, /SOL session taken over by another client at /, 25000);
  // conch waits until the other client has gone, then resumes and says how long it was away
  const text = await waitForFile(logs[1]!, /SOL session resumed at [^\r\n]* after /, 40000);
  const tail = text.slice(text.lastIndexOf('SOL session resumed'));
  await waitFor(() => seqs(fs.readFileSync(logs[1]!, 'latin1').slice(text.length - tail.length), 'node02').length >= 2, 'heartbeats after the resume', 20000);

  await d.child.stop();
  for (const [i, log] of logs.entries()) {
    const got = seqs(fs.readFileSync(log, 'latin1'), `node0${i + 1}`);
    // nothing duplicated and nothing out of order; gaps only while SOL was held elsewhere (node02)
    for (let k = 1; k < got.length; k++) assert.ok(got[k]! > got[k - 1]!, `node0${i + 1}: seq ${got[k]} after ${got[k - 1]}`);
    if (i === 0) assert.deepEqual(got, got.map((_, k) => got[0]! + k), 'node01 (never stolen) has no gap');
  }
});

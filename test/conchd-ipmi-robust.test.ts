// conchd against BMCs that misbehave (conch-bmcsim control channel): one
// restarts (every session gone, silent for a few seconds): conch logs the
// disconnect and reconnects when it is back. The other loses 10 % of the
// datagrams each way for a while: the console log still has every
// sequence-numbered host line exactly once, in order.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cleanup, waitFor, waitForFile } from './helpers/wait.js';
import { startConchd } from './helpers/conchd.js';
import { control, startBmcsim } from './bmcsim-rig.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

function seqs(text: string, name: string): number[] {
  return [...text.matchAll(new RegExp(`\\[seq (\\d+)\\] ${name} heartbeat`, 'g'))].map((m) => Number(m[1]));
}
const read = (f: string): string => (fs.existsSync(f) ? fs.readFileSync(f, 'latin1') : '');

// every suite runs with the IPMI sessions on the main thread and on IPMI threads
for (const threads of [0, 2])
  test(`a BMC restart is logged and reconnected; 10 % packet loss loses and duplicates nothing (ipmithreads=${threads})`, { timeout: 300000 }, async () => {
  const sim = await startBmcsim(cleanup, 2, ['--heartbeat', '1']);
  const conf = [0, 1]
    .map((i) => `console name="node0${i + 1}" dev="ipmi:127.0.0.1:${sim.basePort + i}" ipmiopts="U:admin,P:password,C:3" log="%N.log"\n`)
    .join('');
  const d = await startConchd(cleanup, conf, { extraHeader: `server ipmithreads=${threads}\n` });
  const [log1, log2] = [1, 2].map((i) => path.join(d.logdir, `node0${i}.log`)) as [string, string];
  await waitFor(() => seqs(read(log1), 'node01').length >= 3 && seqs(read(log2), 'node02').length >= 3, 'heartbeats on both', 30000);

  // node02 loses 10 % of the datagrams in each direction
  let r = await control(sim, 'POST', '/bmcs/node02/faults', { loss: 0.1 });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  // node01's BMC restarts and stays silent for 5 s
  r = await control(sim, 'POST', '/bmcs/node01/restart', { seconds: 5 });
  assert.equal(r.status, 200, JSON.stringify(r.json));

  await waitForFile(log1, `Console [node01] disconnected from <127.0.0.1:${sim.basePort}>`, 60000);
  const afterDown = read(log1).length;
  await waitFor(() => read(log1).slice(afterDown).includes(`Console [node01] connected to <127.0.0.1:${sim.basePort}>`), 'node01 to reconnect', 90000);
  await waitFor(() => seqs(read(log1).slice(afterDown), 'node01').length >= 3, 'node01 heartbeats after the restart', 30000);
  assert.match(d.child.output, /node01\] disconnected from [^\n]*: [^\n]*no answer/, 'the daemon log says why');

  // enough lines through the lossy link, and the faults really bit
  const n2 = seqs(read(log2), 'node02').length;
  await waitFor(() => seqs(read(log2), 'node02').length >= n2 + 30, '30 heartbeats on node02 under loss', 90000);
  const st = await control(sim, 'GET', '/bmcs/node02');
  assert.ok(st.json.counters.lostInjected > 0, 'datagrams were dropped');
  r = await control(sim, 'POST', '/bmcs/node02/faults', { loss: 0 });
  assert.equal(r.status, 200);
  const n3 = seqs(read(log2), 'node02').length;
  await waitFor(() => seqs(read(log2), 'node02').length >= n3 + 3, 'node02 heartbeats after the loss', 30000);

  await d.child.stop();
  const got2 = seqs(read(log2), 'node02');
  assert.deepEqual(got2, got2.map((_, k) => got2[0]! + k), 'node02: every line once, in order');
  assert.ok(!read(log2).includes('disconnected'), 'node02 stayed connected');
  const got1 = seqs(read(log1), 'node01');
  for (let k = 1; k < got1.length; k++) assert.ok(got1[k]! > got1[k - 1]!, `node01: seq ${got1[k]} after ${got1[k - 1]}`);
});

// Smoke test of the fleet benchmark's smallest quick mode: conchd on a few
// simulated IPMI BMCs and telnet hosts, end to end. It checks that the
// command runs, cleans up and writes a results table; no timing is judged.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Cleanup } from './helpers/wait.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const FLEET = path.join(ROOT, 'dist/bench/fleet.js');

const cleanup = new Cleanup();
after(() => cleanup.run());

test('fleet --quick with conchd on 6 IPMI and 6 telnet consoles writes a table with no loss', { timeout: 120000 }, async () => {
  const dir = cleanup.dir('conch-bench-fleet-');
  const out = path.join(dir, 'fleet.md');
  const run = cleanup.child(process.execPath, [FLEET, '--quick', '--sizes', '6', '--kinds', 'ipmi,telnet', '--daemons', 'conchd', '--steady', '4', '--settle', '0', '--steal', '1', '--out', out], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const code = await run.exited;
  assert.equal(code, 0, `fleet.js failed: ${run.output.slice(-1500)}`);
  const md = fs.readFileSync(out, 'utf8');
  // the runtime's floor, measured on this machine, under the RSS figures
  assert.match(md, /An idle Node\.js process that loads no code has a VmRSS of [1-9]\d*\.\d MiB here/);
  assert.match(md, /## IPMI SOL consoles/);
  assert.match(md, /## telnet consoles/);
  // both runs logged every [seq] line the hosts printed
  const rows = md.split('\n').filter((l) => /^\| 6 \| conchd \|/.test(l));
  assert.equal(rows.length, 2, md);
  for (const r of rows) assert.match(r, /\| 0 of \d+ \| 0 \| 0 \|/, r);
  // every key's echo, split by whether the kernel's memory reclaim ran meanwhile (bench/kernel-reclaim.ts)
  assert.match(md, /Kernel memory-reclaim threads: [^\n]+\./);
  assert.match(md, /## Slow keys and the kernel's memory reclaim\n[^#]+### IPMI SOL consoles\n[^#]+### telnet consoles\n/);
  const slow = md.split('\n').filter((l) => /^\| 6 \| (conchd, 1 client|relay echo|bare echo)/.test(l));
  assert.equal(slow.length, 6, md); // 1-client typist, bare and relay floors, for IPMI and for telnet
  for (const r of slow) assert.match(r, /^\| 6 \| [^|]+ \| 20 \| \d+ \| \d+ \| \d+ \| \d+\.\d\d \|/, r);
  assert.match(md, /ipmi:\n- N=6, zero loss: met/);
  assert.match(md, /telnet:\n- N=6, zero loss: met/);
});

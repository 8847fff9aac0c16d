// Smoke test of the fleet benchmark's smallest quick mode: conchd on a few
// simulated IPMI BMCs and telnet hosts, end to end. It checks that the
// command runs, cleans up and writes its results tables with numbers in them
// and no loss; no timing is judged, and no prose is read (the report may be
// reworded). The typing pauses come from CONCH_BENCH_SEED, logged here.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cleanup } from './helpers/wait.js';
import { ROOT } from './helpers/conchd.js';
import { column, mdTables, numbers } from './helpers/markdown.js';
import { seedFrom } from './helpers/seeded.js';

const FLEET = path.join(ROOT, 'dist/bench/fleet.js');

const cleanup = new Cleanup();
after(() => cleanup.run());

test('fleet --quick with conchd on 6 IPMI and 6 telnet consoles writes its tables, with no loss', { timeout: 120000 }, async (t) => {
  const seed = seedFrom('CONCH_BENCH_SEED');
  t.diagnostic(`seed ${seed} (replay with CONCH_BENCH_SEED=${seed})`);
  const dir = cleanup.dir('conch-bench-fleet-');
  const out = path.join(dir, 'fleet.md');
  const run = cleanup.child(process.execPath, [FLEET, '--quick', '--sizes', '6', '--kinds', 'ipmi,telnet', '--daemons', 'conchd', '--steady', '4', '--settle', '0', '--steal', '1', '--out', out], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, CONCH_BENCH_SEED: String(seed) },
  });
  const code = await run.exited;
  assert.equal(code, 0, `fleet.js failed: ${run.output.slice(-1500)}`);
  assert.ok(run.stderr.includes(String(seed)), 'the benchmark logs its seed');
  const md = fs.readFileSync(out, 'utf8');
  const tables = mdTables(md);

  // one results table per console type, each with conchd's row for N=6: all
  // logging, figures that parse, every [seq] line the hosts printed logged once
  const results = tables.filter((x) => x.columns.some((c) => c.includes('lines lost')));
  assert.equal(results.length, 2, md);
  for (const x of results) {
    assert.equal(x.rows.length, 1, md);
    const row = x.rows[0]!;
    assert.deepEqual(row.slice(0, 2), ['6', 'conchd']);
    for (const c of ['all logging', 'CPU s/min', 'RSS MiB', 'RSS/console MiB']) numbers(row[column(x, c)]!, 1);
    const [lost, expected] = numbers(row[column(x, 'lines lost')]!, 2);
    assert.equal(lost, 0, md);
    assert.ok(expected! > 0, md);
    assert.equal(row[column(x, 'lines doubled')], '0', md);
    for (const c of ['echo ms p50 / p99, 1 client', 'bare echo', 'relay echo']) numbers(row[column(x, c)]!, 2);
  }

  // every key's echo, split by whether the kernel's memory reclaim ran
  // meanwhile (bench/kernel-reclaim.ts): per console type, the 1-client
  // typist and the bare and relay floors beside it, 20 keys each
  const slow = tables.filter((x) => x.columns.some((c) => c.includes('met reclaim')));
  assert.equal(slow.length, 2, md);
  for (const x of slow) {
    assert.ok(x.rows.length >= 3, md);
    for (const row of x.rows) {
      assert.equal(row[0], '6');
      assert.equal(row[column(x, 'keys')], '20', row.join(' | '));
      for (const cell of row.slice(2)) numbers(cell, 1);
    }
  }
});

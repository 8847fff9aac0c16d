// Smoke test of the cluster benchmark (bench/cluster.ts) at a tiny size: 60
// simulated BMCs, a plain conchd, a real etcd and three nodes, one kill -9.
// It must run to the end, clean up, and write its tables: one summary row
// with numbers, every console of the killed node back, no BMC displacing a
// live session, and a row per process. No prose is read; the time targets
// are the benchmark's and test/cluster.test.ts's to judge.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cleanup, waitFor } from './helpers/wait.js';
import { ROOT } from './helpers/conchd.js';
import { column, mdTables, numbers } from './helpers/markdown.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

test('bench/cluster --quick (60 consoles, 3 nodes) writes its tables; every console back, no fights', { timeout: 240000 }, async () => {
  const dir = cleanup.dir('bench-cluster-');
  const out = path.join(dir, 'cluster.md');
  const bench = cleanup.child(process.execPath, [path.join(ROOT, 'dist/bench/cluster.js'), '--quick', '--consoles', '60', '--seconds', '8', '--warmup', '2', '--out', out], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TMPDIR: dir },
  });
  const code = await bench.exited;
  assert.equal(code, 0, `benchmark failed:\n${bench.output.slice(-3000)}`);
  const md = fs.readFileSync(out, 'utf8');
  const tables = mdTables(md);
  assert.equal(tables.length, 2, md);

  const [summary, procs] = tables as [(typeof tables)[0], (typeof tables)[0]];
  assert.equal(summary.rows.length, 1, md);
  const row = summary.rows[0]!;
  assert.deepEqual([row[column(summary, 'run')], row[column(summary, 'consoles')], row[column(summary, 'nodes')]], ['1', '60', '3'], md);
  for (const c of ['all owned and logging', 'plain CPU', 'node CPU', 'CPU ratio', 'plain RSS', 'node RSS', 'RSS ratio', 'etcd CPU']) numbers(row[column(summary, c)]!, 1);
  const [back, of] = numbers(row[column(summary, 'failed over')]!, 2);
  assert.ok(of! > 0 && back === of, `failed over: ${row[column(summary, 'failed over')]}`);
  const [min, p50, p99, max] = numbers(row[column(summary, 'failover s')]!, 4);
  assert.ok(min! <= p50! && p50! <= p99! && p99! <= max!, md);
  numbers(row[column(summary, 'claimed after')]!, 2);
  numbers(row[column(summary, 'lines lost')]!, 3);
  assert.equal(row[column(summary, 'live sessions displaced')], '0', md);
  assert.equal(row[column(summary, 'by another node')], '0', md);

  // the plain conchd, each node, etcd, and the simulator in each window
  assert.deepEqual(procs.rows.map((r) => r[column(procs, 'process')]), ['plain conchd', 'conch-bmcsim, plain window', 'node n1', 'node n2', 'node n3', 'etcd', 'conch-bmcsim'], md);
  for (const r of procs.rows) for (const c of ['CPU s/min', 'RSS MiB']) numbers(r[column(procs, c)]!, 1);

  // stdout is the same tables; its temporary directories (logs, etcd data) are gone
  assert.ok(md.endsWith(Buffer.from(bench.stdout, 'latin1').toString('utf8')), 'the file ends with what was printed');
  await waitFor(() => fs.readdirSync(dir).join(' ') === 'cluster.md', `only cluster.md left in ${dir}`);
});

// Smoke test of the latency benchmark (bench/latency.ts) in quick mode
// against conchd: it must run to the end, clean up, and print a table with
// numbers. No timing is judged (the benchmark judges its targets) and no
// prose is read: only the table's rows, columns and numbers.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cleanup, waitFor } from './helpers/wait.js';
import { ROOT } from './helpers/conchd.js';
import { column, mdTables, numbers } from './helpers/markdown.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

test('bench/latency --quick --conchd-only prints numeric rows for 1 and 50 clients', async () => {
  const dir = cleanup.dir('bench-latency-');
  const out = path.join(dir, 'latency.md');
  const bench = cleanup.child(process.execPath, [
    path.join(ROOT, 'dist/bench/latency.js'),
    '--quick',
    '--conchd-only',
    '--out',
    out,
  ], { env: { ...process.env, TMPDIR: dir } });
  const code = await bench.exited;
  assert.equal(code, 0, `benchmark failed:\n${bench.output}`);

  const tables = mdTables(bench.stdout);
  assert.equal(tables.length, 1, bench.stdout);
  const t = tables[0]!;
  assert.deepEqual(t.rows.map((r) => r.slice(0, 2)), [['conchd', '1'], ['conchd', '50']], bench.stdout);
  const samples = column(t, 'samples');
  for (const row of t.rows) {
    // every figure between the clients and the samples is a number of ms
    for (const cell of row.slice(2, samples)) numbers(cell, 1);
    // quick mode: 5 attaches and 30 keystrokes
    assert.deepEqual(row[samples]!.match(/\d+/g)?.map(Number), [5, 30], row.join(' | '));
  }
  assert.equal(fs.readFileSync(out, 'utf8'), bench.stdout);

  // The benchmark removed its temporary directories (configs, console sockets, logs).
  await waitFor(() => fs.readdirSync(dir).join(' ') === 'latency.md', `only latency.md left in ${dir}`);
});

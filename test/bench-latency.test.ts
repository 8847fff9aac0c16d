// Smoke test of the latency benchmark (bench/latency.ts) in quick mode
// against conchd: it must run to the end, clean up, and print a table with
// numbers. No timing assertions: the targets are judged by the benchmark.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cleanup, waitFor } from './helpers/wait.js';
import { ROOT } from './helpers/conchd.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

const NUMBER = /^\d+(\.\d+)?$/;

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

  const rows = bench.stdout.split('\n').filter((l) => l.startsWith('| conchd |'));
  assert.equal(rows.length, 2, bench.stdout);
  for (const [i, clients] of ['1', '50'].entries()) {
    const cells = rows[i]!.split('|').slice(1, -1).map((c) => c.trim());
    assert.equal(cells[1], clients, rows[i]);
    for (const cell of cells.slice(2, 8)) assert.match(cell, NUMBER, rows[i]);
    assert.match(cells[8]!, /^5 attaches, 30 keystrokes$/, rows[i]);
  }
  assert.match(bench.stdout, /Target for conchd .*\*\*(MET|NOT MET)\*\*/);
  assert.equal(fs.readFileSync(out, 'utf8'), bench.stdout);

  // The benchmark removed its temporary directories (configs, console sockets, logs).
  await waitFor(() => fs.readdirSync(dir).join(' ') === 'latency.md', `only latency.md left in ${dir}`);
});

// Smoke tests of the start and reload benchmarks (bench/start.ts,
// bench/reload.ts) at a tiny size: each must run to the end, clean up, and
// print its table with what a reader needs. The time targets are the
// benchmarks' to judge at full size; here only what must hold at any size:
// every console logging, no lines lost, no session opened for an untouched
// console.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { Cleanup } from './helpers/wait.js';
import { ROOT } from './helpers/conchd.js';
import { column, mdTables, numbers } from './helpers/markdown.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

async function run(script: string, args: string[]): Promise<string> {
  const dir = cleanup.dir('bench-smoke-');
  const bench = cleanup.child(process.execPath, [path.join(ROOT, 'dist/bench', script), ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TMPDIR: dir } });
  const code = await bench.exited;
  assert.equal(code, 0, `${script} failed:\n${bench.output.slice(-3000)}`);
  return bench.output;
}

test('bench/start at 30 consoles: two runs, every console activated and logging, the CPU and the round trip measured', { timeout: 180000 }, async () => {
  const out = await run('start.js', ['--consoles', '30', '--runs', '2']);
  const t = mdTables(out).find((x) => x.columns.some((c) => c.includes('all activated')));
  assert.ok(t, out);
  assert.equal(t.rows.length, 2, out);
  for (const row of t.rows) {
    const [activated] = numbers(row[column(t, 'all activated')]!, 1);
    const [logging] = numbers(row[column(t, 'all logging')]!, 1);
    assert.ok(activated! > 0 && activated! <= logging!, `activated ${activated} s, logging ${logging} s`);
    assert.ok(numbers(row[column(t, 'conchd CPU')]!, 1)[0]! > 0, out);
    assert.ok(numbers(row[column(t, 'twice')]!, 1)[0]! >= 0, out);
    numbers(row[column(t, 'round trip')]!, 3);
  }
});

test('bench/reload at 30 consoles (churn 10, on a CPU of their own): nothing lost, no session for the untouched', { timeout: 180000 }, async () => {
  const out = await run('reload.js', ['--consoles', '30', '--churn', '10', '--churn-own-cpu']);
  // (`prefix`: a regex for what comes before, e.g. an arrow the child's output decoding may have mangled)
  const value = (measure: string, prefix = ''): string => {
    const m = new RegExp(`^\\| ${prefix}${measure.replace(/[()]/g, '\\$&')}\\s*\\| ([^|]*)\\|`, 'm').exec(out);
    assert.ok(m, `no "${measure}" row in:\n${out}`);
    return m[1]!.trim();
  };
  assert.equal(value('summary line'), '10 added, 10 removed, 10 changed, 10 unchanged');
  assert.equal(value('lines lost on untouched consoles'), '0');
  assert.equal(value("removed consoles' logs closed"), '10 of 10');
  assert.equal(value('new IPMI sessions, untouched consoles'), '0 (0 SOL activations)');
  assert.match(value('new IPMI sessions, added and changed'), /^\d+ at 20 BMCs \(\d+ SOL activations\)$/);
  assert.match(value('new set in force', 'SIGHUP \\S+ '), /^\d+\.\d\d s$/);
});

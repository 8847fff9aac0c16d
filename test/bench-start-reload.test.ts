// Smoke tests of the start, reload and scale benchmarks (bench/start.ts,
// bench/reload.ts, bench/scale.ts) at a tiny size: each must run to the end, clean up, and
// print its table with what a reader needs. The time targets are the
// benchmarks' to judge at full size; here only what must hold at any size:
// every console logging, no lines lost, no session opened for an untouched
// console.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
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
    // the disk's cost of the creates a first start makes: seconds and their system CPU (30 take well under 5 ms: 0.00)
    const [wall, sys] = numbers(row[column(t, '30 creates')]!, 2);
    assert.ok(wall! >= 0 && sys! >= 0 && wall! < 60, `creates ${wall} s (${sys})`);
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

test('bench/scale --quick: two runs of 6 IPMI and 6 telnet consoles, of the IPMI floor and of a start, every figure against its floor, the worst marked', { timeout: 300000 }, async () => {
  const dir = cleanup.dir('bench-scale-');
  const file = path.join(dir, 'scale.md');
  await run('scale.js', ['--quick', '--runs', '2', '--ipmi', '6', '--telnet', '6', '--start', '10', '--out', file]);
  const md = fs.readFileSync(file, 'utf8');
  const tables = mdTables(md);
  const fleets = tables.filter((t) => t.columns[0] === 'figure' && t.columns.includes('met'));
  assert.equal(fleets.length, 2, md);
  for (const t of fleets) {
    assert.equal(t.columns.filter((c) => c.startsWith('run ')).length, 2, md);
    const row = (label: string): string[] => {
      const r = t.rows.find((x) => x[0]!.startsWith(label));
      assert.ok(r, `no "${label}" row in:\n${md}`);
      return r;
    };
    for (const label of ['echo p50, 1 client', 'echo p99, 1 client', 'echo p99, 10 clients', 'attach p99, 1 client']) {
      const r = row(label);
      const runs = [r[column(t, 'run 1')]!, r[column(t, 'run 2')]!];
      // value (floor) ratio×, the worst run in bold
      const parsed = runs.map((c) => /^\**([\d.]+) \(([\d.]+)\) ([\d.]+)×\**$/.exec(c));
      assert.ok(parsed.every(Boolean), `${label}: ${runs.join(' | ')}`);
      assert.equal(runs.filter((c) => c.startsWith('**')).length >= 1, true, `${label}: the worst run marked`);
      const worst = Math.max(...parsed.map((m) => Number(m![3])));
      assert.equal(r[column(t, 'worst')], `${worst.toFixed(2)}×`);
    }
    assert.equal(row('lines lost + doubled')[column(t, 'met')], 'yes', md);
    assert.ok(Number(row('RSS per console')[column(t, 'worst')]) > 0, md);
    // the daemon's own figures of the window: event-loop delay and collections, read by the probe in every thread
    for (const c of [column(t, 'run 1'), column(t, 'run 2')]) {
      assert.match(row('main thread: event-loop delay')[c]!, /^[\d.]+ \/ [\d.]+ \/ \d+$/, md);
      assert.match(row('main thread: scavenges')[c]!, /^[\d.]+\/s, [\d.]+ \/ [\d.]+; \d+, [\d.]+$/, md);
      assert.match(row('busiest IPMI thread (else worker): event-loop delay')[c]!, /^[\d.]+ \/ [\d.]+ \/ \d+$/, md);
    }
  }
  // IPMI only: the same typing through a relay that speaks SOL itself to a BMC of the typed-at simulator, measured beside the daemon
  const [ipmi, telnet] = fleets;
  const sol = ipmi!.rows.find((x) => x[0] === 'echo p50, 1 client, against the SOL floor ms');
  assert.ok(sol, md);
  for (const c of [column(ipmi!, 'run 1'), column(ipmi!, 'run 2')]) {
    const m = /^\**([\d.]+) \(([\d.]+)\) ([\d.]+)×\**$/.exec(sol[c]!);
    assert.ok(m && Number(m[2]) > 0, `SOL floor: ${sol[c]}`);
  }
  assert.ok(!telnet!.rows.some((x) => x[0]!.includes('SOL floor')), md);
  // the IPMI floor (bench/ipmi-floor.ts): the same load and typing through the fleet's IPMI work alone, against the same floors
  const floors = tables.filter((t) => t.columns.includes('within the target in its best run'));
  assert.equal(floors.length, 1, md);
  const fl = floors[0]!;
  for (const label of ['echo p50, 1 client ms', 'echo p99, 10 clients ms', 'attach p99, 1 client ms']) {
    const r = fl.rows.find((x) => x[0] === label);
    assert.ok(r, `no "${label}" row in the IPMI floor's table:\n${md}`);
    for (const c of [column(fl, 'run 1'), column(fl, 'run 2')]) assert.match(r[c]!, /^\**[\d.]+ \([\d.]+\) [\d.]+×\**$/, `${label}: ${r[c]}`);
    assert.match(r[column(fl, 'within the target in its best run')]!, /^(yes|no)$/, md);
  }
  const up = fl.rows.find((x) => x[0] === 'all SOL up after s');
  assert.ok(up && Number(up[column(fl, 'run 1')]) > 0 && Number(up[column(fl, 'run 2')]) > 0, md);
  const start = tables.find((t) => t.columns.some((c) => c.includes('all logging')));
  assert.ok(start, md);
  assert.equal(start.rows.length, 2, md);
});

// The benchmark's view of the kernel's memory-reclaim threads: which
// processes it counts (kernel threads with a reclaim name, not a user
// program that borrows one), how it adds up their CPU time, and how the
// results split slow keys by it.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cleanup } from './helpers/wait.js';
import { ReclaimMeter, reclaimDescription } from '../bench/kernel-reclaim.js';
import { floorNote, reclaimSplit } from '../bench/fleet-table.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

/** a /proc with the given processes: pid → [comm, ppid, ns on CPU] */
function fakeProc(procs: Record<number, [string, number, number]>): string {
  const root = cleanup.dir('conch-fake-proc-');
  for (const [pid, [comm, ppid, ns]] of Object.entries(procs)) {
    fs.mkdirSync(path.join(root, pid));
    fs.writeFileSync(path.join(root, pid, 'stat'), `${pid} (${comm}) S ${ppid} 0 0 0 -1 2129984 0 0 0 0\n`);
    fs.writeFileSync(path.join(root, pid, 'schedstat'), `${ns} 5000 12\n`);
  }
  fs.writeFileSync(path.join(root, 'uptime'), '1.0 1.0\n'); // not a process
  return root;
}

test('the meter counts kernel reclaim threads only, and their CPU time in ms', () => {
  const root = fakeProc({
    2: ['kthreadd', 0, 1_000_000],
    38: ['kcompactd0', 2, 2_000_000],
    83: ['kdamond.0', 2, 27_000_000],
    90: ['kworker/0:1', 2, 9_000_000], // a kernel thread, not reclaim
    4000: ['kswapd-lookalike', 1, 50_000_000], // a user program with a reclaim-like name
  });
  const m = ReclaimMeter.open(root);
  try {
    assert.deepEqual([...m.names].sort(), ['kcompactd0', 'kdamond.0']);
    assert.equal(m.cpuMs(), 29);
    // kdamond runs 4.5 ms more
    fs.writeFileSync(path.join(root, '83', 'schedstat'), '31500000 5000 13\n');
    assert.equal(m.cpuMs(), 33.5);
  } finally {
    m.close();
  }
  assert.match(reclaimDescription(root, path.join(root, 'no-damon')), /^(kcompactd0, kdamond\.0|kdamond\.0, kcompactd0)$/);
});

test('a machine without reclaim threads measures 0 ms and says so', () => {
  const root = fakeProc({ 1: ['init', 0, 5_000_000] });
  const m = ReclaimMeter.open(root);
  assert.deepEqual(m.names, []);
  assert.equal(m.cpuMs(), 0);
  m.close();
  // says so in words of its own, naming no thread
  const said = reclaimDescription(root);
  assert.ok(said.length > 0);
  assert.doesNotMatch(said, /kswapd|kcompactd|kdamond|init/);
});

test('the DAMON scheme is named where sysfs shows one that is on', () => {
  const root = fakeProc({ 83: ['kdamond.0', 2, 1] });
  const damon = path.join(root, 'damon');
  const scheme = path.join(damon, '0', 'contexts', '0', 'schemes', '0');
  fs.mkdirSync(path.join(scheme, 'quotas'), { recursive: true });
  fs.writeFileSync(path.join(damon, '0', 'state'), 'on\n');
  fs.writeFileSync(path.join(scheme, 'action'), 'pageout\n');
  fs.writeFileSync(path.join(scheme, 'quotas', 'ms'), '50\n');
  fs.writeFileSync(path.join(scheme, 'quotas', 'reset_interval_ms'), '1000\n');
  // the thread, the scheme's action and its time quota (the wording around them is the report's)
  const said = reclaimDescription(root, damon);
  assert.ok(said.startsWith('kdamond.0 '), said);
  assert.match(said, /\bpageout\b/);
  assert.deepEqual(said.slice('kdamond.0'.length).match(/\d+/g)?.map(Number), [50, 1000], said);
  fs.writeFileSync(path.join(damon, '0', 'state'), 'off\n');
  assert.equal(reclaimDescription(root, damon), 'kdamond.0');
});

test('slow keys are split by whether reclaim ran during them', () => {
  const echo = [1, 2, 12, 3, 15, 2, 11, 1];
  const reclaim = [0, 0, 4.2, 0, 0, 0.05, 2.0, 0.3];
  const x = reclaimSplit({ attach: [], echo, reclaim, lostFirstKeys: 0 })!;
  assert.equal(x.keys, 8);
  assert.equal(x.met, 3); // 4.2, 2.0, 0.3 (0.05 is under the 0.1 ms line)
  assert.equal(x.slow, 3); // 12, 15, 11
  assert.equal(x.slowMet, 2); // 12 and 11
  assert.equal(x.p99, 15);
  assert.equal(x.p99Clear, 15); // 15 came with no reclaim
  // a typist that did not record reclaim (older results): no split
  assert.equal(reclaimSplit({ attach: [], echo, lostFirstKeys: 0 }), undefined);
});

test("the verdict says when the do-nothing relay itself missed the echo target", () => {
  assert.equal(floorNote(undefined), '');
  assert.equal(floorNote(9.99), '');
  // a note with the relay's p99 in it (its wording is the report's)
  assert.ok(floorNote(12.5).includes('12.50'), floorNote(12.5));
  assert.ok(floorNote(10).length > 0); // 10 ms is over the target: it is "under 10 ms"
});

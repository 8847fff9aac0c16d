// The benchmark's simulators stand in for other machines and run at nice 19.
// Each process it starts has a session of its own, and with autogroup
// scheduling a process's niceness only weighs inside its session: the
// session's own niceness has to be set as well, or the simulator still
// takes half a CPU from the daemon. This checks both are set, on a real
// process, before the command runs.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { Cleanup } from './helpers/wait.js';
import { procStat, renice, withNice } from '../bench/fleet-proc.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

/** the niceness of a running process (field 19 of /proc/PID/stat) */
const niceOf = (pid: number): number => Number(procStat(pid)!.fields[16]);
/** its session's autogroup niceness, or null on a kernel without autogroup scheduling */
function autogroupNice(pid: number): number | null {
  try {
    const m = /nice (-?\d+)/.exec(fs.readFileSync(`/proc/${pid}/autogroup`, 'latin1'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}
const autogroups = fs.existsSync('/proc/self/autogroup');

test('withNice starts the command at nice 19 in a session whose autogroup is at 19 too', async () => {
  // the command prints its own view, so what is checked is the process that runs, not a wrapper
  const [cmd, args] = withNice('/bin/sh', ['-c', 'cat /proc/self/autogroup 2>/dev/null; echo "nice $(cut -d" " -f19 /proc/self/stat)"; sleep 30'], 19);
  const c = cleanup.child(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  // the line of its own (the autogroup line ends in "nice N" too)
  const out = await c.waitOutput(/^nice -?\d+\n/m, 10000);
  assert.match(out, /^nice 19$/m, out);
  if (autogroups) assert.match(out, /autogroup-\d+ nice 19/, out);
  assert.equal(niceOf(c.proc.pid!), 19);
  await c.stop();
});

test('withNice at 0 leaves the command as it is', () => {
  assert.deepEqual(withNice('/usr/bin/node', ['x.js'], 0), ['/usr/bin/node', ['x.js']]);
});

test('renice sets a running process and its autogroup', async () => {
  const c = cleanup.child('/bin/sleep', ['30'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const pid = c.proc.pid!;
  if (autogroups) assert.equal(autogroupNice(pid), 0);
  renice(pid, 19);
  assert.equal(niceOf(pid), 19);
  if (autogroups) assert.equal(autogroupNice(pid), 19);
  await c.stop();
});

// CPU and memory of a process and its descendants, read from /proc.
// CPU includes children that already exited and were waited for (cutime,
// cstime) and live descendants (their own utime+stime), so conmand's
// expect/ipmitool children count; threads are inside their process's figures.

import * as fs from 'node:fs';
import * as os from 'node:os';
import { execFileSync } from 'node:child_process';

const TICKS = 100; // USER_HZ on Linux

/** /proc/PID/stat: the name between the parentheses, then the fields after it (state, ppid, ...). */
export function procStat(pid: number, procRoot = '/proc'): { comm: string; fields: string[] } | null {
  try {
    const s = fs.readFileSync(`${procRoot}/${pid}/stat`, 'latin1');
    const close = s.lastIndexOf(')');
    return { comm: s.slice(s.indexOf('(') + 1, close), fields: s.slice(close + 2).split(' ') };
  } catch {
    return null; // gone
  }
}

const statFields = (pid: number): string[] | null => procStat(pid)?.fields ?? null;

/** The entries of `dir` named by a number, e.g. the pids in /proc (none where it cannot be read). */
export function numberedEntries(dir = '/proc'): number[] {
  try {
    return fs.readdirSync(dir).filter((e) => /^\d+$/.test(e)).map(Number);
  } catch {
    return [];
  }
}

/** Every live descendant of `root` (children, grandchildren, ...). */
export function descendants(root: number): number[] {
  const parent = new Map<number, number[]>();
  for (const e of numberedEntries('/proc')) {
    const f = statFields(e);
    if (!f) continue;
    const ppid = Number(f[1]);
    const kids = parent.get(ppid);
    if (kids) kids.push(e);
    else parent.set(ppid, [e]);
  }
  const out: number[] = [];
  const todo = [root];
  while (todo.length) {
    for (const k of parent.get(todo.pop()!) ?? []) {
      out.push(k);
      todo.push(k);
    }
  }
  return out;
}

/** CPU seconds (user+sys) of `pid` and its descendants, waited-for children included. */
export function treeCpuSeconds(pid: number): number {
  let ticks = 0;
  const own = statFields(pid);
  if (!own) return NaN;
  ticks += Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]);
  for (const k of descendants(pid)) {
    const f = statFields(k);
    if (f) ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks / TICKS;
}

/** a `Name: N kB` figure of a /proc/PID file, KiB (0 when the process is gone) */
function procKiB(pid: number, file: string, field: RegExp): number {
  try {
    const m = field.exec(fs.readFileSync(`/proc/${pid}/${file}`, 'latin1'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** `kib` of `pid` plus its live descendants, MiB */
function treeMiB(pid: number, kib: (pid: number) => number): number {
  let sum = kib(pid);
  for (const k of descendants(pid)) sum += kib(k);
  return sum / 1024;
}

/** VmRSS of `pid` plus its live descendants, MiB. */
export function treeRssMiB(pid: number): number {
  return treeMiB(pid, (p) => procKiB(p, 'status', /VmRSS:\s+(\d+) kB/));
}

/**
 * PSS of `pid` plus its live descendants, MiB: each page shared by k
 * processes counted 1/k in each, so that a thousand `ssh` processes are not
 * charged a thousand times for the libraries they share (as their summed
 * RSS is).
 */
export function treePssMiB(pid: number): number {
  return treeMiB(pid, (p) => procKiB(p, 'smaps_rollup', /^Pss:\s+(\d+) kB/m));
}

/** Follows a process tree over a window: CPU delta and the largest RSS seen. */
export class TreeMeter {
  private cpu0 = 0;
  private t0 = 0;
  peakRss = 0;
  constructor(readonly pid: number) {}
  start(): void {
    this.cpu0 = treeCpuSeconds(this.pid);
    this.t0 = Date.now();
    this.peakRss = treeRssMiB(this.pid);
  }
  sample(): void {
    this.peakRss = Math.max(this.peakRss, treeRssMiB(this.pid));
  }
  /** CPU seconds per minute of wall time since start(). */
  cpuPerMinute(): number {
    const wall = (Date.now() - this.t0) / 60000;
    return (treeCpuSeconds(this.pid) - this.cpu0) / wall;
  }
}

export function nofileLimits(): { soft: number; hard: number } {
  const m = /Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/.exec(fs.readFileSync('/proc/self/limits', 'latin1'));
  const v = (x: string | undefined): number => (x === undefined || x === 'unlimited' ? Infinity : Number(x));
  return { soft: v(m?.[1]), hard: v(m?.[2]) };
}

/**
 * Raise the open-file limit of a command towards `nofile` (conmand needs
 * several fds per console), up to the hard limit we have.
 */
export function withNofile(cmd: string, args: string[], nofile: number): [string, string[]] {
  const { soft, hard } = nofileLimits();
  const want = Math.min(nofile, hard);
  if (soft >= want || !fs.existsSync('/usr/bin/prlimit')) return [cmd, args];
  return ['/usr/bin/prlimit', [`--nofile=${want}:${Number.isFinite(hard) ? hard : want}`, '--', cmd, ...args]];
}

/**
 * `cmd args` at CPU niceness `nice`: its session's autogroup, then every
 * thread (nice(1)); as it is at 0. The benchmark starts each process in a
 * session of its own, and with autogroup scheduling (Debian's default,
 * /proc/sys/kernel/sched_autogroup_enabled) the CPU is shared between
 * sessions first: a process's own niceness only weighs against the other
 * threads of its session. A simulator at nice 19 in its own session still
 * took half a CPU from the daemon whenever both wanted one; the session's
 * niceness (/proc/PID/autogroup, set here before the command starts) is
 * what weighs against the daemon.
 */
export function withNice(cmd: string, args: string[], nice: number): [string, string[]] {
  if (nice === 0) return [cmd, args];
  const n = String(Math.trunc(nice));
  const script = `if [ -w /proc/self/autogroup ]; then echo ${n} > /proc/self/autogroup; fi; exec /usr/bin/nice -n ${n} "$0" "$@"`;
  return ['/bin/sh', ['-c', script, cmd, ...args]];
}

/** The same for a process already running (its main thread and its session's autogroup). */
export function renice(pid: number, nice: number): void {
  os.setPriority(pid, nice);
  try {
    fs.writeFileSync(`/proc/${pid}/autogroup`, String(Math.trunc(nice)));
  } catch {
    // no autogroup scheduling in this kernel: the process's own niceness is all there is
  }
}

/** The open-file limit the daemons get (for the results). */
export function nofileFor(nofile: number): number {
  const { soft, hard } = nofileLimits();
  return Math.max(soft, Math.min(nofile, hard));
}

/**
 * VmRSS of an idle Node.js process that loads no code (MiB): the least any
 * daemon written for this runtime can take, whatever it holds. The median
 * of three, each read after the process has sat idle for a second.
 */
export function idleNodeRssMiB(): number {
  const script = "setTimeout(() => process.stdout.write(require('fs').readFileSync('/proc/self/status', 'latin1').match(/VmRSS:\\s+(\\d+)/)[1]), 1000)";
  const xs = [0, 1, 2].map(() => Number(execFileSync(process.execPath, ['-e', script], { encoding: 'latin1' })) / 1024);
  return xs.sort((a, b) => a - b)[1]!;
}

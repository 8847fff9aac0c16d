// The kernel's memory-management threads, as the keystroke benchmarks see
// them. On this VM a DAMON thread (kdamond) pages out cold memory: it may
// take up to 50 ms of CPU a second, in runs of 2-15 ms that nothing on the
// machine preempts (sched_switch tracing, bench/results/fleet-findings-2026-12-05.md).
// Each of those runs leaves every process one CPU of two. The typists read
// how long these threads ran during each key, so that the results can say
// which slow keys came while one of them held a CPU.

import * as fs from 'node:fs';
import * as path from 'node:path';

/** Kernel threads that reclaim, compact or monitor memory; never on a console's path. */
const RECLAIM = /^(kdamond|kswapd|kcompactd|khugepaged)/;

/** A pid and its name, from /proc/PID/stat: "PID (COMM) STATE PPID ...". */
function statOf(procRoot: string, pid: string): { comm: string; ppid: number } | null {
  try {
    const s = fs.readFileSync(path.join(procRoot, pid, 'stat'), 'latin1');
    const close = s.lastIndexOf(')');
    const comm = s.slice(s.indexOf('(') + 1, close);
    const ppid = Number(s.slice(close + 2).split(' ')[1]);
    return { comm, ppid };
  } catch {
    return null; // gone meanwhile
  }
}

export class ReclaimMeter {
  private readonly buf = Buffer.alloc(128);

  private constructor(
    /** the threads' names, e.g. kdamond.0 */
    readonly names: string[],
    private readonly fds: number[],
  ) {}

  /** The reclaim threads running now: kernel threads (children of kthreadd, pid 2) with a reclaim name. */
  static open(procRoot = '/proc'): ReclaimMeter {
    const names: string[] = [];
    const fds: number[] = [];
    let pids: string[] = [];
    try {
      pids = fs.readdirSync(procRoot).filter((d) => /^\d+$/.test(d));
    } catch {
      // no /proc: nothing to measure
    }
    for (const pid of pids) {
      const st = statOf(procRoot, pid);
      if (!st || st.ppid !== 2 || !RECLAIM.test(st.comm)) continue;
      try {
        fds.push(fs.openSync(path.join(procRoot, pid, 'schedstat'), 'r'));
        names.push(st.comm);
      } catch {
        // no schedstat (kernel without CONFIG_SCHED_INFO) or gone
      }
    }
    return new ReclaimMeter(names, fds);
  }

  /** Milliseconds on a CPU so far, all the threads together (schedstat's first field is ns). */
  cpuMs(): number {
    let ns = 0;
    for (const fd of this.fds) {
      try {
        const n = fs.readSync(fd, this.buf, 0, this.buf.length, 0);
        ns += Number(this.buf.toString('latin1', 0, n).split(' ')[0]);
      } catch {
        // the thread stopped: it runs no more
      }
    }
    return ns / 1e6;
  }

  close(): void {
    for (const fd of this.fds) fs.closeSync(fd);
    this.fds.length = 0;
  }
}

/** What the machine line of the results says about them (with the DAMON scheme, where readable). */
export function reclaimDescription(procRoot = '/proc', damon = '/sys/kernel/mm/damon/admin/kdamonds'): string {
  const m = ReclaimMeter.open(procRoot);
  m.close();
  if (!m.names.length) return 'no kernel memory-reclaim threads found';
  const read = (f: string): string | null => {
    try {
      return fs.readFileSync(f, 'latin1').trim();
    } catch {
      return null;
    }
  };
  const schemes: string[] = [];
  for (const k of safeList(damon)) {
    if (read(path.join(damon, k, 'state')) !== 'on') continue;
    const ctx = path.join(damon, k, 'contexts');
    for (const c of safeList(ctx)) {
      for (const s of safeList(path.join(ctx, c, 'schemes'))) {
        const dir = path.join(ctx, c, 'schemes', s);
        const action = read(path.join(dir, 'action'));
        const quotaMs = read(path.join(dir, 'quotas', 'ms'));
        const per = read(path.join(dir, 'quotas', 'reset_interval_ms'));
        if (action) schemes.push(`DAMON ${action}${quotaMs && quotaMs !== '0' ? `, time quota ${quotaMs} ms per ${per ?? '?'} ms` : ''}`);
      }
    }
  }
  return `${m.names.join(', ')}${schemes.length ? ` (${schemes.join('; ')})` : ''}`;
}

function safeList(dir: string): string[] {
  try {
    return fs.readdirSync(dir).filter((d) => /^\d+$/.test(d));
  } catch {
    return [];
  }
}

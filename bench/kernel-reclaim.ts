// The kernel's memory-management threads, as the keystroke benchmarks see
// them. On this VM a DAMON thread (kdamond) pages out cold memory: it may
// take up to 50 ms of CPU a second, in runs of 2-22 ms that nothing on the
// machine preempts (sched_switch tracing, bench/results/fleet-findings-2026-12-05.md).
// Each of those runs leaves every process one CPU of two. The typists read
// how long these threads ran during each key, so that the results can say
// which slow keys came while one of them held a CPU.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { numberedEntries, procStat } from './fleet-proc.js';

/** Kernel threads that reclaim, compact or monitor memory; never on a console's path. */
const RECLAIM = /^(kdamond|kswapd|kcompactd|khugepaged)/;

/** The reclaim threads running now: kernel threads (children of kthreadd, pid 2) with a reclaim name. */
function reclaimThreads(procRoot: string): { pid: number; comm: string }[] {
  const out: { pid: number; comm: string }[] = [];
  for (const pid of numberedEntries(procRoot)) {
    const st = procStat(pid, procRoot);
    if (st && st.fields[1] === '2' && RECLAIM.test(st.comm)) out.push({ pid, comm: st.comm });
  }
  return out;
}

export class ReclaimMeter {
  private readonly buf = Buffer.alloc(128);

  private constructor(
    /** the threads' names, e.g. kdamond.0 */
    readonly names: string[],
    private readonly fds: number[],
  ) {}

  /** A meter over the reclaim threads running now (see reclaimThreads). */
  static open(procRoot = '/proc'): ReclaimMeter {
    const names: string[] = [];
    const fds: number[] = [];
    for (const t of reclaimThreads(procRoot)) {
      try {
        fds.push(fs.openSync(path.join(procRoot, String(t.pid), 'schedstat'), 'r'));
        names.push(t.comm);
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
  const names = reclaimThreads(procRoot).map((t) => t.comm);
  if (!names.length) return 'no kernel memory-reclaim threads found';
  const read = (f: string): string | null => {
    try {
      return fs.readFileSync(f, 'latin1').trim();
    } catch {
      return null;
    }
  };
  const schemes: string[] = [];
  for (const k of numberedEntries(damon)) {
    if (read(path.join(damon, String(k), 'state')) !== 'on') continue;
    const ctx = path.join(damon, String(k), 'contexts');
    for (const c of numberedEntries(ctx)) {
      for (const s of numberedEntries(path.join(ctx, String(c), 'schemes'))) {
        const dir = path.join(ctx, String(c), 'schemes', String(s));
        const action = read(path.join(dir, 'action'));
        const quotaMs = read(path.join(dir, 'quotas', 'ms'));
        const per = read(path.join(dir, 'quotas', 'reset_interval_ms'));
        if (action) schemes.push(`DAMON ${action}${quotaMs && quotaMs !== '0' ? `, time quota ${quotaMs} ms per ${per ?? '?'} ms` : ''}`);
      }
    }
  }
  return `${names.join(', ')}${schemes.length ? ` (${schemes.join('; ')})` : ''}`;
}

// Loaded into conchd by the fleet benchmark (`node --import
// dist/bench/daemon-probe.js`), in the main thread and in every worker
// thread (they inherit the flag); the daemon's code is unchanged. Once a
// second each thread appends one JSON line to the file CONCH_PROBE_OUT
// names: how late its event loop ran in that second
// (perf_hooks.monitorEventLoopDelay with a 5 ms sampling timer, the timer's
// own period taken off) and its garbage collections (a PerformanceObserver
// on 'gc': count, total and longest pause of the young generation's
// scavenges and of the full mark-compacts). fleet-run.ts reads the lines of
// the steady window (readProbe below).

import * as fs from 'node:fs';
import * as v8 from 'node:v8';
import { constants, monitorEventLoopDelay, performance, PerformanceObserver } from 'node:perf_hooks';
import { isMainThread, threadId, workerData } from 'node:worker_threads';

/** one thread's second */
export interface ProbeLine {
  /** wall-clock ms at the end of the second */
  t: number;
  /** 'main', 'ipmi N' (an IPMI thread: its workerData carries the fence) or 'worker N' (the log and index writers), N its thread id */
  thread: string;
  /** event-loop delay ms: p50, p99, max of the second */
  eld: [number, number, number];
  /** [count, total ms, longest ms] of young-generation collections and of full ones */
  minor: [number, number, number];
  major: [number, number, number];
  /** the second's stalls: [wall ms the loop was due, ms late, ms of it the loop was busy] for a 5 ms timer at least STALL_MS late (busy ≈ late: the thread ran something; busy ≪ late: it was not scheduled) */
  stalls?: [number, number, number][];
  /** the second's collections of at least STALL_MS: [wall ms at start, ms, 'minor' | 'major'] */
  gcs?: [number, number, string][];
  /** MB committed at the end of the second: the young generation, the rest of the heap, array buffers (process-wide); and the process's RSS (main thread only) */
  mem?: { young: number; old: number; buffers: number; rss?: number };
}

/** a delay worth naming a key's wait: shorter ones are the machine's noise */
export const STALL_MS = 3;

const RES_MS = 5;

/** this thread's heap as committed (MB): the young generation (new space) apart from the rest */
function memory(): NonNullable<ProbeLine['mem']> {
  const mb = (b: number): number => Math.round(b / 1e5) / 10;
  let young = 0;
  let all = 0;
  for (const s of v8.getHeapSpaceStatistics()) {
    all += s.space_size;
    if (s.space_name === 'new_space') young += s.space_size;
  }
  const u = process.memoryUsage();
  return { young: mb(young), old: mb(all - young), buffers: mb(u.arrayBuffers), ...(isMainThread ? { rss: mb(u.rss) } : {}) };
}

/** an IPMI thread is given the cluster fence's buffer (src/devices/ipmi-threads.ts); the log and index writers are not */
const isIpmiThread = (): boolean => typeof workerData === 'object' && workerData !== null && 'fence' in workerData;

function start(out: string): void {
  const h = monitorEventLoopDelay({ resolution: RES_MS });
  h.enable();
  const gc = { minor: [0, 0, 0] as [number, number, number], major: [0, 0, 0] as [number, number, number] };
  const wall = (perfMs: number): number => Math.round((performance.timeOrigin + perfMs) * 10) / 10;
  let stalls: [number, number, number][] = [];
  let gcs: [number, number, string][] = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind;
      const g = kind === constants.NODE_PERFORMANCE_GC_MINOR ? gc.minor : kind === constants.NODE_PERFORMANCE_GC_MAJOR ? gc.major : null;
      if (!g) continue;
      g[0]++;
      g[1] += e.duration;
      g[2] = Math.max(g[2], e.duration);
      if (e.duration >= STALL_MS) gcs.push([wall(e.startTime), round(e.duration), g === gc.minor ? 'minor' : 'major']);
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  const fd = fs.openSync(out, 'a');
  const late = (ns: number): number => Math.max(0, ns / 1e6 - RES_MS);
  const round = (x: number): number => Math.round(x * 100) / 100;
  // the stalls with their times, for a slow key to be matched against
  // (fleet-keys.ts): a 5 ms timer chain, and the loop's busy time
  // (eventLoopUtilization) over each period
  let due = performance.now() + RES_MS;
  let elu = performance.eventLoopUtilization();
  const tick = (): void => {
    const t = performance.now();
    const e = performance.eventLoopUtilization();
    const late = t - due;
    if (late >= STALL_MS) stalls.push([wall(due), round(late), round(e.active - elu.active)]);
    elu = e;
    due = t + RES_MS;
    setTimeout(tick, RES_MS).unref();
  };
  setTimeout(tick, RES_MS).unref();
  setInterval(() => {
    const line: ProbeLine = {
      t: Date.now(),
      thread: isMainThread ? 'main' : `${isIpmiThread() ? 'ipmi' : 'worker'} ${threadId}`,
      eld: [round(late(h.percentile(50))), round(late(h.percentile(99))), round(late(h.max))],
      minor: [gc.minor[0], round(gc.minor[1]), round(gc.minor[2])],
      major: [gc.major[0], round(gc.major[1]), round(gc.major[2])],
      stalls,
      gcs,
      mem: memory(),
    };
    stalls = [];
    gcs = [];
    h.reset();
    gc.minor = [0, 0, 0];
    gc.major = [0, 0, 0];
    // one write(2) of one line: the threads' lines do not interleave
    fs.writeSync(fd, `${JSON.stringify(line)}\n`);
  }, 1000).unref();
}

const out = process.env.CONCH_PROBE_OUT;
if (out) start(out);

/** What the probe saw in [from, to] (wall ms) for the main thread and for the IPMI thread (else the worker thread) that collected most often. */
export interface ProbeSummary {
  /** seconds sampled */
  seconds: number;
  /** medians of the per-second p50 and p99, the worst per-second p99, the largest delay */
  eld: { p50: number; p99: number; worstP99: number; max: number };
  minor: { count: number; meanMs: number; maxMs: number };
  major: { count: number; meanMs: number; maxMs: number };
  /** the largest of each in the window (MB): the thread's young generation and the rest of its heap, array buffers, the process's RSS (main thread) */
  mem?: { young: number; old: number; buffers: number; rss: number };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : NaN;
};

function summarise(ls: ProbeLine[]): ProbeSummary {
  const sum = (k: 'minor' | 'major'): ProbeSummary['minor'] => {
    const count = ls.reduce((a, l) => a + l[k][0], 0);
    const total = ls.reduce((a, l) => a + l[k][1], 0);
    return { count, meanMs: count ? total / count : 0, maxMs: Math.max(0, ...ls.map((l) => l[k][2])) };
  };
  return {
    seconds: ls.length,
    eld: { p50: median(ls.map((l) => l.eld[0])), p99: median(ls.map((l) => l.eld[1])), worstP99: Math.max(...ls.map((l) => l.eld[1])), max: Math.max(...ls.map((l) => l.eld[2])) },
    minor: sum('minor'),
    major: sum('major'),
    mem: ls.some((l) => l.mem)
      ? {
          young: Math.max(...ls.map((l) => l.mem?.young ?? 0)),
          old: Math.max(...ls.map((l) => l.mem?.old ?? 0)),
          buffers: Math.max(...ls.map((l) => l.mem?.buffers ?? 0)),
          rss: Math.max(...ls.map((l) => l.mem?.rss ?? 0)),
        }
      : undefined,
  };
}

/** every thread's lines of a probe file (a line cut short by the daemon's end is skipped) */
export function probeLines(file: string): ProbeLine[] {
  if (!fs.existsSync(file)) return [];
  const out: ProbeLine[] = [];
  for (const text of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!text) continue;
    try {
      out.push(JSON.parse(text) as ProbeLine);
    } catch {
      /* cut short */
    }
  }
  return out;
}

export function readProbe(lines: ProbeLine[], from: number, to: number): { main: ProbeSummary; worker: ProbeSummary | null } | null {
  const byThread = new Map<string, ProbeLine[]>();
  for (const l of lines) {
    if (l.t < from || l.t > to) continue;
    const ls = byThread.get(l.thread);
    if (ls) ls.push(l);
    else byThread.set(l.thread, [l]);
  }
  const main = byThread.get('main');
  if (!main?.length) return null;
  // the IPMI thread that collected most; without IPMI threads, the worker that did
  const ipmi = [...byThread.keys()].some((t) => t.startsWith('ipmi '));
  let worker: ProbeLine[] | null = null;
  let most = -1;
  for (const [t, ls] of byThread) {
    if (t === 'main' || (ipmi && !t.startsWith('ipmi '))) continue;
    const n = ls.reduce((a, l) => a + l.minor[0] + l.major[0], 0);
    if (n > most) [most, worker] = [n, ls];
  }
  return { main: summarise(main), worker: worker ? summarise(worker) : null };
}

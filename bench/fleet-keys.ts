// What a slow key waited behind. The typist records when it sent each key
// (fleet-typist.ts `echoAt`); conchd's probe records, with their times, every
// stall of each thread's event loop and every long collection
// (daemon-probe.ts). A key slower than the bound is matched against what
// overlapped its wait: a collection, a long turn of a thread (the loop busy
// for most of its delay), or a thread that was late without being busy (not
// scheduled: the machine's other threads and processes had the cores).

import type { Latency } from './fleet-typist.js';
import type { ProbeLine } from './daemon-probe.js';

export interface SlowKeys {
  /** the bound a key had to exceed to count (ms) */
  boundMs: number;
  keys: number;
  slow: number;
  /** slow keys overlapped by each cause (a key may count under several) */
  mainGc: number;
  mainBusy: number;
  mainUnscheduled: number;
  ipmiGc: number;
  ipmiBusy: number;
  ipmiUnscheduled: number;
  /** slow keys nothing of the above overlapped */
  none: number;
}

interface Event {
  thread: 'main' | 'ipmi' | 'other';
  from: number;
  to: number;
  what: 'gc' | 'busy' | 'unscheduled';
}

/** every stall and long collection of the probe's lines (daemon-probe.ts probeLines), by thread kind */
export function probeEvents(lines: ProbeLine[]): Event[] {
  const out: Event[] = [];
  for (const l of lines) {
    const thread = l.thread === 'main' ? 'main' : l.thread.startsWith('ipmi ') ? 'ipmi' : 'other';
    for (const [due, late, busy] of l.stalls ?? []) out.push({ thread, from: due, to: due + late, what: busy >= late / 2 ? 'busy' : 'unscheduled' });
    for (const [at, ms] of l.gcs ?? []) out.push({ thread, from: at, to: at + ms, what: 'gc' });
  }
  return out;
}

/** the keys of `l` slower than `boundMs`, each matched against the events that overlapped its wait */
export function slowKeys(l: Latency | undefined, events: Event[], boundMs: number): SlowKeys | undefined {
  if (!l?.echoAt || l.echoAt.length !== l.echo.length) return undefined;
  const r: SlowKeys = { boundMs, keys: l.echo.length, slow: 0, mainGc: 0, mainBusy: 0, mainUnscheduled: 0, ipmiGc: 0, ipmiBusy: 0, ipmiUnscheduled: 0, none: 0 };
  l.echo.forEach((ms, i) => {
    if (!(ms > boundMs)) return;
    r.slow++;
    const from = l.echoAt![i]!;
    const to = from + ms;
    const seen = new Set<string>();
    for (const e of events) if (e.thread !== 'other' && e.from < to && e.to > from) seen.add(`${e.thread} ${e.what}`);
    if (seen.has('main gc')) r.mainGc++;
    if (seen.has('main busy')) r.mainBusy++;
    if (seen.has('main unscheduled')) r.mainUnscheduled++;
    if (seen.has('ipmi gc')) r.ipmiGc++;
    if (seen.has('ipmi busy')) r.ipmiBusy++;
    if (seen.has('ipmi unscheduled')) r.ipmiUnscheduled++;
    if (!seen.size) r.none++;
  });
  return r;
}

/** one table cell: "slow of keys: main gc/busy/unscheduled; IPMI …; nothing" */
export function slowKeysCell(s: SlowKeys | undefined, ipmi: boolean): string {
  if (!s) return '–';
  if (!s.slow) return `0 of ${s.keys}`;
  const main = `main ${s.mainGc}/${s.mainBusy}/${s.mainUnscheduled}`;
  return `${s.slow} of ${s.keys}: ${main}${ipmi ? `; IPMI ${s.ipmiGc}/${s.ipmiBusy}/${s.ipmiUnscheduled}` : ''}; nothing ${s.none}`;
}

// Reading the daemons' console logs: when each console first logged host
// output, and what the `[seq N]` lines say about loss (gaps) and duplicates.

import * as fs from 'node:fs';
import * as path from 'node:path';

export const logFile = (logdir: string, name: string): string => path.join(logdir, `${name}.log`);

function read(file: string): string {
  try {
    return fs.readFileSync(file, 'latin1');
  } catch {
    return '';
  }
}

/**
 * Polls until every console's log holds a `[seq` line, or the deadline.
 * Resolves with ms from `t0` to the last console's first line, how many got
 * there, and how many had got there 60 s after `t0`. A log is read again
 * only when it has grown, so that polling 10,000 logs does not take the CPU
 * the daemon is being measured on.
 */
export async function waitAllLogging(logdir: string, names: string[], t0: number, timeoutMs: number, alive: () => void): Promise<{ ms: number; logging: number; at60: number }> {
  const pending = new Map(names.map((n) => [n, -1]));
  let last = 0;
  let at60 = -1;
  const deadline = t0 + timeoutMs;
  for (;;) {
    alive();
    for (const [n, seen] of pending) {
      const f = logFile(logdir, n);
      const size = fs.statSync(f, { throwIfNoEntry: false })?.size ?? -1;
      if (size === seen) continue;
      pending.set(n, size);
      if (read(f).includes('[seq ')) {
        pending.delete(n);
        last = Date.now() - t0;
      }
    }
    if (at60 < 0 && Date.now() - t0 >= 60000) at60 = names.length - pending.size;
    if (pending.size === 0 || Date.now() > deadline) {
      const logging = names.length - pending.size;
      return { ms: pending.size ? NaN : last, logging, at60: at60 < 0 ? logging : at60 };
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** `[seq N]` numbers of one host in a log, in order of appearance. */
export function seqsIn(text: string, name: string): number[] {
  const re = new RegExp(`\\[seq (\\d+)\\] ${name} `, 'g');
  return [...text.matchAll(re)].map((m) => Number(m[1]));
}

/** The last `[seq N]` of `name` in its log (0 if none). */
export function lastSeqInLog(logdir: string, name: string): number {
  const s = seqsIn(read(logFile(logdir, name)), name);
  return s.length ? Math.max(...s) : 0;
}

/** Bytes of a log that came from the host: everything but the daemon's `<ConMan>` notice lines. */
export function hostBytes(text: string): number {
  return Buffer.byteLength(text.replace(/(\r\n)?<ConMan>[^\n]*\n/g, ''), 'latin1');
}

export interface Loss {
  consoles: number;
  /** seq lines the hosts printed from the first logged one on */
  expectedLines: number;
  loggedLines: number;
  missingLines: number;
  duplicateLines: number;
  /** consoles with any missing or duplicate line */
  badConsoles: string[];
  /** bytes of host output in the logs */
  loggedBytes: number;
  /** missingLines × mean logged line length (where the sender has no byte counter) */
  estLostBytes: number;
}

/**
 * Every console: lines expected are first logged seq .. the host's last seq
 * (`lastSeq`); what is not in the log is lost, what is there twice is a duplicate.
 */
export function analyse(logdir: string, names: string[], lastSeq: Map<string, number>): Loss {
  const l: Loss = { consoles: names.length, expectedLines: 0, loggedLines: 0, missingLines: 0, duplicateLines: 0, badConsoles: [], loggedBytes: 0, estLostBytes: 0 };
  let lineBytes = 0;
  for (const n of names) {
    const text = read(logFile(logdir, n));
    const seqs = seqsIn(text, n);
    l.loggedBytes += hostBytes(text);
    const last = lastSeq.get(n) ?? 0;
    if (seqs.length === 0) {
      l.badConsoles.push(n);
      continue;
    }
    const first = Math.min(...seqs);
    const expected = Math.max(0, last - first + 1);
    const unique = new Set(seqs.filter((s) => s <= last)).size;
    const missing = expected - unique;
    const dups = seqs.length - new Set(seqs).size;
    l.expectedLines += expected;
    l.loggedLines += seqs.length;
    l.missingLines += missing;
    l.duplicateLines += dups;
    if (missing || dups) l.badConsoles.push(n);
    lineBytes += (text.match(/\[seq \d+\][^\n]*\n/g) ?? []).reduce((a, s) => a + s.length, 0);
  }
  l.estLostBytes = l.loggedLines ? Math.round((l.missingLines * lineBytes) / l.loggedLines) : 0;
  return l;
}

/** Polls until every console has logged its host's last seq, or the deadline. */
export async function waitDrained(logdir: string, names: string[], lastSeq: Map<string, number>, timeoutMs: number): Promise<boolean> {
  const pending = new Set(names.filter((n) => (lastSeq.get(n) ?? 0) > 0));
  const deadline = Date.now() + timeoutMs;
  while (pending.size && Date.now() < deadline) {
    for (const n of pending) if (lastSeqInLog(logdir, n) >= lastSeq.get(n)!) pending.delete(n);
    if (pending.size) await new Promise((r) => setTimeout(r, 250));
  }
  return pending.size === 0;
}

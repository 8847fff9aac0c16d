// conch --grep: search the consoles' logs on the daemon (conch's SEARCH
// request, docs/search.md) and print each match as
//   CONSOLE <tab> YYYY-MM-DD HH:MM:SS <tab> LINE
// (local time; `-` when the daemon knows no time for the line). Notes and a
// search cut short by its bounds are said on stderr. Exit status as grep's:
// 0 something matched, 1 nothing did, 2 the request failed.

import type { ClientOptions } from './args.js';
import { FatalError } from './errors.js';
import type { Link } from './exchange.js';

export interface SearchOptions {
  re: string;
  since?: string;
  until?: string;
  tail?: string;
  limit?: string;
  follow: boolean;
}

const p2 = (n: number): string => String(n).padStart(2, '0');

/** `YYYY-MM-DD HH:MM:SS` in local time. */
export function localStamp(iso: string | null): string {
  if (!iso) return '-';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '-';
  return `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}`;
}

interface ResultLine {
  console?: string;
  time?: string | null;
  line?: string;
  note?: string;
  error?: string;
  summary?: { matches: number; stopped: string | null };
}

/** One result line of the daemon as text for stdout (or stderr: `err`). */
export function formatResult(raw: string): { out?: string; err?: string; matched?: boolean; failed?: boolean } {
  let r: ResultLine;
  try {
    r = JSON.parse(raw) as ResultLine;
  } catch {
    return { err: `conch: unexpected line from the daemon: ${raw.slice(0, 200)}\n` };
  }
  if (typeof r.console === 'string' && typeof r.line === 'string') {
    return { out: `${r.console}\t${localStamp(r.time ?? null)}\t${r.line}\n`, matched: true };
  }
  if (typeof r.note === 'string') return { err: `conch: ${r.note}\n` };
  if (typeof r.error === 'string') return { err: `conch: ${r.error}\n`, failed: true };
  if (r.summary?.stopped) return { err: `conch: ${r.summary.stopped}\n` };
  return {};
}

/** Print the results that follow the OK line; returns the exit status. */
export async function printResults(link: Link, write: (s: string) => void, writeErr: (s: string) => void): Promise<number> {
  let matched = false;
  let failed = false;
  for (;;) {
    const line = await link.reader.readLine(1 << 20);
    if (line === null) break;
    const text = line.toString('utf8').replace(/\r?\n$/, '');
    if (text === '') continue;
    const f = formatResult(text);
    if (f.out) write(f.out);
    if (f.err) writeErr(f.err);
    if (f.matched) matched = true;
    if (f.failed) failed = true;
  }
  return failed ? 2 : matched ? 0 : 1;
}

/** The options that make no sense with --grep, and the search options without it. */
export function checkSearch(opts: ClientOptions, given: Set<string>): void {
  const extra = ['since', 'until', 'tail', 'limit', 'follow'].find((n) => given.has(n));
  if (!opts.search) {
    // (--log takes --tail, --since and --until too: history.ts)
    if (extra && opts.command !== 'history') throw new FatalError(`CMDLINE: option "--${extra}" needs --grep`);
    return;
  }
  if (opts.command !== 'connect' || opts.broadcast || opts.force || opts.join) {
    throw new FatalError('CMDLINE: --grep searches the logs: it does not go with -q, -m, -b, -f or -j');
  }
  if (/[\r\n]/.test(opts.search.re)) throw new FatalError('CMDLINE: the --grep pattern cannot hold a line break');
  opts.command = 'search';
}

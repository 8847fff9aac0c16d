// A search's results as JSON lines, the same on the conman port (after the
// SEARCH request's OK line) and in GET /api/v1/search:
//   {"console":"n1","time":"2025-01-02T03:04:05.000Z","timeFrom":"stamp","line":"…"}
//   {"note":"…"}                        something the user should know
//   {"summary":{"matches":…,"files":…,"scannedBytes":…,"stopped":null|"why","following":false}}
//   {"error":"…"}                       the search failed after it began
// With follow, matches go on after the summary until the client leaves.

import type { Writable } from 'node:stream';
import type { Console } from '../engine/console.js';
import { deviceSpecifier } from '../config/specifiers.js';
import type { DaemonLog } from '../logging/daemon-log.js';
import { Search, type SearchMatch, type SearchSink, type SearchSlot, type SearchSummary, type SearchTarget } from './search.js';
import type { SearchQuery } from './query.js';

export function targetOf(c: Console): SearchTarget {
  return { name: c.name, pattern: c.log ? c.cfg.log : null, dev: deviceSpecifier(c.cfg.spec), log: c.log };
}

export function matchJson(m: SearchMatch): string {
  return JSON.stringify({ console: m.console, time: m.time === null ? null : new Date(m.time).toISOString(), timeFrom: m.timeFrom, line: m.line }) + '\n';
}

/** A sink writing JSON lines to `out`, waiting while it is full. */
export function jsonSink(out: Writable, signal: AbortSignal): SearchSink {
  const put = (line: string): void | Promise<void> => {
    if (out.destroyed || signal.aborted) return;
    if (out.write(line)) return;
    return new Promise<void>((resolve) => {
      const done = (): void => {
        out.off('drain', done);
        out.off('close', done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      out.on('drain', done);
      out.on('close', done);
      signal.addEventListener('abort', done, { once: true });
    });
  };
  return {
    match: (m) => put(matchJson(m)),
    note: (text) => void put(JSON.stringify({ note: text }) + '\n'),
    summary: (s: SearchSummary) => put(JSON.stringify({ summary: s }) + '\n'),
  };
}

export interface ServeOptions {
  dlog: DaemonLog;
  /** who, for the daemon log */
  peer: string;
}

/**
 * Run `q` and write its results to `out` until it is done (or, with follow,
 * until `signal` aborts: the client left). Resolves when it is over; the
 * slot is released then.
 */
export async function serveSearch(out: Writable, targets: SearchTarget[], q: SearchQuery, slot: SearchSlot, signal: AbortSignal, o: ServeOptions): Promise<void> {
  const sink = jsonSink(out, signal);
  const t0 = Date.now();
  try {
    const s = await new Search(targets, q, sink, signal).run(() => slot.historyDone());
    o.dlog.info(
      `Client ${o.peer} searched ${targets.length} console${targets.length === 1 ? '' : 's'} for /${q.pattern.source}/: ${s.matches} matches in ${s.files} files, ${s.scannedBytes} bytes read in ${Date.now() - t0} ms${s.stopped ? ` (${s.stopped})` : ''}`,
    );
  } catch (e) {
    o.dlog.err(`Client ${o.peer} search failed: ${(e as Error).stack ?? String(e)}`);
    if (!out.destroyed) out.write(JSON.stringify({ error: `the search failed: ${(e as Error).message}` }) + '\n');
  } finally {
    slot.release();
  }
}

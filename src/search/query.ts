// What a search asks, as both ways in (the conman port's SEARCH request and
// GET /api/v1/search) give it: checked here once, with the bounds every
// search is held to.

import { compileSearch, PatternError, type SearchPattern } from './pattern.js';

export const DEFAULT_LIMIT = 1000;
export const MAX_LIMIT = 100_000;
export const MAX_TAIL = 10_000;

/** What one search may cost and send (tests lower them). */
export interface SearchBounds {
  /** matches sent (before follow) */
  limit: number;
  /** bytes of results sent (before follow) */
  maxBytes: number;
  /** main-thread time for reading the history, ms */
  cpuMs: number;
  /** wall time for reading the history, ms */
  wallMs: number;
}

/** a whole number of ms from the environment (operators and tests may tune the time bounds), else `dflt` */
const envMs = (name: string, dflt: number): number => {
  const v = Number(process.env[name]);
  return Number.isInteger(v) && v > 0 ? v : dflt;
};

export const DEFAULT_BOUNDS: SearchBounds = {
  limit: DEFAULT_LIMIT,
  maxBytes: 16 * 1024 * 1024,
  cpuMs: envMs('CONCH_SEARCH_CPU_MS', 10_000),
  wallMs: envMs('CONCH_SEARCH_WALL_MS', 120_000),
};

export interface SearchQuery {
  pattern: SearchPattern;
  since: number | null;
  until: number | null;
  /** only the last N matches of each console */
  tail: number | null;
  follow: boolean;
  bounds: SearchBounds;
}

export class QueryError extends Error {}

/** The raw values of a request (strings as sent; null: not given). */
export interface QueryText {
  re: string | null;
  since: string | null;
  until: string | null;
  tail: string | null;
  limit: string | null;
  follow: boolean;
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const LOCAL = /^(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,3})\d*)?)?)?$/i;
const ZONED = /^\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d(?:\.\d{1,9})?)?(?:Z|[+-]\d\d(?::?\d\d)?)$/i;

/**
 * A time: ISO 8601 with a zone (`2025-01-02T03:04:05Z`, `…+01:00`), or
 * without one in the server's local time as the logs are written
 * (`2025-01-02 03:04`, `2025-01-02`), `@` and seconds since the epoch, `now`,
 * or a duration ago (`90s`, `15m`, `2h`, `1d12h`, with or without a `-`).
 */
export function parseTime(text: string, key: string, now = Date.now()): number {
  const v = text.trim();
  if (/^now$/i.test(v)) return now;
  const ago = /^-?((?:\d{1,9}[smhdw])+)$/i.exec(v);
  if (ago) {
    let ms = 0;
    for (const m of ago[1]!.matchAll(/(\d+)([smhdw])/gi)) ms += Number(m[1]) * UNITS[m[2]!.toLowerCase()]!;
    return now - ms;
  }
  const epoch = /^@(\d{1,12}(?:\.\d{1,3})?)$/.exec(v);
  if (epoch) return Math.round(Number(epoch[1]) * 1000);
  const local = LOCAL.exec(v);
  if (local) {
    const n = (i: number): number => Number(local[i] ?? 0);
    const t = new Date(n(1), n(2) - 1, n(3), n(4), n(5), n(6), Number((local[7] ?? '0').padEnd(3, '0'))).getTime();
    if (!Number.isNaN(t) && n(2) >= 1 && n(2) <= 12 && n(3) >= 1 && n(3) <= 31) return t;
  }
  // a `+01:00` offset sent unencoded in a URL arrives as ` 01:00`
  const z = v.replace(/ (\d\d(?::?\d\d)?)$/, '+$1');
  if (ZONED.test(z)) {
    const t = Date.parse(z.replace(' ', 'T'));
    if (!Number.isNaN(t)) return t;
  }
  throw new QueryError(`${key} must be a time such as 2025-01-02T03:04:05Z, 2025-01-02 03:04 (the server's local time), @1735787045, now, or a time ago such as 90m or 2h (got ${JSON.stringify(v.slice(0, 64))})`);
}

function count(text: string | null, key: string, max: number): number | null {
  if (text === null) return null;
  if (!/^\d{1,9}$/.test(text.trim())) throw new QueryError(`${key} must be a whole number`);
  const n = Number(text);
  if (n < 1 || n > max) throw new QueryError(`${key} must be between 1 and ${max}`);
  return n;
}

/** Check a request; throws QueryError (or PatternError, whose message is the regex's fault). */
export function parseQuery(q: QueryText, base: SearchBounds = DEFAULT_BOUNDS, now = Date.now()): SearchQuery {
  if (q.re === null || q.re === '') throw new QueryError('no pattern to search for (a regular expression)');
  const pattern = compileSearch(q.re);
  const since = q.since === null ? null : parseTime(q.since, 'since', now);
  const until = q.until === null ? null : parseTime(q.until, 'until', now);
  if (since !== null && until !== null && since > until) throw new QueryError('since is after until');
  const tail = count(q.tail, 'tail', MAX_TAIL);
  const limit = count(q.limit, 'limit', MAX_LIMIT) ?? base.limit;
  return { pattern, since, until, tail, follow: q.follow, bounds: { ...base, limit: Math.max(limit, tail ?? 0) } };
}

export { PatternError };

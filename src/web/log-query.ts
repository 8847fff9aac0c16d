// The part of a console's log a request asks for: tail=BYTES, lines=N,
// since=/until= times, as the log API takes them and as the cluster's
// HISTORY request passes them on (src/web/log-history-serve.ts).

import { HttpError } from './http-util.js';

/** the most tail= may ask for */
export const MAX_TAIL = 64 * 1024 * 1024;
/** the most lines= may ask for */
export const MAX_LINES = 100_000;

const ISO_TIME = /^\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:\.\d{1,9})?)?(?:Z|[+-]\d\d(?::?\d\d)?)?)?$/i;

export interface LogQuery {
  tail: number | null;
  lines: number | null;
  since: number | null;
  until: number | null;
  download: boolean;
}

function count(q: URLSearchParams, key: string, max: number, unit: string): number | null {
  const v = q.get(key);
  if (v === null) return null;
  if (!/^\d{1,16}$/.test(v)) throw new HttpError(400, `${key}= must be a whole number of ${unit}`);
  const n = Number(v);
  if (n > max) throw new HttpError(400, `${key}= is at most ${max} ${unit}; leave it out to get the whole log`);
  return n;
}

function time(q: URLSearchParams, key: string): number | null {
  let v = q.get(key);
  if (v === null) return null;
  // a `+01:00` offset sent unencoded arrives as ` 01:00`
  if (v.includes('T')) v = v.replace(/ (\d\d(?::?\d\d)?)$/, '+$1');
  const t = ISO_TIME.test(v) ? Date.parse(v) : NaN;
  if (Number.isNaN(t)) throw new HttpError(400, `${key}= must be an ISO 8601 time such as 2025-01-02T03:04:05Z (got ${JSON.stringify(v.slice(0, 64))})`);
  return t;
}

export function parseLogQuery(q: URLSearchParams): LogQuery {
  const tail = count(q, 'tail', MAX_TAIL, 'bytes');
  const lines = count(q, 'lines', MAX_LINES, 'lines');
  if (tail !== null && lines !== null) throw new HttpError(400, 'give tail= (bytes) or lines=, not both');
  const since = time(q, 'since');
  const until = time(q, 'until');
  if (since !== null && until !== null && since > until) throw new HttpError(400, 'since= is after until=');
  const d = q.get('download');
  return { tail, lines, since, until, download: d === '1' || d === 'true' };
}

// conman's in-band notice framing and time formats. Scripts match on the
// `<ConMan>` prefix, so these strings are byte-for-byte conman's.

export const NOTICE_PREFIX = '\r\n<ConMan> ';
export const NOTICE_SUFFIX = '.\r\n';
const MAX_NOTICE = 1024;

/** `\r\n<ConMan> text.\r\n`, truncated like conman's (still ending in CRLF). */
export function frameNotice(text: string): Buffer {
  let s = NOTICE_PREFIX + text + NOTICE_SUFFIX;
  if (s.length > MAX_NOTICE) s = s.slice(0, MAX_NOTICE - 2) + '\r\n';
  return Buffer.from(s, 'latin1');
}

const p2 = (n: number): string => String(n).padStart(2, '0');

/** conman's short time: `%m-%d %H:%M`, local time. */
export function shortTime(d = new Date()): string {
  return `${p2(d.getMonth() + 1)}-${p2(d.getDate())} ${p2(d.getHours())}:${p2(d.getMinutes())}`;
}

/** `YYYY-MM-DD HH:MM:SS`, local time (log line stamps). */
export function stampTime(d = new Date()): string {
  return `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}`;
}

/** conman's long time: `%Y-%m-%d %H:%M:%S %Z`. */
export function longTime(d = new Date()): string {
  return `${stampTime(d)} ${timeZoneAbbr(d)}`;
}

let zoneFormat: Intl.DateTimeFormat | null = null;
/** the abbreviation of the last quarter hour asked: formatToParts cost ~30 µs, and a start logs 10,000 closing and opening lines */
let zoneCache = { quarter: NaN, abbr: '' };

function timeZoneAbbr(d: Date): string {
  // zones change offset only at whole quarter hours of UTC
  const quarter = Math.floor(d.getTime() / 900_000);
  if (quarter === zoneCache.quarter) return zoneCache.abbr;
  zoneFormat ??= new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' });
  const part = zoneFormat
    .formatToParts(d)
    .find((p) => p.type === 'timeZoneName');
  zoneCache = { quarter, abbr: part?.value ?? 'UTC' };
  return zoneCache.abbr;
}

/** conman's compact duration: `5m3s`, `2h0m7s`, `1d0h0m0s`; leading zero units dropped. */
export function timeDelta(ms: number): string {
  let s = Math.max(0, Math.floor(ms / 1000));
  const units: [string, number][] = [
    ['y', 365 * 86400],
    ['w', 7 * 86400],
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
  ];
  let out = '';
  for (const [u, n] of units) {
    const v = Math.floor(s / n);
    s -= v * n;
    if (v > 0 || out) out += `${v}${u}`;
  }
  return `${out}${s}s`;
}

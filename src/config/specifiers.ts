// Conversion specifiers in log file names and resetcmd, as conman.conf(5)
// describes them: %N %D %P, a set of strftime fields (local time) and %%.
// Unknown specifiers, and %N/%D without a value, are kept as written.

import * as path from 'node:path';
import type { DevSpec } from './types.js';

export interface SpecifierCtx {
  /** console name, for %N */
  name?: string;
  /** what %D stands for; see deviceSpecifier() */
  dev?: string;
  /** for %P; default: this process */
  pid?: number;
  /** for the time fields; default: now */
  now?: Date;
}

/** conman's rule for %N and %D: non-printable characters and '/' become '_'. */
export function sanitizeSpecifier(s: string): string {
  let out = '';
  for (const ch of s) {
    const code = ch.codePointAt(0) ?? 0;
    out += code > 0x20 && code < 0x7f && ch !== '/' ? ch : '_';
  }
  return out;
}

/** The value of %D for a console: host:port for telnet, else the device's basename. */
export function deviceSpecifier(spec: DevSpec): string {
  switch (spec.type) {
    case 'telnet':
      return `${spec.host}:${spec.port}`;
    case 'serial':
    case 'unix':
      return path.basename(spec.path);
    case 'process':
      return path.basename(spec.argv[0] ?? '');
    case 'ipmi':
    case 'ssh':
      return spec.host;
    case 'test':
      return 'test';
  }
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/** Day of the year, 0-based, from local date parts (DST-proof). */
function yday(y: number, m: number, d: number): number {
  return Math.round((Date.UTC(y, m, d) - Date.UTC(y, 0, 1)) / 86400000);
}

/** ISO 8601 week-based year and week number for a local date. */
function isoWeek(y: number, m: number, d: number, wday: number): { year: number; week: number } {
  const isoDay = wday === 0 ? 7 : wday;
  // the Thursday of this week decides the year
  const thursday = new Date(Date.UTC(y, m, d + 4 - isoDay));
  const ty = thursday.getUTCFullYear();
  const week = Math.floor(yday(ty, thursday.getUTCMonth(), thursday.getUTCDate()) / 7) + 1;
  return { year: ty, week };
}

function timeField(spec: string, t: Date): string | null {
  const y = t.getFullYear();
  const m = t.getMonth();
  const d = t.getDate();
  const wday = t.getDay();
  const yd = yday(y, m, d);
  switch (spec) {
    case 'd':
      return pad(d);
    case 'g':
      return pad(isoWeek(y, m, d, wday).year % 100);
    case 'G':
      return String(isoWeek(y, m, d, wday).year);
    case 'H':
      return pad(t.getHours());
    case 'j':
      return pad(yd + 1, 3);
    case 'm':
      return pad(m + 1);
    case 'M':
      return pad(t.getMinutes());
    case 's':
      return String(Math.floor(t.getTime() / 1000));
    case 'S':
      return pad(t.getSeconds());
    case 'u':
      return String(wday === 0 ? 7 : wday);
    case 'U':
      return pad(Math.floor((yd + 7 - wday) / 7));
    case 'V':
      return pad(isoWeek(y, m, d, wday).week);
    case 'w':
      return String(wday);
    case 'W':
      return pad(Math.floor((yd + 7 - ((wday + 6) % 7)) / 7));
    case 'y':
      return pad(y % 100);
    case 'Y':
      return String(y);
    default:
      return null;
  }
}

/** Expands %-specifiers in `pattern` for one console at one moment. */
export function expandSpecifiers(pattern: string, ctx: SpecifierCtx): string {
  const now = ctx.now ?? new Date();
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c !== '%' || i + 1 >= pattern.length) {
      out += c;
      continue;
    }
    const spec = pattern[++i];
    if (spec === '%') out += '%';
    else if (spec === 'N' && ctx.name !== undefined) out += sanitizeSpecifier(ctx.name);
    else if (spec === 'D' && ctx.dev !== undefined) out += sanitizeSpecifier(ctx.dev);
    else if (spec === 'P') out += String(ctx.pid ?? process.pid);
    else out += timeField(spec, now) ?? `%${spec}`;
  }
  return out;
}

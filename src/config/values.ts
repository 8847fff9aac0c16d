// Typed readers for single config values (on/off, integers, sizes, syslog
// names). They throw plain Errors with the message only; the parser adds
// the file:line:column of the value.

import type { Priority } from './types.js';

export function onOff(key: string, v: string): boolean {
  const l = v.toLowerCase();
  if (l === 'on') return true;
  if (l === 'off') return false;
  throw new Error(`${key} must be on or off, got "${v}"`);
}

/** A whole decimal integer (optional sign) within [min, max]. */
export function intIn(key: string, v: string, min: number, max: number, hint = ''): number {
  if (!/^[+-]?\d+$/.test(v) || Number(v) < min || Number(v) > max) {
    throw new Error(`${key} must be ${min}..${max}${hint}, got "${v}"`);
  }
  return Number(v);
}

/** A byte count: digits with an optional k or m (1024-based) suffix. */
export function byteSize(key: string, v: string, min: number, max: number): number {
  const m = /^(\d+)([kKmM]?)$/.exec(v);
  const n = m ? Number(m[1]) * (m[2] === '' ? 1 : /k/i.test(m[2]) ? 1024 : 1024 * 1024) : NaN;
  if (!(n >= min && n <= max)) {
    throw new Error(`${key} must be a byte count from ${min} to ${max} (k and m suffixes allowed), got "${v}"`);
  }
  return n;
}

/** "N[m|h|d]" → seconds; minutes are the default unit. */
export function interval(key: string, num: string, unit: string): number {
  if (!/^\d+$/.test(num)) throw new Error(`${key} must be an integer with an optional m, h or d unit, got "${num}${unit}"`);
  const mult: Record<string, number> = { '': 60, m: 60, h: 3600, d: 86400 };
  const f = mult[unit.toLowerCase()];
  if (f === undefined) throw new Error(`${key} unit must be m, h or d, got "${unit}"`);
  return Number(num) * f;
}

const PRIORITY_NAMES: Record<string, Priority> = {
  emerg: 'emerg',
  emergency: 'emerg',
  panic: 'emerg',
  alert: 'alert',
  crit: 'crit',
  critical: 'crit',
  err: 'err',
  error: 'err',
  warning: 'warning',
  warn: 'warning',
  notice: 'notice',
  info: 'info',
  debug: 'debug',
};

export function syslogPriority(key: string, v: string): Priority {
  const p = PRIORITY_NAMES[v.trim().toLowerCase()];
  if (!p) throw new Error(`invalid ${key} priority "${v}"; expected one of emerg, alert, crit, err, warning, notice, info, debug`);
  return p;
}

export const SYSLOG_FACILITIES = [
  'auth',
  'authpriv',
  'cron',
  'daemon',
  'kern',
  'lpr',
  'mail',
  'news',
  'user',
  'uucp',
  'local0',
  'local1',
  'local2',
  'local3',
  'local4',
  'local5',
  'local6',
  'local7',
];

export function syslogFacility(key: string, v: string): string {
  const f = v.trim().toLowerCase();
  if (!SYSLOG_FACILITIES.includes(f)) {
    throw new Error(`invalid ${key} facility "${v}"; expected one of ${SYSLOG_FACILITIES.join(', ')}`);
  }
  return f;
}

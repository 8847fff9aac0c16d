// Every text conch's conman protocol puts on the wire. conman clients and
// site scripts (expect, CELL) match on these, so they are conman's, byte for
// byte, unless marked as a conch addition.

import { encodeQuoted } from './lex.js';
import { frameNotice, timeDelta } from '../util/notice.js';
import { whoText, type Identity } from '../engine/session.js';

/** conman's `enum err_type` (src/common.h). */
export const ErrCode = {
  NONE: 0,
  LOCAL: 1,
  BAD_REQUEST: 2,
  BAD_REGEX: 3,
  AUTHENTICATE: 4,
  NO_CONSOLES: 5,
  TOO_MANY_CONSOLES: 6,
  BUSY_CONSOLES: 7,
} as const;

export const MSG = {
  noUser: 'Invalid greeting: no user specified',
  noConsoles: 'Found no matching consoles',
  tooMany: (n: number) => `Found ${n} matching consoles`,
  busy: (n: number) => (n === 1 ? 'Found console already in use' : `Found ${n} consoles already in use`),
  // ---- conch additions (conman has no text for these cases) ----
  noCommand: 'Invalid request: expected QUERY, MONITOR or CONNECT',
  unterminated: (where: string) => `Invalid ${where}: unterminated quoted string`,
  nonAsciiPattern: (p: string) =>
    `Invalid console pattern "${printable(p)}": console names are 7-bit ASCII only`,
  lineTooLong: (where: string, max: number) => `Invalid ${where}: line longer than ${max} bytes`,
  denied: (user: string, right: string, console: string) =>
    `Permission denied: ${user} has no ${right} right on console [${console}] (server access=)`,
};

/** `OK[ OPTION=RESET][ CONSOLE='name']...\n` */
export function okLine(names: string[] = [], reset = false): Buffer {
  const parts: Buffer[] = [Buffer.from('OK')];
  if (names.length > 0 && reset) parts.push(Buffer.from(' OPTION=RESET'));
  for (const n of names) parts.push(Buffer.from(' CONSOLE='), encodeQuoted(n));
  parts.push(Buffer.from('\n'));
  return Buffer.concat(parts);
}

/** `ERROR CODE=n MESSAGE='text'\n` */
export function errorLine(code: number, text: string): Buffer {
  return Buffer.concat([Buffer.from(`ERROR CODE=${code} MESSAGE=`), encodeQuoted(text), Buffer.from('\n')]);
}

/** Who a client is, as every notice shows it. */
export type Who = Pick<Identity, 'user' | 'host' | 'tty'>;

/** A line after ERROR CODE=7: `Console [n1] open R/W by <u@h> on pts/1 (idle 1s).\n` */
export function busyLine(console: string, w: Who, broadcast: boolean, idleMs: number): string {
  return `Console [${console}] open ${broadcast ? 'B/C' : 'R/W'} by ${whoText(w)} (idle ${timeDelta(idleMs)}).\n`;
}

// ---- in-band notices (framed by the engine's frameNotice) ----

export const NOTE = {
  // (a client gaining or losing write access: the engine's LINK_NOTE)
  down: (c: string, label: string) => `Console [${c}] is currently disconnected from ${label}`,
  replayBegin: (c: string) => `Begin log replay of console [${c}]`,
  replayEnd: (c: string) => `End log replay of console [${c}]`,
  quiet: (on: boolean) =>
    on ? 'Quiet-mode enabled -- info msgs will be suppressed' : 'Quiet-mode disabled -- info msgs will be displayed',
  reset: (c: string, w: Who, pid: number) => `Console [${c}] reset by <${w.user}@${w.host}> (pid ${pid})`,
  resetBusy: (c: string, pid: number) => `Ignoring reset of console [${c}]: pid ${pid} still active`,
  resetFailed: (c: string, why: string) => `Unable to reset console [${c}]: ${why}`,
  // conch addition: conman silently overwrites a slow client's buffer
  lost: (c: string, n: number) => `Console [${c}] lost ${n} bytes for this client (slow reader)`,
  // conch addition: an escape (&B, &R, &F, &J) the access rules do not allow this client
  refused: (c: string, what: string, right: string) => `Console [${c}] ${what} refused: no ${right} right`,
};

/** For error texts: control and non-ASCII chars shown as \xNN. */
export function printable(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    out += c >= 0x20 && c < 0x7f ? ch : c <= 0xff ? `\\x${c.toString(16).padStart(2, '0')}` : `\\u{${c.toString(16)}}`;
  }
  return out;
}

/** a replay as a client gets it (&L, the web terminal's replay button): between conman's begin and end notices */
export function framedReplay(c: string, data: Buffer): Buffer {
  return Buffer.concat([frameNotice(NOTE.replayBegin(c)), data, frameNotice(NOTE.replayEnd(c))]);
}

// The audit log (`server auditlog=FILE`): one JSON object a line, `time`
// first, appended with O_APPEND in one write so lines never interleave. It is
// opened like console logs (O_NOFOLLOW, mode 600: a planted symlink is
// refused). Writing never throws: an outage is reported once, the events
// lost meanwhile are counted and reported when writing works again.
// Events have no field a password could go into, and every string is cut to
// a bounded length; JSON escaping keeps each event on one line.

import * as fs from 'node:fs';
import { openLogSync, SymlinkError } from '../logging/open-log.js';

export type AuditAction =
  | 'connect' | 'auth-failed' | 'query' | 'monitor' | 'attach' | 'join'
  | 'force' | 'break' | 'reset' | 'broadcast' | 'detach' | 'denied';

export interface AuditEvent {
  action: AuditAction;
  user: string;
  auth: 'claimed' | 'password' | 'certificate' | 'token' | 'none';
  /** e.g. tcp, tls, unix */
  transport: string;
  /** client address */
  source: string;
  port: number;
  console?: string;
  /** consoles a request named (the log keeps the first MAX_LIST) */
  consoles?: string[];
  result: 'ok' | 'denied' | 'failed';
  /** the right lacking, when denied */
  missing?: string;
  /** the users a force cut off */
  displaced?: string[];
  detail?: string;
}

export const MAX_FIELD = 256;
export const MAX_LIST = 100;

const cut = (s: unknown): string => {
  const t = String(s);
  return t.length > MAX_FIELD ? `${t.slice(0, MAX_FIELD)}…` : t;
};

/** The JSON line of an event: known fields only, in a fixed order, bounded. */
export function auditLine(e: AuditEvent, time: Date): string {
  const o: Record<string, unknown> = {
    time: time.toISOString(),
    action: cut(e.action),
    user: cut(e.user),
    auth: cut(e.auth),
    transport: cut(e.transport),
    source: cut(e.source),
    port: Number.isInteger(e.port) ? e.port : 0,
  };
  if (e.console !== undefined) o.console = cut(e.console);
  if (e.consoles !== undefined) {
    o.consoles = e.consoles.slice(0, MAX_LIST).map(cut);
    if (e.consoles.length > MAX_LIST) o.consolesTotal = e.consoles.length;
  }
  o.result = cut(e.result);
  if (e.missing !== undefined) o.missing = cut(e.missing);
  if (e.displaced !== undefined) {
    o.displaced = e.displaced.slice(0, MAX_LIST).map(cut);
    if (e.displaced.length > MAX_LIST) o.displacedTotal = e.displaced.length;
  }
  if (e.detail !== undefined) o.detail = cut(e.detail);
  // JSON.stringify escapes control characters; these two are line breaks to some readers
  return `${JSON.stringify(o).replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029')}\n`;
}

export interface AuditLogOptions {
  /** the clock, for tests */
  now?: () => number;
  /** while the file cannot be opened, how often a write tries again (ms) */
  retryMs?: number;
  /** told when writing works again after an outage (default: onError) */
  onResume?: (msg: string) => void;
}

export class AuditLog {
  private fd = -1;
  private down = false;
  private lost = 0;
  private lastOpen = 0;
  private closed = false;
  private readonly now: () => number;
  private readonly retryMs: number;
  private readonly onResume: (msg: string) => void;

  /** `file` null: events are dropped (no audit log configured). */
  constructor(
    private readonly file: string | null,
    private readonly onError: (msg: string) => void,
    opts: AuditLogOptions = {},
  ) {
    this.now = opts.now ?? Date.now;
    this.retryMs = opts.retryMs ?? 5000;
    this.onResume = opts.onResume ?? onError;
    if (file) this.open();
  }

  write(e: AuditEvent): void {
    if (!this.file || this.closed) return;
    if (this.fd < 0 && (this.now() - this.lastOpen < this.retryMs || !this.open())) {
      this.lost++;
      return;
    }
    const buf = Buffer.from(auditLine(e, new Date(this.now())));
    try {
      for (let off = 0; off < buf.length; ) off += fs.writeSync(this.fd, buf, off);
    } catch (err) {
      this.lost++;
      this.fail(`cannot write the audit log ${this.file}: ${why(err)}; events are lost until it can`);
      return;
    }
    this.resumed();
  }

  /** Close and open again (after log rotation, or to retry now). */
  reopen(): void {
    if (!this.file || this.closed) return;
    this.closeFd();
    // the outage ends with the next write that succeeds, not with an open
    this.open();
  }

  close(): void {
    this.closeFd();
    this.closed = true;
  }

  private open(): boolean {
    this.lastOpen = this.now();
    try {
      this.fd = openLogSync(this.file!, { mode: 0o600, nonblock: true });
      return true;
    } catch (err) {
      this.fail(`cannot open the audit log ${this.file}: ${why(err)}; events are lost until it can`);
      return false;
    }
  }

  private fail(msg: string): void {
    if (this.down) return;
    this.down = true;
    this.onError(msg);
  }

  private resumed(): void {
    if (!this.down) return;
    this.down = false;
    const n = this.lost;
    this.lost = 0;
    this.onResume(`audit log ${this.file} written again; ${n} event${n === 1 ? '' : 's'} lost meanwhile`);
  }

  private closeFd(): void {
    if (this.fd < 0) return;
    try {
      fs.closeSync(this.fd);
    } catch {
      // nothing to do: the descriptor is gone either way
    }
    this.fd = -1;
  }
}

function why(e: unknown): string {
  // SymlinkError's text names logsymlinks=on, which does not apply to the audit log
  if (e instanceof SymlinkError) return 'it is a symbolic link (refused)';
  return (e as Error).message;
}

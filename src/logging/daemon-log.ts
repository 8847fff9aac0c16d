// The daemon's own log (server logfile=, or stderr in the foreground):
// `YYYY-MM-DD HH:MM:SS LEVEL: message` lines, filtered by priority.

import * as fs from 'node:fs';
import { PRIORITIES, type Priority } from '../config/types.js';
import { stampTime } from '../util/notice.js';
import { openLogSync } from './open-log.js';

/** lines of this priority or above are written at once, with those before them */
const ERR = PRIORITIES.indexOf('err');
/** a pending batch this large is written at once */
const FLUSH_BYTES = 64 * 1024;

/** logs with lines pending and a flush scheduled: whatever is pending when the process exits (from anywhere) is still written */
const unflushed = new Set<DaemonLog>();
process.once('exit', () => {
  for (const l of [...unflushed]) l.flush();
});

export class DaemonLog {
  private fd: number | null = null;
  private pending: string[] = [];
  private pendingBytes = 0;
  private min: number;
  /** also copy to stderr (foreground / -v) */
  echo: boolean;

  private file: string | null;
  /** server logsymlinks=on: follow a symbolic link at the log file's path (off: refuse it, like console logs) */
  private followSymlinks: boolean;

  constructor(opts: { file?: string | null; priority?: Priority; echo?: boolean; followSymlinks?: boolean } = {}) {
    this.min = PRIORITIES.indexOf(opts.priority ?? 'info');
    this.echo = opts.echo ?? !opts.file;
    this.file = opts.file ?? null;
    this.followSymlinks = opts.followSymlinks ?? false;
    this.reopen();
  }

  /** (Re)open the log file; called at start and on SIGHUP. Errors go to stderr. */
  reopen(): void {
    this.flush();
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
    if (!this.file) return;
    try {
      // no O_NONBLOCK here: an operator may point this at a FIFO on purpose
      this.fd = openLogSync(this.file, { followSymlinks: this.followSymlinks });
    } catch (e) {
      process.stderr.write(`conchd: cannot open log file ${this.file}: ${(e as Error).message}\n`);
    }
  }

  /** A reload changed `server logfile=` or `logsymlinks=`: the next reopen() takes them. */
  retarget(file: string | null, followSymlinks: boolean): void {
    this.file = file;
    this.followSymlinks = followSymlinks;
  }

  get path(): string | null {
    return this.file;
  }

  setPriority(p: Priority): void {
    this.min = PRIORITIES.indexOf(p);
  }

  write(p: Priority, msg: string): void {
    const level = PRIORITIES.indexOf(p);
    if (level > this.min) return;
    this.pending.push(`${stampTime()} ${p.toUpperCase()}: ${msg}\n`);
    this.pendingBytes += msg.length;
    // a start or a reload logs tens of thousands of lines in a few turns of the event loop: one write per turn,
    // not one per line (each a system call costing tens of µs here); errors, and a full batch, go out at once
    if (level <= ERR || this.pendingBytes >= FLUSH_BYTES) this.flush();
    else if (!unflushed.has(this)) {
      unflushed.add(this);
      setImmediate(() => this.flush());
    }
  }

  /** write what is pending (also before a reopen and at close) */
  flush(): void {
    unflushed.delete(this);
    if (this.pending.length === 0) return;
    const text = this.pending.join('');
    this.pending = [];
    this.pendingBytes = 0;
    if (this.fd !== null) {
      try {
        fs.writeSync(this.fd, text);
      } catch {
        /* a full disk must not stop the daemon */
      }
    }
    if (this.echo) process.stderr.write(text);
  }

  err(msg: string): void {
    this.write('err', msg);
  }
  warn(msg: string): void {
    this.write('warning', msg);
  }
  notice(msg: string): void {
    this.write('notice', msg);
  }
  info(msg: string): void {
    this.write('info', msg);
  }
  debug(msg: string): void {
    this.write('debug', msg);
  }

  close(): void {
    this.flush();
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }
}

/** A logger that drops everything (tests, --check). */
export const quietLog = (): DaemonLog => new DaemonLog({ priority: 'emerg', echo: false });

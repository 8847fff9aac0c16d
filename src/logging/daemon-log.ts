// The daemon's own log (server logfile=, or stderr in the foreground):
// `YYYY-MM-DD HH:MM:SS LEVEL: message` lines, filtered by priority.

import * as fs from 'node:fs';
import { PRIORITIES, type Priority } from '../config/types.js';
import { stampTime } from '../util/notice.js';
import { openLogSync } from './open-log.js';

export class DaemonLog {
  private fd: number | null = null;
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
    if (PRIORITIES.indexOf(p) > this.min) return;
    const line = `${stampTime()} ${p.toUpperCase()}: ${msg}\n`;
    if (this.fd !== null) {
      try {
        fs.writeSync(this.fd, line);
      } catch {
        /* a full disk must not stop the daemon */
      }
    }
    if (this.echo) process.stderr.write(line);
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
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }
}

/** A logger that drops everything (tests, --check). */
export const quietLog = (): DaemonLog => new DaemonLog({ priority: 'emerg', echo: false });

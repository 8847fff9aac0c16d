// One console's log file. Bytes are appended in order through a
// FileAppender; reopen() (SIGHUP) switches to a freshly expanded path while
// the old appender drains into the old (possibly renamed) file, so nothing is
// lost.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { LogOpts } from '../config/types.js';
import { expandSpecifiers } from '../config/specifiers.js';
import { frameNotice, longTime } from '../engine/notice.js';
import { LineFilter } from './line-filter.js';
import type { DaemonLog } from './daemon-log.js';
import { FileAppender } from './file-appender.js';

export interface ConsoleLogContext {
  name: string;
  dev: string;
}

// Writes are gathered for up to FLUSH_MS and written together: with
// thousands of consoles, one write(2) per SOL packet was the daemon's largest
// single cost. One timer serves every log; a large backlog is written at once.
// The flush goes FLUSH_SLICE logs at a time, yielding between slices, so a
// keystroke from a client does not wait behind a thousand writes.
const FLUSH_MS = 200;
const FLUSH_BYTES = 64 * 1024;
const FLUSH_SLICE = 64;
const dirty = new Set<ConsoleLog>();
let flushTimer: NodeJS.Timeout | NodeJS.Immediate | null = null;

function flushSome(): void {
  let n = 0;
  for (const log of dirty) {
    dirty.delete(log);
    log.flush();
    if (++n === FLUSH_SLICE && dirty.size > 0) {
      flushTimer = setImmediate(flushSome);
      return;
    }
  }
  flushTimer = null;
}

export class ConsoleLog {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private stream: FileAppender | null = null;
  private filter: LineFilter;
  private truncateNext: boolean;

  constructor(
    private readonly pattern: string,
    opts: LogOpts,
    private readonly ctx: ConsoleLogContext,
    private readonly dlog: DaemonLog,
    truncate = false,
  ) {
    this.filter = new LineFilter(opts.sanitize, opts.timestamp);
    this.truncateNext = truncate;
  }

  /** Open (or reopen) the file, re-evaluating %-specifiers. */
  open(): void {
    const file = expandSpecifiers(this.pattern, { name: this.ctx.name, dev: this.ctx.dev, pid: process.pid, now: new Date() });
    const old = this.stream;
    try {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      const fd = fs.openSync(file, this.truncateNext ? 'w' : 'a', 0o600);
      this.stream = new FileAppender(fd, (e) => this.dlog.err(`Console [${this.ctx.name}] cannot write log ${file}: ${e.message}`));
    } catch (e) {
      // keep writing to the old file rather than dropping data
      this.dlog.err(`Console [${this.ctx.name}] cannot open log ${file}: ${(e as Error).message}`);
      return;
    }
    this.truncateNext = false;
    if (old) {
      // what arrived before the reopen belongs to the old (renamed) file
      const fresh = this.stream;
      this.stream = old;
      this.flush();
      this.stream = fresh;
      void old.end();
    }
    this.writeRaw(frameNotice(`Console [${this.ctx.name}] log opened at ${longTime()}`));
  }

  /** Console bytes (and in-band notices), filtered per logopts. */
  write(data: Buffer): void {
    if (!this.stream) return;
    this.writeRaw(this.filter.apply(data));
  }

  /** The periodic `server timestamp=` mark. */
  mark(now = new Date()): void {
    this.write(frameNotice(`Console [${this.ctx.name}] log at ${longTime(now)}`));
  }

  private writeRaw(b: Buffer): void {
    if (!this.stream || b.length === 0) return;
    // devices never reuse a buffer they delivered (Device contract): no copy
    this.pending.push(b);
    this.pendingBytes += b.length;
    if (this.pendingBytes >= FLUSH_BYTES) {
      this.flush();
      dirty.delete(this);
    } else {
      dirty.add(this);
      flushTimer ??= setTimeout(flushSome, FLUSH_MS);
    }
  }

  /** Hand what is gathered to the file's write stream. */
  flush(): void {
    if (this.pending.length === 0 || !this.stream) return;
    this.stream.writeAll(this.pending);
    this.pending = [];
    this.pendingBytes = 0;
  }

  /** Flush and close; resolves when every byte is on disk. */
  close(): Promise<void> {
    this.flush();
    dirty.delete(this);
    const s = this.stream;
    this.stream = null;
    return s ? s.end() : Promise.resolve();
  }
}

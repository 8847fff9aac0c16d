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

// Writes are gathered for up to FLUSH_MS and handed to the log writer
// thread together: with thousands of consoles, one write(2) per SOL packet
// was the daemon's largest single cost. One timer serves every log; a large
// backlog is handed over at once.
const FLUSH_MS = 200;
const FLUSH_BYTES = 64 * 1024;
/** bytes kept for a log whose file is not open yet; beyond it the oldest go (the daemon log says so, once) */
const OPENING_MAX = 1024 * 1024;
const dirty = new Set<ConsoleLog>();
let flushTimer: NodeJS.Timeout | null = null;

function flushDirty(): void {
  flushTimer = null;
  for (const log of dirty) log.flush();
  dirty.clear();
}

export class ConsoleLog {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private stream: FileAppender | null = null;
  /** set while an open() runs (bytes are kept meanwhile); a newer open() replaces it */
  private openToken: object | null = null;
  /** the appender a running open() will replace (a reopen), ended once the new file is open */
  private replaced: FileAppender | null = null;
  /** settles when the last open() has finished, either way */
  private opened: Promise<void> = Promise.resolve();
  private trimmed = false;
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

  /**
   * Open (or reopen) the file, re-evaluating %-specifiers. The open runs in
   * the background (a start-up of 10,000 consoles must not wait for 10,000
   * file creations on a slow disk): bytes that arrive meanwhile are kept and
   * written after the "log opened" line; on a reopen they go to the new file
   * and what came before goes to the old one.
   */
  open(): void {
    const file = expandSpecifiers(this.pattern, { name: this.ctx.name, dev: this.ctx.dev, pid: process.pid, now: new Date() });
    this.flush(); // what arrived before the reopen belongs to the old (renamed) file
    if (this.stream) {
      this.replaced = this.stream;
      this.stream = null;
    }
    const token = {};
    this.openToken = token;
    const flags = this.truncateNext ? 'w' : 'a';
    let settle!: () => void;
    this.opened = new Promise<void>((r) => (settle = r));
    const failed = (e: Error): void => {
      this.dlog.err(`Console [${this.ctx.name}] cannot open log ${file}: ${e.message}`);
      if (this.openToken === token) {
        // keep writing to the old file rather than dropping data
        this.openToken = null;
        this.stream = this.replaced;
        this.replaced = null;
        if (this.stream) this.flush();
        else this.dropPending();
      }
      settle();
    };
    // the directory is made only when missing (one mkdir per console cost a start-up of thousands)
    let madeDir = false;
    const openFile = (): void => {
      fs.open(file, flags, 0o600, (e, fd) => {
        if (e?.code === 'ENOENT' && !madeDir) {
          madeDir = true;
          return fs.mkdir(path.dirname(file), { recursive: true }, (e2) => (e2 ? failed(e2) : openFile()));
        }
        if (e) return failed(e);
        const fresh = new FileAppender(fd, (err) => this.dlog.err(`Console [${this.ctx.name}] cannot write log ${file}: ${err.message}`));
        if (this.openToken !== token) {
          void fresh.end(); // a newer open() took over while this one ran
          return settle();
        }
        this.openToken = null;
        this.truncateNext = false;
        void this.replaced?.end();
        this.replaced = null;
        this.stream = fresh;
        const notice = frameNotice(`Console [${this.ctx.name}] log opened at ${longTime()}`);
        this.pending.unshift(notice);
        this.pendingBytes += notice.length;
        this.flush();
        settle();
      });
    };
    openFile();
  }

  /** bytes are taken while a file is open or opening (not after a failed first open, nor after close) */
  private get accepting(): boolean {
    return this.stream !== null || this.openToken !== null;
  }

  private dropPending(): void {
    this.pending = [];
    this.pendingBytes = 0;
  }

  /** Console bytes (and in-band notices), filtered per logopts. */
  write(data: Buffer): void {
    if (this.accepting) this.writeRaw(this.filter.apply(data));
  }

  /** The periodic `server timestamp=` mark. */
  mark(now = new Date()): void {
    this.write(frameNotice(`Console [${this.ctx.name}] log at ${longTime(now)}`));
  }

  private writeRaw(b: Buffer): void {
    if (!this.accepting || b.length === 0) return;
    // devices never reuse a buffer they delivered (Device contract): no copy
    this.pending.push(b);
    this.pendingBytes += b.length;
    if (this.pendingBytes >= FLUSH_BYTES && this.stream) {
      this.flush();
      dirty.delete(this);
    } else if (!this.stream && this.pendingBytes > OPENING_MAX) {
      // the file is slow to open: keep the newest, as a console's own buffer would
      while (this.pendingBytes > OPENING_MAX && this.pending.length > 1) this.pendingBytes -= this.pending.shift()!.length;
      if (!this.trimmed) this.dlog.err(`Console [${this.ctx.name}] log file still opening: keeping only the newest ${OPENING_MAX >> 20} MiB`);
      this.trimmed = true;
    } else {
      dirty.add(this);
      flushTimer ??= setTimeout(flushDirty, FLUSH_MS);
    }
  }

  /** Hand what is gathered to the file's write stream. */
  flush(): void {
    if (this.pending.length === 0 || !this.stream) return;
    this.stream.writeAll(this.pending);
    this.pending = [];
    this.pendingBytes = 0;
  }

  /** Flush and close; resolves when every byte is on disk (after an open still running). */
  async close(): Promise<void> {
    await this.opened;
    this.flush();
    dirty.delete(this);
    const s = this.stream;
    this.stream = null;
    this.openToken = null;
    await s?.end();
  }
}

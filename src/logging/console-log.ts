// One console's log file. Bytes are appended in order through a
// FileAppender; reopen() (SIGHUP) switches to a freshly expanded path while
// the old appender drains into the old (possibly renamed) file, so nothing is
// lost. An open that fails (or meets a symbolic link, see open-log.ts) is
// retried with backoff; bytes are kept meanwhile (the newest OPENING_MAX),
// and a marker in the file counts those that were not.

import { fenceOk } from '../util/fence.js';
import * as fs from 'node:fs';
import type { LogOpts } from '../config/types.js';
import { expandSpecifiers } from '../config/specifiers.js';
import { frameNotice, longTime } from '../util/notice.js';
import { LineFilter } from './line-filter.js';
import type { DaemonLog } from './daemon-log.js';
import { FileAppender, HOLD_MAX, logFailures, lossMarker, RETRY_MAX_MS, RETRY_MIN_MS } from './file-appender.js';
import { openLog } from './open-log.js';
import { LogIndex } from '../search/index-writer.js';

export interface ConsoleLogContext {
  name: string;
  dev: string;
}

export interface ConsoleLogOptions {
  /** -z: truncate the file on the first open */
  truncate?: boolean;
  /** server logsymlinks=on: follow a symbolic link at the log path (off: refuse it and retry) */
  followSymlinks?: boolean;
  /** backoff of failed opens and writes (tests shorten it) */
  retryMinMs?: number;
  retryMaxMs?: number;
}

// Writes are gathered for up to FLUSH_MS and handed to the log writer
// thread together: with thousands of consoles, one write(2) per SOL packet
// was the daemon's largest single cost. One timer serves every log; a large
// backlog is handed over at once.
const FLUSH_MS = 200;
const FLUSH_BYTES = 64 * 1024;
/** bytes kept for a log whose file is not open yet (or cannot be opened); beyond it the oldest go, counted in a marker */
const OPENING_MAX = HOLD_MAX;
/**
 * The logs with bytes gathered, each once (its `queued` flag), in the first
 * `dirtyN` slots: an array that keeps its length, where a Set grew and was
 * cleared again five times a second (garbage the collector copied).
 */
const dirty: (ConsoleLog | undefined)[] = [];
let dirtyN = 0;
let flushTimer: NodeJS.Timeout | null = null;

function flushDirty(): void {
  flushTimer = null;
  // (a log flushed since it was queued, or closed, has nothing gathered: its flush does nothing)
  for (let i = 0; i < dirtyN; i++) {
    const log = dirty[i]!;
    dirty[i] = undefined;
    log.queued = false;
    log.flush();
  }
  dirtyN = 0;
}

export class ConsoleLog {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** in the module's list of logs to flush (flushDirty) */
  queued = false;
  private stream: FileAppender | null = null;
  /** set while an open runs (bytes are kept meanwhile); a newer open replaces it */
  private openToken: object | null = null;
  /** the appender a running open will replace (a reopen), ended once the new file is open */
  private replaced: FileAppender | null = null;
  /** the time index of the file `stream` writes (search), and of `replaced` */
  private index: LogIndex | null = null;
  private replacedIndex: LogIndex | null = null;
  /** who watches the bytes as they are written (search's follow) */
  /** search's follows (made at the first: most logs are never followed) */
  private watchers: Set<(b: Buffer) => void> | null = null;
  /** settles when the last open has finished, either way */
  private opened: Promise<void> = Promise.resolve();
  private trimmed = false;
  private filter: LineFilter;
  private truncateNext: boolean;
  private followSymlinks: boolean;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;
  /** the next try of a failed open (bytes are kept meanwhile) */
  private retryTimer: NodeJS.Timeout | null = null;
  private retryDelay: number;
  /** opens have failed since the last one that worked: retries are not reported again */
  private outage = false;
  /** bytes were kept with no file to take them: the file gets a marker when it opens */
  private held = false;
  /** bytes dropped while no file took them, counted in that marker */
  private lost = 0;
  private closing = false;
  /** bytes that reached the file(s), for metrics */
  private readonly counts = { bytes: 0 };

  constructor(
    private readonly pattern: string,
    opts: LogOpts,
    private readonly ctx: ConsoleLogContext,
    private readonly dlog: DaemonLog,
    options: ConsoleLogOptions | boolean = {},
  ) {
    const o = typeof options === 'boolean' ? { truncate: options } : options;
    this.filter = new LineFilter(opts.sanitize, opts.timestamp);
    this.truncateNext = o.truncate ?? false;
    this.followSymlinks = o.followSymlinks ?? false;
    this.retryMinMs = o.retryMinMs ?? RETRY_MIN_MS;
    this.retryMaxMs = o.retryMaxMs ?? RETRY_MAX_MS;
    this.retryDelay = this.retryMinMs;
  }

  /**
   * Open (or reopen) the file, re-evaluating %-specifiers. The open runs in
   * the background (a start-up of 10,000 consoles must not wait for 10,000
   * file creations on a slow disk): bytes that arrive meanwhile are kept and
   * written after the "log opened" line; on a reopen they go to the new file
   * and what came before goes to the old one. An open that fails is retried
   * with backoff (a SIGHUP tries at once); until then the old file (on a
   * reopen) or a bounded buffer takes the bytes.
   */
  open(): void {
    if (this.closing) return;
    const file = expandSpecifiers(this.pattern, { name: this.ctx.name, dev: this.ctx.dev, pid: process.pid, now: new Date() });
    this.attempt(file, false);
  }

  private attempt(file: string, retry: boolean): void {
    this.flush(); // what arrived before the reopen belongs to the old (renamed) file
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.stream) {
      this.replaced = this.stream;
      this.replacedIndex = this.index;
      this.stream = null;
      this.index = null;
    }
    const token = {};
    this.openToken = token;
    let settle!: () => void;
    this.opened = new Promise<void>((r) => (settle = r));
    openLog(file, { truncate: this.truncateNext, followSymlinks: this.followSymlinks, nonblock: true }, (e, fd) => {
      if (this.openToken !== token) {
        if (!e) fs.close(fd, () => {}); // a newer open took over while this one ran; nothing was written to it
        return settle();
      }
      this.openToken = null;
      if (e) this.failed(file, e, retry);
      else this.ready(file, fd);
      settle();
    });
  }

  private failed(file: string, e: Error, retry: boolean): void {
    logFailures.opens++;
    // one line per outage; a SIGHUP (not a retry) says it again
    if (!retry || !this.outage) this.dlog.err(`Console [${this.ctx.name}] cannot open log ${file}: ${e.message}`);
    this.outage = true;
    // keep writing to the old file (on a reopen) rather than holding data
    this.stream = this.replaced;
    this.index = this.replacedIndex;
    this.replaced = null;
    this.replacedIndex = null;
    if (this.stream) {
      // bytes dropped while this open ran came before the pending ones
      this.stream.noteLost(this.lost);
      this.lost = 0;
      this.flush();
    } else this.held = true;
    if (this.closing) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.attempt(file, true);
    }, this.retryDelay);
    this.retryTimer.unref(); // never what keeps a stopping daemon alive
    this.retryDelay = Math.min(this.retryDelay * 2, this.retryMaxMs);
  }

  private ready(file: string, fd: number): void {
    const name = this.ctx.name;
    const fresh = new FileAppender(fd, (err) => this.dlog.err(`Console [${name}] cannot write log ${file}: ${err.message}`), {
      marker: (lost, at) => lossMarker(name, lost, at),
      onResume: (lost) => this.dlog.notice(`Console [${name}] log ${file} resumed: ${lost} bytes lost`),
      onEndLost: (lost) => this.lostElsewhere(file, lost),
      retryMinMs: this.retryMinMs,
      retryMaxMs: this.retryMaxMs,
      counts: this.counts,
    });
    this.truncateNext = false;
    const old = this.replaced;
    this.replaced = null;
    this.stream = fresh;
    void old?.end();
    void this.replacedIndex?.close();
    this.replacedIndex = null;
    this.index = LogIndex.open(file, fd, { name, dev: this.ctx.dev, pattern: this.pattern }, this.dlog);
    const now = new Date();
    const head = [frameNotice(`Console [${name}] log opened at ${longTime(now)}`)];
    if (this.held || this.lost > 0) head.push(lossMarker(name, this.lost, now));
    if (this.outage) this.dlog.notice(`Console [${name}] log ${file} opened after failing: ${this.lost} bytes lost`);
    this.outage = false;
    this.held = false;
    this.lost = 0;
    this.trimmed = false;
    this.retryDelay = this.retryMinMs;
    for (const b of head) this.pendingBytes += b.length;
    this.pending.unshift(...head);
    this.flush();
  }

  /** an ended appender (of `file`) lost bytes it could not mark there: mark them in the current file, or say so */
  private lostElsewhere(file: string, lost: number): void {
    if (this.stream && !this.closing) this.stream.noteLost(lost);
    else this.dlog.err(`Console [${this.ctx.name}] log ${file} closed: ${lost} bytes lost that could not be written`);
  }

  /** bytes are taken while a file is open, opening or to be retried (not after close) */
  private get accepting(): boolean {
    return this.stream !== null || this.openToken !== null || this.retryTimer !== null;
  }

  private dropPending(): void {
    this.pending = [];
    this.pendingBytes = 0;
  }

  /** Bytes written to the log file(s) so far: console output as filtered, notices and markers. */
  get loggedBytes(): number {
    return this.counts.bytes;
  }

  /** A reload changed `server logsymlinks=`: opens from now on (the reload's reopen first) follow it. */
  setFollowSymlinks(on: boolean): void {
    this.followSymlinks = on;
  }

  /** Console bytes (and in-band notices), filtered per logopts. */
  write(data: Buffer): void {
    if (this.accepting) this.writeRaw(this.filter.apply(data));
  }

  /** The periodic `server timestamp=` mark. */
  mark(now = new Date()): void {
    this.write(frameNotice(`Console [${this.ctx.name}] log at ${longTime(now)}`));
  }

  /**
   * Watch the bytes written from now on (search's follow); what came before
   * is handed to the file first. Returns where the watched bytes start in the
   * file (null: not known) and the function that stops watching.
   */
  watch(fn: (b: Buffer) => void): { offset: number | null; stop: () => void } {
    this.flush();
    const ws = (this.watchers ??= new Set());
    ws.add(fn);
    return { offset: this.index?.offset ?? null, stop: () => void ws.delete(fn) };
  }

  private writeRaw(b: Buffer): void {
    if (!this.accepting || b.length === 0) return;
    // (no iterator made per chunk when nobody watches: this runs for every chunk of every console)
    if (this.watchers !== null && this.watchers.size > 0) for (const w of this.watchers) w(b);
    // devices never reuse a buffer they delivered (Device contract): no copy
    this.pending.push(b);
    this.pendingBytes += b.length;
    if (this.pendingBytes >= FLUSH_BYTES && this.stream) {
      this.flush();
    } else if (!this.stream && this.pendingBytes > OPENING_MAX) {
      // the file is slow to open: keep the newest, as a console's own buffer would
      while (this.pendingBytes > OPENING_MAX && this.pending.length > 1) {
        const n = this.pending.shift()!.length;
        this.pendingBytes -= n;
        this.lost += n;
      }
      // a failed open said so already; the marker counts what goes
      if (!this.trimmed && !this.outage) this.dlog.err(`Console [${this.ctx.name}] log file still opening: keeping only the newest ${OPENING_MAX >> 20} MiB`);
      this.trimmed = true;
    } else {
      if (!this.queued) {
        this.queued = true;
        dirty[dirtyN++] = this;
      }
      flushTimer ??= setTimeout(flushDirty, FLUSH_MS);
    }
  }

  /** Hand what is gathered to the file's write stream. */
  flush(): void {
    if (this.pending.length === 0 || !this.stream) return;
    if (!fenceOk()) {
      // a cluster node woken past its lease (util/fence.ts): what it gathered before the pause is no longer its to write
      this.pending = [];
      this.pendingBytes = 0;
      return;
    }
    this.index?.wrote(this.pending, this.pendingBytes);
    this.stream.writeAll(this.pending);
    // emptied, not replaced: a dropped array, once old, would keep its young buffers alive through scavenges
    this.pending.length = 0;
    this.pendingBytes = 0;
  }

  /** the file holds the console's bytes as they came (and the notices): no logopts stamp or sanitize them */
  get verbatim(): boolean {
    return this.filter.identity;
  }

  /**
   * A replay: the newest `max` bytes of the log as written, every byte
   * gathered so far included (it is handed over first, and the writer
   * thread reads after writing it): the processed stream conman replays,
   * notices and logopts' changes included. While the file is being opened
   * (a daemon's first seconds, a reopen) the replay waits for the open,
   * whose file then holds the bytes kept meanwhile: an alert's before-lines
   * asked for then are not lost. null: no file is open.
   */
  tail(max: number): Promise<Buffer | null> {
    if (this.closing) return Promise.resolve(null);
    if (this.stream) return this.tailNow(this.stream, max);
    if (this.openToken === null) return Promise.resolve(null);
    return this.opened.then(() => (this.stream && !this.closing ? this.tailNow(this.stream, max) : null));
  }

  private tailNow(stream: FileAppender, max: number): Promise<Buffer | null> {
    this.flush();
    return stream.tail(max);
  }

  /** Flush and close; resolves when every byte is on disk (after an open still running). */
  async close(): Promise<void> {
    this.closing = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    await this.opened;
    this.flush();
    const lost = this.stream ? 0 : this.lost + this.pendingBytes;
    if (lost > 0) this.dlog.err(`Console [${this.ctx.name}] log closed before it could be opened: ${lost} bytes lost`);
    this.dropPending();
    this.lost = 0;
    const s = this.stream;
    this.stream = null;
    this.openToken = null;
    const ix = this.index;
    this.index = null;
    this.watchers?.clear();
    await Promise.all([s?.end(), ix?.close()]);
  }
}

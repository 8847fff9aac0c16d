// Writing a log's time index (format: index-format.ts) as the log is written.
// ConsoleLog tells it, at each flush, how many bytes it hands to the file;
// the index keeps the file's logical size (its size when opened plus those)
// and records (now, offset) when the rule below says so. Records are saved
// in batches (BATCH_RECORDS, or every SAVE_MS by one timer for all logs):
// open, append, close on libuv's pool, so the main thread never waits on the
// disk for them and no descriptor is held per log. A crash loses at most the
// last SAVE_MS of records (lines there are dated by the record before).
//
// A record is made at the first flush of a file, then at a flush when at
// least STEP_MS passed since the last record and either MIN_BYTES were
// written since it or IDLE_MS passed: the bytes between two records were
// flushed within STEP_MS (IDLE_MS for a trickle) of the first one's time. A
// sidecar past CAP_RECORDS records keeps going at one per COARSE_MS.
//
// The sidecar is named after the log's first FP_BYTES, which are known once
// the file has that many (taken from the bytes written; records made before
// are kept in memory, at most PENDING_MAX, until then). A file that had bytes
// when it was opened goes on with its sidecar if it has one (conchd was
// restarted); one that has none (a log conmand wrote, taken over) is not
// indexed: its history has no index anyway, its directory keeps only the
// files it had, and the next file conchd creates (at rotation) gets one.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { openLog } from '../logging/open-log.js';
import { consolePart, FP_BYTES, fingerprint, header, HEADER_BYTES, indexConsole, indexDir, indexPath, record, RECORD_BYTES, sameConsole, readHead } from './index-format.js';
import { consoleFiles } from './sources.js';

export const STEP_MS = 1000;
export const IDLE_MS = 5000;
export const MIN_BYTES = 1024;
export const CAP_RECORDS = 65_536;
export const COARSE_MS = 60_000;
const PENDING_MAX = 4096;
/** records saved at once */
const BATCH_RECORDS = 64;
/** records are saved at least this often */
export const SAVE_MS = 30_000;
/** a sidecar not matched by any log of its console is removed once it is this old */
const SWEEP_AGE_MS = 24 * 3600_000;
/** a new log's clean-up runs after a random pause of up to this (10,000 logs reopened at once do not sweep at once) */
const SWEEP_SPREAD_MS = 60_000;

/** CONCH_SEARCH_INDEX=off turns indexing off (a test, or a disk where no sidecar may be written). */
const enabled = (): boolean => !/^(0|off|no|false)$/i.test(process.env.CONCH_SEARCH_INDEX ?? '');

export interface IndexReport {
  err(text: string): void;
}

/** The log being indexed: its console, and its `log=` pattern (for clean-up). */
export interface IndexedLog {
  name: string;
  dev: string;
  pattern: string;
}

export class LogIndex {
  /** logical size of the log: its size at open plus the bytes handed over since */
  private size: number;
  /** the first bytes of the log while fewer than FP_BYTES are known; null once named */
  private head: Buffer[] | null = [];
  private headBytes = 0;
  /** the file had bytes before this open: its head is read from it */
  private readonly prior: number;
  /** records not saved yet */
  private pending: Buffer[] = [];
  /** the sidecar's path, once the log's first bytes named it */
  private side: string | null = null;
  /** the next save truncates the sidecar (a fresh log's first) */
  private truncate = false;
  private saving: Promise<void> = Promise.resolve();
  private lastTime = -Infinity;
  private sinceLast = 0;
  private records = 0;
  private closed = false;
  private failed = false;

  private constructor(
    private readonly file: string,
    private readonly console: string,
    private readonly ino: number,
    size: number,
    private readonly report: IndexReport,
  ) {
    this.size = size;
    this.prior = size;
    if (size > 0) this.readPrior();
  }

  /** Start indexing the log `file` just opened as `fd` (null: indexing is off, or the file cannot be looked at). */
  static open(file: string, fd: number, log: IndexedLog, report: IndexReport): LogIndex | null {
    if (!enabled()) return null;
    let st: fs.Stats;
    try {
      // exact only now: nothing has been written through fd yet
      st = fs.fstatSync(fd);
    } catch {
      return null;
    }
    if (!st.isFile()) return null;
    const ix = new LogIndex(file, log.name, st.ino, st.size, report);
    if (st.size === 0) scheduleSweep(file, log);
    return ix;
  }

  /** The log's logical size: where the next byte handed over will be. */
  get offset(): number {
    return this.size;
  }

  /** `bytes` in `bufs` are being handed to the file now. */
  wrote(bufs: readonly Buffer[], bytes: number, now = Date.now()): void {
    if (this.closed || bytes === 0) return;
    if (this.head && this.prior === 0) this.collectHead(bufs);
    if (this.due(now, bytes)) this.add(record(now, this.size));
    this.sinceLast += bytes;
    this.size += bytes;
  }

  private due(now: number, bytes: number): boolean {
    const since = now - this.lastTime;
    const coarse = this.records >= CAP_RECORDS;
    const ok = coarse ? since >= COARSE_MS : since >= STEP_MS && (this.sinceLast + bytes >= MIN_BYTES || since >= IDLE_MS);
    if (!ok) return false;
    this.lastTime = now;
    this.sinceLast = 0;
    this.records++;
    return true;
  }

  private add(rec: Buffer): void {
    if (this.failed || this.pending.length >= PENDING_MAX) return;
    this.pending.push(rec);
    if (this.side === null) return;
    if (this.pending.length >= BATCH_RECORDS) this.save();
    else dirty.add(this);
    flushTimer ??= setInterval(saveDirty, SAVE_MS).unref();
  }

  private collectHead(bufs: readonly Buffer[]): void {
    for (const b of bufs) {
      const take = Math.min(b.length, FP_BYTES - this.headBytes);
      this.head!.push(Buffer.from(b.subarray(0, take)));
      this.headBytes += take;
      if (this.headBytes >= FP_BYTES) break;
    }
    if (this.headBytes >= FP_BYTES) this.named(Buffer.concat(this.head!));
  }

  /** The file had bytes: read its first FP_BYTES (from the path, checked to be this file). */
  private readPrior(): void {
    const fail = (): void => {
      this.head = null;
      this.pending = [];
      this.failed = true;
    };
    fs.stat(this.file, (e, st) => {
      if (e || st.ino !== this.ino || this.closed) return fail();
      void readHead(this.file, false).then((h) => {
        if (this.closed || !h) return fail();
        // shorter than a fingerprint: it never got a sidecar (see named())
        if (h.length < FP_BYTES) return fail();
        this.named(h.subarray(0, FP_BYTES));
      });
    });
  }

  /** The fingerprint is known: the sidecar's name, and what waited is written. */
  private named(fp: Buffer): void {
    this.head = null;
    const side = indexPath(this.file, this.console, fingerprint(fp));
    // a fresh log whose sidecar exists: another log began with the same bytes (or an old one was removed); start over
    if (this.prior === 0) {
      this.truncate = true;
      this.side = side;
      live.set(side, this);
      void this.save();
      return;
    }
    // a log conchd did not start (conmand's, taken over) gets no sidecar: its history has none, and
    // its directory keeps only the files it had; the next one conchd creates (at rotation) gets one
    fs.access(side, (e) => {
      if (e) {
        this.failed = true;
        this.pending = [];
      } else {
        this.side = side;
        live.set(side, this);
        void this.save();
      }
    });
  }

  /**
   * Append the records waiting to the sidecar: open, write, close (no
   * descriptor is held between: 10,000 logs do not cost 10,000 more). One
   * save at a time; resolves when this one (and any before) is done.
   */
  save(): Promise<void> {
    dirty.delete(this);
    const side = this.side;
    if (side === null || this.failed || this.pending.length === 0) return this.saving;
    const recs = this.pending;
    this.pending = [];
    const truncate = this.truncate;
    this.truncate = false;
    this.saving = this.saving.then(() => this.append(side, recs, truncate)).catch((e: unknown) => this.fail(side, e as Error));
    return this.saving;
  }

  private async append(side: string, recs: Buffer[], truncate: boolean): Promise<void> {
    const fd = await new Promise<number>((resolve, reject) => openLog(side, { truncate, nonblock: true, mode: 0o600 }, (e, f) => (e ? reject(e) : resolve(f))));
    try {
      const st = await new Promise<fs.Stats>((resolve, reject) => fs.fstat(fd, (e, s) => (e ? reject(e) : resolve(s))));
      const parts: Buffer[] = [];
      if (st.size === 0) parts.push(header());
      // a torn last record (a crash): pad it to a whole one, which the reader drops
      else if ((st.size - HEADER_BYTES) % RECORD_BYTES !== 0) parts.push(Buffer.alloc(RECORD_BYTES - ((st.size - HEADER_BYTES) % RECORD_BYTES)));
      const buf = Buffer.concat([...parts, ...recs]);
      let done = 0;
      while (done < buf.length) {
        done += await new Promise<number>((resolve, reject) => fs.write(fd, buf, done, buf.length - done, null, (e, n) => (e ? reject(e) : resolve(n))));
      }
    } finally {
      fs.close(fd, () => {});
    }
  }

  private fail(side: string, e: Error): void {
    if (this.failed) return;
    this.failed = true;
    this.pending = [];
    this.report.err(`Console [${this.console}] time index ${side}: ${e.message} (search by time falls back to reading the log)`);
  }

  /** The log is closed (or replaced after a reopen): the last records are saved; resolves once they are. */
  async close(): Promise<void> {
    if (this.closed) return this.saving;
    this.closed = true;
    this.head = null;
    await this.save();
    dirty.delete(this);
    if (this.side !== null && live.get(this.side) === this) live.delete(this.side);
  }
}

/** The indexes of the logs being written, by sidecar path. */
const live = new Map<string, LogIndex>();

/** Save what the index writer holds for the sidecar `side` (a search is about to read it). */
export function saveIndex(side: string): Promise<void> {
  return live.get(side)?.save() ?? Promise.resolve();
}

// Records are saved in batches: BATCH_RECORDS at once, else every SAVE_MS by one timer for every log.
const dirty = new Set<LogIndex>();
let flushTimer: NodeJS.Timeout | null = null;

function saveDirty(): void {
  for (const ix of [...dirty]) void ix.save();
  if (dirty.size === 0 && flushTimer) {
    clearInterval(flushTimer);
    flushTimer = null;
  }
}

// ---- clean-up -------------------------------------------------------------

/**
 * After a new log file: sidecars of its console that match none of its logs
 * any more (rotated away) are removed. Sweeps are gathered per directory
 * (10,000 logs opened or rotated at once share one listing, not one each:
 * that was quadratic), and a console with a single sidecar — its current
 * log's — has nothing to sweep.
 */
const pendingSweeps = new Map<string, Map<string, { file: string; log: IndexedLog }>>();

function scheduleSweep(file: string, log: IndexedLog): void {
  const dir = indexDir(file);
  let pending = pendingSweeps.get(dir);
  if (!pending) {
    pending = new Map();
    pendingSweeps.set(dir, pending);
    const t = setTimeout(() => void sweepDir(dir).catch(() => {}), SWEEP_SPREAD_MS * (0.5 + Math.random() / 2));
    t.unref();
  }
  pending.set(log.name, { file, log });
}

async function sweepDir(dir: string): Promise<void> {
  const pending = pendingSweeps.get(dir);
  pendingSweeps.delete(dir);
  if (!pending) return;
  let names: string[];
  try {
    names = await fs.promises.readdir(dir);
  } catch {
    return;
  }
  const perConsole = new Map<string, number>();
  for (const n of names) {
    const c = indexConsole(n)?.console;
    if (c !== undefined) perConsole.set(c, (perConsole.get(c) ?? 0) + 1);
  }
  for (const { file, log } of pending.values()) {
    if ((perConsole.get(consolePart(log.name)) ?? 0) > 1) await sweep(file, log);
  }
}

/** Remove the sidecars beside `file` of `log`'s console that match none of its log files and are older than a day. */
export async function sweep(file: string, log: IndexedLog, now = Date.now()): Promise<number> {
  const dir = indexDir(file);
  let names: string[];
  try {
    names = (await fs.promises.readdir(dir)).filter((n) => sameConsole(n, log.name));
  } catch {
    return 0;
  }
  if (names.length === 0) return 0;
  const keep = new Set<string>();
  for (const src of await consoleFiles(log.pattern, log)) {
    if (path.dirname(src.file) !== path.dirname(file)) continue;
    const h = await readHead(src.file, src.gz);
    if (h && h.length >= FP_BYTES) keep.add(path.basename(indexPath(file, log.name, fingerprint(h.subarray(0, FP_BYTES)))));
  }
  let removed = 0;
  for (const n of names) {
    if (keep.has(n)) continue;
    const p = path.join(dir, n);
    try {
      const st = await fs.promises.lstat(p);
      if (now - st.mtimeMs < SWEEP_AGE_MS) continue;
      await fs.promises.unlink(p);
      removed++;
    } catch {
      /* gone already */
    }
  }
  return removed;
}

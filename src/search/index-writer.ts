// Writing a log's time index (format: index-format.ts) as the log is written.
// ConsoleLog tells it, at each flush, how many bytes it hands to the file;
// the index keeps the file's logical size (its size when opened plus those)
// and records (now, offset) when the rule below says so. A record is two
// numbers pushed on an array: nothing is allocated or written per flush.
//
// Records are saved in batches, each one message to the index writer's
// thread (index-writer-worker.ts), which does the open, write, close of
// every sidecar in it: every SAVE_MS, one timer saves what every log holds;
// at the end of an event-loop turn, the logs asked for then (a search about
// to read a live log's sidecar, a log closed, a fresh log's first records,
// BATCH_RECORDS held). The main thread makes no file-system call for the
// index and never waits on the disk, and no descriptor is held per log. A
// crash loses at most the last SAVE_MS of records (lines there are dated by
// the record before).
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
import { BULK_NICE, WorkerPool } from '../util/worker-pool.js';
import { consolePart, FP_BYTES, fingerprint, indexConsole, indexDir, indexPath, sameConsole, readHead } from './index-format.js';
import { decodeSaveDone, encodeSaveBatch, TRUNCATE, type SaveBatchWire, type SaveDone, type SaveDoneWire } from './index-writer-protocol.js';
import { consoleFiles } from './sources.js';

export const STEP_MS = 1000;
export const IDLE_MS = 5000;
export const MIN_BYTES = 1024;
export const CAP_RECORDS = 65_536;
export const COARSE_MS = 60_000;
/** records held for one log at most (while its sidecar is not named yet, or saves are slow) */
const PENDING_MAX = 4096;
/** records held for one log that are saved at once (at one a second at most, a live log never has this many in SAVE_MS) */
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
  /** records not saved yet: time, offset, time, offset, … */
  pending: number[] = [];
  /** the sidecar's path, once the log's first bytes named it */
  private side: string | null = null;
  /** the sidecar's number on the writer's thread (0: not named yet) */
  key = 0;
  /** the next save truncates the sidecar (a fresh log's first) */
  truncate = false;
  /** settles when the last batch holding this log's records is done */
  saved: Promise<void> = Promise.resolve();
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
    if (this.due(now, bytes)) this.add(now, this.size);
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

  private add(time: number, offset: number): void {
    if (this.failed || this.pending.length >= 2 * PENDING_MAX) return;
    this.pending.push(time, offset);
    if (this.key === 0) return;
    // many at once (a log written faster than real time: a benchmark's, a test's) are saved at once
    if (this.pending.length >= 2 * BATCH_RECORDS) void saver.soon(this);
    else saver.dirty(this);
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
      this.attach(side);
      return;
    }
    // a log conchd did not start (conmand's, taken over) gets no sidecar: its history has none, and
    // its directory keeps only the files it had; the next one conchd creates (at rotation) gets one
    fs.access(side, (e) => {
      if (e) {
        this.failed = true;
        this.pending = [];
      } else if (!this.closed) this.attach(side);
    });
  }

  /** The sidecar is known: the writer's thread learns its path, and the records that waited are saved now. */
  private attach(side: string): void {
    this.side = side;
    live.set(side, this);
    this.key = saver.name(this, side);
    void this.save();
  }

  /**
   * Save the records waiting, with those of every other log asked at this
   * event-loop turn. Resolves when they (and any saved before) are in the
   * sidecar, or its save failed.
   */
  save(): Promise<void> {
    if (this.key === 0 || this.failed || this.pending.length === 0) return this.saved;
    return saver.soon(this);
  }

  /** the writer's thread could not save: indexing of this log stops, said once (`quiet`: said elsewhere) */
  fail(message: string, quiet = false): void {
    if (this.failed) return;
    this.failed = true;
    this.pending = [];
    saver.clean(this);
    if (!quiet) this.report.err(`Console [${this.console}] time index ${this.side}: ${message} (search by time falls back to reading the log)`);
  }

  /** The log is closed (or replaced after a reopen): the last records are saved; resolves once they are. */
  async close(): Promise<void> {
    if (this.closed) return this.saved;
    this.closed = true;
    this.head = null;
    await this.save();
    saver.forget(this);
    if (this.side !== null && live.get(this.side) === this) live.delete(this.side);
  }
}

/** The indexes of the logs being written, by sidecar path. */
const live = new Map<string, LogIndex>();

/** Save what the index writer holds for the sidecar `side` (a search is about to read it). */
export function saveIndex(side: string): Promise<void> {
  return live.get(side)?.save() ?? Promise.resolve();
}

/** What the index writer did since the start: messages to its thread, and sidecar appends in them. */
export const indexWriterStats = { batches: 0, saves: 0 };

interface InFlight {
  logs: LogIndex[];
  done: () => void;
}

/**
 * Gathers the records of every log into one message to the writer's
 * thread: every SAVE_MS all that wait (one timer for all logs), and at the
 * end of the event-loop turn those asked for at once.
 */
class Saver {
  private pool: WorkerPool<SaveBatchWire, SaveDoneWire> | null = null;
  private nextKey = 1;
  private nextId = 1;
  /** sidecars named since the last batch */
  private names: [number, string][] = [];
  /** keys of closed logs, forgotten by the thread after the next batch */
  private forgets: number[] = [];
  private readonly byKey = new Map<number, LogIndex>();
  /** logs with records waiting */
  private readonly waiting = new Set<LogIndex>();
  /** logs whose records are asked for at once (a subset of waiting) */
  private readonly urgent = new Set<LogIndex>();
  private timer: NodeJS.Timeout | null = null;
  private immediate = false;
  /** settles when the next batch posted is done */
  private next = deferred();
  private readonly inFlight = new Map<number, InFlight>();

  name(ix: LogIndex, side: string): number {
    const key = this.nextKey++;
    this.names.push([key, side]);
    this.byKey.set(key, ix);
    return key;
  }

  dirty(ix: LogIndex): void {
    this.waiting.add(ix);
    this.timer ??= setInterval(() => this.post(false), SAVE_MS).unref();
  }

  /** `ix`'s records go in a batch at the end of this turn; resolves when it is done */
  soon(ix: LogIndex): Promise<void> {
    this.waiting.add(ix);
    this.urgent.add(ix);
    if (!this.immediate) {
      this.immediate = true;
      setImmediate(() => {
        this.immediate = false;
        this.post(true);
      });
    }
    return this.next.promise;
  }

  /** `ix` is closed: its key is dropped after the batches holding its records */
  forget(ix: LogIndex): void {
    this.clean(ix);
    if (ix.key === 0) return;
    this.byKey.delete(ix.key);
    this.forgets.push(ix.key);
  }

  clean(ix: LogIndex): void {
    this.waiting.delete(ix);
    this.urgent.delete(ix);
  }

  /** One batch: the urgent logs' records (`urgentOnly`), else every log's waiting. */
  private post(urgentOnly: boolean): void {
    const logs = [...(urgentOnly ? this.urgent : this.waiting)];
    for (const ix of logs) this.waiting.delete(ix);
    this.urgent.clear();
    if (this.waiting.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
    if (logs.length === 0 && this.names.length === 0 && this.forgets.length === 0) {
      // whoever waited for this batch had its log closed or failed meanwhile
      const { resolve } = this.next;
      this.next = deferred();
      return resolve();
    }
    let total = 0;
    for (const ix of logs) total += ix.pending.length;
    const keys = new Int32Array(logs.length);
    const counts = new Int32Array(logs.length);
    const flags = new Uint8Array(logs.length);
    const recs = new Float64Array(total);
    let at = 0;
    logs.forEach((ix, i) => {
      keys[i] = ix.key;
      counts[i] = ix.pending.length / 2;
      flags[i] = ix.truncate ? TRUNCATE : 0;
      recs.set(ix.pending, at);
      at += ix.pending.length;
      ix.pending = [];
      ix.truncate = false;
    });
    const id = this.nextId++;
    const { promise, resolve } = this.next;
    this.next = deferred();
    for (const ix of logs) ix.saved = promise;
    const batch = encodeSaveBatch({ id, names: this.names, keys, counts, flags, recs, forget: Int32Array.from(this.forgets) });
    this.names = [];
    this.forgets = [];
    const pool = (this.pool ??= new WorkerPool({
      script: new URL('./index-writer-worker.js', import.meta.url),
      size: 1,
      nice: BULK_NICE,
      name: () => 'conch index writer',
      onMessage: (_, w) => this.done(decodeSaveDone(w)),
      onLost: (_, why) => this.lost(why),
    }));
    this.inFlight.set(id, { logs, done: resolve });
    indexWriterStats.batches++;
    indexWriterStats.saves += logs.length;
    pool.post(0, batch);
    pool.hold(0); // records on their way keep the process alive
  }

  private done({ id, errors }: SaveDone): void {
    const f = this.inFlight.get(id);
    if (!f) return;
    this.inFlight.delete(id);
    this.pool?.release(0);
    for (const [key, message] of errors ?? []) this.byKey.get(key)?.fail(message);
    f.done();
  }

  /** The thread died (a bug): its sidecars are unknown to the next one; every log indexed so far stops, said once. */
  private lost(why: string): void {
    const all = [...this.byKey.values()];
    this.byKey.clear();
    this.waiting.clear();
    this.urgent.clear();
    this.names = [];
    this.forgets = [];
    all[0]?.fail(`index writer thread stopped: ${why}`);
    for (const ix of all) ix.fail(why, true);
    for (const f of this.inFlight.values()) f.done();
    this.inFlight.clear();
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

const saver = new Saver();

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

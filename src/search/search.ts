// One search over the logs of some consoles: each console's files oldest
// first (sources.ts), each file narrowed to the time range by its time index
// (or, without one, by the stamps and marks in it: web/api-log-scan.ts),
// read in chunks and matched through the match scheduler (scanner.ts), the
// matches handed to a sink as they are found (or, with tail, the last N of
// each console once it is done). Then, with follow, the lines the consoles
// write from the moment the search started, until the caller aborts.
//
// Bounds: matches and bytes sent, main-thread time and wall time for the
// history (SearchBounds); a bound that is hit ends the history with a
// sentence saying which. At most MAX_RUNNING searches read history at once,
// and at most MAX_FOLLOWING follow. The sink may ask to wait (a slow
// reader): nothing is read meanwhile, so memory stays bounded.

import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { performance } from 'node:perf_hooks';
import type { ConsoleLog } from '../logging/console-log.js';
import { matchScheduler, type MatchScheduler } from '../protocol/match-scheduler.js';
import { LogScanner, NoTimesError } from '../web/api-log-scan.js';
import { indexOfLog, type TimeIndex } from './index-format.js';
import { COARSE_MS, SAVE_MS, saveIndex } from './index-writer.js';
import { LineMatcher } from './pattern.js';
import type { SearchQuery } from './query.js';
import { ChunkScan, Dating, LineChunker, type ChunkStats, type Found, type Range, type TimeFrom } from './scanner.js';
import { consoleFiles, type LogSource } from './sources.js';

export const MAX_RUNNING = 4;
export const MAX_FOLLOWING = 64;
/** live bytes kept per console while the search is busy elsewhere; beyond it the oldest are dropped (and said) */
const LIVE_MAX = 4 * 1024 * 1024;
const READ_BYTES = 256 * 1024;
/** how long to wait for bytes handed to the writer thread to reach the file */
const LAND_WAIT_MS = 3000;
/** a log's bytes after its index's last record were written within this of it (index-writer.ts: COARSE_MS at most, and a crash loses SAVE_MS) */
const TAIL_SLACK_MS = COARSE_MS + SAVE_MS;

export interface SearchTarget {
  name: string;
  /** the console's `log=` pattern (null: it has no log) */
  pattern: string | null;
  /** what %D stands for */
  dev: string;
  log: ConsoleLog | null;
}

export interface SearchMatch {
  console: string;
  time: number | null;
  timeFrom: TimeFrom | null;
  line: string;
}

export interface SearchSink {
  /** a match; a promise: wait for it before the next (the reader is behind) */
  match(m: SearchMatch): void | Promise<void>;
  note(text: string): void;
  /** the history is done (follow goes on after it) */
  summary(s: SearchSummary): void | Promise<void>;
}

export interface SearchSummary {
  matches: number;
  files: number;
  scannedBytes: number;
  /** why the history stopped early (null: it did not) */
  stopped: string | null;
  following: boolean;
}

let running = 0;
let following = 0;

/** A search's place among those running: the history part ends first, the follow part later. */
export interface SearchSlot {
  historyDone(): void;
  release(): void;
}

/** A slot to run a search in (null: too many run already). */
export function searchSlot(follow: boolean): SearchSlot | null {
  if (running >= MAX_RUNNING || (follow && following >= MAX_FOLLOWING)) return null;
  running++;
  if (follow) following++;
  let reading = true;
  let held = true;
  const historyDone = (): void => {
    if (reading) running--;
    reading = false;
  };
  return {
    historyDone,
    release: () => {
      historyDone();
      if (held && follow) following--;
      held = false;
    },
  };
}

export const TOO_MANY = `too many searches at once (at most ${MAX_RUNNING} reading logs, ${MAX_FOLLOWING} following); try again shortly`;

const mb = (n: number): string => `${(n / 1048576).toFixed(1)} MB`;

interface Live {
  target: SearchTarget;
  chunks: { buf: Buffer; time: number }[];
  bytes: number;
  dropped: number;
  chunker: LineChunker;
  stop: () => void;
}

export class Search {
  private matches = 0;
  private bytesOut = 0;
  private files = 0;
  private scanned = 0;
  private cpuMs = 0;
  private undated = 0;
  private stopped: string | null = null;
  private readonly started = performance.now();
  private readonly matcher: LineMatcher;
  private readonly range: Range;
  private readonly live: Live[] = [];
  private wake: (() => void) | null = null;

  constructor(
    private readonly targets: SearchTarget[],
    private readonly q: SearchQuery,
    private readonly sink: SearchSink,
    private readonly signal: AbortSignal,
    private readonly scheduler: MatchScheduler = matchScheduler,
  ) {
    this.matcher = new LineMatcher(q.pattern);
    this.range = { since: q.since, until: q.until };
  }

  /** Run the history, then follow (if asked) until the signal aborts. `historyDone` is called between. */
  async run(historyDone: () => void = () => {}): Promise<SearchSummary> {
    const liveOffsets = new Map<string, number | null>();
    try {
      if (this.q.follow) for (const t of this.targets) liveOffsets.set(t.name, this.watch(t));
      for (const t of this.targets) {
        if (this.stopped || this.signal.aborted) break;
        await this.history(t, liveOffsets.get(t.name) ?? null);
      }
      if (this.undated > 0) this.sink.note(`${this.undated} candidate lines had no known time (no stamp, time index nor mark before them) and were left out of the time range`);
      const summary: SearchSummary = { matches: this.matches, files: this.files, scannedBytes: this.scanned, stopped: this.stopped, following: this.q.follow && !this.signal.aborted };
      await this.sink.summary(summary);
      historyDone();
      if (this.q.follow) await this.follow();
      return summary;
    } finally {
      for (const l of this.live) l.stop();
    }
  }

  private over(): boolean {
    if (this.stopped) return true;
    const b = this.q.bounds;
    if (performance.now() - this.started >= b.wallMs) this.stopped = this.outOfTime(false);
    else if (this.cpuMs >= b.cpuMs) this.stopped = this.outOfTime(true);
    return this.stopped !== null;
  }

  private outOfTime(cpu: boolean): string {
    const b = this.q.bounds;
    return cpu
      ? `search stopped after ${b.cpuMs / 1000}s of processing time, having read ${mb(this.scanned)} of logs: narrow it (since, until, fewer consoles, a more specific pattern)`
      : `search stopped after ${b.wallMs / 1000}s, having read ${mb(this.scanned)} of logs: narrow it (since, until, fewer consoles)`;
  }

  // ---- history ----------------------------------------------------------------

  private async history(t: SearchTarget, liveOffset: number | null): Promise<void> {
    if (t.pattern === null) {
      this.sink.note(`console [${t.name}] has no log`);
      return;
    }
    const files = await consoleFiles(t.pattern, { name: t.name, dev: t.dev });
    const tail = this.q.tail;
    const ring: Found[] = [];
    const keep = async (found: Found[]): Promise<boolean> => {
      if (tail !== null) {
        ring.push(...found);
        if (ring.length > tail) ring.splice(0, ring.length - tail);
        return true;
      }
      for (const f of found) if (!(await this.deliver(t.name, f))) return false;
      return true;
    };
    for (const src of files) {
      if (this.signal.aborted || this.over()) break;
      if (!(await this.file(t, src, src.live ? liveOffset : null, keep))) break;
    }
    for (const f of ring) if (!(await this.deliver(t.name, f))) break;
  }

  /** Send one match; false when a bound stops the search. */
  private async deliver(name: string, f: Found): Promise<boolean> {
    const b = this.q.bounds;
    if (this.matches >= b.limit) {
      this.stopped ??= `search stopped at ${b.limit} matches (limit); ask for more (up to 100000) or narrow it`;
      return false;
    }
    if (this.bytesOut >= b.maxBytes) {
      this.stopped ??= `search stopped after ${mb(b.maxBytes)} of results; narrow it`;
      return false;
    }
    this.matches++;
    this.bytesOut += Buffer.byteLength(f.text) + name.length + 64;
    await this.sink.match({ console: name, time: f.time, timeFrom: f.from, line: f.text });
    return true;
  }

  /** Where in `src` the range is: [start, end), and whether `start` may be inside a line. */
  private async bounds(src: LogSource, ix: TimeIndex | null, fh: fs.promises.FileHandle | null, size: number): Promise<{ start: number; end: number; partial: boolean } | null> {
    const { since, until } = this.range;
    let start = 0;
    let end = size;
    if (since === null && until === null) return { start, end, partial: false };
    // written (last) before the range began
    if (since !== null && src.mtimeMs < since - 1000) return null;
    if (ix && ix.offsets.length > 0) {
      const n = ix.offsets.length;
      // nothing before the first record (it is at 0) and that was after the range
      if (until !== null && ix.offsets[0] === 0 && ix.times[0]! > until) return null;
      // the bytes after the last record were written within a minute of it (a restart records at once)
      if (since !== null && ix.times[n - 1]! + TAIL_SLACK_MS < since) return null;
      if (since !== null) {
        let j = 0;
        while (j < n && ix.times[j]! <= since) j++;
        start = j > 0 ? ix.offsets[j - 1]! : 0;
      }
      if (until !== null) {
        let j = n - 1;
        while (j >= 0 && ix.times[j]! > until) j--;
        end = j + 1 < n ? Math.min(size, ix.offsets[j + 1]!) : size;
      }
      // back a little: the line that was being written when the record was made
      return start > 0 ? { start: Math.max(0, start - 4096), end, partial: true } : { start, end, partial: false };
    }
    if (fh) {
      try {
        const r = await new LogScanner(fh, size).timeRange(since, until);
        return { start: r.start, end: r.end, partial: false };
      } catch (e) {
        if (!(e instanceof NoTimesError)) throw e;
      }
    }
    return { start, end, partial: false };
  }

  private async file(t: SearchTarget, src: LogSource, liveOffset: number | null, keep: (f: Found[]) => Promise<boolean>): Promise<boolean> {
    const ix = await indexOfLog(src.file, t.name, src.gz, saveIndex);
    let fh: fs.promises.FileHandle | null = null;
    try {
      if (!src.gz) {
        try {
          fh = await fs.promises.open(src.file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOFOLLOW);
        } catch {
          return true; // rotated away meanwhile
        }
      }
      const size = liveOffset ?? (fh ? (await fh.stat()).size : Infinity);
      const r = await this.bounds(src, ix, fh, size);
      if (!r || r.end <= r.start) return true;
      this.files++;
      const dating = new Dating(ix);
      const chunker = new LineChunker(READ_BYTES);
      let skip = r.partial;
      const feed = async (data: Buffer, at: number): Promise<boolean> => {
        if (skip) {
          const nl = data.indexOf(0x0a);
          if (nl < 0) return true;
          data = data.subarray(nl + 1);
          at += nl + 1;
          skip = false;
        }
        for (const c of chunker.push(data, at)) if (!(await this.chunk(c.buf, c.offset, r.end, dating, keep))) return false;
        return true;
      };
      const go = fh ? await this.readPlain(fh, r.start, r.end, liveOffset !== null, feed) : await this.readGz(src.file, r.start, r.end, feed);
      if (!go) return false;
      const last = chunker.end();
      if (last && !(await this.chunk(last.buf, last.offset, r.end, dating, keep))) return false;
      return true;
    } finally {
      await fh?.close().catch(() => {});
    }
  }

  private async readPlain(fh: fs.promises.FileHandle, start: number, end: number, live: boolean, feed: (d: Buffer, at: number) => Promise<boolean>): Promise<boolean> {
    let pos = start;
    let waited = 0;
    while (pos < end) {
      if (this.signal.aborted || this.over()) return false;
      const buf = Buffer.allocUnsafe(Math.min(READ_BYTES, end - pos));
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) {
        // the live file: bytes handed to the writer thread before the search began are on their way
        if (!live || waited >= LAND_WAIT_MS) break;
        await new Promise((r) => setTimeout(r, 20));
        waited += 20;
        continue;
      }
      this.scanned += bytesRead;
      if (!(await feed(buf.subarray(0, bytesRead), pos))) return false;
      pos += bytesRead;
    }
    return true;
  }

  private async readGz(file: string, start: number, end: number, feed: (d: Buffer, at: number) => Promise<boolean>): Promise<boolean> {
    const src = fs.createReadStream(file, { highWaterMark: 64 * 1024 });
    const gunzip = zlib.createGunzip({ chunkSize: 64 * 1024 });
    src.on('error', (e) => gunzip.destroy(e));
    src.pipe(gunzip);
    let pos = 0;
    try {
      for await (const d of gunzip as AsyncIterable<Buffer>) {
        if (this.signal.aborted || this.over()) return false;
        let data = d;
        let at = pos;
        pos += d.length;
        this.scanned += d.length;
        if (pos <= start) continue;
        if (at < start) {
          data = data.subarray(start - at);
          at = start;
        }
        if (!(await feed(data, at))) return false;
        if (pos >= end) break;
      }
    } catch {
      this.sink.note(`${file}: not a whole gzip file; read as far as it goes`);
    } finally {
      src.destroy();
      gunzip.destroy();
    }
    return true;
  }

  /** Match one chunk through the scheduler; false when the search stops. */
  private async chunk(buf: Buffer, offset: number, end: number, dating: Dating, keep: (f: Found[]) => Promise<boolean>): Promise<boolean> {
    if (offset >= end) return false;
    // lines that start at or after `end` are out of the range
    if (offset + buf.length > end) {
      const nl = buf.indexOf(0x0a, end - offset - 1);
      buf = buf.subarray(0, nl < 0 ? buf.length : nl + 1);
    }
    const stats: ChunkStats = { undated: 0, cpuMs: 0 };
    const room = this.q.tail !== null ? Number.MAX_SAFE_INTEGER : this.q.bounds.limit - this.matches + 1;
    const task = new ChunkScan(buf, offset, this.matcher, dating, this.range, room, stats);
    const b = this.q.bounds;
    const o = await this.scheduler.run(() => task, this.signal, { cpuMs: Math.max(1, b.cpuMs - this.cpuMs), wallMs: Math.max(1, b.wallMs - (performance.now() - this.started)) });
    this.cpuMs += stats.cpuMs;
    this.undated += stats.undated;
    if (o.kind === 'aborted') return false;
    if (!(await keep(task.found))) return false;
    if (o.kind === 'budget') {
      // the scheduler's clock and ours differ by a hair: the wall time, else the main-thread time ran out
      this.stopped ??= this.outOfTime(performance.now() - this.started < b.wallMs);
      return false;
    }
    return true;
  }

  // ---- follow -------------------------------------------------------------------

  /** Start watching a console's new bytes; returns where they start in its live file. */
  private watch(t: SearchTarget): number | null {
    if (!t.log) return null;
    const l: Live = { target: t, chunks: [], bytes: 0, dropped: 0, chunker: new LineChunker(64 * 1024), stop: () => {} };
    const w = t.log.watch((b) => {
      l.chunks.push({ buf: b, time: Date.now() });
      l.bytes += b.length;
      while (l.bytes > LIVE_MAX && l.chunks.length > 1) {
        const old = l.chunks.shift()!;
        l.bytes -= old.buf.length;
        l.dropped += old.buf.length;
      }
      const wake = this.wake;
      this.wake = null;
      wake?.();
    });
    l.stop = w.stop;
    this.live.push(l);
    return w.offset;
  }

  private async follow(): Promise<void> {
    const onAbort = (): void => {
      const wake = this.wake;
      this.wake = null;
      wake?.();
    };
    this.signal.addEventListener('abort', onAbort, { once: true });
    try {
      while (!this.signal.aborted) {
        let busy = false;
        for (const l of this.live) {
          if (l.chunks.length === 0) continue;
          busy = true;
          if (l.dropped > 0) {
            this.sink.note(`console [${l.target.name}]: ${l.dropped} bytes written while the search was behind were not searched`);
            l.dropped = 0;
          }
          const { buf, time } = l.chunks.shift()!;
          l.bytes -= buf.length;
          for (const c of l.chunker.push(buf, 0)) await this.liveChunk(l.target.name, c.buf, time);
        }
        if (!busy && !this.signal.aborted) await new Promise<void>((r) => (this.wake = r));
      }
    } finally {
      this.signal.removeEventListener('abort', onAbort);
    }
  }

  private async liveChunk(name: string, buf: Buffer, time: number): Promise<void> {
    const stats: ChunkStats = { undated: 0, cpuMs: 0 };
    const task = new ChunkScan(buf, 0, this.matcher, new Dating(null, time), { since: null, until: null }, Number.MAX_SAFE_INTEGER, stats);
    const o = await this.scheduler.run(() => task, this.signal, { cpuMs: 2000, wallMs: 30_000 });
    if (o.kind === 'aborted') return;
    if (o.kind === 'budget') this.sink.note(`console [${name}]: a piece of its output was too costly to search and was skipped`);
    for (const f of task.found) await this.sink.match({ console: name, time: f.time, timeFrom: f.from, line: f.text });
  }
}

// Scanning a piece of a console log for a pattern: lines are cleaned as a
// person would read them, exactly as the alert rules see them
// (line-text.ts: ANSI escape sequences, carriage returns and other control
// characters removed, tabs kept; UTF-8), dated, filtered by time and
// matched. One chunk of whole lines at a time, as a resumable task for the
// match scheduler (protocol/match-scheduler.ts): the cleaning pass over a
// chunk is bounded by its size, the NFA runs in slices of WORK_SLICE states
// and the task yields whenever its deadline passes, even inside a line.
//
// A line's time: its own `logopts=timestamp` stamp, else the time index
// (the last record at or before the line's first byte), else the last
// `Console [x] log at/opened at/closed at` mark before it, else unknown.

import { performance } from 'node:perf_hooks';
import type { Task } from '../protocol/match-scheduler.js';
import { entryAt, type TimeIndex } from './index-format.js';
import { cleanInto, FOLD, lineText, type LineStarts } from './line-text.js';
import { LineMatcher } from './pattern.js';

/** the longest line matched whole; a longer one is matched in pieces of this size */
export const MAX_LINE = 64 * 1024;
/** the most characters of a matched line sent back */
export const MAX_SHOWN = 4096;
/** NFA states between looks at the clock */
const WORK_SLICE = 4096;

export type TimeFrom = 'stamp' | 'index' | 'mark' | 'live';

export interface Found {
  /** the line's first byte in its file (live: -1) */
  offset: number;
  /** ms since the epoch, null when the line's time is not known */
  time: number | null;
  from: TimeFrom | null;
  /** the line as read (cleaned, without its stamp), at most MAX_SHOWN characters */
  text: string;
}

export interface Range {
  since: number | null;
  until: number | null;
}

// ---- times ------------------------------------------------------------------

const isDigit = (c: number | undefined): boolean => c !== undefined && c >= 0x30 && c <= 0x39;
const STAMP_SHAPE = 'dddd-dd-dd dd:dd:dd ';

/** The `YYYY-MM-DD HH:MM:SS ` stamp at `at` (after any CRs) of a raw line: [time, bytes up to its end], or null. */
export function stampAt(raw: Buffer, at: number, end: number): [number, number] | null {
  while (at < end && raw[at] === 0x0d) at++;
  if (end - at < STAMP_SHAPE.length) return null;
  for (let k = 0; k < STAMP_SHAPE.length; k++) {
    const want = STAMP_SHAPE.charCodeAt(k);
    const c = raw[at + k];
    if (want === 0x64 ? !isDigit(c) : c !== want) return null;
  }
  const num = (k: number, len: number): number => Number(raw.toString('latin1', at + k, at + k + len));
  const t = new Date(num(0, 4), num(5, 2) - 1, num(8, 2), num(11, 2), num(14, 2), num(17, 2)).getTime();
  return Number.isNaN(t) ? null : [t, at + STAMP_SHAPE.length];
}

const MARK_START = Buffer.from('<conman> console [', 'latin1');
const MARK = /^<conman> console \[[^\]]*\] log (?:at|opened at|closed at) (\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)/;

/** The time of a (cleaned, lower-cased) conchd mark line, or null. */
export function markTime(line: string): number | null {
  const m = MARK.exec(line);
  if (!m) return null;
  return new Date(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!).getTime();
}

/** Where a file's line times come from besides their own stamps; follows the scan in offset order. */
export class Dating {
  /** the last mark seen */
  mark: number | null = null;
  /** the file has stamped lines (seen so far) */
  stamped = false;

  constructor(
    private readonly index: TimeIndex | null,
    /** live lines: the time they arrived */
    public live: number | null = null,
  ) {}

  /** The time of a line starting at `offset` with no stamp of its own. */
  at(offset: number): [number, TimeFrom] | null {
    if (this.live !== null) return [this.live, 'live'];
    if (this.index) {
      const k = entryAt(this.index, offset);
      if (k >= 0) return [this.index.times[k]!, 'index'];
    }
    return this.mark === null ? null : [this.mark, 'mark'];
  }
}

// ---- one chunk ----------------------------------------------------------------

export interface ChunkStats {
  /** lines whose time was needed and not known (left out of a ranged search) */
  undated: number;
  /** main-thread time spent, ms */
  cpuMs: number;
}

/**
 * The matches in one chunk of whole lines (`raw`, whose first byte is at
 * `base` in its file; the last line may lack its newline). `room`: stop after
 * that many matches.
 */
export class ChunkScan implements Task<true> {
  private clean: Buffer | null = null;
  private cleanLen = 0;
  private lines: LineStarts;
  private marks: number[] = [];
  private litAt: number[] | null = null;
  private nextMark = 0;
  private next = 0;
  /** the line being matched (its text is kept across slices), -1: none */
  private current = -1;
  private currentText = '';
  private currentTime: [number, TimeFrom] | null = null;
  private currentStampEnd = 0;
  readonly found: Found[] = [];

  constructor(
    private readonly raw: Buffer,
    private readonly base: number,
    private readonly matcher: LineMatcher,
    private readonly dating: Dating,
    private readonly range: Range,
    private readonly room: number,
    private readonly stats: ChunkStats,
  ) {
    this.lines = { raw: new Int32Array(0), clean: new Int32Array(0), n: 0 };
  }

  private prepare(): void {
    const raw = this.raw;
    // a line table for every line (counted first: typed arrays do not grow)
    let count = 1;
    for (let i = raw.indexOf(0x0a); i >= 0 && i + 1 < raw.length; i = raw.indexOf(0x0a, i + 1)) count++;
    const lines: LineStarts = { raw: new Int32Array(count + 1), clean: new Int32Array(count + 1), n: 0 };
    this.lines = lines;
    lines.raw[0] = 0;
    lines.clean[0] = 0;
    lines.n = 1;
    const out = Buffer.allocUnsafe(raw.length);
    this.cleanLen = cleanInto(raw, 0, raw.length, out, FOLD, lines);
    lines.raw[lines.n] = raw.length;
    lines.clean[lines.n] = this.cleanLen;
    this.clean = out.subarray(0, this.cleanLen);
    // conchd's marks date the lines after them
    for (let p = this.clean.indexOf(MARK_START); p >= 0; p = this.clean.indexOf(MARK_START, p + 1)) this.marks.push(this.lineOf(p, 0));
  }

  /** The line holding cleaned position `pos`, searching from line `from`. */
  private lineOf(pos: number, from: number): number {
    let lo = from;
    let hi = this.lines.n - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lines.clean[mid]! <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Line `k` as matched: cleaned and lower-cased, decoded as UTF-8 (as an alert rule sees a line). */
  private matchText(k: number): string {
    let end = this.lines.clean[k + 1]!;
    if (end > this.lines.clean[k]! && this.clean![end - 1] === 0x0a) end--;
    return this.clean!.toString('utf8', this.lines.clean[k]!, end);
  }

  /** Apply the marks on lines up to and including `k`. */
  private marksUpTo(k: number): void {
    while (this.nextMark < this.marks.length && this.marks[this.nextMark]! <= k) {
      const t = markTime(this.matchText(this.marks[this.nextMark]!));
      if (t !== null) this.dating.mark = t;
      this.nextMark++;
    }
  }

  /** The next line that may match, from line `from` (-1: none). */
  private candidate(from: number): number {
    if (from >= this.lines.n) return -1;
    const lits = this.matcher.pattern.literals;
    if (lits.length === 0) return from;
    const at = this.lines.clean[from]!;
    // where each literal is next (kept: a later call looks again only for those now behind)
    const next = (this.litAt ??= new Array<number>(lits.length).fill(-2));
    let best = -1;
    for (let i = 0; i < lits.length; i++) {
      if (next[i] !== -1 && next[i]! < at) next[i] = this.clean!.indexOf(lits[i]!, at);
      const p = next[i]!;
      if (p >= 0 && (best < 0 || p < best)) best = p;
    }
    return best < 0 ? -1 : this.lineOf(best, from);
  }

  step(deadline: number): true | undefined {
    const t0 = performance.now();
    try {
      return this.work(deadline);
    } finally {
      this.stats.cpuMs += performance.now() - t0;
    }
  }

  private work(deadline: number): true | undefined {
    if (!this.clean) this.prepare();
    const { since, until } = this.range;
    const ranged = since !== null || until !== null;
    for (;;) {
      if (this.current < 0) {
        if (this.found.length >= this.room) return true;
        const k = this.candidate(this.next);
        if (k < 0) break;
        this.marksUpTo(k);
        this.next = k + 1;
        const rs = this.lines.raw[k]!;
        const re = this.lines.raw[k + 1]!;
        const stamp = stampAt(this.raw, rs, re);
        let time: [number, TimeFrom] | null;
        if (stamp) {
          time = [stamp[0], 'stamp'];
          this.dating.stamped = true;
        } else time = this.dating.at(this.base + rs);
        if (ranged) {
          if (!time) {
            this.stats.undated++;
            continue;
          }
          if ((since !== null && time[0] < since - (time[1] === 'stamp' ? 999 : 0)) || (until !== null && time[0] > until)) continue;
        }
        this.current = k;
        this.currentTime = time;
        let text = this.matchText(k);
        // the stamp is not part of what is matched (a `^` means the line's own start)
        this.currentStampEnd = 0;
        if (stamp && text.length >= 20 && /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d /.test(text)) {
          text = text.slice(20);
          this.currentStampEnd = stamp[1];
        }
        this.currentText = text;
      }
      let r: boolean | undefined;
      while ((r = this.matcher.test(this.currentText, WORK_SLICE)) === undefined) {
        if (performance.now() >= deadline) return undefined;
      }
      const k = this.current;
      this.current = -1;
      if (r) {
        const rs = this.lines.raw[k]!;
        const from = this.currentStampEnd > 0 ? this.currentStampEnd : rs;
        let text = lineText(this.raw, from, this.lines.raw[k + 1]!);
        if (text.length > MAX_SHOWN) text = text.slice(0, MAX_SHOWN) + '…';
        const t = this.currentTime;
        this.found.push({ offset: this.dating.live !== null ? -1 : this.base + rs, time: t ? t[0] : null, from: t ? t[1] : null, text });
      }
      if (performance.now() >= deadline) return undefined;
    }
    this.marksUpTo(this.lines.n);
    return true;
  }
}

// ---- chunking -----------------------------------------------------------------

/**
 * Cuts a stream of bytes into chunks of whole lines (a line longer than
 * MAX_LINE is cut into pieces), each with its offset in the file.
 */
export class LineChunker {
  private carry: Buffer = Buffer.alloc(0);
  private carryAt = 0;

  constructor(private readonly target = 256 * 1024) {}

  /** Bytes at `offset` (the stream's next bytes); returns the chunks now complete. */
  push(data: Buffer, offset: number): { buf: Buffer; offset: number }[] {
    const out: { buf: Buffer; offset: number }[] = [];
    let buf = data;
    let at = offset;
    if (this.carry.length > 0) {
      buf = Buffer.concat([this.carry, data]);
      at = this.carryAt;
    }
    let from = 0;
    while (from < buf.length) {
      const nl = buf.lastIndexOf(0x0a, Math.min(buf.length, from + this.target) - 1);
      let end: number;
      if (nl >= from) end = nl + 1;
      else if (buf.length - from >= MAX_LINE) end = from + MAX_LINE; // one very long line: a piece of it
      else break;
      out.push({ buf: buf.subarray(from, end), offset: at + from });
      from = end;
    }
    this.carry = from < buf.length ? Buffer.from(buf.subarray(from)) : Buffer.alloc(0);
    this.carryAt = at + from;
    return out;
  }

  /** What is left at the end (a last line without its newline). */
  end(): { buf: Buffer; offset: number } | null {
    if (this.carry.length === 0) return null;
    const c = { buf: this.carry, offset: this.carryAt };
    this.carry = Buffer.alloc(0);
    return c;
  }

  /** bytes held back (a line not complete yet) */
  get held(): number {
    return this.carry.length;
  }
}

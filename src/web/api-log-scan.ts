// Finding a range of a console log without reading it into memory: the last
// N lines by reading backwards from the end in chunks, and the lines between
// two times by a binary search over byte offsets. Times come from the
// `YYYY-MM-DD HH:MM:SS ` stamp before each line (logopts="timestamp") and
// from the marks conchd writes in every log (`Console [x] log at …` with
// `server timestamp=`, `log opened at …`, `log closed at …`). A stamp dates
// its own line; a mark dates the lines after it (until the next one), so a
// range by marks is the smallest run of whole mark-to-mark stretches that
// holds every line that may be in it. Times are the server's local time, as
// they are written. Lines are assumed to be in time order (a clock stepping
// back makes a range approximate, never an error).

import type { FileHandle } from 'node:fs/promises';

export const CHUNK = 64 * 1024;
/** the start of a line looked at for a stamp or a mark (a notice is at most 1 KiB) */
export const HEAD = 1100;
const NL = 0x0a;

const STAMP = /^\r*(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d) /;
const MARK = /<ConMan> Console \[[^\]\r\n]*\] log (?:at|opened at|closed at) (\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)/;

export interface LogLine {
  /** byte offsets: the first byte, and just after its newline (or the end of the file) */
  start: number;
  end: number;
  /** the first bytes of the line, latin1 */
  head: string;
}

export interface Anchor {
  start: number;
  end: number;
  /** ms since the epoch (the line's local time) */
  time: number;
  kind: 'stamp' | 'mark';
}

/** The log has neither line stamps nor marks: times cannot be found in it. */
export class NoTimesError extends Error {}

/** The local time of a match whose groups 1–6 are year, month, day, hours, minutes, seconds. */
export const localTime = (m: RegExpExecArray): number => new Date(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!).getTime();

/** The time a line gives: its own stamp, or the mark it holds. */
export function anchorOf(l: LogLine): Anchor | null {
  const s = STAMP.exec(l.head);
  if (s) return { start: l.start, end: l.end, time: localTime(s), kind: 'stamp' };
  const m = MARK.exec(l.head);
  return m ? { start: l.start, end: l.end, time: localTime(m), kind: 'mark' } : null;
}

export class LogScanner {
  constructor(
    private readonly fh: FileHandle,
    /** the file's size when the request came: nothing after it is read */
    readonly size: number,
    private readonly chunk = CHUNK,
  ) {}

  /** `len` bytes at `pos` (fewer at the end of the file). */
  private async read(pos: number, len: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(len);
    let got = 0;
    while (got < len) {
      const { bytesRead } = await this.fh.read(buf, got, len - got, pos + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return buf.subarray(0, got);
  }

  /**
   * Visit, in order, the lines that start in [from, limit) (`from` is a
   * line start), until `visit` returns true. A line started before `limit`
   * is read to its end.
   */
  async eachLine(from: number, limit: number, visit: (l: LogLine) => boolean | void): Promise<void> {
    let lineStart = from;
    let head = '';
    let p = from;
    while (lineStart < limit && p < this.size) {
      const buf = await this.read(p, Math.min(this.chunk, this.size - p));
      if (buf.length === 0) break; // the file shrank
      let i = 0;
      while (i < buf.length) {
        const nl = buf.indexOf(NL, i);
        const stop = nl < 0 ? buf.length : nl + 1;
        if (head.length < HEAD) head += buf.toString('latin1', i, Math.min(stop, i + HEAD - head.length));
        if (nl < 0) break;
        if (visit({ start: lineStart, end: p + stop, head })) return;
        lineStart = p + stop;
        head = '';
        i = stop;
        if (lineStart >= limit) return;
      }
      p += buf.length;
    }
    if (lineStart < limit && lineStart < p) visit({ start: lineStart, end: p, head });
  }

  /** The first line start at or after `pos`. */
  async lineStartAtOrAfter(pos: number): Promise<number> {
    if (pos <= 0) return 0;
    let p = pos - 1;
    while (p < this.size) {
      const buf = await this.read(p, Math.min(this.chunk, this.size - p));
      if (buf.length === 0) break;
      const nl = buf.indexOf(NL);
      if (nl >= 0) return p + nl + 1;
      p += buf.length;
    }
    return this.size;
  }

  /** The first line starting in [from, limit) that has a time. */
  async firstAnchor(from: number, limit: number): Promise<Anchor | null> {
    let found: Anchor | null = null;
    await this.eachLine(from, limit, (l) => !!(found = anchorOf(l)));
    return found;
  }

  /** Where the last `n` lines of [start, end) begin (a newline ending the range ends its last line). */
  async tailLines(start: number, end: number, n: number): Promise<number> {
    if (n <= 0) return end;
    let count = 0;
    let pos = end;
    while (pos > start) {
      const len = Math.min(this.chunk, pos - start);
      const base = pos - len;
      const buf = await this.read(base, len);
      for (let i = buf.lastIndexOf(NL); i >= 0; i = i > 0 ? buf.lastIndexOf(NL, i - 1) : -1) {
        if (base + i === end - 1) continue; // the last line's own newline
        if (++count === n) return base + i + 1;
      }
      pos = base;
    }
    return start;
  }

  /**
   * The first line with a time for which `pred` holds (null: none), and the
   * last line with a time before it. Binary search over byte offsets: each
   * probe reads from the middle of what is left to the first dated line, and
   * never past the part still in question, so a log with few dates is read
   * at most about once. `any`: the log has a dated line at all.
   */
  async findFirst(pred: (a: Anchor) => boolean): Promise<{ hit: Anchor | null; prev: Anchor | null; any: boolean }> {
    // invariant: every dated line before `lo` fails pred (`prev` the last of them);
    // the answer is the first dated line in [lo, hi) that passes, else `best`
    let lo = 0;
    let hi = this.size;
    let best: Anchor | null = null;
    let prev: Anchor | null = null;
    while (hi - lo > 2 * this.chunk) {
      const mid = lo + Math.floor((hi - lo) / 2);
      const s = await this.lineStartAtOrAfter(mid);
      const a = s < hi ? await this.firstAnchor(s, hi) : null;
      if (!a) hi = mid;
      else if (pred(a)) {
        best = a;
        hi = mid;
      } else {
        prev = a;
        lo = a.end;
      }
    }
    let hit: Anchor | null = null;
    await this.eachLine(lo, hi, (l) => {
      const a = anchorOf(l);
      if (!a) return false;
      if (pred(a)) return !!(hit = a);
      prev = a;
      return false;
    });
    hit ??= best;
    return { hit, prev, any: hit !== null || prev !== null };
  }

  /**
   * The time of the last line with one that starts in [from, pos) (null:
   * none), read backwards a chunk at a time: for a part of a log whose own
   * lines have no time, the time of the nearest one before it.
   */
  async lastAnchorBefore(from: number, pos: number): Promise<Anchor | null> {
    let hi = pos;
    while (hi > from) {
      // the whole lines starting in [lo, hi): a line longer than a chunk moves lo back further
      let lo = await this.lineStartAtOrAfter(Math.max(from, hi - this.chunk));
      for (let back = 2; lo >= hi && hi - back * this.chunk > from; back++) lo = await this.lineStartAtOrAfter(hi - back * this.chunk);
      if (lo >= hi) lo = from;
      let last: Anchor | null = null;
      await this.eachLine(lo, hi, (l) => void (last = anchorOf(l) ?? last));
      if (last) return last;
      hi = lo;
    }
    return null;
  }

  /**
   * The byte range [start, end) of the lines from `since` to `until` (ms,
   * null: open). Throws NoTimesError when the log has no stamps nor marks.
   */
  async timeRange(since: number | null, until: number | null): Promise<{ start: number; end: number }> {
    let start = 0;
    let end = this.size;
    if (since !== null) {
      // stamps have whole seconds: the second `since` falls in counts
      const from = Math.floor(since / 1000) * 1000;
      // the last stamped line before `since`, or the last mark at or before it (its lines may be later)
      const f = await this.findFirst((a) => (a.kind === 'stamp' ? a.time >= from : a.time > from));
      if (!f.any) throw new NoTimesError();
      start = !f.prev ? 0 : f.prev.kind === 'mark' ? f.prev.start : f.prev.end;
    }
    if (until !== null) {
      const f = await this.findFirst((a) => a.time > until);
      if (!f.any) throw new NoTimesError();
      end = f.hit ? f.hit.start : this.size;
    }
    return { start, end: Math.max(start, end) };
  }
}

/** what part of a log a request asks for (the log API's tail=, lines=, since=, until=) */
export interface LogRange {
  tail: number | null;
  lines: number | null;
  since: number | null;
  until: number | null;
}

/**
 * The byte range of the log `q` asks for: the lines between its times, then
 * the last `tail` bytes or `lines` lines of those. `within`: the part of the
 * file to look in (default all of it). Throws NoTimesError as timeRange.
 */
export async function rangeOf(scan: LogScanner, q: LogRange, within?: { start: number; end: number }): Promise<{ start: number; end: number }> {
  let { start, end } = within ?? { start: 0, end: scan.size };
  if (q.since !== null || q.until !== null) {
    const t = await scan.timeRange(q.since, q.until);
    start = Math.max(start, t.start);
    end = Math.max(start, Math.min(end, t.end));
  }
  if (q.tail !== null) start = Math.max(start, end - q.tail);
  else if (q.lines !== null) start = await scan.tailLines(start, end, q.lines);
  return { start, end };
}

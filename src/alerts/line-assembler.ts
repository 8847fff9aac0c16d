// One console's output cut into lines for the alert rules. Bytes arrive in
// whatever pieces the device delivered (a SOL packet, a read of a pty); a
// line is complete at its LF, whatever the pieces were. It is then cleaned
// exactly as the log search cleans the lines it reads (search/line-text.ts:
// ANSI escape sequences and every control character but TAB removed, CR
// included; UTF-8), so the line an alert matched is the line a search
// finds; and it is kept to MAX_LINE characters (the kernel's own records
// are shorter): a console that never prints LF costs a bounded buffer, not
// memory without end.

import { lineText } from '../search/line-text.js';

/** characters of a line kept for matching and reporting */
export const MAX_LINE = 1024;
/** bytes of one unfinished line held (colour escapes and UTF-8 take more bytes than characters) */
export const MAX_LINE_BYTES = 4 * MAX_LINE;

const LF = 0x0a;

/** The text of a line for matching from its raw bytes raw[from, to): cleaned, at most MAX_LINE characters. */
export function alertLine(raw: Buffer, from = 0, to = raw.length): string {
  const s = lineText(raw, from, to);
  return s.length > MAX_LINE ? s.slice(0, MAX_LINE) : s;
}

export class LineAssembler {
  /** the unfinished line's bytes (at most MAX_LINE_BYTES) */
  private partial: Buffer | null = null;
  /** lines longer than MAX_LINE_BYTES seen (cut) */
  cut = 0;
  private over = false;

  /** Bytes of the line being assembled (not yet ended by LF). */
  get pending(): number {
    return this.partial?.length ?? 0;
  }

  /** Feed output; `line` gets each line completed by it, cleaned. */
  feed(data: Buffer, line: (text: string) => void): void {
    let from = 0;
    const n = data.length;
    while (from < n) {
      const nl = data.indexOf(LF, from);
      if (nl < 0) {
        this.keep(data, from, n);
        return;
      }
      let seg: Buffer;
      if (this.partial) {
        const room = MAX_LINE_BYTES - this.partial.length;
        if (nl - from > room) this.over = true;
        seg = Buffer.concat([this.partial, data.subarray(from, from + Math.min(nl - from, room))]);
        this.partial = null;
      } else {
        if (nl - from > MAX_LINE_BYTES) this.over = true;
        seg = data.subarray(from, Math.min(nl, from + MAX_LINE_BYTES));
      }
      if (this.over) {
        this.cut++;
        this.over = false;
      }
      line(alertLine(seg));
      from = nl + 1;
    }
  }

  /**
   * Take output known to hold no line of interest (see LiteralScanner):
   * keep the line state as feed() would, without making the lines. Returns
   * how many lines it completed; given that count (`lines`), it only finds
   * the last line's end (and does not count cut lines).
   */
  passOver(data: Buffer, known?: number): number {
    if (known !== undefined) {
      if (known === 0) this.keep(data, 0, data.length);
      else {
        this.partial = null;
        this.over = false;
        const last = data.lastIndexOf(LF);
        if (last + 1 < data.length) this.keep(data, last + 1, data.length);
      }
      return known;
    }
    let lines = 0;
    let from = 0;
    for (;;) {
      const nl = data.indexOf(LF, from);
      if (nl < 0) break;
      if (nl - from + (lines === 0 ? this.pending : 0) > MAX_LINE_BYTES || (lines === 0 && this.over)) this.cut++;
      lines++;
      from = nl + 1;
    }
    if (lines > 0) {
      this.partial = null;
      this.over = false;
    }
    if (from < data.length) this.keep(data, from, data.length);
    return lines;
  }

  /** The unfinished line's bytes (null: none), not to be changed. */
  get pendingBytes(): Buffer | null {
    return this.partial;
  }

  /** Output was lost (not seen): the unfinished line is dropped, not joined to what comes next. */
  reset(): void {
    this.partial = null;
    this.over = false;
  }

  private keep(data: Buffer, from: number, to: number): void {
    const have = this.partial?.length ?? 0;
    const room = MAX_LINE_BYTES - have;
    if (room <= 0) {
      if (to > from) this.over = true;
      return;
    }
    const take = Math.min(room, to - from);
    if (take < to - from) this.over = true;
    // a copy: the device's buffer is not ours to hold on to
    const piece = Buffer.from(data.subarray(from, from + take));
    this.partial = this.partial ? Buffer.concat([this.partial, piece]) : piece;
  }
}

/**
 * The lines of a console's recent output (its replay ring's bytes), for the
 * context before an alert's line: the bytes after the last LF are an open
 * line and not counted; with `cutFirst` (the ring is full) the first line
 * may have lost its start and is not used either.
 */
export class TailLines {
  private readonly ends: number[] = [];
  private readonly first: number;

  constructor(
    private readonly tail: Buffer,
    cutFirst: boolean,
  ) {
    for (let from = 0; ; ) {
      const nl = tail.indexOf(LF, from);
      if (nl < 0) break;
      this.ends.push(nl);
      from = nl + 1;
    }
    this.first = cutFirst ? 1 : 0;
  }

  /** complete lines */
  get count(): number {
    return this.ends.length;
  }

  /** Line `k` (0: the oldest), cleaned as the matcher saw it. */
  text(k: number): string {
    const start = k === 0 ? 0 : this.ends[k - 1]! + 1;
    return alertLine(this.tail, start, Math.min(this.ends[k]!, start + MAX_LINE_BYTES));
  }

  /**
   * The `n` lines before the line that reads `matched` and has `after`
   * lines after it; if something came in between (a notice), the nearest
   * line before that place reading `matched`. None when it is no longer here.
   */
  before(after: number, matched: string, n: number): string[] {
    const at = this.ends.length - 1 - after;
    let k = Math.min(at, this.ends.length - 1);
    const stop = Math.max(this.first, at - 64);
    while (k >= stop && this.text(k) !== matched) k--;
    if (k < stop || n <= 0) return [];
    const out: string[] = [];
    for (let j = Math.max(this.first, k - n); j < k; j++) out.push(this.text(j));
    return out;
  }
}

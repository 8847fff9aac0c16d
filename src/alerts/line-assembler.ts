// One console's output cut into lines for the alert rules. Bytes arrive in
// whatever pieces the device delivered (a SOL packet, a read of a pty); a
// line is complete at its LF, whatever the pieces were. For matching, ANSI
// escape sequences (CSI, OSC and the other string controls, two-byte
// escapes) and every other control character but TAB are removed — CR
// included — and a line is kept to MAX_LINE characters (the kernel's own
// records are shorter): a console that never prints LF costs a bounded
// buffer, not memory without end.

/** characters of a line kept for matching and reporting */
export const MAX_LINE = 1024;
/** bytes of one unfinished line held (colour escapes and UTF-8 take more bytes than characters) */
export const MAX_LINE_BYTES = 4 * MAX_LINE;

const LF = 0x0a;
const CR = 0x0d;
const ESC = 0x1b;

// a control character (TAB is text) or DEL: the line takes the slow path
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;

/** The escape scanner's states, within one line. */
const enum Esc {
  Text,
  /** after ESC */
  Start,
  /** ESC [ …: parameters and intermediates until a final byte 0x40–0x7E */
  Csi,
  /** ESC ] / P / X / ^ / _ …: a string until BEL or ESC \ */
  Str,
  /** ESC and intermediates 0x20–0x2F (a charset designation) until a final byte */
  Inter,
}

/**
 * Text of one line for matching: escape sequences and control characters
 * removed, at most MAX_LINE characters.
 */
export function cleanLine(s: string): string {
  if (!CONTROL.test(s)) return s.length > MAX_LINE ? s.slice(0, MAX_LINE) : s;
  let out = '';
  let run = 0; // start of the text run being kept
  let st = Esc.Text;
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    switch (st) {
      case Esc.Text:
        if (c >= 0x20 ? c !== 0x7f : c === 0x09) continue;
        out += s.slice(run, i);
        run = i + 1;
        if (c === ESC) st = Esc.Start;
        continue;
      case Esc.Start:
        if (c === 0x5b) st = Esc.Csi; // [
        else if (c === 0x5d || c === 0x50 || c === 0x58 || c === 0x5e || c === 0x5f) st = Esc.Str; // ] P X ^ _
        else if (c >= 0x20 && c <= 0x2f) st = Esc.Inter;
        else if (c !== ESC) st = Esc.Text; // a two-byte escape (ESC 7, ESC =, ESC M …)
        break;
      case Esc.Csi:
        if (c === ESC) st = Esc.Start;
        else if (c >= 0x40 && c <= 0x7e) st = Esc.Text;
        break;
      case Esc.Str:
        if (c === 0x07) st = Esc.Text;
        else if (c === ESC) st = Esc.Start; // ESC \ ends it; ESC and anything else starts a new escape
        break;
      case Esc.Inter:
        if (c === ESC) st = Esc.Start;
        else if (c < 0x20 || c > 0x2f) st = Esc.Text;
        break;
    }
    run = i + 1;
    if (out.length >= MAX_LINE) break;
  }
  if (st === Esc.Text && run < n) out += s.slice(run, n);
  return out.length > MAX_LINE ? out.slice(0, MAX_LINE) : out;
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
      let end = seg.length;
      while (end > 0 && seg[end - 1] === CR) end--;
      line(cleanLine(seg.toString('utf8', 0, end)));
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
    let end = this.ends[k]!;
    while (end > start && this.tail[end - 1] === CR) end--;
    return cleanLine(this.tail.toString('utf8', start, Math.min(end, start + MAX_LINE_BYTES)));
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

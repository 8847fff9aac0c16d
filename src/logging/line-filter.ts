// The per-line transformations of conman's logopts: `sanitize` (7-bit
// printable, CR/LF normalised to CRLF) and `timestamp` (a stamp before the
// first character of each line). State survives across chunks.

import { stampTime } from '../util/notice.js';

const wallClock = (): Date => new Date();

export class LineFilter {
  private atLineStart = true;
  private lastWasCR = false;

  constructor(
    private readonly sanitize: boolean,
    private readonly timestamp: boolean,
  ) {}

  get identity(): boolean {
    return !this.sanitize && !this.timestamp;
  }

  /** Transform one chunk. Returns the input itself when no option is on (allocating nothing: every chunk of every console passes here). */
  apply(data: Buffer, clock?: () => Date): Buffer {
    if (this.identity) return data;
    const now = clock ?? wallClock;
    if (!this.sanitize) return this.stampOnly(data, now);
    const out: number[] = [];
    let stamp: number[] | null = null;
    const pushStamp = (): void => {
      stamp ??= [...Buffer.from(stampTime(now()) + ' ', 'latin1')];
      for (const b of stamp) out.push(b);
    };
    for (const c of data) {
      if (this.sanitize && (c === 0x0d || c === 0x0a)) {
        // CR, LF, CRLF and LFCR each make one CRLF.
        if (c === 0x0a && this.lastWasCR) {
          this.lastWasCR = false;
          continue;
        }
        this.lastWasCR = c === 0x0d;
        out.push(0x0d, 0x0a);
        this.atLineStart = true;
        continue;
      }
      this.lastWasCR = false;
      if (this.timestamp) {
        if (c === 0x0a) {
          out.push(c);
          this.atLineStart = true;
          continue;
        }
        if (this.atLineStart && c !== 0x0d) {
          pushStamp();
          this.atLineStart = false;
        }
      }
      if (!this.sanitize) {
        out.push(c);
        continue;
      }
      const low = c & 0x7f;
      if (c & 0x80) {
        // high-bit: control as ~X, printable with a leading backtick
        if (low < 0x20 || low === 0x7f) out.push(0x7e, low ^ 0x40);
        else out.push(0x60, low);
      } else if ((c < 0x20 && c !== 0x09) || c === 0x7f) {
        out.push(0x5e, c ^ 0x40);
      } else {
        out.push(c);
      }
    }
    return Buffer.from(out);
  }

  /** timestamp without sanitize (the common case): copy the runs between line starts */
  private stampOnly(data: Buffer, now: () => Date): Buffer {
    const parts: Buffer[] = [];
    let stamp: Buffer | null = null;
    let from = 0;
    for (let i = 0; i < data.length; i++) {
      const c = data[i]!;
      if (c === 0x0a) this.atLineStart = true;
      else if (this.atLineStart && c !== 0x0d) {
        stamp ??= Buffer.from(stampTime(now()) + ' ', 'latin1');
        parts.push(data.subarray(from, i), stamp);
        from = i;
        this.atLineStart = false;
      }
    }
    if (parts.length === 0) return data;
    parts.push(data.subarray(from));
    return Buffer.concat(parts);
  }
}

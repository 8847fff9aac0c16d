// The first screen of a console's output, run on the bytes as the tap gets
// them: does this piece hold one of the rules' literal strings (any case),
// or anything that cleaning (search/line-text.ts) would change (an escape, a
// control character, a CR not before LF — cleaning could join a literal's
// pieces)? If neither, no line in it can match a rule, and it need not
// become lines at all.
//
// An Aho–Corasick automaton over byte classes, as one transition table: a
// typed-array load per byte, no string made, no call out of JavaScript —
// several times cheaper than a RegExp over the decoded text, which matters
// because nearly every byte conchd logs passes here. Its state carries from
// one piece to the next, so a literal split across packets is found where
// it completes. Sound for the same reasons as the line screen: literals are
// ASCII, UTF-8 never puts an ASCII byte inside a character, and letters of
// both cases share a class.

import { CONTROL } from '../search/line-text.js';

const LF = 0x0a;
const CR = 0x0d;
/** classes: bytes cleaning would change; CR; everything else not in a literal; then one per literal character */
const C_DIRTY = 0;
const C_CR = 1;
const C_OTHER = 2;
const C_FIRST = 3;

/** states past this and the table is not worth it (no byte screen: the batch's RegExp screens every line) */
const MAX_STATES = 20_000;

export class LiteralScanner {
  /** LFs in the last piece scanned */
  lines = 0;

  private constructor(
    private readonly cls: Uint8Array,
    private readonly nClasses: number,
    /** next state, [state * nClasses + class] */
    private readonly next: Int32Array,
    /** states from this one on end a literal */
    private readonly acceptFrom: number,
  ) {}

  /** The automaton for `literals` (lowercase), or null when there are none or too many states. */
  static build(literals: readonly string[]): LiteralScanner | null {
    if (literals.length === 0) return null;
    const cls = new Uint8Array(256).fill(C_OTHER);
    // what cleaning removes (TAB stays in a cleaned line)
    for (let b = 0; b < 256; b++) if (CONTROL[b] === 1) cls[b] = C_DIRTY;
    cls[LF] = C_OTHER; // no literal holds LF: it takes the automaton back to the start
    cls[CR] = C_CR;
    let n = C_FIRST;
    for (const l of literals) {
      for (let i = 0; i < l.length; i++) {
        const c = l.charCodeAt(i);
        if (c >= 128 || cls[c] !== C_OTHER) continue; // a control in a literal stays dirty: such a line is cleaned first
        cls[c] = n;
        if (c >= 0x61 && c <= 0x7a) cls[c - 32] = n;
        n++;
      }
    }
    // the trie
    const go: Map<number, number>[] = [new Map()];
    const end: boolean[] = [false];
    for (const l of literals) {
      let s = 0;
      for (let i = 0; i < l.length; i++) {
        const c = cls[l.charCodeAt(i) & 0xff]!;
        let t = go[s]!.get(c);
        if (t === undefined) {
          t = go.length;
          go.push(new Map());
          end.push(false);
          go[s]!.set(c, t);
        }
        s = t;
      }
      end[s] = true;
      if (go.length > MAX_STATES) return null;
    }
    // failure links, breadth first; the full transition table and what accepts
    const states = go.length;
    const table = new Int32Array(states * n);
    const fail = new Int32Array(states);
    const accept = end.slice();
    const queue: number[] = [];
    for (let c = 0; c < n; c++) {
      const t = go[0]!.get(c) ?? 0;
      table[c] = t;
      if (t !== 0) queue.push(t);
    }
    for (let q = 0; q < queue.length; q++) {
      const s = queue[q]!;
      accept[s] = accept[s]! || accept[fail[s]!]!;
      for (let c = 0; c < n; c++) {
        const t = go[s]!.get(c);
        if (t === undefined) table[s * n + c] = table[fail[s]! * n + c]!;
        else {
          fail[t] = table[fail[s]! * n + c]!;
          table[s * n + c] = t;
          queue.push(t);
        }
      }
    }
    // renumber so that the accepting states come last: one comparison a byte tells a hit
    const order: number[] = [];
    for (let s = 0; s < states; s++) if (!accept[s]) order.push(s);
    const acceptFrom = order.length;
    for (let s = 0; s < states; s++) if (accept[s]) order.push(s);
    const newId = new Int32Array(states);
    order.forEach((s, i) => (newId[s] = i));
    const next = new Int32Array(states * n);
    for (let i = 0; i < states; i++) {
      const s = order[i]!;
      for (let c = 0; c < n; c++) next[i * n + c] = newId[table[s * n + c]!]!;
    }
    return new LiteralScanner(cls, n, next, acceptFrom);
  }

  /**
   * Scan `data` from state `state` (0: the start of a line, or of nothing).
   * Returns the state after it, or -1 when it holds a literal or something
   * cleaning would change. Counts its LFs in `lines`.
   */
  scan(data: Buffer, state: number): number {
    const { cls, next, nClasses, acceptFrom } = this;
    let s = state;
    let lines = 0;
    const len = data.length;
    for (let i = 0; i < len; i++) {
      const b = data[i]!;
      const c = cls[b]!;
      if (c <= C_CR) {
        // dirty, or a CR: fine only right before LF (at the end of the piece it is not known: not quiet)
        if (c === C_DIRTY || i + 1 >= len || data[i + 1] !== LF) return -1;
        continue;
      }
      if (b === LF) lines++;
      s = next[s * nClasses + c]!;
      if (s >= acceptFrom) return -1;
    }
    this.lines = lines;
    return s;
  }
}

// A console line as text: one definition for the pattern alerts
// (src/alerts: the tap's lines) and the log search (this folder: the lines
// of the logs), so that the line an alert matched is the very line a search
// finds, and a rule and a search of the same regex screen on the same
// literals.
//
// Cleaning, as a person reads the line: ANSI escape sequences are removed —
// CSI (`ESC [`, parameters, a final byte 0x40–0x7E), the strings OSC, DCS,
// SOS, PM and APC (`ESC ]`, `ESC P`, `ESC X`, `ESC ^`, `ESC _`, up to BEL or
// `ESC \`), `ESC` with intermediates 0x20–0x2F up to a final byte (a charset
// designation), and two-byte escapes (`ESC 7`, `ESC =`, `ESC M` …) — and so
// is every control character but TAB: CR (wherever it is: a progress line's
// `50%\r100%` reads `50%100%`), BS, BEL, DEL. An escape never runs past its
// line's LF. Bytes from 0x80 up are text: UTF-8 never puts an ASCII byte
// inside a character, so cleaning the bytes and then decoding them as UTF-8
// is cleaning the characters, and the line's bytes may come in any pieces.
//
// Literals: the lower-case strings one of which every match of a regex
// contains (`kernel panic - not syncing:`, or one per branch of an
// alternation), found in its syntax tree; a line holding none of them cannot
// match, so the NFA need not run on it. Both engines are case-insensitive
// and the literals are ASCII, so they are looked for in text lower-cased
// byte by byte.

import type { CharSet } from '../protocol/charset.js';
import type { Node } from '../protocol/pattern-ast.js';

const TAB = 0x09;
const LF = 0x0a;
const ESC = 0x1b;
const DEL = 0x7f;

/** Byte tables for cleanInto: KEEP copies a byte, FOLD lower-cases ASCII letters. */
export const KEEP = new Uint8Array(256);
export const FOLD = new Uint8Array(256);
/** 1 for a byte that cleaning removes or that starts an escape: the C0 controls but TAB (LF included: it ends a line), and DEL */
export const CONTROL = new Uint8Array(256);
for (let i = 0; i < 256; i++) {
  KEEP[i] = i;
  FOLD[i] = i >= 0x41 && i <= 0x5a ? i + 32 : i;
  CONTROL[i] = (i < 0x20 && i !== TAB) || i === DEL ? 1 : 0;
}

/** The cleaner's states, within one line. */
const enum Esc {
  Text,
  /** after ESC */
  Start,
  /** ESC [ …: parameters and intermediates until a final byte */
  Csi,
  /** ESC ] / P / X / ^ / _ …: a string until BEL or ESC \ */
  Str,
  /** ESC and intermediates until a final byte */
  Inter,
}

/** Where the lines of a cleaned piece start: in the raw and in the cleaned bytes. */
export interface LineStarts {
  raw: Int32Array;
  clean: Int32Array;
  n: number;
}

/**
 * Clean raw[from, to) into `out` (from index 0) through `table` (KEEP, or
 * FOLD to lower-case); returns the cleaned length. LFs are kept and end any
 * escape; `lines` (if given) gets the start of each line after one.
 */
export function cleanInto(raw: Uint8Array, from: number, to: number, out: Uint8Array, table: Uint8Array, lines: LineStarts | null): number {
  let j = 0;
  let st = Esc.Text;
  for (let i = from; i < to; i++) {
    const c = raw[i]!;
    if (c === LF) {
      out[j++] = LF;
      st = Esc.Text;
      if (lines && i + 1 < to) {
        lines.raw[lines.n] = i + 1;
        lines.clean[lines.n] = j;
        lines.n++;
      }
      continue;
    }
    switch (st) {
      case Esc.Text:
        if (CONTROL[c] === 0) out[j++] = table[c]!;
        else if (c === ESC) st = Esc.Start;
        break;
      case Esc.Start:
        if (c === 0x5b) st = Esc.Csi; // [
        else if (c === 0x5d || c === 0x50 || c === 0x58 || c === 0x5e || c === 0x5f) st = Esc.Str; // ] P X ^ _
        else if (c >= 0x20 && c <= 0x2f) st = Esc.Inter;
        else if (c !== ESC) st = Esc.Text; // a two-byte escape
        break;
      case Esc.Csi:
        if (c === ESC) st = Esc.Start;
        else if (c >= 0x40 && c <= 0x7e) st = Esc.Text;
        break;
      case Esc.Str:
        if (c === 0x07) st = Esc.Text;
        else if (c === ESC) st = Esc.Start; // ESC \ ends it (a two-byte escape); ESC and anything else starts a new escape
        break;
      case Esc.Inter:
        if (c === ESC) st = Esc.Start;
        else if (c < 0x20 || c > 0x2f) st = Esc.Text;
        break;
    }
  }
  return j;
}

/**
 * The text of the line whose raw bytes are raw[from, to) (its LF, if
 * there, is not part of it): cleaned, in its own case, decoded as UTF-8.
 */
export function lineText(raw: Buffer, from = 0, to = raw.length): string {
  let i = from;
  while (i < to && CONTROL[raw[i]!] === 0) i++;
  // nothing to clean (most lines)
  if (i === to) return raw.toString('utf8', from, to);
  const out = Buffer.allocUnsafe(to - from);
  let n = cleanInto(raw, from, to, out, KEEP, null);
  if (n > 0 && out[n - 1] === LF) n--;
  return out.toString('utf8', 0, n);
}

// ---- literals ------------------------------------------------------------------

/** The one character a set matches, lower-cased (the engine's sets are case-insensitive), or null. */
function single(s: CharSet): string | null {
  if (s.high) return null;
  let found = -1;
  for (let c = 0; c < 128; c++) {
    if (s.ascii[c] !== 1) continue;
    const low = FOLD[c]!;
    if (found >= 0 && found !== low) return null;
    found = low;
  }
  return found < 0 ? null : String.fromCharCode(found);
}

/** A node's literals: the one string it matches, when it matches exactly one, and strings one of which its every match contains. */
interface Lit {
  exact: string | null;
  any: string[] | null;
}

/** how good a literal set is for screening: the longer its shortest member, then the fewer members, the better */
function better(a: string[] | null, b: string[] | null): string[] | null {
  if (!a) return b;
  if (!b) return a;
  const ma = Math.min(...a.map((s) => s.length));
  const mb = Math.min(...b.map((s) => s.length));
  if (ma !== mb) return ma > mb ? a : b;
  return a.length <= b.length ? a : b;
}

const one = (s: string | null): string[] | null => (s === null || s === '' ? null : [s]);

function literalOf(n: Node, max: number): Lit {
  switch (n.t) {
    case 'set': {
      const c = single(n.set);
      return { exact: c, any: one(c) };
    }
    case 'assert':
      // zero-width: `a\bb` needs "ab"
      return { exact: '', any: null };
    case 'cat': {
      let run = '';
      let best: string[] | null = null;
      let exact: string | null = '';
      for (const item of n.items) {
        const l = literalOf(item, max);
        if (l.exact !== null) {
          run += l.exact;
          if (exact !== null) exact += l.exact;
        } else {
          best = better(better(best, one(run)), l.any);
          run = '';
          exact = null;
        }
      }
      return { exact, any: better(best, one(run)) };
    }
    case 'alt': {
      const ls = n.alts.map((a) => literalOf(a, max));
      const first = ls[0]?.exact ?? null;
      if (first !== null && ls.every((l) => l.exact === first)) return { exact: first, any: one(first) };
      if (ls.some((l) => l.any === null)) return { exact: null, any: null };
      const all = [...new Set(ls.flatMap((l) => l.any!))];
      return { exact: null, any: all.length <= max ? all : null };
    }
    case 'rep': {
      if (n.min === 0) return { exact: n.max === 0 ? '' : null, any: null };
      const l = literalOf(n.node, max);
      const exact = n.max === n.min && l.exact !== null ? l.exact.repeat(n.min) : null;
      return { exact, any: exact !== null && exact !== '' ? [exact] : l.any };
    }
  }
}

/**
 * Lower-case strings one of which every match of the regex `n` contains
 * (none empty), or null when no such set of at most `max` was found (then
 * every line is the NFA's).
 */
export function requiredLiterals(n: Node, max = 64): string[] | null {
  return literalOf(n, max).any;
}

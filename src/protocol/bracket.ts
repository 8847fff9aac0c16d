// POSIX bracket expressions (`[a-z[:digit:]]`, `[!x]`), shared by the glob
// and the extended-regex parsers: parsed once into a character set.

import { CharSetBuilder, type CharSet } from './charset.js';

export class BracketError extends Error {
  constructor(readonly kind: 'unmatched' | 'class' | 'collate' | 'range') {
    super(kind);
  }
}

export interface Bracket {
  set: CharSet;
  /** index just past the closing `]` */
  end: number;
}

export interface BracketOptions {
  /** `!^` for fnmatch, `^` for regex */
  negators: string;
  /** fnmatch lets `\` quote the next char; in POSIX regex a backslash is literal inside brackets */
  backslash: boolean;
  /** 'error' (regcomp) or 'empty' (fnmatch: the range matches nothing) */
  badRange: 'error' | 'empty';
  icase?: boolean;
  /**
   * Positions (past the first item) from which a scan already ran off the
   * end unmatched. A glob falls back to a literal `[` and tries the next
   * `[`; the scan from a position is deterministic, so remembering where
   * scans died keeps a pattern of many `[` linear instead of quadratic.
   */
  deadEnds?: Set<number>;
}

/** Parse a bracket expression starting at `s[start] === '['`. */
export function parseBracket(s: string, start: number, opts: BracketOptions): Bracket {
  let i = start + 1;
  let negate = false;
  if (i < s.length && opts.negators.includes(s[i])) {
    negate = true;
    i++;
  }
  const set = new CharSetBuilder();
  const visited: number[] = [];
  const unmatched = (): never => {
    if (opts.deadEnds) for (const v of visited) opts.deadEnds.add(v);
    throw new BracketError('unmatched');
  };
  let first = true;
  // an item is a single char (may start a range) or a class (may not)
  const readItem = (): { ch: number } | { cls: string } => {
    const c = s[i];
    if (c === '[' && i + 1 < s.length && ':.='.includes(s[i + 1])) {
      const kind = s[i + 1];
      const close = s.indexOf(`${kind}]`, i + 2);
      if (close < 0) unmatched();
      const body = s.slice(i + 2, close);
      i = close + 2;
      if (kind === ':') {
        if (!CharSetBuilder.isClass(body)) throw new BracketError('class');
        return { cls: body };
      }
      if (body.length !== 1) throw new BracketError('collate');
      return { ch: body.charCodeAt(0) };
    }
    if (c === '\\' && opts.backslash && i + 1 < s.length) {
      i += 2;
      return { ch: s.charCodeAt(i - 1) };
    }
    i++;
    return { ch: c.charCodeAt(0) };
  };
  for (;;) {
    if (i >= s.length) unmatched();
    if (!first) {
      if (opts.deadEnds?.has(i)) unmatched();
      visited.push(i);
    }
    if (s[i] === ']' && !first) {
      i++;
      break;
    }
    first = false;
    const a = readItem();
    // a range: `x-y`, but `-` just before the closing `]` is literal
    if (i + 1 < s.length && s[i] === '-' && s[i + 1] !== ']') {
      i++;
      const b = readItem();
      if ('cls' in a || 'cls' in b || a.ch > b.ch) {
        if (opts.badRange === 'error') throw new BracketError('range');
        continue;
      }
      set.addRange(a.ch, b.ch);
      continue;
    }
    if ('cls' in a) set.addClass(a.cls);
    else set.addChar(a.ch);
  }
  return { set: set.freeze(negate, opts.icase ?? false), end: i };
}

// POSIX bracket expressions (`[a-z[:digit:]]`, `[!x]`), shared by the glob
// and the extended-regex translators: parsed once, emitted as a JS class.

const CLASSES: Record<string, string> = {
  alpha: 'A-Za-z',
  upper: 'A-Z',
  lower: 'a-z',
  digit: '0-9',
  xdigit: '0-9A-Fa-f',
  alnum: '0-9A-Za-z',
  space: ' \\t\\n\\r\\v\\f',
  blank: ' \\t',
  punct: '!-\\/:-@\\[-`{-~',
  print: ' -~',
  graph: '!-~',
  cntrl: '\\x00-\\x1f\\x7f',
};

export class BracketError extends Error {
  constructor(readonly kind: 'unmatched' | 'class' | 'collate' | 'range') {
    super(kind);
  }
}

/** A char as a JS regex class member. */
const classChar = (ch: string): string => {
  const c = ch.charCodeAt(0);
  if (c < 0x20 || c > 0x7e) return `\\u${c.toString(16).padStart(4, '0')}`;
  return /[\\\]\[^-]/.test(ch) ? `\\${ch}` : ch;
};

export interface Bracket {
  /** JS source of the class, e.g. `[^a-z0-9]` */
  source: string;
  /** index just past the closing `]` */
  end: number;
}

/**
 * Parse a bracket expression starting at `s[start] === '['`.
 * `negators`: `!^` for fnmatch, `^` for regex. `backslash`: fnmatch lets `\`
 * quote the next char; in POSIX regex a backslash is literal inside brackets.
 * `badRange`: 'error' (regcomp) or 'empty' (fnmatch: the range matches nothing).
 */
export function parseBracket(
  s: string,
  start: number,
  opts: { negators: string; backslash: boolean; badRange: 'error' | 'empty' },
): Bracket {
  let i = start + 1;
  let negate = false;
  if (i < s.length && opts.negators.includes(s[i])) {
    negate = true;
    i++;
  }
  const parts: string[] = [];
  let first = true;
  // an item is a single char (may start a range) or a class (may not)
  const readItem = (): { ch: string } | { cls: string } => {
    const c = s[i];
    if (c === '[' && i + 1 < s.length && ':.='.includes(s[i + 1])) {
      const kind = s[i + 1];
      const close = s.indexOf(`${kind}]`, i + 2);
      if (close < 0) throw new BracketError('unmatched');
      const body = s.slice(i + 2, close);
      i = close + 2;
      if (kind === ':') {
        const cls = CLASSES[body];
        if (cls === undefined) throw new BracketError('class');
        return { cls };
      }
      if (body.length !== 1) throw new BracketError('collate');
      return { ch: body };
    }
    if (c === '\\' && opts.backslash && i + 1 < s.length) {
      i += 2;
      return { ch: s[i - 1] };
    }
    i++;
    return { ch: c };
  };
  for (;;) {
    if (i >= s.length) throw new BracketError('unmatched');
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
      if ('cls' in a || 'cls' in b) {
        if (opts.badRange === 'error') throw new BracketError('range');
        continue;
      }
      if (a.ch > b.ch) {
        if (opts.badRange === 'error') throw new BracketError('range');
        continue;
      }
      parts.push(`${classChar(a.ch)}-${classChar(b.ch)}`);
      continue;
    }
    parts.push('cls' in a ? a.cls : classChar(a.ch));
  }
  const body = parts.join('');
  // JS: `[]` matches nothing and `[^]` anything, which is what an empty set means
  return { source: `[${negate ? '^' : ''}${body}]`, end: i };
}

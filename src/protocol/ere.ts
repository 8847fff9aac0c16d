// POSIX extended regular expressions, as conman compiles them with
// regcomp(REG_EXTENDED|REG_ICASE), translated to a JS RegExp. Errors carry
// glibc's regerror() texts, which the conman client prints as
// `ERROR: <text>.` — e.g. `((` gives `Unmatched ( or \(`.

import { parseBracket, BracketError } from './bracket.js';

export class EreError extends Error {}

const E = {
  paren: 'Unmatched ( or \\(',
  bracket: 'Unmatched [, [^, [:, [., or [=',
  preceding: 'Invalid preceding regular expression',
  braceOpen: 'Unmatched \\{',
  braceContent: 'Invalid content of \\{\\}',
  tooBig: 'Regular expression too big',
  backslash: 'Trailing backslash',
  backref: 'Invalid back reference',
  className: 'Invalid character class name',
  collate: 'Invalid collation character',
  range: 'Invalid range end',
  generic: 'Invalid regular expression',
};
const DUP_MAX = 0x7fff;

const escapeChar = (ch: string): string => {
  const c = ch.charCodeAt(0);
  if (c < 0x20 || c > 0x7e) return `\\u${c.toString(16).padStart(4, '0')}`;
  return /[\\^$.*+?()[\]{}|/]/.test(ch) ? `\\${ch}` : ch;
};

/** JS RegExp source for an ERE (not anchored). Throws EreError. */
export function ereToSource(p: string): string {
  let out = '';
  // where the last quantifiable atom starts in `out`; -1 after `(`, `|`, anchors
  let last = -1;
  let quantified = false;
  let groupsClosed = 0;
  const stack: { out: string }[] = [];
  const atom = (src: string): void => {
    last = out.length;
    quantified = false;
    out += src;
  };
  const quantify = (q: string): void => {
    if (last < 0) throw new EreError(E.preceding);
    // `a**` is fine in POSIX; JS needs the first repetition grouped
    if (quantified) out = `${out.slice(0, last)}(?:${out.slice(last)})`;
    out += q;
    quantified = true;
  };
  let i = 0;
  while (i < p.length) {
    const c = p[i];
    switch (c) {
      case '(':
        stack.push({ out });
        out = '';
        last = -1;
        i++;
        break;
      case ')':
        if (stack.length === 0) {
          atom('\\)'); // glibc: an unmatched `)` is an ordinary character
        } else {
          const inner = out;
          out = stack.pop()!.out;
          groupsClosed++;
          atom(`(${inner})`);
        }
        i++;
        break;
      case '|':
        out += '|';
        last = -1;
        i++;
        break;
      case '^':
      case '$':
        out += c;
        last = -1;
        i++;
        break;
      case '*':
      case '+':
      case '?':
        quantify(c);
        i++;
        break;
      case '{': {
        if (last < 0) throw new EreError(E.preceding);
        const close = p.indexOf('}', i);
        if (close < 0) throw new EreError(E.braceOpen);
        const m = /^(\d*)(?:(,)(\d*))?$/.exec(p.slice(i + 1, close));
        if (!m || (m[1] === '' && !m[2])) throw new EreError(E.braceContent);
        const min = m[1] === '' ? 0 : Number(m[1]);
        const max = m[2] ? (m[3] === '' ? null : Number(m[3])) : min;
        if (min > DUP_MAX || (max !== null && max > DUP_MAX)) throw new EreError(E.tooBig);
        if (max !== null && min > max) throw new EreError(E.braceContent);
        quantify(max === min ? `{${min}}` : `{${min},${max ?? ''}}`);
        i = close + 1;
        break;
      }
      case '[': {
        if (i + 1 >= p.length || (p[i + 1] === '^' && i + 2 >= p.length)) throw new EreError(E.generic);
        try {
          const b = parseBracket(p, i, { negators: '^', backslash: false, badRange: 'error' });
          atom(b.source);
          i = b.end;
        } catch (e) {
          if (!(e instanceof BracketError)) throw e;
          const msg = { unmatched: E.bracket, class: E.className, collate: E.collate, range: E.range }[e.kind];
          throw new EreError(msg);
        }
        break;
      }
      case '\\': {
        if (i + 1 >= p.length) throw new EreError(E.backslash);
        const d = p[i + 1];
        i += 2;
        if (d >= '1' && d <= '9') {
          if (Number(d) > groupsClosed) throw new EreError(E.backref);
          atom(`\\${d}`);
        } else if ('wWsS'.includes(d)) {
          atom(`\\${d}`);
        } else if (d === 'b' || d === 'B') {
          out += `\\${d}`;
          last = -1;
        } else if (d === '<' || d === '>') {
          out += d === '<' ? '\\b(?=\\w)' : '\\b(?<=\\w)';
          last = -1;
        } else if (d === '`' || d === "'") {
          out += d === '`' ? '^' : '$';
          last = -1;
        } else {
          atom(escapeChar(d));
        }
        break;
      }
      case '.':
        atom('[^]');
        i++;
        break;
      default:
        atom(escapeChar(c));
        i++;
    }
  }
  if (stack.length > 0) throw new EreError(E.paren);
  return out;
}

/** An ERE matching whole names, case-insensitively. Throws EreError. */
export function compileEre(p: string): RegExp {
  const src = ereToSource(p);
  try {
    return new RegExp(`^(?:${src})$`, 'i');
  } catch {
    throw new EreError(E.generic);
  }
}

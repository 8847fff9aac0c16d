// POSIX extended regular expressions, as conman compiles them with
// regcomp(REG_EXTENDED|REG_ICASE), parsed into a tree and compiled to an NFA
// (nfa.ts) that matches in linear time. Errors carry glibc's regerror()
// texts, which the conman client prints as `ERROR: <text>.` — e.g. `((`
// gives `Unmatched ( or \(`.
//
// Back-references (`\1`) are refused: no linear-time engine can match them,
// and a backtracking one is what let one pattern freeze the daemon. A
// reference to a group not yet closed keeps glibc's "Invalid back
// reference"; a valid one gets E.backrefUnsupported once the whole pattern
// has parsed (so glibc's own errors elsewhere in it still come first).

import { parseBracket, BracketError } from './bracket.js';
import { ANY, WORD, charSet, classSet } from './charset.js';
import { alt, assertNode, cat, empty, rep, setNode, TooBig, type AssertKind, type Node } from './pattern-ast.js';
import { compile, type Program } from './nfa.js';

export class EreError extends Error {}

export const E = {
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
  // conch addition: glibc accepts these, conch cannot match them in linear time
  backrefUnsupported: 'Back references (\\1 to \\9) are not supported',
};
const DUP_MAX = 0x7fff;

/** One group (or the whole pattern) being parsed: finished branches and the current one. */
interface Frame {
  branches: Node[];
  items: Node[];
  /** whether the last item may take a quantifier (not after `(`, `|` or an anchor) */
  quantifiable: boolean;
}

const newFrame = (): Frame => ({ branches: [], items: [], quantifiable: false });
const close = (f: Frame): Node => alt([...f.branches, cat(f.items)]);

/** The tree of an ERE (case-insensitive). Throws EreError. */
export function parseEre(p: string): Node {
  try {
    return parse(p);
  } catch (e) {
    if (e instanceof TooBig) throw new EreError(E.tooBig);
    throw e;
  }
}

function parse(p: string): Node {
  const stack: Frame[] = [];
  let f = newFrame();
  let groupsClosed = 0;
  let backref = false;
  const atom = (n: Node): void => {
    f.items.push(n);
    f.quantifiable = true;
  };
  const anchor = (k: AssertKind): void => {
    f.items.push(assertNode(k));
    f.quantifiable = false;
  };
  const quantify = (min: number, max: number | null): void => {
    if (!f.quantifiable) throw new EreError(E.preceding);
    f.items.push(rep(f.items.pop()!, min, max));
  };
  let i = 0;
  while (i < p.length) {
    const c = p[i];
    switch (c) {
      case '(':
        stack.push(f);
        f = newFrame();
        i++;
        break;
      case ')':
        if (stack.length === 0) {
          atom(setNode(charSet(0x29, true))); // glibc: an unmatched `)` is an ordinary character
        } else {
          const inner = close(f);
          f = stack.pop()!;
          groupsClosed++;
          atom(inner);
        }
        i++;
        break;
      case '|':
        f.branches.push(cat(f.items));
        f.items = [];
        f.quantifiable = false;
        i++;
        break;
      case '^':
        anchor('bol');
        i++;
        break;
      case '$':
        anchor('eol');
        i++;
        break;
      case '*':
        quantify(0, null);
        i++;
        break;
      case '+':
        quantify(1, null);
        i++;
        break;
      case '?':
        quantify(0, 1);
        i++;
        break;
      case '{': {
        if (!f.quantifiable) throw new EreError(E.preceding);
        const end = p.indexOf('}', i);
        if (end < 0) throw new EreError(E.braceOpen);
        const m = /^(\d*)(?:(,)(\d*))?$/.exec(p.slice(i + 1, end));
        if (!m || (m[1] === '' && !m[2])) throw new EreError(E.braceContent);
        const min = m[1] === '' ? 0 : Number(m[1]);
        const max = m[2] ? (m[3] === '' ? null : Number(m[3])) : min;
        if (min > DUP_MAX || (max !== null && max > DUP_MAX)) throw new EreError(E.tooBig);
        if (max !== null && min > max) throw new EreError(E.braceContent);
        quantify(min, max);
        i = end + 1;
        break;
      }
      case '[': {
        if (i + 1 >= p.length || (p[i + 1] === '^' && i + 2 >= p.length)) throw new EreError(E.generic);
        try {
          const b = parseBracket(p, i, { negators: '^', backslash: false, badRange: 'error', icase: true });
          atom(setNode(b.set));
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
          backref = true;
          atom(empty()); // a stand-in: `\1*` parses in glibc; the pattern is refused below anyway
        } else if (d === 'w' || d === 'W') {
          atom(setNode(d === 'w' ? WORD : classSet('alnum', true, '_')));
        } else if (d === 's' || d === 'S') {
          atom(setNode(classSet('space', d === 'S')));
        } else if (d === 'b' || d === 'B') {
          anchor(d === 'b' ? 'wordb' : 'nwordb');
        } else if (d === '<' || d === '>') {
          anchor(d === '<' ? 'wordstart' : 'wordend');
        } else if (d === '`' || d === "'") {
          anchor(d === '`' ? 'bol' : 'eol');
        } else {
          atom(setNode(charSet(d.charCodeAt(0), true)));
        }
        break;
      }
      case '.':
        atom(setNode(ANY));
        i++;
        break;
      default:
        atom(setNode(charSet(c.charCodeAt(0), true)));
        i++;
    }
  }
  if (stack.length > 0) throw new EreError(E.paren);
  if (backref) throw new EreError(E.backrefUnsupported);
  return close(f);
}

/** An ERE matching whole names, case-insensitively. Throws EreError. */
export function compileEre(p: string): Program {
  return compile(parseEre(p));
}

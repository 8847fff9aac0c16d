// A small fnmatch(pattern, name, 0): `*`, `?`, `[...]` (with `!`/`^`, ranges
// and [:classes:]) and `\` quoting. Case-sensitive, like conman's glob mode.
// With flags 0, `/` and a leading `.` are ordinary characters. Parsed into
// the same tree as EREs and matched by the same linear-time NFA; a run of
// `*` is one `*` (they match the same, and one loop costs less).

import { parseBracket, BracketError } from './bracket.js';
import { ANY, charSet } from './charset.js';
import { cat, rep, setNode, TooBig, type Node } from './pattern-ast.js';
import { compile, type Program } from './nfa.js';

/** Thrown when a glob would compile beyond MAX_PROGRAM (only a request line of huge globs gets there). */
export class GlobTooBig extends Error {}

/** The glob's tree; null if it can never match (bad class name or collating element). */
export function parseGlob(pattern: string): Node | null {
  const items: Node[] = [];
  const deadEnds = new Set<number>();
  const lit = (c: string): void => {
    items.push(setNode(charSet(c.charCodeAt(0), false)));
  };
  let i = 0;
  try {
    while (i < pattern.length) {
      const c = pattern[i];
      if (c === '*') {
        while (pattern[i] === '*') i++;
        items.push(rep(setNode(ANY), 0, null));
      } else if (c === '?') {
        items.push(setNode(ANY));
        i++;
      } else if (c === '\\' && i + 1 < pattern.length) {
        lit(pattern[i + 1]);
        i += 2;
      } else if (c === '[') {
        try {
          const b = parseBracket(pattern, i, { negators: '!^', backslash: true, badRange: 'empty', deadEnds });
          items.push(setNode(b.set));
          i = b.end;
        } catch (e) {
          if (!(e instanceof BracketError)) throw e;
          if (e.kind !== 'unmatched') return null;
          // glibc: an unterminated `[` is an ordinary character
          lit('[');
          i++;
        }
      } else {
        lit(c);
        i++;
      }
    }
    return cat(items);
  } catch (e) {
    if (e instanceof TooBig) throw new GlobTooBig();
    throw e;
  }
}

/** The glob as a program; null if it can never match. */
export function compileGlob(pattern: string): Program | null {
  const n = parseGlob(pattern);
  return n ? compile(n) : null;
}

export function globMatch(pattern: string, name: string): boolean {
  return compileGlob(pattern)?.test(name) ?? false;
}

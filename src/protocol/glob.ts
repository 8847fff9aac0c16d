// A small fnmatch(pattern, name, 0): `*`, `?`, `[...]` (with `!`/`^`, ranges
// and [:classes:]) and `\` quoting. Case-sensitive, like conman's glob mode.
// With flags 0, `/` and a leading `.` are ordinary characters.

import { parseBracket, BracketError } from './bracket.js';

const escapeChar = (ch: string): string => ch.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');

/** The glob as an anchored RegExp; null if it can never match (bad class name). */
export function globToRegExp(pattern: string): RegExp | null {
  let src = '';
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i];
    if (c === '*') {
      src += '[^]*';
      i++;
    } else if (c === '?') {
      src += '[^]';
      i++;
    } else if (c === '\\' && i + 1 < pattern.length) {
      src += escapeChar(pattern[i + 1]);
      i += 2;
    } else if (c === '[') {
      try {
        const b = parseBracket(pattern, i, { negators: '!^', backslash: true, badRange: 'empty' });
        src += b.source;
        i = b.end;
      } catch (e) {
        if (!(e instanceof BracketError)) throw e;
        if (e.kind !== 'unmatched') return null;
        // glibc: an unterminated `[` is an ordinary character
        src += '\\[';
        i++;
      }
    } else {
      src += escapeChar(c);
      i++;
    }
  }
  return new RegExp(`^(?:${src})$`);
}

export function globMatch(pattern: string, name: string): boolean {
  return globToRegExp(pattern)?.test(name) ?? false;
}

// Client-side copy of conman's line lexer and quote encoding (lex.c rules):
// whitespace is space/tab/VT/FF, `#` starts a comment, CR/LF/CRLF ends the
// line, keywords are case-insensitive, strings are '…' or "…" with no escapes.
// Values are "encoded" by setting the high bit on quote characters and
// "decoded" by clearing the high bit of every byte.
// NOTE for the lead: src/protocol has a server-side lexer; these could merge.

const KEYWORDS = new Set([
  'BROADCAST', 'CODE', 'CONNECT', 'CONSOLE', 'ERROR', 'FORCE', 'HELLO', 'JOIN', 'MESSAGE',
  'MONITOR', 'OK', 'OPTION', 'QUERY', 'QUIET', 'REGEX', 'RESET', 'TTY', 'USER',
]);

/** Longest string value conman keeps (LEX_MAX_STR - 1). */
const MAX_STR = 1023;

export type Token =
  | { kind: 'kw'; word: string } // upper-cased keyword
  | { kind: 'str'; bytes: Buffer } // quoted string or unknown identifier
  | { kind: 'int'; value: number }
  | { kind: 'char'; ch: string } // e.g. '='
  | { kind: 'err' } // unterminated quote
  | { kind: 'eol' }
  | { kind: 'eof' };

/** Set the high bit on every ' and " so the value can sit inside quotes. */
export function lexEncode(value: Buffer | string): Buffer {
  const b = Buffer.from(typeof value === 'string' ? Buffer.from(value, 'utf8') : value);
  for (let i = 0; i < b.length; i++) if (b[i] === 0x27 || b[i] === 0x22) b[i] |= 0x80;
  return b;
}

/** Clear the high bit of every byte of a received value (7-bit result). */
export function lexDecode(value: Buffer): string {
  const b = Buffer.from(value);
  for (let i = 0; i < b.length; i++) b[i] &= 0x7f;
  return b.toString('latin1');
}

const isAlpha = (c: number): boolean => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;

/** Split one protocol line into tokens (stops at the first end-of-line or NUL). */
export function tokenize(line: Buffer): Token[] {
  const out: Token[] = [];
  let i = 0;
  const at = (k: number): number => (k < line.length ? line[k] : 0);
  for (;;) {
    const c = at(i);
    if (c === 0) {
      out.push({ kind: 'eof' });
      return out;
    }
    if (c === 0x20 || c === 0x09 || c === 0x0b || c === 0x0c) {
      i++;
    } else if (c === 0x23) {
      while (at(i) && at(i) !== 0x0a && at(i) !== 0x0d) i++;
    } else if (c === 0x0a || c === 0x0d) {
      out.push({ kind: 'eol' });
      return out;
    } else if (c === 0x27 || c === 0x22) {
      let j = i + 1;
      while (at(j) && at(j) !== c && at(j) !== 0x0d && at(j) !== 0x0a) j++;
      if (at(j) !== c) {
        out.push({ kind: 'err' });
        i = j;
      } else {
        out.push({ kind: 'str', bytes: line.subarray(i + 1, Math.min(j, i + 1 + MAX_STR)) });
        i = j + 1;
      }
    } else if (isAlpha(c) || c === 0x5f) {
      let j = i + 1;
      while (isAlpha(at(j)) || isDigit(at(j)) || at(j) === 0x5f) j++;
      const word = line.subarray(i, Math.min(j, i + MAX_STR));
      const upper = word.toString('latin1').toUpperCase();
      out.push(KEYWORDS.has(upper) ? { kind: 'kw', word: upper } : { kind: 'str', bytes: word });
      i = j;
    } else if (isDigit(c) || ((c === 0x2d || c === 0x2b) && isDigit(at(i + 1)))) {
      let j = i + 1;
      while (isDigit(at(j))) j++;
      out.push({ kind: 'int', value: parseInt(line.subarray(i, j).toString('latin1'), 10) });
      i = j;
    } else {
      out.push({ kind: 'char', ch: String.fromCharCode(c) });
      i++;
    }
  }
}

// conman's protocol line lexer (src/lex.c rules) and its quote encoding.
//
// Lines are bytes; strings travel as latin1 so a byte maps to one char code.
// Quoted strings have no escapes: instead the sender sets the high bit of
// every ' and " inside the value (0x27 → 0xA7, 0x22 → 0xA2) and the receiver
// clears it. conman clears the high bit of EVERY byte, silently corrupting
// UTF-8; conch maps back only 0xA7/0xA2 and flags any other high byte so the
// caller can refuse the value with a clear error.

/** conman's protocol keywords (compared case-insensitively). */
export const KEYWORDS = [
  'BROADCAST',
  'CODE',
  'CONNECT',
  'CONSOLE',
  'ERROR',
  'FORCE',
  'HELLO',
  'JOIN',
  'MESSAGE',
  'MONITOR',
  'OK',
  'OPTION',
  // conch additions: a password in the greeting (TLS only), a query with each console's state
  'PASSWORD',
  'QUERY',
  'QUIET',
  'REGEX',
  'RESET',
  'STATUS',
  'TTY',
  'USER',
] as const;
export type Keyword = (typeof KEYWORDS)[number];
const KEYWORD_SET = new Set<string>(KEYWORDS);

export type Token =
  | { kind: 'kw'; kw: Keyword }
  /** a quoted string or a bare non-keyword identifier; `nonAscii` = held bytes ≥ 0x80 besides the quote marks */
  | { kind: 'str'; value: string; quoted: boolean; nonAscii: boolean }
  | { kind: 'int'; value: string }
  /** any other single character, e.g. `=` */
  | { kind: 'char'; ch: string }
  /** an unterminated quoted string */
  | { kind: 'error'; msg: string };

const isSpace = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0b || c === 0x0c;
const isEol = (c: number): boolean => c === 0x0a || c === 0x0d;
const isIdStart = (c: number): boolean => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f;
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
const isIdChar = (c: number): boolean => isIdStart(c) || isDigit(c);

/** Tokens of one line, up to the first CR or LF (a `#` comment ends it too). */
export function lexLine(line: Buffer): Token[] {
  const out: Token[] = [];
  let i = 0;
  const n = line.length;
  while (i < n) {
    const c = line[i];
    if (isEol(c) || c === 0x23 /* # */) break;
    if (isSpace(c)) {
      i++;
      continue;
    }
    if (c === 0x27 || c === 0x22) {
      let j = i + 1;
      while (j < n && line[j] !== c && !isEol(line[j])) j++;
      if (j >= n || line[j] !== c) {
        out.push({ kind: 'error', msg: 'unterminated quoted string' });
        break;
      }
      const { value, nonAscii } = decodeValue(line.subarray(i + 1, j));
      out.push({ kind: 'str', value, quoted: true, nonAscii });
      i = j + 1;
      continue;
    }
    if (isIdStart(c)) {
      let j = i + 1;
      while (j < n && isIdChar(line[j])) j++;
      const word = line.toString('latin1', i, j);
      const up = word.toUpperCase();
      if (KEYWORD_SET.has(up)) out.push({ kind: 'kw', kw: up as Keyword });
      else out.push({ kind: 'str', value: word, quoted: false, nonAscii: false });
      i = j;
      continue;
    }
    if (isDigit(c) || ((c === 0x2b || c === 0x2d) && i + 1 < n && isDigit(line[i + 1]))) {
      let j = i + 1;
      while (j < n && isDigit(line[j])) j++;
      out.push({ kind: 'int', value: line.toString('latin1', i, j) });
      i = j;
      continue;
    }
    out.push({ kind: 'char', ch: String.fromCharCode(c) });
    i++;
  }
  return out;
}

/** Undo lex_encode on a quoted value's bytes. */
export function decodeValue(raw: Buffer): { value: string; nonAscii: boolean } {
  let value = '';
  let nonAscii = false;
  for (const b of raw) {
    if (b === 0xa7) value += "'";
    else if (b === 0xa2) value += '"';
    else {
      if (b >= 0x80) nonAscii = true;
      value += String.fromCharCode(b);
    }
  }
  return { value, nonAscii };
}

/** `'value'` with conman's high-bit quote trick, as wire bytes. */
export function encodeQuoted(value: string): Buffer {
  const body = Buffer.from(value, 'utf8');
  for (let i = 0; i < body.length; i++) {
    if (body[i] === 0x27) body[i] = 0xa7;
    else if (body[i] === 0x22) body[i] = 0xa2;
  }
  return Buffer.concat([Buffer.from("'"), body, Buffer.from("'")]);
}

/** ` KEY='value'`, as a request's or greeting's key travels */
export function keyQuoted(key: string, value: string): Buffer {
  return Buffer.concat([Buffer.from(` ${key}=`, 'latin1'), encodeQuoted(value)]);
}

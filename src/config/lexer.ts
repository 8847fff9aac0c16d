// Tokeniser for conman.conf. Follows the rules of conman.conf(5): `#`
// comments, single- or double-quoted strings without escapes that cannot
// span lines, backslash-newline continuation, CR / LF / CRLF line ends.
// One deliberate superset: an unquoted value is any run of characters up to
// whitespace, `=`, `#` or a quote (conman only takes identifiers and
// integers), so `port=7890` and `timestamp=1h` both come out as one word.

import { ConfigError, type Loc } from './types.js';

export type TokKind = 'word' | 'string' | 'eq' | 'eol' | 'eof';

export interface Token {
  kind: TokKind;
  /** the word, or a string's contents without its quotes */
  text: string;
  line: number;
  col: number;
}

const BLANK = new Set([' ', '\t', '\v', '\f']);
const WORD_END = new Set([' ', '\t', '\v', '\f', '\r', '\n', '=', '#', '"', "'"]);

/** Splits `text` into tokens; throws ConfigError on an unterminated quote. */
export function tokenize(text: string, file: string): Token[] {
  const toks: Token[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const at = (pos: number): Loc => ({ file, line, col: pos - lineStart + 1 });
  const push = (kind: TokKind, tokText: string, pos: number): void => {
    toks.push({ kind, text: tokText, line, col: pos - lineStart + 1 });
  };
  const newline = (next: number): void => {
    line++;
    lineStart = next;
  };

  while (i < text.length) {
    const c = text[i];
    if (BLANK.has(c)) {
      i++;
    } else if (c === '#') {
      while (i < text.length && text[i] !== '\n' && text[i] !== '\r') i++;
    } else if (c === '\r' || c === '\n') {
      push('eol', '\n', i);
      i += c === '\r' && text[i + 1] === '\n' ? 2 : 1;
      newline(i);
    } else if (c === '\\' && (text[i + 1] === '\n' || (text[i + 1] === '\r' && text[i + 2] === '\n'))) {
      // continuation: the directive goes on on the next line
      i += text[i + 1] === '\n' ? 2 : 3;
      newline(i);
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < text.length && text[j] !== c && text[j] !== '\n' && text[j] !== '\r') j++;
      if (text[j] !== c) {
        throw new ConfigError(at(i), `unterminated ${c === '"' ? 'double' : 'single'} quote (strings cannot span lines)`);
      }
      push('string', text.slice(i + 1, j), i);
      i = j + 1;
    } else if (c === '=') {
      push('eq', '=', i);
      i++;
    } else {
      let j = i + 1;
      while (j < text.length && !WORD_END.has(text[j]) && !isContinuation(text, j)) j++;
      push('word', text.slice(i, j), i);
      i = j;
    }
  }
  push('eof', '', i);
  return toks;
}

function isContinuation(text: string, j: number): boolean {
  return text[j] === '\\' && (text[j + 1] === '\n' || (text[j + 1] === '\r' && text[j + 2] === '\n'));
}

/** How a token reads in an error message. */
export function describeToken(t: Token): string {
  switch (t.kind) {
    case 'eol':
      return 'end of line';
    case 'eof':
      return 'end of file';
    case 'eq':
      return '"="';
    case 'string':
      return `string "${t.text}"`;
    default:
      return `"${t.text}"`;
  }
}

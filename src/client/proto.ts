// The client's half of the conman handshake: the HELLO greeting, the
// QUERY/MONITOR/CONNECT request (options in conman's order) and parsing of
// the OK / ERROR response line.

import { lexDecode, lexEncode, tokenize, type Token } from './lex.js';

export type Command = 'connect' | 'monitor' | 'query';

export interface RequestOptions {
  command: Command;
  quiet: boolean;
  regex: boolean;
  force: boolean;
  join: boolean;
  broadcast: boolean;
  consoles: string[];
}

const quoted = (key: string, value: string): Buffer =>
  Buffer.concat([Buffer.from(` ${key}='`, 'latin1'), lexEncode(value), Buffer.from("'", 'latin1')]);

/** `HELLO USER='u'[ TTY='t']\n` */
export function greetingLine(user: string, tty?: string): Buffer {
  const parts: Buffer[] = [Buffer.from('HELLO', 'latin1'), quoted('USER', user)];
  if (tty) parts.push(quoted('TTY', tty));
  parts.push(Buffer.from('\n', 'latin1'));
  return Buffer.concat(parts);
}

/** The request line: QUIET, REGEX, then FORCE, JOIN, BROADCAST (CONNECT only), then CONSOLE per pattern. */
export function requestLine(req: RequestOptions): Buffer {
  const words = [req.command.toUpperCase()];
  if (req.quiet) words.push('OPTION=QUIET');
  if (req.regex) words.push('OPTION=REGEX');
  if (req.command === 'connect') {
    if (req.force) words.push('OPTION=FORCE');
    if (req.join) words.push('OPTION=JOIN');
    if (req.broadcast) words.push('OPTION=BROADCAST');
  }
  const parts: Buffer[] = [Buffer.from(words.join(' '), 'latin1')];
  for (const c of req.consoles) parts.push(quoted('CONSOLE', c));
  parts.push(Buffer.from('\n', 'latin1'));
  return Buffer.concat(parts);
}

export type Response =
  | { ok: true; consoles: string[]; reset: boolean }
  | { ok: false; code: number; message?: string } // code 0: neither OK nor ERROR
  ;

/** Parse a response line the way conman's recv_rsp does: unknown tokens are skipped. */
export function parseResponse(line: Buffer): Response {
  const toks = tokenize(line);
  let i = 0;
  const next = (): Token => toks[Math.min(i++, toks.length - 1)];
  for (;;) {
    const t = next();
    if (t.kind === 'eol' || t.kind === 'eof') return { ok: false, code: 0 };
    if (t.kind !== 'kw') continue;
    if (t.word === 'OK') return parseOk(next);
    if (t.word === 'ERROR') return parseError(next);
  }
}

const isKw = (t: Token, word: string): boolean => t.kind === 'kw' && t.word === word;
const isEq = (t: Token): boolean => t.kind === 'char' && t.ch === '=';

function parseOk(next: () => Token): Response {
  const consoles: string[] = [];
  let reset = false;
  for (;;) {
    const t = next();
    if (t.kind === 'eol' || t.kind === 'eof') return { ok: true, consoles, reset };
    if (isKw(t, 'CONSOLE')) {
      if (!isEq(next())) continue;
      const v = next();
      if (v.kind === 'str') consoles.push(lexDecode(v.bytes));
    } else if (isKw(t, 'OPTION')) {
      if (isEq(next()) && isKw(next(), 'RESET')) reset = true;
    }
  }
}

function parseError(next: () => Token): Response {
  let code = 0;
  let message: string | undefined;
  for (;;) {
    const t = next();
    if (t.kind === 'eol' || t.kind === 'eof') return { ok: false, code, message };
    if (isKw(t, 'CODE')) {
      if (!isEq(next())) continue;
      const v = next();
      if (v.kind === 'int') code = v.value;
    } else if (isKw(t, 'MESSAGE')) {
      if (!isEq(next())) continue;
      const v = next();
      if (v.kind === 'str' && v.bytes.length) message = lexDecode(v.bytes);
    }
  }
}

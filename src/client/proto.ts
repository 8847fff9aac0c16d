// The client's half of the conman handshake: the HELLO greeting, the
// QUERY/MONITOR/CONNECT request (options in conman's order) and parsing of
// the OK / ERROR response line. conch extensions: PASSWORD in the greeting
// (the caller sends it over TLS only) and OPTION=STATUS on a verbose query.

import { keyQuoted, lexLine, type Token } from '../protocol/lex.js';

export type Command = 'connect' | 'monitor' | 'query' | 'search' | 'history';

export interface RequestOptions {
  command: Command;
  quiet: boolean;
  regex: boolean;
  force: boolean;
  join: boolean;
  broadcast: boolean;
  consoles: string[];
  /** -v: with QUERY, ask for each console's state */
  verbose?: boolean;
}


/**
 * `HELLO USER='u'[ TTY='t'][ PASSWORD='base64']\n`: the password travels as
 * base64 of its UTF-8, because conman's quoting cannot carry every byte
 * (0xA2 and 0xA7 come back as quotes).
 */
export function greetingLine(user: string, tty?: string, password?: string): Buffer {
  const parts: Buffer[] = [Buffer.from('HELLO', 'latin1'), keyQuoted('USER', user)];
  if (tty) parts.push(keyQuoted('TTY', tty));
  if (password !== undefined) parts.push(keyQuoted('PASSWORD', Buffer.from(password, 'utf8').toString('base64')));
  parts.push(Buffer.from('\n', 'latin1'));
  return Buffer.concat(parts);
}

/** The request line: QUIET, REGEX, then STATUS (QUERY) or FORCE, JOIN, BROADCAST (CONNECT), then CONSOLE per pattern. */
export function requestLine(req: RequestOptions): Buffer {
  const words = [req.command.toUpperCase()];
  if (req.quiet) words.push('OPTION=QUIET');
  if (req.regex) words.push('OPTION=REGEX');
  if (req.command === 'query' && req.verbose) words.push('OPTION=STATUS');
  if (req.command === 'connect') {
    if (req.force) words.push('OPTION=FORCE');
    if (req.join) words.push('OPTION=JOIN');
    if (req.broadcast) words.push('OPTION=BROADCAST');
  }
  const parts: Buffer[] = [Buffer.from(words.join(' '), 'latin1')];
  for (const c of req.consoles) parts.push(keyQuoted('CONSOLE', c));
  parts.push(Buffer.from('\n', 'latin1'));
  return Buffer.concat(parts);
}

/**
 * conch's SEARCH request (docs/search.md): `SEARCH RE='re'[ SINCE='t'][
 * UNTIL='t'][ TAIL=n][ LIMIT=n][ OPTION=FOLLOW][ OPTION=REGEX] CONSOLE='c'…`.
 */
export function searchLine(req: RequestOptions & { search: { re: string; since?: string; until?: string; tail?: string; limit?: string; follow: boolean } }): Buffer {
  const s = req.search;
  const parts: Buffer[] = [Buffer.from('SEARCH', 'latin1'), keyQuoted('RE', s.re)];
  if (s.since !== undefined) parts.push(keyQuoted('SINCE', s.since));
  if (s.until !== undefined) parts.push(keyQuoted('UNTIL', s.until));
  if (s.tail !== undefined) parts.push(keyQuoted('TAIL', s.tail));
  if (s.limit !== undefined) parts.push(keyQuoted('LIMIT', s.limit));
  const words: string[] = [];
  if (s.follow) words.push('OPTION=FOLLOW');
  if (req.regex) words.push('OPTION=REGEX');
  if (words.length) parts.push(Buffer.from(` ${words.join(' ')}`, 'latin1'));
  for (const c of req.consoles) parts.push(keyQuoted('CONSOLE', c));
  parts.push(Buffer.from('\n', 'latin1'));
  return Buffer.concat(parts);
}

export type Response =
  | { ok: true; consoles: string[]; reset: boolean }
  | { ok: false; code: number; message?: string } // code 0: neither OK nor ERROR
  ;

/** Parse a response line the way conman's recv_rsp does: unknown tokens are skipped. */
export function parseResponse(line: Buffer): Response {
  const toks: Tok[] = [...lexLine(line), END];
  let i = 0;
  const next = (): Tok => toks[Math.min(i++, toks.length - 1)]!;
  for (;;) {
    const t = next();
    if (t.kind === 'end') return { ok: false, code: 0 };
    if (t.kind !== 'kw') continue;
    if (t.kw === 'OK') return parseOk(next);
    if (t.kw === 'ERROR') return parseError(next);
  }
}

/** the lexer's tokens plus an end-of-line sentinel */
type Tok = Token | { kind: 'end' };
const END: Tok = { kind: 'end' };

const isKw = (t: Tok, word: string): boolean => t.kind === 'kw' && t.kw === word;
const isEq = (t: Tok): boolean => t.kind === 'char' && t.ch === '=';

function parseOk(next: () => Tok): Response {
  const consoles: string[] = [];
  let reset = false;
  for (;;) {
    const t = next();
    if (t.kind === 'end') return { ok: true, consoles, reset };
    if (isKw(t, 'CONSOLE')) {
      if (!isEq(next())) continue;
      const v = next();
      if (v.kind === 'str') consoles.push(v.value);
    } else if (isKw(t, 'OPTION')) {
      if (isEq(next()) && isKw(next(), 'RESET')) reset = true;
    }
  }
}

function parseError(next: () => Tok): Response {
  let code = 0;
  let message: string | undefined;
  for (;;) {
    const t = next();
    if (t.kind === 'end') return { ok: false, code, message };
    if (isKw(t, 'CODE')) {
      if (!isEq(next())) continue;
      const v = next();
      if (v.kind === 'int') code = Number(v.value);
    } else if (isKw(t, 'MESSAGE')) {
      if (!isEq(next())) continue;
      const v = next();
      if (v.kind === 'str' && v.value.length) message = v.value;
    }
  }
}

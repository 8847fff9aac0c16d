// The two handshake lines a conman client sends, parsed as leniently as
// conmand does (unknown tokens and KEY=value pairs are ignored, later USER/TTY
// override earlier ones, CONSOLE values accumulate), but with clear errors
// where conmand would silently mangle or ignore: unterminated quotes and
// non-ASCII console patterns.

import { keyQuoted, lexLine, type Token } from './lex.js';
import { MSG } from './messages.js';
import type { QueryText } from '../search/query.js';

export interface Greeting {
  user: string;
  tty: string | null;
  /** conch addition, accepted over TLS only: PASSWORD='base64 of the password's UTF-8' */
  password: Buffer | null;
  /** conch cluster: VIA='node', a greeting a peer node sent on behalf of its client (src/cluster/proxy.ts) */
  via: string | null;
}

/** SEARCH (docs/search.md) and HISTORY (docs/cluster.md): conch extensions; conman clients never send them */
export type Command = 'QUERY' | 'MONITOR' | 'CONNECT' | 'SEARCH' | 'HISTORY';

/**
 * HISTORY: one console's log as the nodes of a cluster ask each other for
 * it (src/cluster/history.ts). `INDEX` (the default): the holding periods
 * in the range the keys choose, as the log API chooses it; `BYTES`: the
 * bytes [FROM, TO) of the file whose first bytes hash to FILE; `LOG`: the
 * console's history itself, gathered from every node that held it and cut
 * to the keys (`conch --log`). Values are the texts as sent; the server
 * checks them.
 */
export interface HistoryText {
  form: 'index' | 'bytes' | 'log';
  tail: string | null;
  lines: string | null;
  since: string | null;
  until: string | null;
  from: string | null;
  to: string | null;
  file: string | null;
}

export interface Request {
  command: Command;
  patterns: string[];
  quiet: boolean;
  regex: boolean;
  force: boolean;
  join: boolean;
  broadcast: boolean;
  /** conch addition (QUERY): a status line per console after the OK line */
  status: boolean;
  /** conch addition (SEARCH): what to search for */
  search: QueryText | null;
  /** conch addition (HISTORY): which part of the console's log */
  history: HistoryText | null;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

/** A name for notices and logs: no control characters, 7-bit only. */
function clean(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x1f\x7f-\uffff]/g, '?');
}

/** `KEY = STR` at tokens[i]; the string, or null. */
function valueAt(t: Token[], i: number): (Token & { kind: 'str' }) | null {
  const eq = t[i + 1];
  const v = t[i + 2];
  if (eq?.kind !== 'char' || eq.ch !== '=' || v?.kind !== 'str' || v.value === '') return null;
  return v;
}

/** `HELLO USER='u' [TTY='t']` */
export function parseGreeting(line: Buffer): Parsed<Greeting> {
  const t = lexLine(line);
  if (t.some((x) => x.kind === 'error')) return { ok: false, error: MSG.unterminated('greeting') };
  let user: string | null = null;
  let tty: string | null = null;
  let password: Buffer | null = null;
  let via: string | null = null;
  const hello = t.findIndex((x) => x.kind === 'kw' && x.kw === 'HELLO');
  if (hello >= 0) {
    for (let i = hello + 1; i < t.length; i++) {
      const x = t[i];
      if (isWord(x, 'VIA')) via = valueAt(t, i)?.value ?? via;
      if (x.kind !== 'kw' || (x.kw !== 'USER' && x.kw !== 'TTY' && x.kw !== 'PASSWORD')) continue;
      const v = valueAt(t, i);
      if (!v) continue;
      if (x.kw === 'USER') user = clean(v.value);
      else if (x.kw === 'TTY') tty = clean(v.value);
      // base64 of the UTF-8 bytes: conman's quoting cannot carry every byte (0xA2, 0xA7)
      else password = Buffer.from(v.value, 'base64');
      i += 2;
    }
  }
  if (user === null) return { ok: false, error: MSG.noUser };
  return { ok: true, value: { user, tty, password, via } };
}

const COMMANDS = new Set(['QUERY', 'MONITOR', 'CONNECT']);

/**
 * SEARCH and its keys are bare words, not lexer keywords: conman's lexing of
 * its own requests (a console pattern written without quotes) stays as it is.
 */
const isWord = (x: Token | undefined, w: string): boolean => x?.kind === 'str' && !x.quoted && x.value.toUpperCase() === w;
const SEARCH_KEYS = new Set(['RE', 'SINCE', 'UNTIL', 'TAIL', 'LIMIT']);
const HISTORY_KEYS = new Set(['TAIL', 'LINES', 'SINCE', 'UNTIL', 'FROM', 'TO', 'FILE']);

/** `KEY=value` at tokens[i] of a SEARCH or HISTORY: a quoted or bare string, or a number. */
function searchValue(t: Token[], i: number): Parsed<string> | null {
  const eq = t[i + 1];
  const v = t[i + 2];
  if (eq?.kind !== 'char' || eq.ch !== '=') return null;
  if (v?.kind === 'int') return { ok: true, value: v.value };
  if (v?.kind !== 'str') return null;
  if (v.nonAscii) return { ok: false, error: 'Invalid search: its values are 7-bit ASCII only' };
  return { ok: true, value: v.value };
}

/** `QUERY|MONITOR|CONNECT [OPTION=x]... [CONSOLE='pattern']...`, or conch's `SEARCH RE='re' …` and `HISTORY [INDEX|BYTES] …` */
export function parseRequest(line: Buffer): Parsed<Request> {
  const t = lexLine(line);
  if (t.some((x) => x.kind === 'error')) return { ok: false, error: MSG.unterminated('request') };
  const at = t.findIndex((x) => (x.kind === 'kw' && COMMANDS.has(x.kw)) || isWord(x, 'SEARCH') || isWord(x, 'HISTORY'));
  if (at < 0) return { ok: false, error: MSG.noCommand };
  const first = t[at]!;
  const history = isWord(first, 'HISTORY');
  const search = first.kind !== 'kw' && !history;
  const req: Request = {
    command: search ? 'SEARCH' : history ? 'HISTORY' : (first as { kw: Command }).kw,
    patterns: [],
    quiet: false,
    regex: false,
    force: false,
    join: false,
    broadcast: false,
    status: false,
    search: search ? { re: null, since: null, until: null, tail: null, limit: null, follow: false } : null,
    history: history ? { form: 'index', tail: null, lines: null, since: null, until: null, from: null, to: null, file: null } : null,
  };
  for (let i = at + 1; i < t.length; i++) {
    const x = t[i];
    if (req.history && x.kind === 'str' && !x.quoted) {
      const w = x.value.toUpperCase();
      if (w === 'BYTES' || w === 'INDEX' || w === 'LOG') {
        req.history.form = w === 'BYTES' ? 'bytes' : w === 'LOG' ? 'log' : 'index';
        continue;
      }
      if (HISTORY_KEYS.has(w)) {
        const v = searchValue(t, i);
        if (!v) continue;
        if (!v.ok) return v;
        req.history[w.toLowerCase() as 'tail' | 'lines' | 'since' | 'until' | 'from' | 'to' | 'file'] = v.value;
        i += 2;
        continue;
      }
    }
    if (req.search && x.kind === 'str' && !x.quoted && SEARCH_KEYS.has(x.value.toUpperCase())) {
      const v = searchValue(t, i);
      if (!v) continue;
      if (!v.ok) return v;
      const key = x.value.toLowerCase() as 're' | 'since' | 'until' | 'tail' | 'limit';
      req.search[key] = v.value;
      i += 2;
      continue;
    }
    if (req.search && x.kind === 'kw' && x.kw === 'OPTION' && isWord(t[i + 2], 'FOLLOW') && t[i + 1]?.kind === 'char') {
      req.search.follow = true;
      i += 2;
      continue;
    }
    if (x.kind !== 'kw') continue;
    if (x.kw === 'CONSOLE') {
      const v = valueAt(t, i);
      if (!v) continue;
      if (v.nonAscii) return { ok: false, error: MSG.nonAsciiPattern(v.value) };
      req.patterns.push(v.value);
      i += 2;
    } else if (x.kw === 'OPTION') {
      const eq = t[i + 1];
      const opt = t[i + 2];
      if (eq?.kind !== 'char' || eq.ch !== '=' || opt?.kind !== 'kw') continue;
      if (opt.kw === 'BROADCAST') req.broadcast = true;
      else if (opt.kw === 'FORCE') req.force = true;
      else if (opt.kw === 'JOIN') req.join = true;
      else if (opt.kw === 'QUIET') req.quiet = true;
      else if (opt.kw === 'REGEX') req.regex = true;
      else if (opt.kw === 'STATUS') req.status = true;
      i += 2;
    }
  }
  return { ok: true, value: req };
}

/** `HISTORY INDEX|BYTES|LOG KEY='v'… CONSOLE='name'`, as a node (or `conch --log`) sends it; keys without a value are left out */
export function historyLine(form: HistoryText['form'], console: string, keys: Record<string, string | number | null | undefined>): Buffer {
  const parts: Buffer[] = [Buffer.from(`HISTORY ${form.toUpperCase()}`, 'latin1')];
  for (const [k, v] of Object.entries(keys)) if (v !== null && v !== undefined) parts.push(keyQuoted(k, String(v)));
  parts.push(keyQuoted('CONSOLE', console), Buffer.from('\n', 'latin1'));
  return Buffer.concat(parts);
}

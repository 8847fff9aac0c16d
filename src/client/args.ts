// Command line and environment, with conman's semantics: GNU-style getopt
// over "bd:e:fF:hjl:LmqQrvV" (options may follow console names), consoles
// split on commas and spaces, CONMAN_* then CONCH_* environment, -f/-j exclusive,
// -m drops -b/-f/-j, no consoles and no -q shows the help. conch's own long
// options (--tls, --ca, --cert, --key, --user, --grep with --since,
// --until, --tail, --limit, --follow, and --log with --lines, --tail,
// --since, --until) mix freely with the short ones: long only, so no
// console name is ever taken for a sub-command.

import * as fs from 'node:fs';
import { FatalError, sysText } from './errors.js';
import type { Command } from './proto.js';
import { checkSearch, type SearchOptions } from './search.js';
import { checkHistory, type HistoryOptions } from './history.js';

export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 7890;
export const DEFAULT_TLS_PORT = 7891;
export const DEFAULT_ESCAPE = 0x26; // '&'

export interface ClientOptions {
  host: string;
  port: number;
  escape: number; // one byte
  command: Command;
  broadcast: boolean;
  force: boolean;
  join: boolean;
  quiet: boolean;
  regex: boolean;
  verbose: boolean;
  consoles: string[];
  logFile?: string;
  tls: boolean;
  /** PEM files: the only CAs to trust (else the system's), a client certificate and its key */
  ca?: string;
  cert?: string;
  key?: string;
  /** the user to log in as (--user, CONCH_USER); else the local login name */
  user?: string;
  /** --grep: search the logs of the consoles instead of connecting */
  search?: SearchOptions;
  /** --log: print a console's log instead of connecting */
  history?: HistoryOptions;
}

export type Parsed =
  | { action: 'run'; opts: ClientOptions }
  | { action: 'help'; opts: ClientOptions }
  | { action: 'version' }
  | { action: 'license' };

const WITH_ARG = new Set(['d', 'e', 'F', 'l']);
const FLAGS = new Set(['b', 'f', 'h', 'j', 'L', 'm', 'q', 'Q', 'r', 'v', 'V']);
const LONG_WITH_ARG = new Set(['ca', 'cert', 'key', 'user', 'grep', 'since', 'until', 'tail', 'limit', 'lines']);
const LONG_FLAGS = new Set(['tls', 'follow', 'log']);

/**
 * Split `host[:port]`, `[v6addr]:port` or a bare IPv6 address. A port that is
 * not a positive number is ignored, as conman's atoi() check does.
 */
export function parseHostSpec(spec: string): { host?: string; port?: number } {
  let host = spec;
  let portText: string | undefined;
  const v6 = /^\[([^\]]*)\](?::(.*))?$/.exec(spec);
  if (v6) {
    host = v6[1];
    portText = v6[2];
  } else if ((spec.match(/:/g) ?? []).length === 1) {
    const i = spec.indexOf(':');
    host = spec.slice(0, i);
    portText = spec.slice(i + 1);
  }
  const out: { host?: string; port?: number } = {};
  if (host) out.host = host;
  if (portText !== undefined) {
    const n = parseInt(portText, 10); // atoi(): leading digits count
    if (n > 0 && n < 65536) out.port = n;
  }
  return out;
}

/** `host:port`, bracketing IPv6 literals. */
export function hostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** Returns whether a port was set (then --tls keeps it). */
function applyHost(opts: ClientOptions, spec: string): boolean {
  const { host, port } = parseHostSpec(spec);
  if (host) opts.host = host;
  if (port) opts.port = port;
  return port !== undefined;
}

function applyPort(opts: ClientOptions, text: string): boolean {
  const n = parseInt(text, 10);
  if (n > 0 && n < 65536) opts.port = n;
  return n > 0 && n < 65536;
}

/** CONCH_TLS: 1/0 and the usual spellings; anything else is a mistake worth saying. */
function envFlag(name: string, text: string): boolean {
  const t = text.trim().toLowerCase();
  if (['1', 'yes', 'true', 'on'].includes(t)) return true;
  if (['0', 'no', 'false', 'off', ''].includes(t)) return false;
  throw new FatalError(`${name} must be 1 or 0, not "${text}"`);
}

const firstByte = (s: string): number => Buffer.from(s, 'utf8')[0] ?? 0;

/** Environment: CONMAN_* first, CONCH_* override. Returns whether a port was set. */
export function applyEnv(opts: ClientOptions, env: NodeJS.ProcessEnv): boolean {
  let portSet = false;
  for (const prefix of ['CONMAN', 'CONCH']) {
    const host = env[`${prefix}_HOST`];
    if (host && applyHost(opts, host)) portSet = true;
    const port = env[`${prefix}_PORT`];
    if (port && applyPort(opts, port)) portSet = true;
    const esc = env[`${prefix}_ESCAPE`];
    if (esc) opts.escape = firstByte(esc);
  }
  if (env.CONCH_TLS !== undefined) opts.tls = envFlag('CONCH_TLS', env.CONCH_TLS);
  if (env.CONCH_CA) opts.ca = env.CONCH_CA;
  if (env.CONCH_CERT) opts.cert = env.CONCH_CERT;
  if (env.CONCH_KEY) opts.key = env.CONCH_KEY;
  if (env.CONCH_USER) opts.user = env.CONCH_USER;
  return portSet;
}

/** One pattern per line; blank lines and `#` comments skipped; whitespace trimmed. */
function readConsoleFile(file: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new FatalError(`Unable to open "${file}": ${sysText(e)}`);
  }
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

export function defaultOptions(): ClientOptions {
  return {
    host: DEFAULT_HOST,
    port: DEFAULT_PORT,
    escape: DEFAULT_ESCAPE,
    command: 'connect',
    broadcast: false,
    force: false,
    join: false,
    quiet: false,
    regex: false,
    verbose: false,
    consoles: [],
    tls: false,
  };
}

/** `--name`, `--name=value` or `--name value` at argv[i]; returns the index of the last word used. */
function longOption(argv: string[], i: number, opts: ClientOptions, given: Set<string>): number {
  const word = argv[i].slice(2);
  const eq = word.indexOf('=');
  const name = eq < 0 ? word : word.slice(0, eq);
  let value = eq < 0 ? undefined : word.slice(eq + 1);
  if (LONG_FLAGS.has(name)) {
    if (value !== undefined) throw new FatalError(`CMDLINE: option "--${name}" takes no argument`);
  } else if (LONG_WITH_ARG.has(name)) {
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new FatalError(`CMDLINE: option "--${name}" requires an argument`);
      value = argv[++i];
    }
  } else {
    throw new FatalError(`CMDLINE: invalid option "--${name}"`);
  }
  given.add(name);
  switch (name) {
    case 'tls': opts.tls = true; break;
    case 'ca': opts.ca = value; break;
    case 'cert': opts.cert = value; break;
    case 'key': opts.key = value; break;
    case 'user': opts.user = value; break;
    case 'grep': (opts.search ??= { re: '', follow: false }).re = value!; break;
    case 'since': case 'until': case 'tail': case 'limit': (opts.search ??= { re: '', follow: false })[name] = value; break;
    case 'follow': (opts.search ??= { re: '', follow: false }).follow = true; break;
    case 'lines': (opts.history ??= {}).lines = value; break;
  }
  return i;
}

/** TLS files only make sense with TLS; a certificate needs its key. */
function checkTls(opts: ClientOptions, given: Set<string>): void {
  if (!opts.tls) {
    const stray = ['ca', 'cert', 'key'].find((n) => given.has(n));
    if (stray) throw new FatalError(`CMDLINE: option "--${stray}" needs --tls`);
    return;
  }
  if (Boolean(opts.cert) !== Boolean(opts.key)) {
    throw new FatalError('A client certificate needs both --cert and --key (CONCH_CERT and CONCH_KEY)');
  }
}

export function parseArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): Parsed {
  const opts = defaultOptions();
  let portSet = applyEnv(opts, env);
  const fromFiles: string[] = [];
  const positional: string[] = [];
  const givenLong = new Set<string>();
  let help = false;

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positional.push(arg);
      continue;
    }
    if (arg.startsWith('--')) {
      i = longOption(argv, i, opts, givenLong);
      continue;
    }
    for (let k = 1; k < arg.length; k++) {
      const c = arg[k];
      let value: string | undefined;
      if (WITH_ARG.has(c)) {
        if (k + 1 < arg.length) value = arg.slice(k + 1);
        else if (i + 1 < argv.length) value = argv[++i];
        else throw new FatalError(`CMDLINE: invalid option "${c}"`);
        k = arg.length;
      } else if (!FLAGS.has(c)) {
        throw new FatalError(`CMDLINE: invalid option "${c}"`);
      }
      switch (c) {
        case 'b': opts.broadcast = true; break;
        case 'd': if (applyHost(opts, value!)) portSet = true; break;
        case 'e': opts.escape = firstByte(value!); break;
        case 'f': opts.force = true; opts.join = false; break;
        case 'F': fromFiles.push(...readConsoleFile(value!)); break;
        case 'h': help = true; break;
        case 'j': opts.join = true; opts.force = false; break;
        case 'l': opts.logFile = value; break;
        case 'L': return { action: 'license' };
        case 'm': opts.command = 'monitor'; break;
        case 'q': opts.command = 'query'; break;
        case 'Q': opts.quiet = true; break;
        case 'r': opts.regex = true; break;
        case 'v': opts.verbose = true; break;
        case 'V': return { action: 'version' };
      }
    }
  }

  // TLS has its own default port; a port given anywhere still wins.
  if (opts.tls && !portSet) opts.port = DEFAULT_TLS_PORT;
  // R/O sessions cannot broadcast, force or join.
  if (opts.command === 'monitor') {
    opts.broadcast = opts.force = opts.join = false;
  }
  opts.consoles = [...fromFiles, ...positional.flatMap((a) => a.split(/[\s,]+/)).filter((s) => s !== '')];
  checkHistory(opts, givenLong);
  if (opts.search && !givenLong.has('grep')) opts.search = undefined;
  checkSearch(opts, givenLong);
  if (help || (opts.command !== 'query' && opts.command !== 'search' && opts.command !== 'history' && opts.consoles.length === 0)) return { action: 'help', opts };
  checkTls(opts, givenLong);
  return { action: 'run', opts };
}

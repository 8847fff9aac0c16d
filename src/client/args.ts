// Command line and environment, with conman's semantics: GNU-style getopt
// over "bd:e:fF:hjl:LmqQrvV" (options may follow console names), consoles
// split on commas and spaces, CONMAN_* then CONCH_* environment, -f/-j exclusive,
// -m drops -b/-f/-j, no consoles and no -q shows the help.

import * as fs from 'node:fs';
import { FatalError, sysText } from './errors.js';
import type { Command } from './proto.js';

export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 7890;
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
}

export type Parsed =
  | { action: 'run'; opts: ClientOptions }
  | { action: 'help'; opts: ClientOptions }
  | { action: 'version' }
  | { action: 'license' };

const WITH_ARG = new Set(['d', 'e', 'F', 'l']);
const FLAGS = new Set(['b', 'f', 'h', 'j', 'L', 'm', 'q', 'Q', 'r', 'v', 'V']);

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

function applyHost(opts: ClientOptions, spec: string): void {
  const { host, port } = parseHostSpec(spec);
  if (host) opts.host = host;
  if (port) opts.port = port;
}

function applyPort(opts: ClientOptions, text: string): void {
  const n = parseInt(text, 10);
  if (n > 0 && n < 65536) opts.port = n;
}

const firstByte = (s: string): number => Buffer.from(s, 'utf8')[0] ?? 0;

/** Environment: CONMAN_* first, CONCH_* override. */
export function applyEnv(opts: ClientOptions, env: NodeJS.ProcessEnv): void {
  for (const prefix of ['CONMAN', 'CONCH']) {
    const host = env[`${prefix}_HOST`];
    if (host) applyHost(opts, host);
    const port = env[`${prefix}_PORT`];
    if (port) applyPort(opts, port);
    const esc = env[`${prefix}_ESCAPE`];
    if (esc) opts.escape = firstByte(esc);
  }
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
  };
}

export function parseArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): Parsed {
  const opts = defaultOptions();
  applyEnv(opts, env);
  const fromFiles: string[] = [];
  const positional: string[] = [];
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
        case 'd': applyHost(opts, value!); break;
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

  // R/O sessions cannot broadcast, force or join.
  if (opts.command === 'monitor') {
    opts.broadcast = opts.force = opts.join = false;
  }
  opts.consoles = [...fromFiles, ...positional.flatMap((a) => a.split(/[\s,]+/)).filter((s) => s !== '')];
  if (help || (opts.command !== 'query' && opts.consoles.length === 0)) return { action: 'help', opts };
  return { action: 'run', opts };
}

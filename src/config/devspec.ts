// Turns a CONSOLE dev= string into a DevSpec. Detection order (conch):
// unix:<path>, ipmi:<host>[:port], ssh://[user@]<host>[:port], test:,
// <host>:<port>, character device
// (or a not-yet-present /dev/... path), else an executable with arguments.

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { cloneSsh, defaultSshOpts, OptError, resolveTestOpts, type TestOptsSpec } from './opts.js';
import type { DevSpec, IpmiOpts, SerOpts, SshOpts } from './types.js';

export interface DevContext {
  /** console name, substituted for %N */
  name: string;
  /** base for relative paths */
  cwd: string;
  /** SERVER execpath directories */
  execpath: string[];
  /** false: do not insist that a process console's program exists */
  execpathCheck: boolean;
  serOpts: SerOpts;
  testOpts: TestOptsSpec;
  ipmiOpts: IpmiOpts;
  /** absent: the defaults */
  sshOpts?: SshOpts;
}

export const IPMI_DEFAULT_PORT = 623;
export const SSH_DEFAULT_PORT = 22;
/** sun_path is 108 bytes including the terminating NUL. */
const MAX_UNIX_PATH = 107;

/**
 * Splits a dev string into words as conman does: whitespace separates words;
 * a word that starts with a quote runs to the same quote followed by
 * whitespace or the end. %N becomes the console name except in '…' words.
 */
export function splitDev(dev: string, name: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < dev.length) {
    if (/\s/.test(dev[i])) {
      i++;
      continue;
    }
    const q = dev[i];
    let word: string;
    if (q === '"' || q === "'") {
      let j = i + 1;
      while (j < dev.length && !(dev[j] === q && (j + 1 === dev.length || /\s/.test(dev[j + 1])))) j++;
      if (j >= dev.length) throw new OptError(`unterminated ${q} quote in dev`, i);
      word = dev.slice(i + 1, j);
      i = j + 1;
    } else {
      let j = i;
      while (j < dev.length && !/\s/.test(dev[j])) j++;
      word = dev.slice(i, j);
      i = j;
    }
    words.push(q === "'" ? word : word.split('%N').join(name));
  }
  return words;
}

function parsePort(s: string, what: string, offset: number): number {
  const port = Number(s);
  if (!/^\d+$/.test(s) || port < 1 || port > 65535) {
    throw new OptError(`${what} port must be 1..65535, got "${s}"`, offset);
  }
  return port;
}

/** "host", "host:port", "[v6]", "[v6]:port" or a bare IPv6 address. */
function parseIpmiHost(rest: string, offset: number): { host: string; port: number } {
  const hp = parseHostPort(rest, offset, 'IPMI', IPMI_DEFAULT_PORT);
  if (hp) return hp;
  throw new OptError(`bad IPMI host "${rest}"; write ipmi:host, ipmi:host:port or ipmi:[v6addr]:port`, offset);
}

/** "host", "host:port", "[v6]", "[v6]:port" or a bare IPv6 address; null if it is none of these */
function parseHostPort(rest: string, offset: number, what: string, defaultPort: number): { host: string; port: number } | null {
  const br = /^\[([^\]]+)\](?::(.*))?$/.exec(rest);
  if (br) {
    if (!net.isIPv6(br[1])) throw new OptError(`"${br[1]}" is not an IPv6 address`, offset + 1);
    return { host: br[1], port: br[2] === undefined ? defaultPort : parsePort(br[2], what, offset) };
  }
  const colons = rest.split(':').length - 1;
  if (colons === 0) return { host: rest, port: defaultPort };
  if (colons === 1) {
    const [host, port] = rest.split(':');
    if (!host) throw new OptError(`${what.toLowerCase()}: needs a host name before the port`, offset);
    return { host, port: parsePort(port, what, offset + host.length + 1) };
  }
  if (net.isIPv6(rest)) return { host: rest, port: defaultPort };
  return null;
}

/** "ssh://[user@]host[:port]" (IPv6 as [addr]) with its options; the user written here wins over sshopts user= */
function parseSsh(word: string, ctx: DevContext): DevSpec {
  const rest = word.slice('ssh://'.length).replace(/\/$/, '');
  if (!rest) throw new OptError('ssh:// needs a host name or address');
  const at = rest.lastIndexOf('@');
  const user = at >= 0 ? rest.slice(0, at) : '';
  if (at >= 0 && (user === '' || /[\s:]/.test(user))) throw new OptError(`bad user name "${user}" in ssh://`, 6);
  const hostPart = rest.slice(at + 1);
  if (!hostPart || /[\s/@]/.test(hostPart)) throw new OptError(`bad SSH host "${hostPart}"`, 6 + at + 1);
  const hp = parseHostPort(hostPart, 6 + at + 1, 'SSH', SSH_DEFAULT_PORT);
  if (!hp || hp.host === '') throw new OptError(`bad SSH host "${hostPart}"; write ssh://[user@]host[:port] or ssh://[user@][v6addr][:port]`, 6 + at + 1);
  const opts = cloneSsh(ctx.sshOpts ?? defaultSshOpts());
  if (user) opts.user = user;
  if (opts.key !== null) opts.key = path.resolve(ctx.cwd, opts.key);
  return { type: 'ssh', host: hp.host, port: hp.port, opts };
}

/** host:port or [v6]:port with an all-digit port, else null. */
function telnetTarget(word: string): { host: string; port: string } | null {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(word) ?? /^([^:/[\]]+):(\d+)$/.exec(word);
  return m ? { host: m[1], port: m[2] } : null;
}

function isCharDevice(p: string): boolean | null {
  try {
    return fs.statSync(p).isCharacterDevice();
  } catch {
    return null; // does not exist (or cannot be looked at)
  }
}

function isExecutableFile(p: string): 'ok' | 'missing' | 'notfile' | 'noexec' {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch {
    return 'missing';
  }
  if (!st.isFile()) return 'notfile';
  try {
    fs.accessSync(p, fs.constants.X_OK);
  } catch {
    return 'noexec';
  }
  return 'ok';
}

function resolveProgram(prog: string, ctx: DevContext): string {
  if (prog.includes('/')) {
    const abs = path.resolve(ctx.cwd, prog);
    if (!ctx.execpathCheck) return abs;
    const st = isExecutableFile(abs);
    if (st === 'ok') return abs;
    const why = st === 'missing' ? 'does not exist' : st === 'notfile' ? 'is not a regular file' : 'is not executable';
    throw new OptError(`program "${abs}" ${why}`);
  }
  for (const dir of ctx.execpath) {
    const cand = path.resolve(ctx.cwd, dir, prog);
    if (isExecutableFile(cand) === 'ok') return cand;
  }
  if (!ctx.execpathCheck) return prog;
  const where = ctx.execpath.length ? `server execpath "${ctx.execpath.join(':')}"` : 'server execpath (which is not set)';
  throw new OptError(
    `"${prog}" is not a unix:, ipmi:, test: or host:port device, nor a program found in ${where}; ` +
      'give a path with a "/" or set server execpath',
  );
}

/** Parses dev= for one console; throws OptError (offset into `dev`) when it cannot. */
export function parseDev(dev: string, ctx: DevContext): DevSpec {
  const words = splitDev(dev, ctx.name);
  if (words.length === 0) throw new OptError('dev is empty');
  const first = words[0];
  const single = (type: string): void => {
    if (words.length > 1) throw new OptError(`a ${type} device is one word; only program consoles take arguments`);
  };
  const lower = first.toLowerCase();

  if (lower.startsWith('unix:')) {
    single('unix socket');
    const p = first.slice(5);
    if (!p) throw new OptError('unix: needs a socket path');
    const abs = path.resolve(ctx.cwd, p);
    if (Buffer.byteLength(abs) > MAX_UNIX_PATH) {
      throw new OptError(`unix socket path "${abs}" is longer than ${MAX_UNIX_PATH} bytes`);
    }
    return { type: 'unix', path: abs };
  }
  if (lower.startsWith('ipmi:')) {
    single('IPMI');
    const rest = first.slice(5);
    if (!rest) throw new OptError('ipmi: needs a BMC host name or address');
    const { host, port } = parseIpmiHost(rest, 5);
    return { type: 'ipmi', host, port, opts: ctx.ipmiOpts };
  }
  if (lower.startsWith('ssh://')) {
    single('SSH');
    return parseSsh(first, ctx);
  }
  if (lower.startsWith('test:')) {
    single('test');
    if (first.length > 5) throw new OptError('test: takes nothing after the colon; set testopts= instead');
    return { type: 'test', opts: resolveTestOpts(ctx.testOpts) };
  }
  const tn = telnetTarget(first);
  if (tn) {
    single('telnet');
    return { type: 'telnet', host: tn.host, port: parsePort(tn.port, 'telnet', first.length - tn.port.length) };
  }
  const abs = path.resolve(ctx.cwd, first);
  const chr = isCharDevice(abs);
  // a USB serial adapter may appear after the daemon starts; the engine retries
  if (chr === true || (chr === null && abs.startsWith('/dev/'))) {
    single('serial');
    return { type: 'serial', path: abs, opts: ctx.serOpts };
  }
  return { type: 'process', argv: [resolveProgram(first, ctx), ...words.slice(1)] };
}

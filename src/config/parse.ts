// Reads conman.conf (conman.conf(5) of upstream conman) into a validated
// Config. Directives are SERVER, GLOBAL and CONSOLE, each followed by
// key=value pairs up to the end of the (possibly continued) line. GLOBAL
// options are defaults for the CONSOLE lines after them, as in conman.
// The first problem throws a ConfigError naming file:line:column; there is
// never a half-built Config.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseDev, type DevContext } from './devspec.js';
import { describeToken, tokenize, type Token } from './lexer.js';
import {
  DEFAULT_LOG_OPTS,
  DEFAULT_SER_OPTS,
  DEFAULT_TEST_OPTS_SPEC,
  OptError,
  defaultIpmiOpts,
  defaultSshOpts,
  parseIpmiOpts,
  parseLogOpts,
  parseSerOpts,
  parseSshOpts,
  parseTestOpts,
  type TestOptsSpec,
} from './opts.js';
import { deviceSpecifier, expandSpecifiers } from './specifiers.js';
import { applyPswd, readPswdFile } from './pswd.js';
import {
  ConfigError,
  ConfigErrors,
  type Config,
  type ConsoleConfig,
  type IpmiOpts,
  type Loc,
  type LogOpts,
  type SerOpts,
  type ServerConfig,
  type SshOpts,
  SSH_HOST_KEYS,
  type SolSteal,
  SOL_STEAL,
  type PtyMode,
  PTY_MODES,
  PLAIN_ACCESS,
} from './types.js';
import { byteSize, intIn, interval, onOff, syslogFacility, syslogPriority } from './values.js';
import { webhookUrlProblem } from '../alerts/url.js';

export interface ParseOptions {
  /** false: accept process consoles whose program is missing (default true) */
  execpathCheck?: boolean;
  /** base for relative paths (default: process.cwd(), as conmand) */
  cwd?: string;
  /** non-fatal findings (e.g. a password file others can read) */
  warn?: (msg: string) => void;
}

export function defaultServerConfig(): ServerConfig {
  return {
    coredump: false,
    coredumpdir: null,
    execpath: [],
    keepalive: true,
    logdir: null,
    logfile: null,
    loopback: true,
    nofile: null,
    pidfile: null,
    port: 7890,
    resetcmd: null,
    syslog: null,
    tcpwrappers: false,
    timestamp: 0,
    replayBytes: 16384,
    clientBufferBytes: 262144,
    handshakeTimeout: 30,
    pswdFile: null,
    ipmiThreads: null,
    maxClients: 2048,
    maxClientsPerHost: 256,
    logSymlinks: false,
    stateDir: null,
    sshKnownHosts: null,
    sshHostKeys: 'accept-new',
    tlsPort: 7891,
    tlsCert: null,
    tlsKey: null,
    tlsClientCa: null,
    usersFile: null,
    accessFile: null,
    plainAccess: 'rw',
    auditLog: null,
    httpPort: null,
    tokensFile: null,
    alertsFile: null,
    alertDefaults: true,
    alertLog: true,
    alertNotice: true,
    alertWebhook: null,
    alertExec: null,
    clusterEtcd: null,
    clusterPrefix: '/conch/',
    node: null,
    nodeAddr: null,
    clusterTtl: 10,
    clusterCa: null,
    clusterCert: null,
    clusterKey: null,
  };
}

/** Settings of GLOBAL lines seen so far. */
interface Globals {
  /** raw log pattern; logdir is applied per console */
  log: string | null;
  logOpts: LogOpts;
  serOpts: SerOpts;
  testOpts: TestOptsSpec;
  ipmiOpts: IpmiOpts;
  sshOpts: SshOpts;
  solSteal: SolSteal;
  ptyMode: PtyMode;
}

interface State {
  file: string;
  cwd: string;
  execpathCheck: boolean;
  server: ServerConfig;
  globals: Globals;
  consoles: ConsoleConfig[];
  /** server pswdfile= (extension), applied once every console is read */
  pswd?: { file: string; loc: Loc };
  /** uniqueness: kind → key → console that claimed it */
  claimed: Map<string, Map<string, ConsoleConfig>>;
}

/** A key's handler gets its value token and the parser (to read a unit word). */
type KeyHandler = (v: Token, p: Parser, s: State) => void;

const EXPANSION_DATE = new Date(2000, 0, 1, 0, 0, 0);

class Parser {
  private i = 0;
  /** the last token taken: after an error the rest of its line is skipped, unless it ended the line */
  private last: Token | null = null;
  constructor(
    private readonly toks: Token[],
    readonly file: string,
  ) {}
  peek(): Token {
    return this.toks[this.i];
  }
  next(): Token {
    const t = this.toks[this.i];
    if (t.kind !== 'eof') this.i++;
    this.last = t;
    return t;
  }
  /** After an error: go on at the next line. */
  skipLine(): void {
    if (this.last?.kind === 'eol' || this.last?.kind === 'eof') return;
    for (let t = this.next(); t.kind !== 'eol' && t.kind !== 'eof'; t = this.next());
  }
  loc(t: Token, offset = 0): Loc {
    return { file: this.file, line: t.line, col: t.col + offset };
  }
  fail(t: Token, detail: string, offset = 0): never {
    throw new ConfigError(this.loc(t, offset), detail);
  }
}

/** Runs `fn`, turning a thrown message into a ConfigError at `t`. */
function at<T>(p: Parser, t: Token, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    if (e instanceof OptError) {
      // column of the offending part inside a quoted string (strings have no escapes)
      p.fail(t, e.message, t.kind === 'string' ? 1 + e.offset : 0);
    }
    p.fail(t, e instanceof Error ? e.message : String(e));
  }
}

function nonEmpty(p: Parser, v: Token, key: string): string {
  if (v.text === '') p.fail(v, `${key} must not be empty`);
  return v.text;
}

/** Prefix a relative path with `base` (not normalised: it may hold %-specifiers). */
function under(base: string, file: string): string {
  return file.startsWith('/') ? file : `${base.replace(/\/+$/, '')}/${file}`;
}

// ------------------------------------------------------------ SERVER keys

const onOffKey =
  (k: 'coredump' | 'keepalive' | 'loopback' | 'logSymlinks'): KeyHandler =>
  (v, p, s) => {
    s.server[k] = at(p, v, () => onOff(k.toLowerCase(), v.text));
  };

/** a SERVER key naming a file, relative to the configuration file's directory */
type FileField = 'pidfile' | 'stateDir' | 'sshKnownHosts' | 'tlsCert' | 'tlsKey' | 'tlsClientCa' | 'usersFile' | 'accessFile' | 'auditLog' | 'tokensFile' | 'clusterCa' | 'clusterCert' | 'clusterKey';
const fileKey =
  (k: FileField, key: string): KeyHandler =>
  (v, p, s) => {
    s.server[k] = path.resolve(s.cwd, nonEmpty(p, v, key));
  };

/** a SERVER key whose value is one word of `values`, in any case */
const oneOfKey =
  <K extends 'sshHostKeys' | 'plainAccess'>(k: K, key: string, values: ServerConfig[K][]): KeyHandler =>
  (v, p, s) => {
    const t = v.text.toLowerCase() as ServerConfig[K];
    if (!values.includes(t)) p.fail(v, `${key} must be one of ${values.join(', ')}, got "${v.text}"`);
    s.server[k] = t;
  };

export const SERVER_KEYS: Record<string, KeyHandler> = {
  coredump: onOffKey('coredump'),
  coredumpdir: (v, p, s) => {
    if (v.text === '') {
      s.server.coredumpdir = null;
      return;
    }
    const dir = path.resolve(s.cwd, v.text);
    const st = fs.statSync(dir, { throwIfNoEntry: false });
    if (!st) p.fail(v, `coredumpdir "${dir}" does not exist`);
    else if (!st.isDirectory()) p.fail(v, `coredumpdir "${dir}" is not a directory`);
    s.server.coredumpdir = dir;
  },
  execpath: (v, _p, s) => {
    s.server.execpath = v.text.split(':').filter((d) => d !== '');
  },
  keepalive: onOffKey('keepalive'),
  logdir: (v, _p, s) => {
    s.server.logdir = v.text === '' ? s.cwd : path.resolve(s.cwd, v.text);
  },
  logfile: (v, p, s) => {
    let file = nonEmpty(p, v, 'logfile');
    let priority = 'info';
    const comma = file.lastIndexOf(',');
    if (comma >= 0) {
      priority = file.slice(comma + 1);
      file = file.slice(0, comma);
    }
    const prio = at(p, v, () => syslogPriority('logfile', priority));
    if (file === '') p.fail(v, 'logfile needs a file name before the comma');
    s.server.logfile = { path: under(s.server.logdir ?? s.cwd, file), priority: prio };
  },
  loopback: onOffKey('loopback'),
  nofile: (v, p, s) => {
    s.server.nofile = at(p, v, () =>
      intIn('nofile', v.text, -1, 0x7fffffff, ' (0 = keep the soft limit, -1 = raise it to the hard limit)'),
    );
  },
  pidfile: fileKey('pidfile', 'pidfile'),
  port: (v, p, s) => {
    s.server.port = at(p, v, () => intIn('port', v.text, 0, 65535, ' (0 = any free port)'));
  },
  resetcmd: (v, p, s) => {
    s.server.resetcmd = nonEmpty(p, v, 'resetcmd');
  },
  syslog: (v, p, s) => {
    s.server.syslog = at(p, v, () => syslogFacility('syslog', v.text));
  },
  tcpwrappers: (v, p, s) => {
    if (at(p, v, () => onOff('tcpwrappers', v.text))) {
      p.fail(
        v,
        'conch does not support TCP wrappers (tcpwrappers=on); bind to loopback (server loopback=on) ' +
          'or restrict access to the port with a firewall',
      );
    }
    s.server.tcpwrappers = false;
  },
  timestamp: (v, p, s) => {
    // "5", "5m", "1h", or conman's "1 h" (number and unit as separate words)
    let text = v.text;
    if (v.kind === 'word' && /^\d+$/.test(text)) {
      const u = p.peek();
      if (u.kind === 'word' && /^[mhd]$/i.test(u.text)) text += p.next().text;
    }
    const m = /^(\d+)([A-Za-z]*)$/.exec(text);
    s.server.timestamp = at(p, v, () => {
      if (!m) throw new Error(`timestamp must be an integer with an optional m, h or d unit, got "${text}"`);
      return interval('timestamp', m[1], m[2]);
    });
  },
  // ---- conch extensions ----
  replaybuffer: (v, p, s) => {
    s.server.replayBytes = at(p, v, () => byteSize('replaybuffer', v.text, 4096, 64 * 1024 * 1024));
  },
  clientbuffer: (v, p, s) => {
    s.server.clientBufferBytes = at(p, v, () => byteSize('clientbuffer', v.text, 4096, 1024 * 1024 * 1024));
  },
  pswdfile: (v, p, s) => {
    s.pswd = { file: path.resolve(s.cwd, nonEmpty(p, v, 'pswdfile')), loc: p.loc(v) };
    s.server.pswdFile = s.pswd.file;
  },
  handshaketimeout: (v, p, s) => {
    s.server.handshakeTimeout = at(p, v, () => intIn('handshaketimeout', v.text, 1, 3600, ' seconds'));
  },
  ipmithreads: (v, p, s) => {
    s.server.ipmiThreads = v.text === 'auto' ? null : at(p, v, () => intIn('ipmithreads', v.text, 0, 64, ' or "auto"'));
  },
  maxclients: (v, p, s) => {
    s.server.maxClients = at(p, v, () => intIn('maxclients', v.text, 1, 1_000_000, ''));
  },
  maxclientsperhost: (v, p, s) => {
    s.server.maxClientsPerHost = at(p, v, () => intIn('maxclientsperhost', v.text, 1, 1_000_000, ''));
  },
  logsymlinks: onOffKey('logSymlinks'),
  statedir: fileKey('stateDir', 'statedir'),
  // ---- SSH consoles (docs/ssh.md) ----
  sshknownhosts: fileKey('sshKnownHosts', 'sshknownhosts'),
  sshhostkeys: oneOfKey('sshHostKeys', 'sshhostkeys', SSH_HOST_KEYS),
  // ---- access (docs/security.md) ----
  tlsport: (v, p, s) => {
    s.server.tlsPort = at(p, v, () => intIn('tlsport', v.text, 0, 65535, ' (0 = any free port)'));
  },
  tlscert: fileKey('tlsCert', 'tlscert'),
  tlskey: fileKey('tlsKey', 'tlskey'),
  tlsclientca: fileKey('tlsClientCa', 'tlsclientca'),
  users: fileKey('usersFile', 'users'),
  access: fileKey('accessFile', 'access'),
  plainaccess: oneOfKey('plainAccess', 'plainaccess', PLAIN_ACCESS),
  auditlog: fileKey('auditLog', 'auditlog'),
  // ---- web (docs/web.md) ----
  httpport: (v, p, s) => {
    s.server.httpPort = at(p, v, () => intIn('httpport', v.text, 0, 65535, ' (0 = any free port)'));
  },
  tokens: fileKey('tokensFile', 'tokens'),
  // ---- pattern alerts (docs/alerts.md); an empty value unsets ----
  alerts: (v, _p, s) => {
    s.server.alertsFile = v.text === '' ? null : path.resolve(s.cwd, v.text);
  },
  alertdefaults: (v, p, s) => {
    s.server.alertDefaults = at(p, v, () => onOff('alertdefaults', v.text));
  },
  alertlog: (v, p, s) => {
    s.server.alertLog = at(p, v, () => onOff('alertlog', v.text));
  },
  alertnotice: (v, p, s) => {
    s.server.alertNotice = at(p, v, () => onOff('alertnotice', v.text));
  },
  alertwebhook: (v, p, s) => {
    const bad = v.text === '' ? null : webhookUrlProblem(v.text);
    if (bad) p.fail(v, `alertwebhook: ${bad}`);
    s.server.alertWebhook = v.text === '' ? null : v.text;
  },
  // ---- cluster on etcd (docs/cluster.md) ----
  cluster: (v, p, s) => {
    s.server.clusterEtcd = v.text === '' ? null : at(p, v, () => clusterEndpoints(v.text));
  },
  clusterprefix: (v, p, s) => {
    const t = nonEmpty(p, v, 'clusterprefix');
    if (!t.startsWith('/') || /[\s\0]/.test(t)) p.fail(v, 'clusterprefix: expected a key prefix starting with "/", e.g. "/conch/site1/"');
    s.server.clusterPrefix = t.endsWith('/') ? t : `${t}/`;
  },
  node: (v, p, s) => {
    const t = nonEmpty(p, v, 'node');
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(t)) p.fail(v, 'node: expected a name of letters, digits, ".", "_" and "-" (at most 63)');
    s.server.node = t;
  },
  nodeaddr: (v, p, s) => {
    const t = nonEmpty(p, v, 'nodeaddr');
    if (!/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):\d{1,5}$/.test(t) || Number(t.slice(t.lastIndexOf(':') + 1)) > 65535)
      p.fail(v, 'nodeaddr: expected host:port (an IPv6 address as [addr]:port)');
    s.server.nodeAddr = t;
  },
  clusterttl: (v, p, s) => {
    s.server.clusterTtl = at(p, v, () => intIn('clusterttl', v.text, 5, 120, ' seconds'));
  },
  clusterca: fileKey('clusterCa', 'clusterca'),
  clustercert: fileKey('clusterCert', 'clustercert'),
  clusterkey: fileKey('clusterKey', 'clusterkey'),
  alertexec: (v, _p, s) => {
    s.server.alertExec = v.text === '' ? null : v.text;
  },
};

// ------------------------------------------------------------ GLOBAL keys

export const GLOBAL_KEYS: Record<string, KeyHandler> = {
  log: (v, p, s) => {
    if (v.text === '') {
      s.globals.log = null;
      return;
    }
    if (!v.text.includes('%N') && !v.text.includes('%D')) {
      p.fail(v, `global log "${v.text}" must contain %N or %D, or every console would write to the same file`);
    }
    s.globals.log = v.text;
  },
  logopts: (v, p, s) => {
    s.globals.logOpts = at(p, v, () => parseLogOpts(v.text, s.globals.logOpts));
  },
  seropts: (v, p, s) => {
    s.globals.serOpts = at(p, v, () => parseSerOpts(v.text, s.globals.serOpts));
  },
  testopts: (v, p, s) => {
    s.globals.testOpts = at(p, v, () => parseTestOpts(v.text, s.globals.testOpts));
  },
  ipmiopts: (v, p, s) => {
    s.globals.ipmiOpts = at(p, v, () => parseIpmiOpts(v.text, s.globals.ipmiOpts));
  },
  sshopts: (v, p, s) => {
    s.globals.sshOpts = at(p, v, () => parseSshOpts(v.text, s.globals.sshOpts));
  },
  // ---- conch extension ----
  solsteal: (v, p, s) => {
    s.globals.solSteal = at(p, v, () => parseSolSteal(v.text));
  },
  ptymode: (v, p, s) => {
    s.globals.ptyMode = at(p, v, () => parsePtyMode(v.text));
  },
};

function parsePtyMode(text: string): PtyMode {
  const t = text.toLowerCase() as PtyMode;
  if (!PTY_MODES.includes(t)) throw new Error(`ptymode must be one of ${PTY_MODES.join(', ')}, got "${text}"`);
  return t;
}

function parseSolSteal(text: string): SolSteal {
  const t = text.toLowerCase() as SolSteal;
  if (!SOL_STEAL.includes(t)) throw new Error(`solsteal must be one of ${SOL_STEAL.join(', ')}, got "${text}"`);
  return t;
}

// ----------------------------------------------------------- CONSOLE keys

export const CONSOLE_KEYS = ['name', 'dev', 'log', 'logopts', 'seropts', 'ipmiopts', 'sshopts', 'testopts', 'solsteal', 'ptymode'] as const;
type ConsoleKey = (typeof CONSOLE_KEYS)[number];
interface Given {
  key: Token;
  value: Token;
}

/** Reads `key = value` pairs to the end of the directive, calling `each`. */
function readPairs(p: Parser, directive: Token, known: readonly string[], each: (k: Token, v: Token) => void): void {
  const dname = directive.text.toUpperCase();
  let count = 0;
  for (;;) {
    const k = p.next();
    if (k.kind === 'eol' || k.kind === 'eof') break;
    if (k.kind !== 'word') p.fail(k, `expected a ${dname} key, got ${describeToken(k)}`);
    const key = k.text.toLowerCase();
    if (!known.includes(key)) {
      p.fail(k, `unknown ${dname} key "${k.text}"; expected one of ${known.join(', ')}`);
    }
    const eq = p.next();
    if (eq.kind !== 'eq') p.fail(eq, `expected "=" after "${k.text}", got ${describeToken(eq)}`);
    const v = p.next();
    if (v.kind !== 'word' && v.kind !== 'string') p.fail(v, `expected a value after "${k.text}=", got ${describeToken(v)}`);
    each(k, v);
    count++;
  }
  if (count === 0) p.fail(directive, `${dname} needs at least one key=value pair on the same line`);
}

function claim(p: Parser, s: State, where: Token, kind: string, key: string, what: string, con: ConsoleConfig): void {
  let m = s.claimed.get(kind);
  if (!m) s.claimed.set(kind, (m = new Map()));
  const prev = m.get(key);
  if (prev) {
    const l = `${prev.loc.file}:${prev.loc.line}:${prev.loc.col}`;
    p.fail(
      where,
      kind === 'name'
        ? `duplicate ${what} (first defined at ${l})`
        : `duplicate ${what} (first used by console "${prev.name}" at ${l})`,
    );
  }
  m.set(key, con);
}

/** A CONSOLE directive's pairs, each key at most once, with name= and dev= present and sound. */
function readConsoleKeys(p: Parser, directive: Token): { given: Map<ConsoleKey, Given>; name: Given; dev: Given } {
  const given = new Map<ConsoleKey, Given>();
  readPairs(p, directive, CONSOLE_KEYS, (k, v) => {
    const key = k.text.toLowerCase() as ConsoleKey;
    const prev = given.get(key);
    if (prev) p.fail(k, `"${k.text}" given twice in one CONSOLE directive (first at column ${prev.key.col})`);
    given.set(key, { key: k, value: v });
  });
  const name = given.get('name');
  const dev = given.get('dev');
  if (!name) p.fail(directive, 'CONSOLE needs name="..."');
  if (!dev) p.fail(directive, `CONSOLE "${name.value.text}" needs dev="..."`);
  if (name.value.text === '') p.fail(name.value, 'console name must not be empty');
  const bad = /[^\x20-\x7e]/.exec(name.value.text);
  if (bad) p.fail(name.value, 'console name must be printable 7-bit ASCII (the conman protocol cannot carry other bytes)');
  if (dev.value.text.trim() === '') p.fail(dev.value, 'dev must not be empty');
  return { given, name, dev };
}

/** An option of the console: its own value parsed over the global one, or the global one. */
function consoleOpt<T>(p: Parser, given: Map<ConsoleKey, Given>, key: ConsoleKey, base: T, parse: (str: string, base: T) => T): T {
  const o = given.get(key);
  return o ? at(p, o.value, () => parse(o.value.text, base)) : base;
}

/** The console's device, read with its serial, test and IPMI options (its own or the global ones). */
function consoleDevice(p: Parser, s: State, given: Map<ConsoleKey, Given>, name: string, dev: Token): ConsoleConfig['spec'] {
  const g = s.globals;
  // copies, so that no two consoles share a mutable options object
  const ctx: DevContext = {
    name,
    cwd: s.cwd,
    execpath: s.server.execpath,
    execpathCheck: s.execpathCheck,
    serOpts: { ...consoleOpt(p, given, 'seropts', g.serOpts, parseSerOpts) },
    testOpts: consoleOpt(p, given, 'testopts', g.testOpts, parseTestOpts),
    ipmiOpts: consoleOpt(p, given, 'ipmiopts', g.ipmiOpts, parseIpmiOpts),
    // parseDev copies it
    sshOpts: consoleOpt(p, given, 'sshopts', g.sshOpts, parseSshOpts),
  };
  if (!given.has('ipmiopts')) ctx.ipmiOpts = parseIpmiOpts('', g.ipmiOpts); // a private copy
  return at(p, dev, () => parseDev(dev.text, ctx));
}

/** The console's log file under the logdir (its log= or the global one), or null for none. */
function consoleLog(s: State, l: Given | undefined): string | null {
  const logdir = s.server.logdir ?? s.cwd;
  if (l) return l.value.text === '' ? null : under(logdir, l.value.text);
  return s.globals.log === null ? null : under(logdir, s.globals.log);
}

/** Claims what no two consoles may share: the name, a serial device, unix socket or IPMI host, the log file. */
function claimConsole(p: Parser, s: State, con: ConsoleConfig, name: Given, dev: Given, l: Given | undefined): void {
  const spec = con.spec;
  claim(p, s, name.key, 'name', con.name, `console name "${con.name}"`, con);
  if (spec.type === 'serial') claim(p, s, dev.value, 'serial', spec.path, `serial device "${spec.path}"`, con);
  if (spec.type === 'unix') claim(p, s, dev.value, 'unix', spec.path, `unix socket "${spec.path}"`, con);
  if (spec.type === 'ipmi') {
    const hp = `${spec.host.toLowerCase()}:${spec.port}`;
    claim(p, s, dev.value, 'ipmi', hp, `IPMI host "${spec.host}" port ${spec.port}`, con);
  }
  // one login at one SSH server is one console (a console server may offer several under other users)
  if (spec.type === 'ssh') {
    const where = `${spec.opts.user}@${spec.host.toLowerCase()}:${spec.port}`;
    claim(p, s, dev.value, 'ssh', where, `SSH login "${spec.opts.user ? `${spec.opts.user}@` : ''}${spec.host}" port ${spec.port}`, con);
  }
  if (con.log !== null) {
    const file = path.resolve(
      expandSpecifiers(con.log, { name: con.name, dev: deviceSpecifier(spec), pid: 1, now: EXPANSION_DATE }),
    );
    claim(p, s, l ? l.value : name.key, 'log', file, `log file "${file}"`, con);
  }
}

function parseConsole(p: Parser, s: State, directive: Token): void {
  const { given, name, dev } = readConsoleKeys(p, directive);
  const g = s.globals;
  // a copy, so that no two consoles share a mutable options object
  const logOpts = { ...consoleOpt(p, given, 'logopts', g.logOpts, parseLogOpts) };
  const spec = consoleDevice(p, s, given, name.value.text, dev.value);
  const l = given.get('log');
  const con: ConsoleConfig = {
    name: name.value.text,
    dev: dev.value.text,
    spec,
    log: consoleLog(s, l),
    logOpts,
    solSteal: consoleOpt(p, given, 'solsteal', g.solSteal, (str) => parseSolSteal(str)),
    ptyMode: consoleOpt(p, given, 'ptymode', g.ptyMode, (str) => parsePtyMode(str)),
    loc: p.loc(name.key),
  };
  const pm = given.get('ptymode');
  if (pm && spec.type !== 'process') p.fail(pm.key, `ptymode applies to process consoles only (this one is ${spec.type})`);
  claimConsole(p, s, con, name, dev, l);
  s.consoles.push(con);
}

/** Parses conman.conf text. `file` is used in error messages. */
export function parseConfig(text: string, file: string, opts: ParseOptions = {}): Config {
  const p = new Parser(tokenize(text, file), file);
  const s: State = {
    file,
    cwd: opts.cwd ?? process.cwd(),
    execpathCheck: opts.execpathCheck ?? true,
    server: defaultServerConfig(),
    globals: {
      log: null,
      logOpts: { ...DEFAULT_LOG_OPTS },
      serOpts: { ...DEFAULT_SER_OPTS },
      testOpts: { ...DEFAULT_TEST_OPTS_SPEC },
      ipmiOpts: defaultIpmiOpts(),
      sshOpts: defaultSshOpts(),
      solSteal: 'polite',
      ptyMode: 'raw',
    },
    consoles: [],
    claimed: new Map(),
  };
  const keyed = (table: Record<string, KeyHandler>, d: Token): void => {
    readPairs(p, d, Object.keys(table), (k, v) => at(p, v, () => table[k.text.toLowerCase()](v, p, s)));
  };
  // every directive is read even after an error, so that one run names every mistake
  const errors: ConfigError[] = [];
  for (;;) {
    const t = p.next();
    if (t.kind === 'eof') break;
    if (t.kind === 'eol') continue;
    try {
      if (t.kind !== 'word') p.fail(t, `expected a directive (CONSOLE, GLOBAL or SERVER), got ${describeToken(t)}`);
      switch (t.text.toLowerCase()) {
        case 'server':
          keyed(SERVER_KEYS, t);
          break;
        case 'global':
          keyed(GLOBAL_KEYS, t);
          break;
        case 'console':
          parseConsole(p, s, t);
          break;
        default:
          p.fail(t, `unknown directive "${t.text}"; expected CONSOLE, GLOBAL or SERVER`);
      }
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      errors.push(e);
      if (errors.length >= MAX_ERRORS) break;
      p.skipLine();
    }
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new ConfigErrors(errors);
  if (s.pswd) applyPswd(s.consoles, readPswdFile(s.pswd.file, s.pswd.loc, opts.warn ?? (() => {})));
  return { file: path.resolve(s.cwd, file), server: s.server, consoles: s.consoles };
}

/** a failed read in words (the configuration, and the files it names) */
export const READ_ERRORS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EISDIR: 'it is a directory',
  ENOTDIR: 'a part of the path is not a directory',
  ELOOP: 'too many symbolic links',
};

/** more errors than this in one file: the rest are not listed */
const MAX_ERRORS = 50;

/** Reads and parses a conman.conf file; a read failure is a ConfigError too. */
export function loadConfig(file: string, opts: ParseOptions = {}): Config {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    const why = READ_ERRORS[code] ?? (e as Error).message;
    throw new ConfigError({ file, line: 0, col: 0 }, `cannot read the configuration: ${why}`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(buf);
  } catch {
    text = buf.toString('latin1'); // an old non-UTF-8 file: keep every byte as one character
  }
  const cfg = parseConfig(text, file, opts);
  const inline = cfg.consoles.some((c) => c.spec.type === 'ipmi' && c.spec.opts.password.length > 0);
  if (inline && fs.statSync(file).mode & 0o077 && !cfg.server.pswdFile) {
    opts.warn?.(`${file} holds IPMI passwords and can be read by other users; chmod 600 it, or move them to a pswdfile`);
  }
  return cfg;
}

/** `cluster="etcd=URL[,URL…]"`: the etcd endpoints, each http:// or https:// host:port */
function clusterEndpoints(text: string): string[] {
  const m = /^etcd=(.+)$/.exec(text);
  if (!m) throw new Error('cluster: expected "etcd=http://host:2379[,http://host:2379…]"');
  const urls = m[1]!.split(',').map((u) => u.trim());
  for (const u of urls) {
    let url: URL;
    try {
      url = new URL(u);
    } catch {
      throw new Error(`cluster: "${u}" is not a URL`);
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.pathname !== '/' || url.search || url.username || url.password || !url.port)
      throw new Error(`cluster: "${u}": expected http://host:port or https://host:port (no path, no credentials)`);
  }
  return urls.map((u) => new URL(u).origin);
}

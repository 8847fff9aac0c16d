// What a reload changes: the running configuration against the file just
// read, console by console (identity = name) and SERVER key by key. Pure:
// the daemon (reload.ts) applies it.

import { isDeepStrictEqual } from 'node:util';
import type { Config, ConsoleConfig, DevSpec, ServerConfig } from '../config/types.js';

/** A console key (as conman.conf names it) whose effective value changed. */
export type ConsoleKey =
  | 'dev'
  | 'log'
  | 'logopts'
  | 'seropts'
  | 'ipmiopts'
  | 'sshopts'
  | 'credentials'
  | 'testopts'
  | 'solsteal'
  | 'ptymode'
  | 'keepalive'
  | 'sshknownhosts'
  | 'sshhostkeys';

export interface ConsoleChange {
  before: ConsoleConfig;
  after: ConsoleConfig;
  /** what changed, in a fixed order; never a value (a password is one) */
  keys: ConsoleKey[];
}

/** How a SERVER key's change is taken on by a running daemon. */
export type ServerApply =
  /** the client listener moves (port, loopback) */
  | 'listener'
  /** in force at once, for what comes next (new clients, marks, reopened logs) */
  | 'live'
  /** already part of each console's parsed settings (logdir, pswdfile, execpath): the console diff covers it */
  | 'consoles'
  /** needs a restart: the old value stays in force */
  | 'restart'
  /** conch does not act on it (parsed for conman compatibility) */
  | 'unused';

export interface ServerChange {
  /** the conman.conf key */
  key: string;
  field: keyof ServerConfig;
  apply: ServerApply;
}

export interface ConfigDiff {
  added: ConsoleConfig[];
  removed: ConsoleConfig[];
  changed: ConsoleChange[];
  unchanged: ConsoleConfig[];
  server: ServerChange[];
}

/** Every SERVER field: its conman.conf key and how a reload applies it. */
export const SERVER_KEYS: Record<keyof ServerConfig, { key: string; apply: ServerApply }> = {
  port: { key: 'port', apply: 'listener' },
  loopback: { key: 'loopback', apply: 'listener' },
  logfile: { key: 'logfile', apply: 'live' },
  timestamp: { key: 'timestamp', apply: 'live' },
  replayBytes: { key: 'replaybuffer', apply: 'live' },
  clientBufferBytes: { key: 'clientbuffer', apply: 'live' },
  handshakeTimeout: { key: 'handshaketimeout', apply: 'live' },
  maxClients: { key: 'maxclients', apply: 'live' },
  maxClientsPerHost: { key: 'maxclientsperhost', apply: 'live' },
  logSymlinks: { key: 'logsymlinks', apply: 'live' },
  resetcmd: { key: 'resetcmd', apply: 'live' },
  // new client connections; telnet consoles compare it as their own (see effectiveKeys)
  keepalive: { key: 'keepalive', apply: 'live' },
  logdir: { key: 'logdir', apply: 'consoles' },
  pswdFile: { key: 'pswdfile', apply: 'consoles' },
  execpath: { key: 'execpath', apply: 'consoles' },
  ipmiThreads: { key: 'ipmithreads', apply: 'restart' },
  stateDir: { key: 'statedir', apply: 'restart' },
  // SSH consoles compare them as their own (see consoleChanges); the file itself is re-read when it changes
  sshKnownHosts: { key: 'sshknownhosts', apply: 'consoles' },
  sshHostKeys: { key: 'sshhostkeys', apply: 'consoles' },
  pidfile: { key: 'pidfile', apply: 'restart' },
  coredump: { key: 'coredump', apply: 'unused' },
  coredumpdir: { key: 'coredumpdir', apply: 'unused' },
  nofile: { key: 'nofile', apply: 'unused' },
  syslog: { key: 'syslog', apply: 'unused' },
  tcpwrappers: { key: 'tcpwrappers', apply: 'unused' },
  tlsPort: { key: 'tlsport', apply: 'listener' },
  // re-read on every reload even when unchanged (a rotated certificate keeps its path)
  tlsCert: { key: 'tlscert', apply: 'listener' },
  tlsKey: { key: 'tlskey', apply: 'listener' },
  tlsClientCa: { key: 'tlsclientca', apply: 'listener' },
  usersFile: { key: 'users', apply: 'live' },
  accessFile: { key: 'access', apply: 'live' },
  plainAccess: { key: 'plainaccess', apply: 'live' },
  auditLog: { key: 'auditlog', apply: 'live' },
  httpPort: { key: 'httpport', apply: 'listener' },
  tokensFile: { key: 'tokens', apply: 'live' },
  // the rules file is re-read on every reload even when its name is unchanged
  alertsFile: { key: 'alerts', apply: 'live' },
  alertDefaults: { key: 'alertdefaults', apply: 'live' },
  alertLog: { key: 'alertlog', apply: 'live' },
  alertNotice: { key: 'alertnotice', apply: 'live' },
  alertWebhook: { key: 'alertwebhook', apply: 'live' },
  alertExec: { key: 'alertexec', apply: 'live' },
  // the cluster's settings: the same etcd cluster through other endpoints or TLS files is taken in place; another membership (etcd cluster, prefix, name, TTL) is a leave and a join (daemon.ts reloadCluster)
  clusterEtcd: { key: 'cluster', apply: 'live' },
  clusterPrefix: { key: 'clusterprefix', apply: 'live' },
  node: { key: 'node', apply: 'live' },
  nodeAddr: { key: 'nodeaddr', apply: 'live' },
  clusterTtl: { key: 'clusterttl', apply: 'live' },
  clusterCa: { key: 'clusterca', apply: 'live' },
  clusterCert: { key: 'clustercert', apply: 'live' },
  clusterKey: { key: 'clusterkey', apply: 'live' },
};

/** The device part of a spec without its options (those are compared as their own keys). */
function address(s: DevSpec): unknown {
  switch (s.type) {
    case 'telnet':
      return [s.type, s.host, s.port];
    case 'unix':
    case 'serial':
      return [s.type, s.path];
    case 'process':
      return [s.type, s.argv];
    case 'test':
      return [s.type];
    case 'ipmi':
    case 'ssh':
      return [s.type, s.host, s.port];
  }
}

/**
 * The keys whose effective value differs between two configurations of one
 * console; `loc` is ignored (moving a line changes nothing). SERVER settings
 * a device is built with count as the console's own (telnet: keepalive; SSH:
 * sshknownhosts, sshhostkeys).
 */
export function consoleChanges(a: ConsoleConfig, b: ConsoleConfig, sa?: ServerConfig, sb?: ServerConfig): ConsoleKey[] {
  const keys: ConsoleKey[] = [];
  const differ = (x: unknown, y: unknown): boolean => !isDeepStrictEqual(x, y);
  // dev= as written, or what it resolves to (execpath can move a program)
  if (a.dev !== b.dev || differ(address(a.spec), address(b.spec))) keys.push('dev');
  if (a.log !== b.log) keys.push('log');
  if (differ(a.logOpts, b.logOpts)) keys.push('logopts');
  const as = a.spec;
  const bs = b.spec;
  if (as.type === 'serial' && bs.type === 'serial' && differ(as.opts, bs.opts)) keys.push('seropts');
  if (as.type === 'ipmi' && bs.type === 'ipmi') {
    const { user: ua, password: pa, kg: ka, ...oa } = as.opts;
    const { user: ub, password: pb, kg: kb, ...ob } = bs.opts;
    if (differ(oa, ob)) keys.push('ipmiopts');
    if (ua !== ub || !pa.equals(pb) || differ(ka, kb)) keys.push('credentials');
  }
  if (as.type === 'ssh' && bs.type === 'ssh') {
    const { user: ua, password: pa, key: ka, ...oa } = as.opts;
    const { user: ub, password: pb, key: kb, ...ob } = bs.opts;
    if (differ(oa, ob)) keys.push('sshopts');
    if (ua !== ub || !pa.equals(pb) || ka !== kb) keys.push('credentials');
  }
  if (as.type === 'test' && bs.type === 'test' && differ(as.opts, bs.opts)) keys.push('testopts');
  if (as.type === 'ipmi' && bs.type === 'ipmi' && a.solSteal !== b.solSteal) keys.push('solsteal');
  if (as.type === 'process' && bs.type === 'process' && a.ptyMode !== b.ptyMode) keys.push('ptymode');
  if (as.type === 'telnet' && bs.type === 'telnet' && sa && sb && sa.keepalive !== sb.keepalive) keys.push('keepalive');
  if (as.type === 'ssh' && bs.type === 'ssh' && sa && sb) {
    if (sa.sshKnownHosts !== sb.sshKnownHosts) keys.push('sshknownhosts');
    if (sa.sshHostKeys !== sb.sshHostKeys) keys.push('sshhostkeys');
  }
  return keys;
}

/** SERVER keys whose value differs, each with how a reload applies it. */
export function serverChanges(a: ServerConfig, b: ServerConfig): ServerChange[] {
  const out: ServerChange[] = [];
  for (const field of Object.keys(SERVER_KEYS) as (keyof ServerConfig)[]) {
    if (!isDeepStrictEqual(a[field], b[field])) out.push({ field, ...SERVER_KEYS[field] });
  }
  return out;
}

/** The running configuration `before` against the new file `after`. */
export function diffConfig(before: Config, after: Config): ConfigDiff {
  const old = new Map(before.consoles.map((c) => [c.name, c]));
  const d: ConfigDiff = { added: [], removed: [], changed: [], unchanged: [], server: serverChanges(before.server, after.server) };
  for (const c of after.consoles) {
    const o = old.get(c.name);
    old.delete(c.name);
    if (!o) {
      d.added.push(c);
      continue;
    }
    const keys = consoleChanges(o, c, before.server, after.server);
    if (keys.length > 0) d.changed.push({ before: o, after: c, keys });
    else d.unchanged.push(c);
  }
  d.removed = [...old.values()];
  return d;
}

// The parsed, validated configuration. Everything the daemon needs is here;
// nothing downstream re-reads conman.conf text.

/** A place in a config file, 1-based, for error messages. */
export interface Loc {
  file: string;
  line: number;
  col: number;
}

export interface LogOpts {
  /** conman: fcntl write lock on the log file (see README: conch locks the config instead). */
  lock: boolean;
  /** reduce to 7-bit printable; control chars as ^X, CR/LF normalised to CRLF. */
  sanitize: boolean;
  /** prefix every line with `YYYY-MM-DD HH:MM:SS `. */
  timestamp: boolean;
}

export interface SerOpts {
  bps: number;
  dataBits: 5 | 6 | 7 | 8;
  parity: 'none' | 'even' | 'odd';
  stopBits: 1 | 2;
}

export interface TestOpts {
  /** bytes per burst */
  bytes: number;
  /** max / min milliseconds between bursts */
  maxMs: number;
  minMs: number;
  /** probability (0..100) that a burst is emitted at each tick */
  prob: number;
}

export interface IpmiOpts {
  user: string;
  /** never logged; Buffer so that 0x… hex passwords are exact */
  password: Buffer;
  kg: Buffer | null;
  cipherSuite: number | null;
  privilege: 'user' | 'operator' | 'admin';
  workarounds: string[];
}

/**
 * sshopts entry=: the dialog that reaches the host's serial port behind an
 * SSH server (docs/ssh.md). none: the server gives the console at once
 * (OpenBMC's obmc-console on port 2200, or a `cmd=`).
 */
export type SshEntry = 'none' | 'ilo' | 'idrac' | 'ilom' | 'xcc';
export const SSH_ENTRIES: SshEntry[] = ['none', 'ilo', 'idrac', 'ilom', 'xcc'];

export interface SshOpts {
  /** login name; '' = the pswdfile record's, else the daemon's own user (as ssh) */
  user: string;
  /** private key file (OpenSSH format), absolute once parsed; null = none */
  key: string | null;
  /** from the pswdfile only (password and keyboard-interactive); never logged; empty = none */
  password: Buffer;
  entry: SshEntry;
  /** the pty's terminal type */
  term: string;
  /** run this instead of a shell (the console is its output: Redfish ConsoleEntryCommand); null = a shell */
  command: string | null;
  /** sent before closing, to free the serial port at once; null = the entry profile's */
  leave: Buffer | null;
  /** sent for a break instead of an RFC 4335 break request; null = the entry profile's */
  breakSeq: Buffer | null;
  /** seconds for connecting and logging in, and for each step of the entry dialog */
  timeout: number;
}

/** server sshhostkeys=: what an SSH console does with a host key not in known_hosts */
export type SshHostKeys = 'accept-new' | 'strict';
export const SSH_HOST_KEYS: SshHostKeys[] = ['accept-new', 'strict'];

/** What the dev= string turned into. */
export type DevSpec =
  | { type: 'telnet'; host: string; port: number }
  | { type: 'unix'; path: string }
  | { type: 'serial'; path: string; opts: SerOpts }
  | { type: 'process'; argv: string[] }
  | { type: 'test'; opts: TestOpts }
  | { type: 'ipmi'; host: string; port: number; opts: IpmiOpts }
  | { type: 'ssh'; host: string; port: number; opts: SshOpts };

export type DevType = DevSpec['type'];

/**
 * conch extension `solsteal`: what an IPMI console does when another client
 * holds the BMC's SOL. polite: wait until it is free (never deactivate
 * someone else's payload); never: stay off until an operator forces;
 * always: take it (conman/conserver behaviour).
 */
export type SolSteal = 'polite' | 'never' | 'always';

/**
 * conch extension `ptymode`: a process console's pty is raw (conman's
 * behaviour: exactly the program's bytes) or cooked (echo, CR-LF output,
 * signals: for interactive programs such as a shell).
 */
export type PtyMode = 'raw' | 'cooked';
export const PTY_MODES: PtyMode[] = ['raw', 'cooked'];
export const SOL_STEAL: SolSteal[] = ['polite', 'never', 'always'];

export interface ConsoleConfig {
  name: string;
  /** dev= exactly as written */
  dev: string;
  spec: DevSpec;
  /** log file pattern with %-specifiers unexpanded (logdir already applied); null = no log */
  log: string | null;
  logOpts: LogOpts;
  /** IPMI consoles only (extension) */
  solSteal: SolSteal;
  /** process consoles only (extension): the pty's line discipline */
  ptyMode: PtyMode;
  loc: Loc;
}

export interface ServerConfig {
  coredump: boolean;
  coredumpdir: string | null;
  execpath: string[];
  keepalive: boolean;
  logdir: string | null;
  /** daemon log file pattern and minimum priority */
  logfile: { path: string; priority: Priority } | null;
  loopback: boolean;
  nofile: number | null;
  pidfile: string | null;
  port: number;
  resetcmd: string | null;
  syslog: string | null;
  tcpwrappers: boolean;
  /** seconds between `log at` marks in console logs; 0 = off */
  timestamp: number;
  // ---- conch extensions ----
  /** bytes of recent output kept per console for &L replay (conman: 4096) */
  replayBytes: number;
  /** bytes buffered per client before it starts losing data */
  clientBufferBytes: number;
  /** seconds a new client has to complete the handshake */
  handshakeTimeout: number;
  /** conman.pswd-style credentials file for IPMI and SSH consoles */
  pswdFile: string | null;
  /** threads that run the IPMI sessions (0: the main thread); null = chosen from the IPMI console count */
  ipmiThreads: number | null;
  /** client connections at once (handshaking and attached); fewer if the descriptor limit leaves less room */
  maxClients: number;
  /** client connections at once from one source address */
  maxClientsPerHost: number;
  /** allow a console log path that is a symbolic link (off: such a log is refused and reported) */
  logSymlinks: boolean;
  /** where conchd keeps state across restarts (its IPMI sessions); null = chosen at start (see daemon/state-dir.ts) */
  stateDir: string | null;
  /** SSH consoles' known_hosts file (OpenSSH format); null = `known_hosts` in the state directory */
  sshKnownHosts: string | null;
  /** SSH host keys not in known_hosts: pinned at first sight (accept-new) or refused (strict) */
  sshHostKeys: SshHostKeys;
  // ---- access (docs/security.md) ----
  /** port of the TLS listener for the same protocol (0: any free port); it listens when tlscert and tlskey are set */
  tlsPort: number;
  /** PEM certificate chain and key of the TLS listener (re-read on reload) */
  tlsCert: string | null;
  tlsKey: string | null;
  /** PEM CA bundle: clients presenting a certificate it signed are that certificate's CN */
  tlsClientCa: string | null;
  /** users file (user:scrypt-hash:groups), for passwords over TLS and users' groups */
  usersFile: string | null;
  /** access rules file (WHO CONSOLES RIGHTS [from=CIDR]); null = everything allowed */
  accessFile: string | null;
  /** what clients of the plain (non-TLS) port may do at most: rw = as the rules say, ro = monitor only, none = nothing */
  plainAccess: PlainAccess;
  /** audit log: one JSON object a line; null = none */
  auditLog: string | null;
  // ---- web (docs/web.md) ----
  /** port of the web terminal, API and metrics (0: any free port); null = no web server */
  httpPort: number | null;
  /** API bearer tokens, stored hashed (`conchd token`); null = `tokens` in the state directory */
  tokensFile: string | null;
  // ---- pattern alerts (docs/alerts.md) ----
  /** the user's alert rules file (re-read on reload); null = none */
  alertsFile: string | null;
  /** the built-in alert rules (panic, MCE, lockups, …) are in force */
  alertDefaults: boolean;
  /** a daemon log line per alert */
  alertLog: boolean;
  /** a `<ConMan>` notice per alert in the console's own log */
  alertNotice: boolean;
  /** each alert POSTed as JSON to this http(s) URL; null = none */
  alertWebhook: string | null;
  /** each alert given as JSON on the stdin of `/bin/sh -c` this; null = none */
  alertExec: string | null;
  // ---- cluster on etcd (docs/cluster.md) ----
  /** etcd endpoints (http:// or https://); null = a single daemon, no cluster */
  clusterEtcd: string[] | null;
  /** the key prefix this cluster's keys live under in etcd */
  clusterPrefix: string;
  /** this node's name in the cluster; null = the host name */
  node: string | null;
  /** host:port where peers reach this node's conman port (proxied clients); null = host name and port */
  nodeAddr: string | null;
  /** seconds of the node's etcd lease: how long a dead node's consoles wait for another */
  clusterTtl: number;
  /** PEM files for etcd over https: the CA, and this node's client certificate and key */
  clusterCa: string | null;
  clusterCert: string | null;
  clusterKey: string | null;
}

export type PlainAccess = 'rw' | 'ro' | 'none';
export const PLAIN_ACCESS: PlainAccess[] = ['rw', 'ro', 'none'];

export type Priority = 'emerg' | 'alert' | 'crit' | 'err' | 'warning' | 'notice' | 'info' | 'debug';
export const PRIORITIES: Priority[] = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug'];

export interface Config {
  /** absolute path of the file read */
  file: string;
  server: ServerConfig;
  consoles: ConsoleConfig[];
}

/** A config error: names file:line:column (just the file when it could not be read: line 0). */
export class ConfigError extends Error {
  constructor(
    public readonly loc: Loc,
    public readonly detail: string,
  ) {
    super(loc.line > 0 ? `${loc.file}:${loc.line}:${loc.col}: ${detail}` : `${loc.file}: ${detail}`);
    this.name = 'ConfigError';
  }
  /** every error found, one per line (a single error: just this one) */
  get all(): ConfigError[] {
    return [this];
  }
}

/** Several errors in one file: each is reported, not only the first. */
export class ConfigErrors extends ConfigError {
  constructor(readonly errors: ConfigError[]) {
    super(errors[0]!.loc, errors[0]!.detail);
    this.message = errors.map((e) => e.message).join('\n');
  }
  override get all(): ConfigError[] {
    return this.errors;
  }
}

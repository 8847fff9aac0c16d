// SSH mode: many simulated BMCs that serve their host's serial console over
// SSH (docs/simulator.md), each on a TCP port of its own (base, base+1, …)
// with a SimHost behind it and a front (ssh-front.ts): OpenBMC's console at
// once, or a vendor command line. One ssh2 Server does the SSH work for
// every port (the listeners hand it their sockets), with one host key for
// the fleet (ssh-keys.ts); logins by password, keyboard-interactive or an
// authorized public key. A "break" channel request (RFC 4335), which ssh2's
// server does not surface, is taken from its packet handler and becomes a
// BREAK on the host's serial port.

import * as net from 'node:net';
import type { EventEmitter } from 'node:events';
import ssh2 from 'ssh2';
import type { AuthContext, AuthenticationType, Connection, ServerChannel, Session } from 'ssh2';
import { bmcName } from './bmc-fleet.js';
import type { BmcUser } from './bmc-session.js';
import { SimHost } from './host.js';
import { FRONT_ENTRY, FrontSession, SerialPort, SESSION_BUFFER_MAX, type FrontKind, type PortCounters } from './ssh-front.js';
import { loadHostKey, readAuthorizedKeys, type AuthorizedKey, type HostKey } from './ssh-keys.js';

export interface SshFleetOptions {
  count: number;
  /** the first host's TCP port, the others follow; 0: each takes any free port */
  basePort: number;
  address: string;
  prefix: string;
  front: FrontKind;
  user: string;
  password: string;
  /** per-host credentials by name */
  credentials?: Map<string, BmcUser>;
  /** the fleet's host key file (made if missing) */
  hostKeyFile: string;
  /** authorized_keys file for public-key logins; null: passwords only */
  authorizedKeys: string | null;
  boot: boolean;
}

export interface SshEntry {
  name: string;
  address: string;
  port: number;
  user: string;
  password: string;
  front: FrontKind;
}

/** seconds a client may stay silent before the server's keepalives give it up (60 s × 3) */
const KEEPALIVE_MS = 60000;

/** One simulated BMC's SSH server: its port, its host and who is logged in. */
export class SshBmc {
  readonly host: SimHost;
  readonly port: SerialPort;
  readonly socks = new Set<net.Socket>();
  listener: net.Server | null = null;
  /** a restart: connections are refused until then (ms) */
  downUntil = 0;

  constructor(
    readonly name: string,
    readonly address: string,
    /** 0 until listening when the fleet takes any free ports */
    public tcpPort: number,
    readonly user: BmcUser,
    front: FrontKind,
    boot: boolean,
  ) {
    this.host = new SimHost({ name, interval: 0, boot }, (s) => this.port.hostOutput(s));
    this.port = new SerialPort(this.host, front);
  }

  /** The BMC restarts: every session cut off, connections refused for `seconds`. */
  restart(seconds: number): void {
    this.downUntil = Date.now() + seconds * 1000;
    for (const s of this.socks) s.destroy();
  }

  status(): Record<string, unknown> {
    return {
      name: this.name,
      address: this.address,
      port: this.tcpPort,
      front: this.port.front,
      user: this.user.name,
      connections: this.socks.size,
      inConsole: this.port.viewers.size,
      heldElsewhere: this.port.heldElsewhere,
      down: Date.now() < this.downUntil,
      counters: { ...this.port.counters },
      host: { lastSeq: this.host.lastSeq, breaks: this.host.breaks },
    };
  }
}

interface Ssh2Internals {
  _sock?: net.Socket;
  _chanMgr?: { get(id: number): unknown };
  _protocol?: { _handlers?: Record<string, unknown>; channelSuccess(id: number): void; channelFailure(id: number): void };
}

type RequestHandler = (p: unknown, recipient: number, type: string, wantReply: boolean, data: unknown) => void;

/**
 * RFC 4335 "break" requests: ssh2's server answers every request type it
 * does not know with a failure. Its packet handler for channel requests is
 * wrapped so that a break is emitted on the session as `break` (ms).
 */
function hookBreak(conn: Connection): void {
  const c = conn as unknown as Ssh2Internals;
  const proto = c._protocol;
  const handlers = proto?._handlers;
  const orig = handlers?.CHANNEL_REQUEST as RequestHandler | undefined;
  if (!proto || !handlers || typeof orig !== 'function') return;
  handlers.CHANNEL_REQUEST = ((p, recipient, type, wantReply, data) => {
    if (type !== 'break') return orig(p, recipient, type, wantReply, data);
    const s = c._chanMgr?.get(recipient) as (EventEmitter & { _chanInfo?: { outgoing?: { id?: number } } }) | undefined;
    const ms = Buffer.isBuffer(data) && data.length >= 4 ? data.readUInt32BE(0) : 0;
    const ok = typeof s === 'object' && s !== null && typeof s.emit === 'function' && s.emit('break', ms);
    const id = s?._chanInfo?.outgoing?.id;
    if (wantReply && id !== undefined) {
      if (ok) proto.channelSuccess(id);
      else proto.channelFailure(id);
    }
  }) as RequestHandler;
}

export class SshFleet {
  readonly hosts: SshBmc[] = [];
  private readonly byName = new Map<string, SshBmc>();
  private readonly bmcOf = new WeakMap<net.Socket, SshBmc>();
  private authorized: AuthorizedKey[] = [];
  private server: InstanceType<typeof ssh2.Server> | null = null;
  hostKey: HostKey | null = null;

  constructor(private readonly opts: SshFleetOptions) {
    for (let i = 1; i <= opts.count; i++) {
      const name = bmcName(opts.prefix, i, opts.count);
      const user = opts.credentials?.get(name) ?? { name: opts.user, password: opts.password };
      const b = new SshBmc(name, opts.address, opts.basePort === 0 ? 0 : opts.basePort + i - 1, user, opts.front, opts.boot);
      this.hosts.push(b);
      this.byName.set(name, b);
    }
  }

  get(name: string): SshBmc | undefined {
    return this.byName.get(name);
  }

  /** Keys, then every port (in batches); then the hosts start, `drive` putting each on the fleet clock. */
  async start(drive: (host: SimHost, index: number) => void): Promise<void> {
    if (this.hosts.length === 0) return;
    this.hostKey = loadHostKey(this.opts.hostKeyFile);
    if (this.opts.authorizedKeys) this.authorized = readAuthorizedKeys(this.opts.authorizedKeys);
    this.server = new ssh2.Server({ hostKeys: [this.hostKey.private], ident: 'conch-bmcsim', keepaliveInterval: KEEPALIVE_MS, keepaliveCountMax: 3 }, (conn) => this.accepted(conn));
    const batch = 256;
    try {
      for (let i = 0; i < this.hosts.length; i += batch) await Promise.all(this.hosts.slice(i, i + batch).map((b) => this.listen(b)));
    } catch (e) {
      this.stop();
      const msg = (e as Error).message;
      throw new Error(/EMFILE|ENFILE/.test(msg) ? `${msg} — raise the open-file limit (ulimit -n) above twice the SSH host count` : msg);
    }
    this.hosts.forEach((b, i) => {
      b.host.start();
      drive(b.host, i);
    });
  }

  private listen(b: SshBmc): Promise<void> {
    const srv = net.createServer((sock) => {
      if (Date.now() < b.downUntil || !this.server) {
        sock.destroy();
        return;
      }
      sock.setNoDelay(true);
      b.socks.add(sock);
      sock.once('close', () => b.socks.delete(sock));
      this.bmcOf.set(sock, b);
      this.server.injectSocket(sock);
    });
    b.listener = srv;
    return new Promise((resolve, reject) => {
      srv.once('error', (e) => reject(new Error(`${b.name}: cannot listen on TCP ${b.address}:${b.tcpPort}: ${e.message}`)));
      srv.listen(b.tcpPort, b.address, () => {
        srv.on('error', () => {});
        b.tcpPort = (srv.address() as net.AddressInfo).port;
        resolve();
      });
    });
  }

  /** A client's SSH connection (after its version line): which BMC it came to, then its login and sessions. */
  private accepted(conn: Connection): void {
    const sock = (conn as unknown as Ssh2Internals)._sock;
    const b = sock ? this.bmcOf.get(sock) : undefined;
    conn.on('error', () => {});
    if (!b) {
      conn.end();
      return;
    }
    hookBreak(conn);
    conn.on('authentication', (ctx) => this.authenticate(b, ctx));
    conn.on('ready', () => {
      b.port.counters.sessions++;
      conn.on('session', (accept) => this.session(b, accept()));
    });
  }

  private authenticate(b: SshBmc, ctx: AuthContext): void {
    const methods: AuthenticationType[] = this.authorized.length ? ['publickey', 'password', 'keyboard-interactive'] : ['password', 'keyboard-interactive'];
    const fail = (): void => {
      b.port.counters.authFailures++;
      ctx.reject(methods);
    };
    const userOk = ctx.username === b.user.name;
    switch (ctx.method) {
      case 'password':
        if (userOk && ctx.password === b.user.password) ctx.accept();
        else fail();
        return;
      case 'keyboard-interactive':
        ctx.prompt([{ prompt: 'Password: ', echo: false }], (answers) => (userOk && answers[0] === b.user.password ? ctx.accept() : fail()));
        return;
      case 'publickey': {
        const k = userOk ? this.authorized.find((a) => a.blob.equals(ctx.key.data)) : undefined;
        if (!k) ctx.reject(methods); // a key offered and not taken is not a failed login yet
        else if (!ctx.signature || !ctx.blob) ctx.accept(); // "would this key do?": yes
        else if (k.key.verify(ctx.blob, ctx.signature, ctx.hashAlgo) === true) ctx.accept();
        else fail();
        return;
      }
      default:
        ctx.reject(methods);
    }
  }

  /** A session channel: a pty, then a shell (the front) or a command (OpenBMC: the console; a CLI: that command first). */
  private session(b: SshBmc, s: Session): void {
    let front: FrontSession | null = null;
    s.on('pty', (accept) => accept?.());
    s.on('window-change', (accept) => accept?.());
    s.on('env', (accept) => accept?.());
    s.on('signal', (accept) => accept?.());
    s.on('break', () => front?.breakSignal());
    const run = (ch: ServerChannel, command?: string): void => {
      const f = new FrontSession(b.port, { write: (d) => write(ch, d), end: (code) => endChannel(ch, code) }, b.name, b.user.name);
      front = f;
      ch.on('data', (d: Buffer) => f.input(d));
      ch.on('close', () => f.detach());
      ch.on('error', () => {});
      f.start(b.port.front === 'openbmc' ? undefined : command);
    };
    s.on('shell', (accept) => run(accept()));
    s.on('exec', (accept, _reject, info) => run(accept(), info.command));
  }

  /** what `conch-bmcsim` prints and writes about each host */
  entries(): SshEntry[] {
    return this.hosts.map((b) => ({ name: b.name, address: b.address, port: b.tcpPort, user: b.user.name, password: b.user.password, front: b.port.front }));
  }

  totals(): Record<string, number> {
    const t: Record<string, number> = { sshHosts: this.hosts.length, sshConnections: 0, sshInConsole: 0 };
    for (const b of this.hosts) {
      t.sshConnections! += b.socks.size;
      t.sshInConsole! += b.port.viewers.size;
      for (const [k, v] of Object.entries(b.port.counters) as [keyof PortCounters, number][]) {
        const key = `ssh${k[0]!.toUpperCase()}${k.slice(1)}`;
        t[key] = (t[key] ?? 0) + v;
      }
    }
    return t;
  }

  stop(): void {
    for (const b of this.hosts) {
      b.host.stop();
      b.port.stop();
      for (const s of b.socks) s.destroy();
      b.listener?.close();
    }
    this.server = null;
  }
}

/** console bytes for a session: dropped (false) when it has not read the last SESSION_BUFFER_MAX */
function write(ch: ServerChannel, d: Buffer): boolean {
  if (!ch.writable || ch.writableLength > SESSION_BUFFER_MAX) return false;
  ch.write(d);
  return true;
}

function endChannel(ch: ServerChannel, code: number): void {
  if (!ch.writable) return;
  ch.exit(code);
  ch.end();
}

// ---------------------------------------------------------------- for conchd

function q(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** conman.conf console lines for the SSH hosts (conchd's `ssh://` consoles); `key`: sshopts key= for public-key logins */
export function sshConsoleLines(entries: SshEntry[], key?: string): string[] {
  return entries.map((e) => {
    const host = e.address.includes(':') ? `[${e.address}]` : e.address;
    const opts = `entry=${FRONT_ENTRY[e.front]}${key ? `,key=${key}` : ''}`;
    return `console name=${q(e.name)} dev=${q(`ssh://${e.user}@${host}:${e.port}`)} sshopts=${q(opts)}`;
  });
}

/**
 * A conman.pswd for them (conchd's `server pswdfile=`): one record per
 * address and user. Records are matched by host and user only, so hosts on
 * one address whose user has different passwords cannot be told apart.
 */
export function sshPswd(entries: SshEntry[]): string {
  const seen = new Map<string, string>();
  for (const e of entries) {
    const k = `${e.address}\0${e.user}`;
    const had = seen.get(k);
    if (e.password.includes(':') || e.user.includes(':')) throw new Error(`a pswdfile cannot hold a user name or password with a ":" (host ${e.name})`);
    if (had !== undefined && had !== e.password) throw new Error(`user ${e.user} has different passwords on hosts of ${e.address}: a pswdfile cannot tell them apart (use one password per user, or keys)`);
    seen.set(k, e.password);
  }
  const lines = ['# written by conch-bmcsim: host-regex : user : password'];
  for (const [k, pw] of seen) {
    const [addr, user] = k.split('\0') as [string, string];
    // the fields are split at ":": an IPv6 address's colons are written \x3a
    lines.push(`${addr.replace(/[.[\]]/g, '\\$&').replace(/:/g, '\\x3a')} : ${user} : ${pw}`);
  }
  return lines.join('\n') + '\n';
}

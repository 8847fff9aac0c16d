// The conman-compatible client listener: TCP on IPv4 and IPv6 (conmand is
// IPv4 only), loopback-only when `server loopback=on`. It admits at most
// `maxclients` connections (fewer if the descriptor limit leaves less room
// beside the daemon's own reserve) and `maxclientsperhost` per source
// address; a connection over either limit gets an ERROR line and is closed.

import type { Cluster } from '../cluster/cluster.js';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { ConsoleRegistry } from '../engine/registry.js';
import type { ServerConfig } from '../config/types.js';
import type { DaemonLog } from '../logging/daemon-log.js';
import { Handshake, type Arrival } from './handshake.js';
import { AccessControl } from '../access/access-control.js';
import { peerCertificate, TlsSetupError, tlsOptions, wantsTls } from './tls-context.js';
import { ErrCode, errorLine } from './messages.js';
import { clientCap, clientHost, RefusalLog, softFdLimit } from './client-limits.js';
import type { ClientSession } from './session.js';
import { ResetRunner } from './reset.js';

/** conmand's listen backlog is 10; a larger one costs nothing */
const BACKLOG = 128;
/** how long close() lets clients receive what is queued for them */
const CLOSE_GRACE_MS = 2000;
/** a refused client may read its ERROR line this long (or until it closes) */
const REFUSE_LINGER_MS = 1000;
/** refused connections lingering at once; past that a refusal is an immediate close */
const MAX_LINGERING = 64;

// conch additions: conman has no client limits
const REFUSE_MSG = {
  total: (n: number) => `Too many clients (${n} connected); try again later`,
  host: (n: number) => `Too many clients from your address (${n} connected); try again later`,
};

export interface ConmanServerOptions {
  registry: ConsoleRegistry;
  server: ServerConfig;
  dlog: DaemonLog;
  /** descriptors kept free of clients for the daemon's logs and devices */
  reservedFds?: number;
}

const PLAIN: Arrival = { transport: 'conman', certUser: null, certError: null };

export class ConmanServer {
  private readonly listeners: net.Server[] = [];
  /** the TLS listeners (server tlscert=, tlskey=): the same protocol, with passwords and client certificates */
  private tlsListeners: tls.Server[] = [];
  private tlsBound: { port: number; loopback: boolean } | null = null;
  /** who may do what, and the audit log */
  readonly access: AccessControl;
  /** this daemon as a cluster node (set by the daemon): consoles of other nodes are proxied */
  cluster: Cluster | null = null;
  private readonly sockets = new Set<net.Socket>();
  private readonly handshakes = new Map<net.Socket, Handshake>();
  private readonly sessions = new Map<net.Socket, ClientSession>();
  private resets: ResetRunner;
  /** client connections per source address */
  private readonly perHost = new Map<string, number>();
  private readonly lingering = new Set<net.Socket>();
  private readonly refusals: RefusalLog;
  /** connections admitted at once, set at listen() */
  private cap: number;
  private warnedCap = false;

  constructor(private opts: ConmanServerOptions) {
    this.resets = new ResetRunner(opts.server.resetcmd, opts.dlog);
    this.refusals = new RefusalLog(opts.dlog);
    this.cap = opts.server.maxClients;
    this.access = new AccessControl(opts.server, opts.dlog);
  }

  /** the resetcmd runner in force (the web API's reset uses it too) */
  get resetRunner(): ResetRunner {
    return this.resets;
  }

  /** clients admitted at once (after listen(): with the descriptor limit applied) */
  get clientCap(): number {
    return this.cap;
  }

  /** Start listening; resolves with the bound port (port 0 = ephemeral). The TLS listener too, when configured. */
  async listen(): Promise<number> {
    this.setCap();
    if (!wantsTls(this.opts.server) && this.opts.server.tlsClientCa) throw new TlsSetupError('server tlsclientca= needs tlscert= and tlskey= (there is no TLS listener without them)');
    const port = await this.bindAll(this.opts.server.port, this.opts.server.loopback);
    if (wantsTls(this.opts.server)) {
      try {
        await this.bindTls();
      } catch (e) {
        await this.closeListeners();
        throw e;
      }
    }
    return port;
  }

  /** the TLS listener's port, null when there is none */
  get tlsPort(): number | null {
    return this.tlsBound?.port ?? null;
  }

  private async bindTls(): Promise<void> {
    const { tlsPort, loopback } = this.opts.server;
    const o = tlsOptions(this.opts.server);
    const made: tls.Server[] = [];
    const factory = (): tls.Server => {
      const srv = tls.createServer({
        ...o,
        rejectUnauthorized: false, // a client without a certificate may still log in with a password
        minVersion: 'TLSv1.2',
        handshakeTimeout: this.opts.server.handshakeTimeout * 1000,
        allowHalfOpen: true,
      });
      srv.on('connection', (raw: net.Socket) => {
        if (!this.admit(raw)) raw.destroy();
      });
      srv.on('secureConnection', (sock: tls.TLSSocket) => {
        const cert = peerCertificate(sock);
        this.start(sock, { transport: 'tls', certUser: cert.user, certError: cert.error });
      });
      // a failed or timed-out handshake: node reports it but leaves the socket open
      srv.on('tlsClientError', (e, sock) => {
        this.opts.dlog.debug(`TLS client <${clientHost(sock.remoteAddress)}>: ${e.message}`);
        sock.destroy();
      });
      made.push(srv);
      return srv;
    };
    const port = await this.bindAll(tlsPort, loopback, factory);
    this.tlsListeners = made;
    this.tlsBound = { port, loopback };
    this.opts.dlog.notice(`Listening on TLS port ${port}${loopback ? ' (loopback)' : ''}`);
  }

  /**
   * A reload: the certificate, key and client CA are read again (a renewed
   * certificate is served from now on; one that cannot be read leaves the
   * one in force); the TLS listener moves, starts or stops as tlsport,
   * loopback and tlscert say.
   */
  async reloadTls(): Promise<void> {
    const s = this.opts.server;
    const want = wantsTls(s);
    const bound = this.tlsBound;
    if (bound && want && bound.port === s.tlsPort && bound.loopback === s.loopback) {
      try {
        const o = tlsOptions(s);
        for (const l of this.tlsListeners) l.setSecureContext(o);
      } catch (e) {
        this.opts.dlog.err(`Reload: ${(e as Error).message}; the TLS certificate in force stays`);
      }
      return;
    }
    if (bound && (!want || bound.port !== s.tlsPort || bound.loopback !== s.loopback)) {
      stopListening(this.tlsListeners.splice(0));
      this.tlsBound = null;
      if (!want) this.opts.dlog.notice(`TLS listener on port ${bound.port} closed by a reload`);
    }
    if (want && !this.tlsBound) {
      try {
        await this.bindTls();
      } catch (e) {
        this.opts.dlog.err(`Reload: no TLS listener: ${(e as Error).message}`);
      }
    }
  }

  /**
   * A reload: clients from now on get `server`'s settings (limits, client
   * buffer, handshake deadline, keepalive, resetcmd); clients attached keep
   * theirs, and none is dropped for a lower limit. The address is rebind()'s.
   */
  reconfigure(server: ServerConfig, reservedFds = this.opts.reservedFds): void {
    const before = this.opts.server;
    this.opts = { ...this.opts, server, reservedFds };
    if (server !== before) this.access.reconfigure(server);
    if (server.resetcmd !== before.resetcmd) this.resets = new ResetRunner(server.resetcmd, this.opts.dlog);
    if (server.maxClients !== before.maxClients || reservedFds !== undefined) this.setCap();
  }

  /**
   * A reload moved the listener (port, loopback; reconfigure() first): the
   * new address listens before the old one closes, and connected clients
   * stay. On the same port with the other address set (loopback on↔off) the
   * old listener holds the port, so it closes first; if the new address
   * cannot be had, `before`'s is taken back. Resolves with the bound port.
   */
  async rebind(before: { port: number; loopback: boolean }): Promise<number> {
    const { port, loopback } = this.opts.server;
    const old = this.listeners.splice(0);
    try {
      const p = await this.bindAll(port, loopback);
      stopListening(old);
      return p;
    } catch (e) {
      await this.closeListeners();
      if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE' || port !== before.port) {
        this.listeners.push(...old);
        throw e;
      }
      stopListening(old);
      try {
        return await this.bindAll(port, loopback);
      } catch (e2) {
        await this.closeListeners();
        await this.bindAll(before.port, before.loopback);
        throw e2;
      }
    }
  }

  /** the client cap from maxclients and the descriptor limit beside the daemon's reserve */
  private setCap(): void {
    const { maxClients } = this.opts.server;
    const limit = softFdLimit();
    const before = this.cap;
    this.cap = clientCap(maxClients, limit, this.opts.reservedFds ?? 0);
    // said at start, and again by a reload only if the figure moved
    if (this.cap < maxClients && (this.cap !== before || !this.warnedCap)) {
      this.warnedCap = true;
      this.opts.dlog.warn(
        `Admitting at most ${this.cap} clients, not maxclients=${maxClients}: the open-files limit is ${limit} and ${this.opts.reservedFds ?? 0} descriptors are kept for logs and devices (raise LimitNOFILE / ulimit -n)`,
      );
    }
  }

  private async bindAll(port: number, loopback: boolean, make?: () => net.Server): Promise<number> {
    if (!loopback) {
      // one dual-stack socket covers both families; fall back to IPv4 alone
      try {
        return await this.bind('::', port, false, make);
      } catch (e) {
        if (!isNoFamily(e)) throw e;
        return this.bind('0.0.0.0', port, undefined, make);
      }
    }
    // with an ephemeral port the ::1 side may find it taken: retry a few times
    for (let attempt = 0; ; attempt++) {
      const p = await this.bind('127.0.0.1', port, undefined, make);
      try {
        await this.bind('::1', p, true, make);
      } catch (e) {
        if (isNoFamily(e)) {
          this.opts.dlog.info(`IPv6 loopback unavailable (${(e as Error).message}); listening on 127.0.0.1 only`);
        } else if (port === 0 && attempt < 5) {
          await this.closeListeners();
          continue;
        } else {
          await this.closeListeners();
          throw e;
        }
      }
      return p;
    }
  }

  /** Stop listening and disconnect every client cleanly. */
  async close(): Promise<void> {
    const closing = Promise.all([this.closeListeners(), closeAll(this.tlsListeners.splice(0))]);
    this.tlsBound = null;
    this.refusals.flush();
    for (const s of this.lingering) s.destroy();
    for (const h of this.handshakes.values()) h.abort();
    for (const s of this.sessions.values()) s.shutdown();
    const all = [...this.sockets];
    await Promise.all(
      all.map(
        (sock) =>
          new Promise<void>((resolve) => {
            if (sock.destroyed) return resolve();
            const t = setTimeout(() => sock.destroy(), CLOSE_GRACE_MS);
            sock.once('close', () => {
              clearTimeout(t);
              resolve();
            });
          }),
      ),
    );
    await closing;
    this.access.close();
  }

  /** one listening socket: the plain conman port, or (with `make`) a TLS one */
  private bind(host: string, port: number, ipv6Only?: boolean, make?: () => net.Server): Promise<number> {
    return new Promise((resolve, reject) => {
      const srv = make ? make() : net.createServer({ noDelay: true, allowHalfOpen: true }, (sock) => this.accept(sock));
      const onError = (e: Error): void => reject(e);
      srv.once('error', onError);
      srv.listen({ host, port, backlog: BACKLOG, ipv6Only, exclusive: true }, () => {
        srv.off('error', onError);
        srv.on('error', (e) => this.opts.dlog.err(`Listener on ${host}: ${e.message}`));
        if (!make) this.listeners.push(srv);
        resolve((srv.address() as net.AddressInfo).port);
      });
    });
  }

  private closeListeners(): Promise<void> {
    return closeAll(this.listeners.splice(0));
  }

  private accept(sock: net.Socket): void {
    if (this.admit(sock, true)) this.start(sock, PLAIN);
  }

  /**
   * Count a new connection against maxclients and maxclientsperhost; over
   * either it is refused (`tell`: with conman's ERROR line; a TLS connection
   * cannot be told before its handshake and is just closed).
   */
  private admit(sock: net.Socket, tell = false): boolean {
    try {
      const host = clientHost(sock.remoteAddress);
      const fromHost = this.perHost.get(host) ?? 0;
      let refused: [string, string] | null = null;
      if (this.sockets.size >= this.cap) refused = [REFUSE_MSG.total(this.sockets.size), 'too many clients'];
      else if (fromHost >= this.opts.server.maxClientsPerHost) refused = [REFUSE_MSG.host(fromHost), 'too many clients from one address'];
      if (refused) {
        if (tell) this.refuse(sock, host, ...refused);
        else this.refusals.refused(host, refused[1]);
        return false;
      }
      this.sockets.add(sock);
      this.perHost.set(host, fromHost + 1);
      sock.once('close', () => {
        this.sockets.delete(sock);
        const n = (this.perHost.get(host) ?? 1) - 1;
        if (n > 0) this.perHost.set(host, n);
        else this.perHost.delete(host);
      });
      if (this.opts.server.keepalive) sock.setKeepAlive(true);
      sock.setNoDelay(true);
      return true;
    } catch (e) {
      this.opts.dlog.err(`Accepting a client: ${(e as Error).message}`);
      sock.destroy();
      return false;
    }
  }

  /** The conman handshake on an admitted connection (plain, or TLS once its handshake is done). */
  private start(sock: net.Socket, arrival: Arrival): void {
    try {
      sock.once('close', () => {
        this.handshakes.delete(sock);
        this.sessions.delete(sock);
      });
      if (arrival.transport === 'tls') sock.setNoDelay(true);
      const h = new Handshake(
        sock,
        {
          registry: this.opts.registry,
          server: this.opts.server,
          dlog: this.opts.dlog,
          resets: this.resets,
          access: this.access,
          cluster: this.cluster,
          attached: (s, so) => {
            this.handshakes.delete(so);
            this.sessions.set(so, s);
          },
        },
        arrival,
      );
      this.handshakes.set(sock, h);
    } catch (e) {
      this.opts.dlog.err(`Accepting a client: ${(e as Error).message}`);
      sock.destroy();
    }
  }

  /**
   * Over a limit: an ERROR line (the conman client prints it), then close.
   * The socket lingers a moment reading what the client sends, so that the
   * close is a FIN after the line and not a reset that could lose it; under
   * a flood, past MAX_LINGERING, the close is immediate.
   */
  private refuse(sock: net.Socket, host: string, text: string, reason: string): void {
    this.refusals.refused(host, reason);
    sock.on('error', () => {});
    if (this.lingering.size >= MAX_LINGERING) {
      sock.destroy();
      return;
    }
    this.lingering.add(sock);
    const t = setTimeout(() => sock.destroy(), REFUSE_LINGER_MS).unref();
    sock.once('close', () => {
      clearTimeout(t);
      this.lingering.delete(sock);
    });
    sock.on('end', () => sock.destroy());
    sock.resume();
    sock.end(errorLine(ErrCode.BAD_REQUEST, text));
  }
}

/**
 * Stop accepting at once; connections already accepted stay (close()'s
 * callback would wait for every one of them to end).
 */
function stopListening(ls: net.Server[]): void {
  for (const l of ls) l.close();
}

/** Stop listening; resolves once every connection these listeners accepted has ended. */
function closeAll(ls: net.Server[]): Promise<void> {
  return Promise.all(ls.map((l) => new Promise<void>((r) => l.close(() => r())))).then(() => undefined);
}

/** The address family is not configured on this host (no IPv6). */
function isNoFamily(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'EAFNOSUPPORT' || code === 'EADDRNOTAVAIL';
}

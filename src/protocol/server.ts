// The conman-compatible client listener: TCP on IPv4 and IPv6 (conmand is
// IPv4 only), loopback-only when `server loopback=on`. It admits at most
// `maxclients` connections (fewer if the descriptor limit leaves less room
// beside the daemon's own reserve) and `maxclientsperhost` per source
// address; a connection over either limit gets an ERROR line and is closed.

import * as net from 'node:net';
import type { ConsoleRegistry } from '../engine/registry.js';
import type { ServerConfig } from '../config/types.js';
import type { DaemonLog } from '../logging/daemon-log.js';
import { Handshake } from './handshake.js';
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

export class ConmanServer {
  private readonly listeners: net.Server[] = [];
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
  }

  /** clients admitted at once (after listen(): with the descriptor limit applied) */
  get clientCap(): number {
    return this.cap;
  }

  /** Start listening; resolves with the bound port (port 0 = ephemeral). */
  async listen(): Promise<number> {
    this.setCap();
    return this.bindAll(this.opts.server.port, this.opts.server.loopback);
  }

  /**
   * A reload: clients from now on get `server`'s settings (limits, client
   * buffer, handshake deadline, keepalive, resetcmd); clients attached keep
   * theirs, and none is dropped for a lower limit. The address is rebind()'s.
   */
  reconfigure(server: ServerConfig, reservedFds = this.opts.reservedFds): void {
    const before = this.opts.server;
    this.opts = { ...this.opts, server, reservedFds };
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

  private async bindAll(port: number, loopback: boolean): Promise<number> {
    if (!loopback) {
      // one dual-stack socket covers both families; fall back to IPv4 alone
      try {
        return await this.bind('::', port, false);
      } catch (e) {
        if (!isNoFamily(e)) throw e;
        return this.bind('0.0.0.0', port);
      }
    }
    // with an ephemeral port the ::1 side may find it taken: retry a few times
    for (let attempt = 0; ; attempt++) {
      const p = await this.bind('127.0.0.1', port);
      try {
        await this.bind('::1', p, true);
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
    const closing = this.closeListeners();
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
  }

  private bind(host: string, port: number, ipv6Only?: boolean): Promise<number> {
    return new Promise((resolve, reject) => {
      const srv = net.createServer({ noDelay: true, allowHalfOpen: true }, (sock) => this.accept(sock));
      const onError = (e: Error): void => reject(e);
      srv.once('error', onError);
      srv.listen({ host, port, backlog: BACKLOG, ipv6Only, exclusive: true }, () => {
        srv.off('error', onError);
        srv.on('error', (e) => this.opts.dlog.err(`Listener on ${host}: ${e.message}`));
        this.listeners.push(srv);
        resolve((srv.address() as net.AddressInfo).port);
      });
    });
  }

  private closeListeners(): Promise<void> {
    return closeAll(this.listeners.splice(0));
  }

  private accept(sock: net.Socket): void {
    try {
      const host = clientHost(sock.remoteAddress);
      const fromHost = this.perHost.get(host) ?? 0;
      if (this.sockets.size >= this.cap) return this.refuse(sock, host, REFUSE_MSG.total(this.sockets.size), 'too many clients');
      if (fromHost >= this.opts.server.maxClientsPerHost) {
        return this.refuse(sock, host, REFUSE_MSG.host(fromHost), 'too many clients from one address');
      }
      this.sockets.add(sock);
      this.perHost.set(host, fromHost + 1);
      sock.once('close', () => {
        this.sockets.delete(sock);
        this.handshakes.delete(sock);
        this.sessions.delete(sock);
        const n = (this.perHost.get(host) ?? 1) - 1;
        if (n > 0) this.perHost.set(host, n);
        else this.perHost.delete(host);
      });
      if (this.opts.server.keepalive) sock.setKeepAlive(true);
      sock.setNoDelay(true);
      const h = new Handshake(sock, {
        registry: this.opts.registry,
        server: this.opts.server,
        dlog: this.opts.dlog,
        resets: this.resets,
        attached: (s, so) => {
          this.handshakes.delete(so);
          this.sessions.set(so, s);
        },
      });
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

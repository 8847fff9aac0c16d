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
  private readonly resets: ResetRunner;
  /** client connections per source address */
  private readonly perHost = new Map<string, number>();
  private readonly lingering = new Set<net.Socket>();
  private readonly refusals: RefusalLog;
  /** connections admitted at once, set at listen() */
  private cap: number;

  constructor(private readonly opts: ConmanServerOptions) {
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
    const { port, loopback, maxClients } = this.opts.server;
    const limit = softFdLimit();
    this.cap = clientCap(maxClients, limit, this.opts.reservedFds ?? 0);
    if (this.cap < maxClients) {
      this.opts.dlog.warn(
        `Admitting at most ${this.cap} clients, not maxclients=${maxClients}: the open-files limit is ${limit} and ${this.opts.reservedFds ?? 0} descriptors are kept for logs and devices (raise LimitNOFILE / ulimit -n)`,
      );
    }
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
    const ls = this.listeners.splice(0);
    return Promise.all(ls.map((l) => new Promise<void>((r) => l.close(() => r())))).then(() => undefined);
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

/** The address family is not configured on this host (no IPv6). */
function isNoFamily(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'EAFNOSUPPORT' || code === 'EADDRNOTAVAIL';
}

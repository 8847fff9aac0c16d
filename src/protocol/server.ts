// The conman-compatible client listener: TCP on IPv4 and IPv6 (conmand is
// IPv4 only), loopback-only when `server loopback=on`.

import * as net from 'node:net';
import type { ConsoleRegistry } from '../engine/registry.js';
import type { ServerConfig } from '../config/types.js';
import type { DaemonLog } from '../logging/daemon-log.js';
import { Handshake } from './handshake.js';
import type { ClientSession } from './session.js';
import { ResetRunner } from './reset.js';

/** conmand's listen backlog is 10; a larger one costs nothing */
const BACKLOG = 128;
/** how long close() lets clients receive what is queued for them */
const CLOSE_GRACE_MS = 2000;

export interface ConmanServerOptions {
  registry: ConsoleRegistry;
  server: ServerConfig;
  dlog: DaemonLog;
}

export class ConmanServer {
  private readonly listeners: net.Server[] = [];
  private readonly sockets = new Set<net.Socket>();
  private readonly handshakes = new Map<net.Socket, Handshake>();
  private readonly sessions = new Map<net.Socket, ClientSession>();
  private readonly resets: ResetRunner;

  constructor(private readonly opts: ConmanServerOptions) {
    this.resets = new ResetRunner(opts.server.resetcmd, opts.dlog);
  }

  /** Start listening; resolves with the bound port (port 0 = ephemeral). */
  async listen(): Promise<number> {
    const { port, loopback } = this.opts.server;
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
      this.sockets.add(sock);
      sock.once('close', () => {
        this.sockets.delete(sock);
        this.handshakes.delete(sock);
        this.sessions.delete(sock);
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
}

/** The address family is not configured on this host (no IPv6). */
function isNoFamily(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'EAFNOSUPPORT' || code === 'EADDRNOTAVAIL';
}

// conchd's web listener (`server httpport=`): the web terminal, the HTTP API
// under /api/v1 and /metrics, on node:http (HTTPS with the TLS listener's
// certificate when tlscert/tlskey are set) and `ws` for the console sockets.
// Plain HTTP is served on loopback only. Every request is bounded (headers,
// body, time), answered with JSON errors, and never throws into the loop.

import * as http from 'node:http';
import * as https from 'node:https';
import type * as net from 'node:net';
import type * as Ws from 'ws';
import { lazyRequire } from '../util/lazy-require.js';
import type { ServerConfig } from '../config/types.js';
import { tlsOptions, wantsTls } from '../protocol/tls-context.js';
import { HttpError, field, readJson, sendError, sendJson } from './http-util.js';
import { Router } from './router.js';
import { WebAuth } from './web-auth.js';
import { TokenStore } from './tokens.js';
import { ConsoleSocket, CLOSE, type SocketMode } from './console-socket.js';
import type { DaemonFacts, WebContext } from './web-context.js';
import type { ConsoleRegistry } from '../engine/registry.js';
import type { AccessControl } from '../access/access-control.js';
import type { DaemonLog } from '../logging/daemon-log.js';
import type { ResetRunner } from '../protocol/reset.js';
import * as api from './api-routes.js';
import * as metrics from './metrics.js';
import * as ui from './ui-routes.js';

const SOCKET_PATH = /^\/api\/v1\/consoles\/([^/]+)\/stream$/;
const MODES: SocketMode[] = ['monitor', 'attach', 'join', 'force'];

export interface WebServerOptions {
  registry: ConsoleRegistry;
  access: AccessControl;
  dlog: DaemonLog;
  server: ServerConfig;
  resets: () => ResetRunner;
  daemon: DaemonFacts;
  /** where `tokens` lives when `server tokens=` is not set */
  stateDir: string;
}

/** the ws library, loaded when a web listener is configured */
const ws = lazyRequire<typeof Ws>('ws');

export class WebServer {
  readonly router = new Router();
  readonly auth: WebAuth;
  private readonly tokens: TokenStore;
  private readonly ctx: WebContext;
  private listeners: (http.Server | https.Server)[] = [];
  private readonly wss = new (ws().WebSocketServer)({ noServer: true, maxPayload: 1024 * 1024 });
  private bound: { port: number; loopback: boolean; secure: boolean } | null = null;
  private server: ServerConfig;

  constructor(private readonly o: WebServerOptions) {
    this.server = o.server;
    this.tokens = new TokenStore(this.tokensFile(o.server), (m) => o.dlog.warn(`Tokens: ${m}`));
    this.auth = new WebAuth(o.access, this.tokens, () => this.bound?.secure ?? false);
    this.ctx = {
      registry: o.registry,
      access: o.access,
      dlog: o.dlog,
      auth: this.auth,
      server: () => this.server,
      resets: o.resets,
      daemon: o.daemon,
    };
    this.sessionRoutes();
    api.register(this.router, this.ctx);
    metrics.register(this.router, this.ctx);
    ui.register(this.router, this.ctx);
  }

  private tokensFile(s: ServerConfig): string {
    return s.tokensFile ?? `${this.o.stateDir}/tokens`;
  }

  get port(): number | null {
    return this.bound?.port ?? null;
  }

  /** Listen on `httpport` (loopback: 127.0.0.1 and ::1). Resolves with the port. */
  async listen(): Promise<number> {
    const s = this.server;
    if (s.httpPort === null) throw new Error('no httpport');
    const secure = wantsTls(s);
    if (!secure && !s.loopback) throw new HttpSetupError('server httpport= needs tlscert= and tlskey= (HTTPS) unless loopback=on: plain HTTP is served on loopback only');
    const hosts = s.loopback ? ['127.0.0.1', '::1'] : ['::'];
    let port = s.httpPort;
    const made: (http.Server | https.Server)[] = [];
    try {
      for (const host of hosts) {
        const srv = this.makeServer(secure);
        try {
          port = await listenOn(srv, host, port);
          made.push(srv);
        } catch (e) {
          if (host === '::1' && isNoFamily(e)) continue;
          throw e;
        }
      }
    } catch (e) {
      for (const m of made) m.close();
      throw e;
    }
    this.listeners = made;
    this.bound = { port, loopback: s.loopback, secure };
    this.o.dlog.notice(`Listening on ${secure ? 'HTTPS' : 'HTTP'} port ${port}${s.loopback ? ' (loopback)' : ''}`);
    return port;
  }

  /**
   * A reload: the settings in force change; the certificate is read again;
   * the listener moves (or stops, or starts) if httpport, loopback or TLS
   * changed. What cannot be done is said and the old state kept.
   */
  async reconfigure(s: ServerConfig): Promise<void> {
    this.server = s;
    this.tokens.retarget(this.tokensFile(s));
    const b = this.bound;
    const secure = wantsTls(s);
    if (b && s.httpPort !== null && (b.port === s.httpPort || s.httpPort === 0) && b.loopback === s.loopback && b.secure === secure) {
      if (secure) {
        try {
          const t = tlsOptions(s);
          for (const l of this.listeners) (l as https.Server).setSecureContext(t);
        } catch (e) {
          this.o.dlog.err(`Reload: web listener: ${(e as Error).message}; the certificate in force stays`);
        }
      }
      return;
    }
    if (b) {
      for (const l of this.listeners.splice(0)) l.close();
      this.bound = null;
      this.o.dlog.notice(`Web listener on port ${b.port} closed by a reload`);
    }
    if (s.httpPort !== null) {
      try {
        await this.listen();
      } catch (e) {
        this.o.dlog.err(`Reload: no web listener: ${(e as Error).message}`);
      }
    }
  }

  async close(): Promise<void> {
    for (const c of this.wss.clients) c.close(1001, 'conchd stopping');
    const ls = this.listeners.splice(0);
    this.bound = null;
    await Promise.all(
      ls.map(
        (l) =>
          new Promise<void>((r) => {
            l.close(() => r());
            l.closeAllConnections?.();
          }),
      ),
    );
  }

  private makeServer(secure: boolean): http.Server | https.Server {
    const common: http.ServerOptions = {
      // every request is bounded in time and size
      headersTimeout: 20_000,
      requestTimeout: 60_000,
      maxHeaderSize: 16 * 1024,
      keepAliveTimeout: 5_000,
    };
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => void this.handle(req, res);
    const srv = secure ? https.createServer({ ...common, ...tlsOptions(this.server), requestCert: false, minVersion: 'TLSv1.2' }, handler) : http.createServer(common, handler);
    srv.maxConnections = this.server.maxClients;
    srv.on('upgrade', (req: http.IncomingMessage, sock: net.Socket, head: Buffer) => this.upgrade(req, sock, head));
    srv.on('clientError', (_e, sock: net.Socket) => {
      if (sock.writable) sock.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
      else sock.destroy();
    });
    srv.on('tlsClientError', (_e: Error, sock: net.Socket) => sock.destroy());
    return srv;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    res.setHeader('x-content-type-options', 'nosniff');
    res.setHeader('referrer-policy', 'no-referrer');
    res.setHeader('x-frame-options', 'DENY');
    try {
      const url = new URL(req.url ?? '/', 'http://conchd');
      const { route, params } = this.router.match(req.method ?? 'GET', url.pathname);
      let identity = null;
      if (!route.opts.public) {
        const reading = req.method === 'GET' || req.method === 'HEAD';
        identity = this.auth.identify(req, reading ? 'read' : 'change');
        if (!identity) throw new HttpError(401, 'log in first (POST /api/v1/login) or send a bearer token', { 'www-authenticate': 'Bearer' });
      }
      await route.handler({ req, res, url, params, identity });
    } catch (e) {
      if (e instanceof HttpError) return sendError(res, e);
      this.o.dlog.err(`Web request ${req.method} ${(req.url ?? '').slice(0, 200)}: ${(e as Error).stack ?? String(e)}`);
      sendError(res, new HttpError(500, 'internal error (see the daemon log)'));
    }
  }

  /** GET /api/v1/session, POST /api/v1/login, POST /api/v1/logout */
  private sessionRoutes(): void {
    const r = this.router;
    r.add(
      'GET',
      '/api/v1/session',
      ({ req, res }) => {
        let id = null;
        try {
          id = this.auth.identify(req, 'read');
        } catch {
          id = null;
        }
        sendJson(res, 200, {
          user: id?.user ?? null,
          auth: id?.auth ?? null,
          loginRequired: id === null,
          csrf: this.auth.csrfOf(req),
        });
      },
      { public: true },
    );
    r.add(
      'POST',
      '/api/v1/login',
      async ({ req, res }) => {
        const body = await readJson(req);
        const user = field(body, 'user', 128);
        const password = field(body, 'password', 1024);
        const s = await this.auth.login(req, user, password);
        sendJson(res, 200, { user: s.user, csrf: s.csrf }, { 'set-cookie': s.cookie });
      },
      { public: true },
    );
    r.add(
      'POST',
      '/api/v1/logout',
      ({ req, res }) => {
        sendJson(res, 200, { ok: true }, { 'set-cookie': this.auth.logout(req) });
      },
      { public: true },
    );
  }

  /** A console's WebSocket: /api/v1/consoles/{name}/stream?mode=monitor|attach|join|force */
  private upgrade(req: http.IncomingMessage, sock: net.Socket, head: Buffer): void {
    const reject = (status: number, msg: string): void => {
      sock.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n${JSON.stringify({ error: msg, status })}`);
    };
    try {
      const url = new URL(req.url ?? '/', 'http://conchd');
      const m = SOCKET_PATH.exec(url.pathname);
      if (!m) return reject(404, 'no WebSocket here');
      const name = decodeURIComponent(m[1]!);
      const mode = (url.searchParams.get('mode') ?? 'attach') as SocketMode;
      if (!MODES.includes(mode)) return reject(400, `mode must be one of ${MODES.join(', ')}`);
      const identity = this.auth.identify(req, 'socket');
      if (!identity) return reject(401, 'log in first');
      const c = this.o.registry.get(name);
      // a console the user may not monitor is not there for it
      if (!c || !this.o.access.allows(identity, c.name, 'monitor')) return reject(404, `no console named ${JSON.stringify(name.slice(0, 100))}`);
      this.wss.handleUpgrade(req, sock, head, (ws) => {
        new ConsoleSocket(ws, identity, c, {
          access: this.o.access,
          dlog: this.o.dlog,
          bufferBytes: this.server.clientBufferBytes,
          elsewhere: (name) => elsewhere(this.o.daemon, name),
          history: this.ctx.daemon.cluster ?? null,
        }).start(mode);
      });
    } catch (e) {
      if (e instanceof HttpError) return reject(e.status, e.message);
      this.o.dlog.err(`Web socket: ${(e as Error).stack ?? String(e)}`);
      reject(500, 'internal error');
    }
  }
}

export class HttpSetupError extends Error {}

export { CLOSE };

function listenOn(srv: net.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen({ host, port, exclusive: true, ipv6Only: host === '::1' }, () => {
      srv.off('error', reject);
      resolve((srv.address() as net.AddressInfo).port);
    });
  });
}

function isNoFamily(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'EAFNOSUPPORT' || code === 'EADDRNOTAVAIL';
}

/** a cluster node's refusal of a console another node runs: where to find it (the web terminal is not proxied) */
function elsewhere(d: DaemonFacts, name: string): string | null {
  const cl = d.cluster;
  if (!cl) return null;
  const o = cl.ownerOf(name);
  if (o?.node === cl.node) return null;
  if (!o) return `Console [${name}] is run by no node of the cluster right now (a handover is under way); try again`;
  return `Console [${name}] is run by node ${o.node} (${o.addr ?? 'address unknown'}); open it on that node's web terminal`;
}

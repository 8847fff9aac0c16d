// One new client connection up to the start of its session: greeting,
// request, console matching and validation, and the OK or ERROR reply.
//
// Better than conmand: the whole handshake has a deadline (a silent client is
// dropped and holds nothing), lines are read in chunks yet the bytes a client
// sent right after its request line become session input, and the session
// starts at once. Console matching is asynchronous (sliced, budgeted, see
// match.ts) and stops when the client goes; a finished connection (a QUERY
// answered, an ERROR sent) is closed by the server shortly after its reply
// is flushed, so an idle client cannot hold a descriptor.

import type { Cluster } from '../cluster/cluster.js';
import { proxyToOwner } from '../cluster/proxy.js';
import { gatherSearch } from '../cluster/gather.js';
import type { Writable } from 'node:stream';
import type * as net from 'node:net';
import type { Console } from '../engine/console.js';
import type { ConsoleRegistry } from '../engine/registry.js';
import type { ServerConfig } from '../config/types.js';
import type { DaemonLog } from '../logging/daemon-log.js';
import { ErrCode, MSG, busyLine, errorLine, okLine } from './messages.js';
import { matchConsoles } from './match.js';
import { parseGreeting, parseRequest, type Greeting, type Request } from './request.js';
import { ClientSession } from './session.js';
import { statusLines } from './status-text.js';
import type { Identity, Transport } from '../engine/session.js';
import type { AccessControl } from '../access/access-control.js';
import type { Right } from '../access/rights.js';
import type { ResetRunner } from './reset.js';
import { parseQuery, PatternError, QueryError } from '../search/query.js';
import { searchSlot, TOO_MANY } from '../search/search.js';
import { serveSearch, targetOf } from '../search/serve.js';
import { prepareHistory, prepareHistoryLog } from '../web/log-history-serve.js';

/** conman HEAD's MAX_SOCK_LINE */
export const MAX_LINE = 131072;
/** how long a final reply (ERROR, or QUERY's OK) may take to reach a client before the socket is destroyed */
const REPLY_DEADLINE_MS = 10_000;
/** after the final reply is flushed to the kernel: a moment for the client to read it before we close */
const CLOSE_GRACE_MS = 1000;

export interface ProtocolContext {
  registry: ConsoleRegistry;
  server: ServerConfig;
  dlog: DaemonLog;
  resets: ResetRunner;
  access: AccessControl;
  /** a session has started (the server tracks it for close()) */
  attached(s: ClientSession, sock: net.Socket): void;
  /** this daemon as a cluster node: consoles another node runs are proxied to it */
  cluster?: Cluster | null;
}

/** How this connection came in: the plain conman port, or TLS with what its certificate proved. */
export interface Arrival {
  transport: Transport;
  /** a client certificate's verified CN (TLS); null: none presented */
  certUser: string | null;
  /** a certificate was presented but not verified: why (the client is refused) */
  certError: string | null;
}

/** What notices call the client's host: conmand shows the short host name. */
export function peerHost(addr: string | undefined): string {
  if (!addr) return 'unknown';
  const a = addr.startsWith('::ffff:') ? addr.slice(7) : addr;
  if (a === '::1' || a.startsWith('127.')) return 'localhost';
  return a;
}

export class Handshake {
  private buf: Buffer = Buffer.alloc(0);
  private stage: 'greeting' | 'auth' | 'request' | 'matching' | 'done' = 'greeting';
  /** who the client proved to be (set once authenticated) */
  private id: Identity | null = null;
  /** the client half-closed while it was being authenticated */
  private endedInAuth = false;
  /** stops console matching when the client goes or the server shuts down */
  private readonly matching = new AbortController();
  /** the client half-closed while its consoles were being matched */
  private ended = false;
  private greeting: Greeting | null = null;
  /** the request line as it came (a cluster node passes it on to the console's owner) */
  private requestLine: Buffer = Buffer.alloc(0);
  private timer: NodeJS.Timeout | null = null;
  private readonly host: string;
  /** `ip:port` for log lines */
  private readonly addr: string;

  constructor(
    private readonly sock: net.Socket,
    private readonly ctx: ProtocolContext,
    private readonly arrival: Arrival = { transport: 'conman', certUser: null, certError: null },
  ) {
    const ip = sock.remoteAddress ?? 'unknown';
    this.host = peerHost(ip);
    this.addr = `${ip.startsWith('::ffff:') ? ip.slice(7) : ip}:${sock.remotePort ?? 0}`;
    sock.on('data', this.onData);
    sock.on('end', this.onEnd);
    sock.on('error', this.onError);
    sock.on('close', this.onClose);
    this.startClock();
  }

  private startClock(): void {
    const secs = this.ctx.server.handshakeTimeout;
    if (secs > 0 && this.timer === null) {
      this.timer = setTimeout(() => this.timedOut(secs), secs * 1000);
      this.timer.unref();
    }
  }

  /** Server shutdown before the session started. */
  abort(): void {
    this.matching.abort();
    this.finish();
    this.sock.destroy();
  }

  private readonly onData = (chunk: Buffer): void => {
    try {
      this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
      // while authenticating or matching, bytes wait; hold off a flood
      if ((this.stage === 'matching' || this.stage === 'auth') && this.buf.length > MAX_LINE) this.sock.pause();
      while (this.stage === 'greeting' || this.stage === 'request') {
        const nl = this.buf.indexOf(0x0a);
        if (nl < 0) {
          if (this.buf.length > MAX_LINE) {
            this.fail(ErrCode.BAD_REQUEST, MSG.lineTooLong(this.stage, MAX_LINE));
          }
          return;
        }
        const line = this.buf.subarray(0, nl + 1);
        this.buf = this.buf.subarray(nl + 1);
        this.line(line);
      }
    } catch (e) {
      this.ctx.dlog.err(`Client <${this.addr}>: handshake: ${(e as Error).stack ?? String(e)}`);
      this.abort();
    }
  };

  /** The client half-closed: a last line without its newline still counts. */
  private readonly onEnd = (): void => {
    if (this.stage === 'done') return;
    if (this.stage === 'auth') {
      this.endedInAuth = true;
      return;
    }
    // a client may half-close after its request and still read the answer
    if (this.stage === 'matching') {
      this.ended = true;
      return;
    }
    if (this.buf.length > 0) {
      this.onData(Buffer.from('\n'));
      if ((this.stage as string) === 'done') return;
      if ((this.stage as string) === 'matching') {
        this.ended = true;
        return;
      }
    }
    this.ctx.dlog.info(`Connection terminated by <${this.addr}> during handshake`);
    this.abort();
  };

  private readonly onError = (e: Error): void => {
    this.ctx.dlog.debug(`Client <${this.addr}>: ${e.message}`);
  };

  private readonly onClose = (): void => {
    if (this.stage === 'matching') this.ctx.dlog.notice(`Client ${this.peer} left during console matching`);
    this.matching.abort();
    this.finish();
  };

  private timedOut(secs: number): void {
    this.timer = null;
    if (this.stage === 'done') return;
    this.ctx.dlog.notice(`Client <${this.addr}> dropped: no complete request within ${secs}s`);
    this.abort();
  }

  private line(line: Buffer): void {
    if (this.stage === 'greeting') {
      const g = parseGreeting(line);
      if (!g.ok) return this.fail(ErrCode.BAD_REQUEST, g.error);
      this.greeting = g.value;
      this.stage = 'auth';
      this.authenticate(g.value).catch((e: unknown) => {
        this.ctx.dlog.err(`Client <${this.addr}>: authentication: ${(e as Error).stack ?? String(e)}`);
        this.abort();
      });
      return;
    }
    const r = parseRequest(line);
    if (!r.ok) return this.fail(ErrCode.BAD_REQUEST, r.error);
    this.requestLine = Buffer.from(line);
    // the request is complete: the deadline is met, matching has a budget of its own
    this.stage = 'matching';
    this.stopClock();
    this.request(r.value).catch((e: unknown) => {
      this.ctx.dlog.err(`Client <${this.addr}>: request: ${(e as Error).stack ?? String(e)}`);
      this.abort();
    });
  }

  /** Who is this (access-control.ts): then the greeting's OK, or ERROR CODE=4. */
  private async authenticate(g: Greeting): Promise<void> {
    const address = this.addr.slice(0, this.addr.lastIndexOf(':'));
    const port = this.sock.remotePort ?? 0;
    const { transport, certUser, certError } = this.arrival;
    if (certError !== null) return this.fail(ErrCode.AUTHENTICATE, `Authentication failed: client certificate not accepted (${certError})`);
    // a password check may wait behind the throttle: the deadline starts again after it
    this.stopClock();
    const r = await this.ctx.access.authenticate({ transport, address, port, user: g.user, password: g.password, certUser }, this.matching.signal);
    if (this.stage !== 'auth' || this.sock.destroyed) return;
    this.startClock();
    if (!r.ok) return this.fail(ErrCode.AUTHENTICATE, r.message);
    this.id = { user: r.user, host: this.host, tty: g.tty, address, port, groups: r.groups, auth: r.auth, transport };
    this.ctx.access.record(this.id, 'connect', 'ok');
    this.stage = 'request';
    this.sock.write('OK\n');
    if (this.sock.isPaused()) this.sock.resume();
    // lines that came meanwhile, then a half-close that came meanwhile
    this.onData(Buffer.alloc(0));
    if (this.endedInAuth && this.stage === 'request') this.onEnd();
  }

  private get peer(): string {
    return `<${this.id?.user ?? this.greeting?.user ?? 'unknown'}@${this.addr}>`;
  }

  private async request(req: Request): Promise<void> {
    if (req.command === 'HISTORY') return this.history(req, this.id!);
    const m = await matchConsoles(this.ctx.registry, req.patterns, req.regex, this.matching.signal);
    if (m === null || this.stage !== 'matching' || this.sock.destroyed) return;
    if (!m.ok) return this.fail(m.code, m.error);
    const id = this.id!;
    const access = this.ctx.access;
    // a console the user may not even monitor is not there for it
    const found = access.enforcing ? m.consoles.filter((c) => access.allows(id, c.name, 'monitor')) : m.consoles;
    if (found.length === 0) return this.fail(ErrCode.NO_CONSOLES, MSG.noConsoles);
    if (req.command === 'SEARCH') return this.search(req, found, id);
    if (req.command !== 'QUERY' && found.length > 1 && !(req.command === 'CONNECT' && req.broadcast)) {
      return this.fail(
        ErrCode.TOO_MANY_CONSOLES,
        MSG.tooMany(found.length),
        found.map((c) => `${c.name}\n`),
      );
    }
    // one console is a plain R/W session, whatever the client asked
    if (found.length === 1) req.broadcast = false;
    if (req.command === 'CONNECT') {
      const need: Right = req.broadcast ? 'broadcast' : req.force ? 'force' : 'attach';
      const refused = found.find((c) => !access.allows(id, c.name, need));
      if (refused) {
        access.denied(id, need, { console: refused.name });
        return this.fail(ErrCode.AUTHENTICATE, MSG.denied(id.user, need, refused.name));
      }
    }
    const cluster = this.ctx.cluster;
    if (cluster && req.command !== 'QUERY' && found.some((c) => !cluster.runs(c.name))) return this.proxy(cluster, found, id);
    if (req.command === 'CONNECT' && !req.force && !req.join) {
      const busy = found.filter((c) => c.writerCount > 0);
      if (busy.length > 0) return this.fail(ErrCode.BUSY_CONSOLES, MSG.busy(busy.length), busyLines(busy));
    }
    // OPTION=RESET tells the client &R does something: only if the rules let this user reset
    const ok = okLine(
      found.map((c) => c.name),
      this.ctx.resets.enabled && (!access.enforcing || found.some((c) => access.allows(id, c.name, 'reset'))),
    );
    this.finish();
    if (req.command === 'QUERY') {
      this.ctx.dlog.debug(`Client ${this.peer} queried ${found.length} consoles`);
      access.record(id, 'query', 'ok', { consoles: found.map((c) => c.name) });
      this.endAndClose(req.status ? Buffer.concat([ok, Buffer.from(this.ctx.cluster ? statusLines(found, (n) => this.ctx.cluster!.ownerOf(n), this.ctx.cluster.node) : statusLines(found), 'utf8')]) : ok);
      return;
    }
    this.sock.write(ok);
    const early = this.buf;
    this.buf = Buffer.alloc(0);
    const s = new ClientSession(this.sock, id, {
      mode: req.command === 'MONITOR' ? 'monitor' : req.broadcast ? 'broadcast' : 'connect',
      consoles: found,
      quiet: req.quiet,
      force: req.force,
      join: req.join,
      bufferBytes: this.ctx.server.clientBufferBytes,
      dlog: this.ctx.dlog,
      resets: this.ctx.resets,
      access,
      peer: this.peer,
      history: this.ctx.cluster,
    });
    this.ctx.attached(s, this.sock);
    s.start(early);
    if (this.sock.isPaused()) this.sock.resume();
    // the client's half-close came while matching: the session must see it too
    if (this.ended) this.sock.emit('end');
  }

  /**
   * Consoles another cluster node runs: the client is connected through to
   * that node (src/cluster/proxy.ts), which answers the request itself. All
   * of them on one node, or a clear refusal naming the nodes.
   */
  private proxy(cluster: Cluster, found: Console[], id: Identity): void {
    const names = found.map((c) => c.name);
    const where = found.map((c) => ({ c: c.name, o: cluster.ownerOf(c.name) }));
    const none = where.find((w) => w.o === null);
    if (this.greeting?.via) return this.fail(ErrCode.NO_CONSOLES, `Console [${names[0]}] is not run by node ${cluster.node} (asked through node ${this.greeting.via}); try again`);
    if (none) return this.fail(ErrCode.NO_CONSOLES, `Console [${none.c}] has no owner in the cluster right now (a handover is under way); try again`);
    const nodes = [...new Set(where.map((w) => w.o!.node))];
    if (nodes.length > 1 || nodes[0] === cluster.node) return this.fail(ErrCode.TOO_MANY_CONSOLES, `The consoles asked for are run by different nodes (${nodes.join(', ')}); ask each node for its own`);
    const owner = where[0]!.o!;
    if (!owner.addr) return this.fail(ErrCode.NO_CONSOLES, `Console [${names[0]}] is run by node ${owner.node}, whose address is unknown; try again`);
    this.finish();
    const early = this.buf;
    this.buf = Buffer.alloc(0);
    this.sock.pause();
    proxyToOwner(this.sock, { addr: owner.addr, id, via: cluster.node, requestLine: this.requestLine, early }).then(
      () => this.ctx.dlog.info(`Client ${this.peer} passed on to node ${owner.node} (${owner.addr}) for ${names.map((n) => `[${n}]`).join(' ')}`),
      (e: unknown) => {
        this.ctx.dlog.notice(`Client ${this.peer} request failed: ${(e as Error).message}`);
        if (!this.sock.destroyed) this.endAndClose(errorLine(ErrCode.LOCAL, `Console [${names[0]}] is run by node ${owner.node}, which could not be reached`));
      },
    );
  }

  /**
   * conch's SEARCH (docs/search.md): the OK line names the consoles searched
   * (those the user may monitor), then the results follow as JSON lines
   * (search/serve.ts) and the server closes when they are done; with
   * OPTION=FOLLOW they go on until the client leaves.
   */
  private search(req: Request, found: Console[], id: Identity): void {
    let q;
    try {
      q = parseQuery(req.search!);
    } catch (e) {
      if (e instanceof PatternError) return this.fail(ErrCode.BAD_REGEX, e.message);
      if (e instanceof QueryError) return this.fail(ErrCode.BAD_REQUEST, `Invalid search: ${e.message}`);
      throw e;
    }
    const slot = searchSlot(q.follow);
    if (!slot) return this.fail(ErrCode.BAD_REQUEST, `Search refused: ${TOO_MANY}`);
    const names = found.map((c) => c.name);
    this.ctx.access.record(id, 'monitor', 'ok', { consoles: names, detail: `search /${q.pattern.source}/${q.follow ? ' (follow)' : ''}` });
    this.finish();
    const sock = this.sock;
    const ac = new AbortController();
    sock.once('close', () => ac.abort());
    sock.on('error', () => ac.abort());
    sock.resume(); // what the client sends now is read and dropped
    sock.write(okLine(names));
    const run = (into: Writable): Promise<void> => serveSearch(into, found.map(targetOf), q, slot, ac.signal, { dlog: this.ctx.dlog, peer: this.peer });
    // in a cluster a console's history is split between the nodes that ran it: ask every live node (not again when asked by one)
    const cluster = this.ctx.cluster;
    const peers = cluster && !this.greeting?.via ? cluster.peers() : [];
    const done =
      peers.length > 0
        ? gatherSearch({ peers, id, via: cluster!.node, requestLine: this.requestLine, limit: q.bounds.limit, follow: q.follow }, run, sock, ac.signal)
        : run(sock);
    void done.then(() => {
      if (!sock.destroyed) this.endAndClose(Buffer.alloc(0));
    });
  }

  /**
   * conch's HISTORY (src/web/log-history-serve.ts): one console, named
   * exactly, that the user may monitor; the OK line, then the index or the
   * bytes, then the server closes. The other nodes of a cluster ask it of
   * this one to gather a console's history (src/cluster/history.ts).
   */
  private history(req: Request, id: Identity): void {
    const name = req.patterns.length === 1 ? req.patterns[0]! : null;
    if (name === null) return this.fail(ErrCode.BAD_REQUEST, 'Invalid request: HISTORY names one console');
    const access = this.ctx.access;
    const c = this.ctx.registry.get(name);
    // a console the user may not even monitor is not there for it
    if (!c || (access.enforcing && !access.allows(id, c.name, 'monitor'))) return this.fail(ErrCode.NO_CONSOLES, MSG.noConsoles);
    const ac = new AbortController();
    this.sock.once('close', () => ac.abort());
    // LOG: the history itself, gathered from the cluster's live nodes unless a node asks (then this node's part only)
    const cluster = this.ctx.cluster;
    const nodes = cluster && !this.greeting?.via ? cluster : { node: cluster?.node ?? 'this node', peers: () => [] };
    const h = req.history!;
    const prepared = h.form === 'log' ? prepareHistoryLog(nodes, { id, via: nodes.node, console: c.name }, c, h, this.ctx.server.logSymlinks, ac.signal) : prepareHistory(c, h, this.ctx.server.logSymlinks);
    void prepared.then(
      (a) => {
        const sock = this.sock;
        if (this.stage !== 'matching' || sock.destroyed) {
          // the client went: an open file is closed by a write that fails
          if (a.ok) void a.write(sock).catch(() => {});
          return;
        }
        if (!a.ok) return this.fail(ErrCode.BAD_REQUEST, `History refused: ${a.error}`);
        access.record(id, 'monitor', 'ok', { console: c.name, detail: `${a.what}${this.greeting?.via ? ` for node ${this.greeting.via}` : ''}` });
        this.finish();
        sock.resume(); // what the client sends now is read and dropped
        sock.write(okLine([c.name]));
        a.write(sock).then(
          () => this.endAndClose(Buffer.alloc(0)),
          () => sock.destroy(),
        );
      },
      (e: unknown) => {
        this.ctx.dlog.err(`Client ${this.peer}: history of [${c.name}]: ${(e as Error).stack ?? String(e)}`);
        this.fail(ErrCode.LOCAL, `History of console [${c.name}] could not be read`);
      },
    );
  }

  /** ERROR line (plus conman's plain-text lines), then close. */
  private fail(code: number, msg: string, extra: string[] = []): void {
    this.ctx.dlog.notice(`Client ${this.peer} request failed: ${msg}`);
    this.finish();
    this.endAndClose(Buffer.concat([errorLine(code, msg), Buffer.from(extra.join(''), 'utf8')]));
  }

  /**
   * The last reply: send it, half-close, and close for good a moment after
   * it is flushed (or at the deadline if the client does not read). What the
   * client still sends is read and dropped, so the close is a FIN, not a
   * reset that could destroy the reply in the client's receive buffer.
   */
  private endAndClose(reply: Buffer): void {
    const sock = this.sock;
    sock.resume();
    const hard = setTimeout(() => sock.destroy(), REPLY_DEADLINE_MS).unref();
    sock.once('close', () => clearTimeout(hard));
    sock.end(reply, () => setTimeout(() => sock.destroy(), CLOSE_GRACE_MS).unref());
  }

  private stopClock(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** The handshake is over (either way): stop the clock, hand the socket on. */
  private finish(): void {
    this.stage = 'done';
    this.stopClock();
    this.sock.off('data', this.onData);
    this.sock.off('end', this.onEnd);
    this.sock.off('close', this.onClose);
  }
}

/** conman's lines after `ERROR CODE=7`: one per writer of each busy console. */
function busyLines(busy: Console[]): string[] {
  const lines: string[] = [];
  for (const c of busy) {
    for (const l of c.clients()) {
      if (l.mode !== 'monitor') lines.push(busyLine(c.name, l.identity, l.mode === 'broadcast', l.idleMs));
    }
  }
  return lines;
}

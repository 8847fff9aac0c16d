// One new client connection up to the start of its session: greeting,
// request, console matching and validation, and the OK or ERROR reply.
//
// Better than conmand: the whole handshake has a deadline (a silent client is
// dropped and holds nothing), lines are read in chunks yet the bytes a client
// sent right after its request line become session input, and the session
// starts at once.

import type * as net from 'node:net';
import type { Console } from '../engine/console.js';
import type { ConsoleRegistry } from '../engine/registry.js';
import type { ServerConfig } from '../config/types.js';
import type { DaemonLog } from '../logging/daemon-log.js';
import { ErrCode, MSG, busyLine, errorLine, okLine } from './messages.js';
import { matchConsoles } from './match.js';
import { parseGreeting, parseRequest, type Greeting, type Request } from './request.js';
import { ClientSession, type Attached } from './session.js';
import type { ResetRunner } from './reset.js';

/** conman HEAD's MAX_SOCK_LINE */
export const MAX_LINE = 131072;
/** how long an error reply may take to reach a client before the socket is destroyed */
const ERROR_GRACE_MS = 10_000;

export interface ProtocolContext {
  registry: ConsoleRegistry;
  server: ServerConfig;
  dlog: DaemonLog;
  resets: ResetRunner;
  /** a session has started (the server tracks it for close()) */
  attached(s: ClientSession, sock: net.Socket): void;
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
  private stage: 'greeting' | 'request' | 'done' = 'greeting';
  private greeting: Greeting | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly host: string;
  /** `ip:port` for log lines */
  private readonly addr: string;

  constructor(
    private readonly sock: net.Socket,
    private readonly ctx: ProtocolContext,
  ) {
    const ip = sock.remoteAddress ?? 'unknown';
    this.host = peerHost(ip);
    this.addr = `${ip.startsWith('::ffff:') ? ip.slice(7) : ip}:${sock.remotePort ?? 0}`;
    sock.on('data', this.onData);
    sock.on('end', this.onEnd);
    sock.on('error', this.onError);
    sock.on('close', this.onClose);
    const secs = ctx.server.handshakeTimeout;
    if (secs > 0) {
      this.timer = setTimeout(() => this.timedOut(secs), secs * 1000);
      this.timer.unref();
    }
  }

  /** Server shutdown before the session started. */
  abort(): void {
    this.finish();
    this.sock.destroy();
  }

  private readonly onData = (chunk: Buffer): void => {
    try {
      this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
      while (this.stage !== 'done') {
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
    if (this.buf.length > 0) {
      this.onData(Buffer.from('\n'));
      if ((this.stage as string) === 'done') return;
    }
    this.ctx.dlog.info(`Connection terminated by <${this.addr}> during handshake`);
    this.abort();
  };

  private readonly onError = (e: Error): void => {
    this.ctx.dlog.debug(`Client <${this.addr}>: ${e.message}`);
  };

  private readonly onClose = (): void => {
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
      this.stage = 'request';
      this.sock.write('OK\n');
      return;
    }
    const r = parseRequest(line);
    if (!r.ok) return this.fail(ErrCode.BAD_REQUEST, r.error);
    this.request(r.value);
  }

  private get peer(): string {
    return `<${this.greeting?.user ?? 'unknown'}@${this.addr}>`;
  }

  private request(req: Request): void {
    const m = matchConsoles(this.ctx.registry, req.patterns, req.regex);
    if (!m.ok) return this.fail(ErrCode.BAD_REGEX, m.regexError);
    const found = m.consoles;
    if (found.length === 0) return this.fail(ErrCode.NO_CONSOLES, MSG.noConsoles);
    if (req.command !== 'QUERY' && found.length > 1 && !(req.command === 'CONNECT' && req.broadcast)) {
      return this.fail(
        ErrCode.TOO_MANY_CONSOLES,
        MSG.tooMany(found.length),
        found.map((c) => `${c.name}\n`),
      );
    }
    // one console is a plain R/W session, whatever the client asked
    if (found.length === 1) req.broadcast = false;
    if (req.command === 'CONNECT' && !req.force && !req.join) {
      const busy = found.filter((c) => c.writers.size > 0);
      if (busy.length > 0) return this.fail(ErrCode.BUSY_CONSOLES, MSG.busy(busy.length), busyLines(busy));
    }
    const ok = okLine(
      found.map((c) => c.name),
      this.ctx.resets.enabled,
    );
    this.finish();
    if (req.command === 'QUERY') {
      this.ctx.dlog.debug(`Client ${this.peer} queried ${found.length} consoles`);
      this.sock.end(ok);
      return;
    }
    this.sock.write(ok);
    const early = this.buf;
    this.buf = Buffer.alloc(0);
    const who = { user: this.greeting!.user, host: this.host, tty: this.greeting!.tty };
    const s = new ClientSession(this.sock, who, {
      mode: req.command === 'MONITOR' ? 'monitor' : req.broadcast ? 'broadcast' : 'connect',
      consoles: found,
      quiet: req.quiet,
      force: req.force,
      join: req.join,
      bufferBytes: this.ctx.server.clientBufferBytes,
      dlog: this.ctx.dlog,
      resets: this.ctx.resets,
      peer: this.peer,
    });
    this.ctx.attached(s, this.sock);
    s.start(early);
  }

  /** ERROR line (plus conman's plain-text lines), then close. */
  private fail(code: number, msg: string, extra: string[] = []): void {
    this.ctx.dlog.notice(`Client ${this.peer} request failed: ${msg}`);
    this.finish();
    this.sock.end(Buffer.concat([errorLine(code, msg), Buffer.from(extra.join(''), 'utf8')]));
    setTimeout(() => this.sock.destroy(), ERROR_GRACE_MS).unref();
  }

  /** The handshake is over (either way): stop the clock, hand the socket on. */
  private finish(): void {
    this.stage = 'done';
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.sock.off('data', this.onData);
    this.sock.off('end', this.onEnd);
    this.sock.off('close', this.onClose);
  }
}

/** conman's lines after `ERROR CODE=7`: one per writer of each busy console. */
function busyLines(busy: Console[]): string[] {
  const lines: string[] = [];
  for (const c of busy) {
    for (const w of c.writers) {
      const a = w as Partial<Attached>;
      if (a.who && a.idleMs) lines.push(busyLine(c.name, a.who, !!a.broadcast, a.idleMs.call(w)));
    }
  }
  return lines;
}

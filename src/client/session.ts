// An attached CONNECT/MONITOR session: raw terminal, keyboard → daemon through
// the escape reader, daemon → screen (and -l log). Ends when the daemon
// closes, on SIGTERM or when the terminal goes away; the terminal is
// restored before the promise settles. SIGHUP/SIGINT/SIGQUIT (and SIGPIPE) are ignored
// while attached (in raw mode ^C goes to the console anyway).

import type * as net from 'node:net';
import { EscapeReader, ESC_BYTE } from './escapes.js';
import { FatalError, sysText } from './errors.js';
import { escName, escapeHelp, infoLine, statusLine, type SessionView } from './messages.js';
import type { SessionLog } from './session-log.js';
import type { Terminal } from './tty.js';
import { hostPort } from './args.js';

export interface SessionParams {
  socket: net.Socket;
  leftover: Buffer; // bytes that arrived with the OK line
  alreadyEnded: boolean; // daemon closed before the session began
  view: SessionView;
  escape: number;
  log: SessionLog;
  term: Terminal;
}

// SIGPIPE needs nothing: Node ignores it already (and removing a listener would reset it to SIG_DFL).
const IGNORED = ['SIGHUP', 'SIGINT', 'SIGQUIT'] as const;

export function runSession(p: SessionParams): Promise<void> {
  return new Promise<void>((resolve, reject) => new Attached(p, resolve, reject).start());
}

const out = (s: string | Buffer): void => {
  process.stdout.write(typeof s === 'string' ? Buffer.from(s, 'latin1') : s);
};

/** One attached session, from raw mode on to the terminal restored. */
class Attached {
  private closedByClient = false;
  private finished = false;
  private readonly reader: EscapeReader;
  private readonly ignore = (): void => {};
  private readonly onTerm = (): void => this.finish();
  private readonly onKeys = (chunk: Buffer): void => {
    if (this.finished) return;
    try {
      this.reader.feed(chunk);
    } catch (e) {
      this.finish(e instanceof Error ? e : new Error(String(e)));
    }
  };
  private readonly fromDaemon = (d: Buffer): void => {
    out(d);
    try {
      this.p.log.write(d);
    } catch (e) {
      this.finish(e as Error);
    }
  };

  constructor(
    private readonly p: SessionParams,
    private readonly resolve: () => void,
    private readonly reject: (e: Error) => void,
  ) {
    this.reader = this.escapes();
  }

  start(): void {
    const { socket, view, term } = this.p;
    for (const s of IGNORED) process.on(s, this.ignore);
    process.on('SIGTERM', this.onTerm);
    term.enterRaw();
    out(statusLine(view, 'opened'));
    if (this.p.leftover.length) this.fromDaemon(this.p.leftover);
    if (this.p.alreadyEnded) return this.finish();

    socket.on('data', this.fromDaemon);
    socket.on('end', () => this.finish());
    socket.on('close', () => this.finish());
    socket.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') return this.finish();
      this.finish(new FatalError(`Unable to read from <${hostPort(view.host, view.port)}>: ${sysText(e)}`));
    });
    process.stdin.on('data', this.onKeys);
    process.stdin.on('end', () => this.finish());
    process.stdin.on('error', () => this.finish());
    process.stdin.resume();
  }

  /** What each local escape does. */
  private escapes(): EscapeReader {
    const { view, term, escape } = this.p;
    return new EscapeReader(escape, view, {
      send: (b) => this.send(b),
      close: () => {
        out(escName(escape) + '.');
        out(statusLine(view, 'closed'));
        this.closedByClient = true;
        this.p.socket.end();
      },
      help: () => out(escapeHelp(view, escape)),
      info: () => out(infoLine(view)),
      toggleEcho: () => {
        view.echo = !view.echo;
        term.setEcho(view.echo);
      },
      suspend: () => {
        out(escName(escape) + 'Z');
        this.wire('Z');
        if (this.finished) return;
        out(statusLine(view, 'suspended'));
        term.suspend();
        out(statusLine(view, 'resumed'));
        this.wire('Z');
      },
    });
  }

  private send(bytes: Buffer): void {
    // After `&.` our side is shut: conman's next write gets EPIPE and ends.
    if (this.closedByClient) return this.finish();
    this.p.socket.write(bytes);
  }

  private wire(letter: string): void {
    this.send(Buffer.from([ESC_BYTE, letter.charCodeAt(0)]));
  }

  private finish(err?: Error): void {
    if (this.finished) return;
    this.finished = true;
    this.p.socket.destroy();
    process.stdin.removeListener('data', this.onKeys);
    process.stdin.pause();
    // conman also says "terminated by server" when it ends on SIGTERM or stdin EOF.
    if (!this.closedByClient && !err) out(statusLine(this.p.view, 'terminated by server'));
    this.p.term.restore();
    for (const s of IGNORED) process.removeListener(s, this.ignore);
    process.removeListener('SIGTERM', this.onTerm);
    if (err) this.reject(err);
    else this.resolve();
  }
}

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
  const { socket, view, log, term } = p;
  const out = (s: string | Buffer): void => {
    process.stdout.write(typeof s === 'string' ? Buffer.from(s, 'latin1') : s);
  };
  const where = hostPort(view.host, view.port);

  return new Promise<void>((resolve, reject) => {
    let closedByClient = false;
    let finished = false;
    const ignore = (): void => {};

    const finish = (err?: Error): void => {
      if (finished) return;
      finished = true;
      socket.destroy();
      process.stdin.removeListener('data', onKeys);
      process.stdin.pause();
      // conman also says "terminated by server" when it ends on SIGTERM or stdin EOF.
      if (!closedByClient && !err) out(statusLine(view, 'terminated by server'));
      term.restore();
      for (const s of IGNORED) process.removeListener(s, ignore);
      process.removeListener('SIGTERM', onTerm);
      if (err) reject(err);
      else resolve();
    };
    const onTerm = (): void => finish();

    const send = (bytes: Buffer): void => {
      // After `&.` our side is shut: conman's next write gets EPIPE and ends.
      if (closedByClient) return finish();
      socket.write(bytes);
    };
    const wire = (letter: string): void => send(Buffer.from([ESC_BYTE, letter.charCodeAt(0)]));

    const reader = new EscapeReader(p.escape, view, {
      send,
      close: () => {
        out(escName(p.escape) + '.');
        out(statusLine(view, 'closed'));
        closedByClient = true;
        socket.end();
      },
      help: () => out(escapeHelp(view, p.escape)),
      info: () => out(infoLine(view)),
      toggleEcho: () => {
        view.echo = !view.echo;
        term.setEcho(view.echo);
      },
      suspend: () => {
        out(escName(p.escape) + 'Z');
        wire('Z');
        if (finished) return;
        out(statusLine(view, 'suspended'));
        term.suspend();
        out(statusLine(view, 'resumed'));
        wire('Z');
      },
    });
    const onKeys = (chunk: Buffer): void => {
      if (finished) return;
      try {
        reader.feed(chunk);
      } catch (e) {
        finish(e instanceof Error ? e : new Error(String(e)));
      }
    };
    const fromDaemon = (d: Buffer): void => {
      out(d);
      try {
        log.write(d);
      } catch (e) {
        finish(e as Error);
      }
    };

    for (const s of IGNORED) process.on(s, ignore);
    process.on('SIGTERM', onTerm);
    term.enterRaw();
    out(statusLine(view, 'opened'));
    if (p.leftover.length) fromDaemon(p.leftover);
    if (p.alreadyEnded) return finish();

    socket.on('data', fromDaemon);
    socket.on('end', () => finish());
    socket.on('close', () => finish());
    socket.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') return finish();
      finish(new FatalError(`Unable to read from <${where}>: ${sysText(e)}`));
    });
    process.stdin.on('data', onKeys);
    process.stdin.on('end', () => finish());
    process.stdin.on('error', () => finish());
    process.stdin.resume();
  });
}

// conch: the conman-compatible console client. Handshake, then either the
// query listing or an attached session. Exit status as conman's client:
// 0 success, 1 fatal local error, 2 failed request (including connect errors).

import * as os from 'node:os';
import * as tty from 'node:tty';
import { parseArgs, hostPort, type ClientOptions } from './args.js';
import { connectToServer, LineReader, type Endpoint } from './connection.js';
import {
  ERR_BUSY_CONSOLES, ERR_LOCAL, ERR_TOO_MANY_CONSOLES, FatalError, RequestError, fatalLine, sysText,
} from './errors.js';
import { licenseText, usage, versionText, type SessionView } from './messages.js';
import { greetingLine, parseResponse, requestLine } from './proto.js';
import { SessionLog } from './session-log.js';
import { runSession } from './session.js';
import { Terminal, ttyName } from './tty.js';

const PROG = 'conch';

function userName(): string {
  try {
    return os.userInfo().username;
  } catch {
    throw new FatalError(`Unable to lookup user name for UID=${process.getuid?.() ?? -1}`);
  }
}

/** Send one line and read the reply; OK → consoles/reset, ERROR → RequestError. */
async function exchange(
  reader: LineReader,
  socket: import('node:net').Socket,
  line: Buffer,
  ep: Endpoint,
  shutWrite = false,
): Promise<{ consoles: string[]; reset: boolean }> {
  socket.write(line);
  if (shutWrite) socket.end();
  let rsp: Buffer | null;
  try {
    rsp = await reader.readLine();
  } catch (e) {
    throw new RequestError(
      ERR_LOCAL,
      `Unable to read response from <${hostPort(ep.host, ep.port)}>:\n  ${sysText(e)} (blocked by TCP-Wrappers?)`,
    );
  }
  if (rsp === null) throw new RequestError(ERR_LOCAL, `Connection terminated by <${hostPort(ep.host, ep.port)}>`);
  const r = parseResponse(rsp);
  if (r.ok) return r;
  if (r.code === 0) throw new RequestError(ERR_LOCAL, `Received invalid response from <${hostPort(ep.host, ep.port)}>`);
  throw new RequestError(r.code, r.message ?? 'Unspecified');
}

/** conman's display_error: message, the daemon's trailing lines, a hint for codes 6/7. */
async function reportError(err: RequestError, opts: ClientOptions, log: SessionLog, reader?: LineReader): Promise<void> {
  const put = (s: string | Buffer): void => {
    process.stderr.write(s);
    log.write(s);
  };
  put(`ERROR: ${err.message}.\n\n`);
  if (err.code !== ERR_LOCAL && reader) await reader.readToEnd(put);
  if (err.code === ERR_TOO_MANY_CONSOLES && !opts.broadcast) {
    put('\nDo you want to broadcast (-b) to multiple consoles?\n\n');
  } else if (err.code === ERR_BUSY_CONSOLES && !opts.force && !opts.join) {
    put('\nDo you want to force (-f) or join (-j) the connection?\n\n');
  }
}

async function run(opts: ClientOptions, log: SessionLog, term: Terminal): Promise<number> {
  log.open();
  let reader: LineReader | undefined;
  let socket: import('node:net').Socket | undefined;
  try {
    const conn = await connectToServer(opts.host, opts.port);
    socket = conn.socket;
    const ep = conn.ep;
    reader = new LineReader(socket);
    await exchange(reader, socket, greetingLine(userName(), ttyName()), ep);
    const rsp = await exchange(reader, socket, requestLine(opts), ep, opts.command === 'query');

    if (opts.command === 'query') {
      const list = rsp.consoles.map((c) => `${c}\n`).join('');
      process.stdout.write(Buffer.from(list, 'latin1'));
      log.write(list);
      socket.destroy();
      return 0;
    }

    // One matching console turns a broadcast into a normal R/W session.
    const broadcast = opts.broadcast && rsp.consoles.length > 1;
    if (!tty.isatty(0)) throw new FatalError('Standard Input is not a terminal device');
    if (!tty.isatty(1)) throw new FatalError('Standard Output is not a terminal device');
    const view: SessionView = {
      command: opts.command,
      broadcast,
      consoles: rsp.consoles,
      echo: false,
      quiet: opts.quiet,
      reset: rsp.reset,
      host: ep.host,
      port: ep.port,
    };
    const alreadyEnded = reader.ended;
    const leftover = reader.release();
    await runSession({ socket, leftover, alreadyEnded, view, escape: opts.escape, log, term });
    return 0;
  } catch (e) {
    if (e instanceof RequestError) {
      await reportError(e, opts, log, reader);
      return 2;
    }
    throw e;
  } finally {
    socket?.destroy();
  }
}

/** Entry point: returns the exit status (the caller exits with it). */
export async function main(argv = process.argv.slice(2)): Promise<number> {
  const term = new Terminal();
  const log = new SessionLog();
  // Whatever happens, never leave the terminal raw.
  process.on('exit', () => term.restore());
  process.on('uncaughtException', (e) => {
    term.restore();
    process.stderr.write(fatalLine(e instanceof Error ? e.message : String(e)));
    process.exit(1);
  });
  let sessionLog = log;
  try {
    const parsed = parseArgs(argv);
    switch (parsed.action) {
      case 'version':
        process.stdout.write(versionText());
        return 0;
      case 'license':
        process.stdout.write(licenseText());
        return 0;
      case 'help':
        process.stdout.write(usage(PROG, parsed.opts));
        return 0;
    }
    sessionLog = new SessionLog(parsed.opts.logFile);
    return await run(parsed.opts, sessionLog, term);
  } catch (e) {
    term.restore();
    const msg = e instanceof FatalError ? e.message : e instanceof Error ? e.message : String(e);
    process.stderr.write(fatalLine(msg));
    return 1;
  } finally {
    try {
      sessionLog.close();
    } catch {
      /* the log itself failed; already reported */
    }
  }
}

// conch: the conman-compatible console client. Handshake, then either the
// query listing or an attached session. Exit status as conman's client:
// 0 success, 1 fatal local error, 2 failed request (including connect errors).

import * as tty from 'node:tty';
import { parseArgs, type ClientOptions } from './args.js';
import { ERR_BUSY_CONSOLES, ERR_LOCAL, ERR_TOO_MANY_CONSOLES, FatalError, RequestError, fatalLine } from './errors.js';
import { exchange, type Link } from './exchange.js';
import { isAuthRequired, login } from './login.js';
import { licenseText, usage, versionText, type SessionView } from './messages.js';
import { requestLine, searchLine } from './proto.js';
import { printResults } from './search.js';
import { historyLogLine } from './history.js';
import { SessionLog } from './session-log.js';
import { runSession } from './session.js';
import { Terminal } from './tty.js';

const PROG = 'conch';

/** conman's display_error: message, the daemon's trailing lines, a hint for codes 6/7 (and 4 over plain TCP). */
async function reportError(err: RequestError, opts: ClientOptions, log: SessionLog, link?: Link): Promise<void> {
  const put = (s: string | Buffer): void => {
    process.stderr.write(s);
    log.write(s);
  };
  put(`ERROR: ${err.message}.\n\n`);
  if (err.code !== ERR_LOCAL && link) await link.reader.readToEnd(put);
  if (isAuthRequired(err) && !opts.tls) {
    put('\nconch sends a password only over TLS: connect with --tls.\n\n');
  } else if (err.code === ERR_TOO_MANY_CONSOLES && !opts.broadcast) {
    put('\nDo you want to broadcast (-b) to multiple consoles?\n\n');
  } else if (err.code === ERR_BUSY_CONSOLES && !opts.force && !opts.join) {
    put('\nDo you want to force (-f) or join (-j) the connection?\n\n');
  }
}

/**
 * The query's answer: with -v the daemon's status lines as it sent them,
 * else (or when a daemon without STATUS sent none) the names, one a line.
 */
async function printQuery(consoles: string[], opts: ClientOptions, log: SessionLog, link: Link): Promise<void> {
  if (opts.verbose) {
    const status: Buffer[] = [];
    await link.reader.readToEnd((d) => status.push(d));
    if (status.length) {
      const text = Buffer.concat(status);
      process.stdout.write(text);
      log.write(text);
      return;
    }
  }
  const list = consoles.map((c) => `${c}\n`).join('');
  process.stdout.write(Buffer.from(list, 'latin1'));
  log.write(list);
}

async function run(opts: ClientOptions, log: SessionLog, term: Terminal): Promise<number> {
  log.open();
  let link: Link | undefined;
  try {
    link = await login(opts, process.env, (l) => (link = l));
    const { socket, reader, ep } = link;
    if (opts.command === 'history' && opts.history) {
      await exchange(link, historyLogLine(opts.consoles[0]!, opts.history));
      await link.reader.readToEnd((d) => {
        process.stdout.write(d);
        log.write(d);
      });
      return 0;
    }
    if (opts.command === 'search' && opts.search) {
      await exchange(link, searchLine({ ...opts, search: opts.search }));
      const put = (s: string): void => {
        process.stdout.write(s);
        log.write(s);
      };
      return await printResults(link, put, (s) => process.stderr.write(s));
    }
    // Plain TCP half-closes after a query as conman does; over TLS that would
    // send close_notify, which a TLS server may take as the end of the talk.
    const shutWrite = opts.command === 'query' && !ep.tls;
    const rsp = await exchange(link, requestLine(opts), shutWrite);

    if (opts.command === 'query') {
      await printQuery(rsp.consoles, opts, log, link);
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
      await reportError(e, opts, log, link);
      return 2;
    }
    throw e;
  } finally {
    link?.socket.destroy();
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

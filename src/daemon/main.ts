// conchd's entry: options, config check, signalling a running daemon,
// daemonizing, pidfile, signals.

import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../config/parse.js';
import { ConfigError, type Config } from '../config/types.js';
import { expandSpecifiers } from '../config/specifiers.js';
import { DaemonLog } from '../logging/daemon-log.js';
import { parseDaemonArgs, UsageError, USAGE, type DaemonArgs } from './cli.js';
import { Daemon } from './daemon.js';
import { daemonTitle, defaultPidfile, findDaemon, PidfileError, removePidfile, runningPid, writePidfile } from './pidfile.js';
import { VERSION } from '../util/version.js';
import { checkAccessFiles } from '../access/check-files.js';

const LICENSE = `conch ${VERSION}: GNU General Public License v3 or later.
This is free software: you are free to change and redistribute it.
There is NO WARRANTY, to the extent permitted by law.
`;

/** Set in the re-spawned child when conchd daemonizes itself. */
const CHILD_ENV = 'CONCHD_DAEMON_CHILD';

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'token') return (await import('./token-cli.js')).tokenMain(argv.slice(1));
  if (argv[0] === 'passwd') return (await import('./passwd.js')).passwdMain(argv.slice(1));
  let args: DaemonArgs;
  try {
    args = parseDaemonArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`conchd: ${e.message}\n${USAGE}`);
      return 1;
    }
    throw e;
  }
  if (args.help) return out(USAGE, 0);
  if (args.version) return out(`conch-${VERSION}\n`, 0);
  if (args.license) return out(LICENSE, 0);

  let cfg: Config;
  try {
    cfg = loadConfig(args.config, { warn: (m) => process.stderr.write(`conchd: warning: ${m}\n`) });
  } catch (e) {
    if (e instanceof ConfigError || (e as NodeJS.ErrnoException).code) {
      const lines = e instanceof ConfigError ? e.all.map((x) => x.message) : [(e as Error).message];
      for (const l of lines) process.stderr.write(`conchd: ${l}\n`);
      if (lines.length > 1) process.stderr.write(`conchd: ${lines.length} errors\n`);
      if (args.check) process.stderr.write(`conchd: configuration ${args.config} is invalid\n`);
      // the running daemon keeps the configuration it has: it can still be stopped, queried, and told to reopen its logs
      if (args.kill || args.reconfig || args.query) {
        const pid = findDaemon(path.resolve(args.config));
        if (pid !== null && args.reconfig) process.stderr.write(`conchd: the daemon (pid ${pid}) keeps its configuration and reopens its logs\n`);
        return signal(args, pid, path.resolve(args.config)) === 0 && !args.reconfig ? 0 : 1;
      }
      return 1;
    }
    throw e;
  }
  if (args.port !== null) cfg.server.port = args.port;
  const n = cfg.consoles.length;
  if (args.check) {
    // the files the access keys name are part of the configuration: the same errors the start would meet
    const errors = checkAccessFiles(cfg.server, (m) => process.stderr.write(`conchd: warning: ${m}\n`));
    for (const l of errors) process.stderr.write(`conchd: ${l}\n`);
    if (errors.length > 0) return out(`conchd: configuration ${args.config} is invalid\n`, 1, process.stderr);
    return out(`conchd: configuration ${args.config} is valid (${n} console${n === 1 ? '' : 's'})\n`, 0);
  }

  const pidfile = path.resolve(args.pidfile ?? cfg.server.pidfile ?? defaultPidfile(cfg.file));
  // a daemon started before `server pidfile=` changed wrote its pid elsewhere: its title finds it
  const pid = runningPid(pidfile, cfg.file) ?? (args.kill || args.reconfig || args.query ? findDaemon(cfg.file) : null);
  if (args.kill || args.reconfig || args.query) return signal(args, pid, cfg.file);
  if (pid !== null && pid !== process.pid) {
    process.stderr.write(`conchd: a daemon (pid ${pid}) is already running for ${cfg.file}\n`);
    return 1;
  }

  // the detached child runs in /: hand it absolute paths
  if (!args.foreground && !process.env[CHILD_ENV]) return daemonize([...argv, '-c', cfg.file, '-P', pidfile]);
  return runForeground(cfg, args, pidfile);
}

/** -k, -r, -q to the daemon running `configFile` (pid, or null: none found). */
function signal(args: DaemonArgs, pid: number | null, configFile: string): number {
  if (pid === null) {
    process.stderr.write(`conchd: no daemon running for ${configFile}\n`);
    return 1;
  }
  if (args.kill) process.kill(pid, 'SIGTERM');
  else if (args.reconfig) process.kill(pid, 'SIGHUP');
  else process.stdout.write(`${pid}\n`);
  return 0;
}

/** A start failure in an operator's words: which port, and which setting chose it. */
function startError(e: NodeJS.ErrnoException, cfg: Config, args: DaemonArgs): string {
  if (e.code === 'EADDRINUSE' || e.code === 'EACCES') {
    const port = cfg.server.port;
    const from = args.port !== null ? 'the -p option' : `"server port=${port}" in ${cfg.file}${port === 7890 ? ' (or the default)' : ''}`;
    const what = e.code === 'EADDRINUSE' ? 'is already in use (another conchd or conmand?)' : 'needs more privileges';
    return `cannot listen on TCP port ${port}: it ${what}; the port comes from ${from}`;
  }
  return e.message;
}

function out(s: string, code: number, to: NodeJS.WriteStream = process.stdout): number {
  to.write(s);
  return code;
}

/** Re-run ourselves detached in the foreground; exit once it reports ready. */
async function daemonize(argv: string[]): Promise<number> {
  const script = fileURLToPath(new URL('../bin/conchd.js', import.meta.url));
  const child = spawn(process.execPath, [script, ...argv], {
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    env: { ...process.env, [CHILD_ENV]: '1' },
    cwd: '/',
  });
  let errText = '';
  child.stderr!.on('data', (d: Buffer) => (errText += d.toString()));
  return new Promise((resolve) => {
    child.once('message', () => {
      child.disconnect();
      child.stderr!.destroy();
      child.unref();
      resolve(0);
    });
    child.once('exit', (code) => {
      process.stderr.write(errText);
      resolve(code ?? 1);
    });
  });
}

async function runForeground(cfg: Config, args: DaemonArgs, pidfile: string): Promise<number> {
  const lf = cfg.server.logfile;
  const daemonized = !!process.env[CHILD_ENV];
  const dlog = new DaemonLog({
    file: lf ? expandSpecifiers(lf.path, { pid: process.pid, now: new Date() }) : null,
    priority: args.verbose ? 'debug' : (lf?.priority ?? 'info'),
    echo: !daemonized && (!lf || args.verbose),
    // /dev/stdout and friends are links an operator names on purpose (containers, journald)
    followSymlinks: cfg.server.logSymlinks || (lf !== null && /^\/(dev|proc)\//.test(lf.path)),
  });
  // ps shows which configuration; -k and a second start check it before trusting a pidfile
  process.title = daemonTitle(cfg.file);
  let daemon: Daemon;
  try {
    daemon = new Daemon(cfg, dlog, { truncateLogs: args.truncate, port: args.port, verbose: args.verbose });
    await daemon.start();
  } catch (e) {
    process.stderr.write(`conchd: ${startError(e as NodeJS.ErrnoException, cfg, args)}\n`);
    return 1;
  }
  try {
    writePidfile(pidfile, cfg.file);
  } catch (e) {
    if (!(e instanceof PidfileError)) throw e;
    process.stderr.write(`conchd: ${e.message}\n`);
    await daemon.stop();
    return 1;
  }

  let stopping = false;
  const stop = async (sig: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    dlog.notice(`Exiting on signal ${sig}`);
    await daemon.stop();
    removePidfile(pidfile);
    dlog.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  // re-read the configuration (applied console by console) and reopen the logs
  process.on('SIGHUP', () => void daemon.reload());
  process.on('SIGPIPE', () => {});
  // A bug in one console must not take the others down: log it and carry on.
  // a closed stderr (the terminal or pipe went away) must not turn every log line into another error
  const quietStderr = (): void => {
    process.stderr.write = () => true;
  };
  process.stderr.on('error', quietStderr);
  process.stdout.on('error', () => {});
  process.on('uncaughtException', (e) => {
    if ((e as NodeJS.ErrnoException).code === 'EPIPE') return quietStderr();
    dlog.err(`internal error: ${e.stack ?? e.message}`);
  });
  process.on('unhandledRejection', (e) => dlog.err(`internal error: ${String(e)}`));

  if (daemonized && process.send) {
    process.send({ ready: true });
    process.disconnect?.();
    // stderr was a pipe to the parent, which now exits: later writes would
    // fail with EPIPE, so they go nowhere (the daemon log has everything)
    process.stderr.write = () => true;
  }
  return new Promise<number>(() => {
    /* runs until a signal */
  });
}

// A reload (SIGHUP, conchd -r): the configuration file read again and
// applied as a difference (config-diff.ts). Unchanged consoles are not
// touched; added ones start; removed ones tell their clients, let them go,
// release the device and close the log; changed ones swap their device (and
// log) under the same Console, so attached clients stay. A file with errors
// changes nothing, and the logs are reopened either way (logrotate's
// postrotate must work while someone is half-way through an edit).

import { loadConfig } from '../config/parse.js';
import { expandSpecifiers } from '../config/specifiers.js';
import { ConfigError, type Config, type ConsoleConfig, type ServerConfig } from '../config/types.js';
import type { Device } from '../devices/device.js';
import { Console } from '../engine/console.js';
import type { ConsoleRegistry } from '../engine/registry.js';
import type { ConsoleLog } from '../logging/console-log.js';
import type { DaemonLog } from '../logging/daemon-log.js';
import type { ConmanServer } from '../protocol/server.js';
import { diffConfig, type ConfigDiff } from './config-diff.js';
import { changedNotice, refusedLine, serverKeyLine, summaryLine } from './reload-text.js';

/** The daemon's parts a reload works on (Daemon.reloadHost()). */
export interface ReloadHost {
  /** the configuration in force */
  cfg: Config;
  dlog: DaemonLog;
  registry: ConsoleRegistry;
  /** -p, which a file cannot override */
  portOverride: number | null;
  /** -v, which keeps the daemon log at debug */
  verbose: boolean;
  server: ConmanServer | null;
  /** the web listener follows httpport (started, moved, stopped) */
  reloadWeb(next: ServerConfig): Promise<void>;
  setPort(port: number): void;
  startMarks(intervalSec: number): void;
  /** a console's device (on an IPMI thread where the daemon has them) */
  device(c: ConsoleConfig, server: ServerConfig): Device;
  consoleLog(c: ConsoleConfig, server: ServerConfig): ConsoleLog | null;
  /** the descriptor reserve kept from clients for `cfg` */
  reserved(cfg: Config): number;
  /** what is now in force (the next reload compares against it) */
  commit(cfg: Config): void;
  /** pattern alerts: the rules file is read again (even under the same name), the sinks follow the settings */
  reloadAlerts?(next: ServerConfig): void;
  /** start a console a reload added (a cluster node leaves that to the cluster) */
  startConsole?(c: Console): void;
  /** the cluster settings (docs/cluster.md, "Reload"); `before`: those in force until now */
  reloadCluster?(before: ServerConfig, next: ServerConfig): Promise<void>;
}

/** Read the file and apply it; logs one summary line (or the refusal with every error). Whether it applied. */
export async function applyReload(h: ReloadHost): Promise<boolean> {
  const before = h.cfg;
  const file = before.file;
  let next: Config;
  try {
    next = loadConfig(file, { warn: (m) => h.dlog.warn(`Reload: ${m}`) });
  } catch (e) {
    const errors = e instanceof ConfigError ? e.all.map((x) => x.message) : [`${file}: ${(e as Error).message}`];
    h.dlog.reopen();
    for (const c of h.registry.list()) c.log?.open();
    h.server?.access.reopen();
    h.dlog.info('Reopened logs');
    for (const m of errors) h.dlog.err(`Reload: ${m}`);
    h.dlog.err(refusedLine(file, errors.length));
    return false;
  }
  if (h.portOverride !== null) next.server.port = h.portOverride;
  const diff = diffConfig(before, next);

  // SERVER keys a running daemon cannot take keep their old value (and are named again by the next reload)
  const srv = next.server as unknown as Record<string, unknown>;
  for (const ch of diff.server) {
    if (ch.apply !== 'restart' && ch.apply !== 'unused') continue;
    h.dlog.warn(serverKeyLine(ch, before.server, next.server));
    if (ch.apply === 'restart') srv[ch.field] = before.server[ch.field];
  }
  const serverChanged = new Set(diff.server.map((c) => c.field));

  // the daemon log first, so that what the reload says goes to the (new) file
  if (serverChanged.has('logfile') || serverChanged.has('logSymlinks')) retargetDaemonLog(h, next.server);
  if (serverChanged.has('logfile') && !h.verbose) h.dlog.setPriority(next.server.logfile?.priority ?? 'info');
  h.dlog.reopen();

  // console logs reopen as on every SIGHUP, except those the reload closes or replaces
  const newLog = new Set(diff.changed.filter((ch) => ch.keys.includes('log') || ch.keys.includes('logopts')).map((ch) => ch.after.name));
  const gone = new Set(diff.removed.map((c) => c.name));
  for (const c of h.registry.list()) {
    if (serverChanged.has('logSymlinks')) c.log?.setFollowSymlinks(next.server.logSymlinks);
    if (!newLog.has(c.name) && !gone.has(c.name)) c.log?.open();
  }
  h.dlog.info('Reopened logs');

  await applyServer(h, before.server, next.server, serverChanged);
  const kept = await applyConsoles(h, diff, next.server);

  // what is in force: the new file, except what could not be applied
  const consoles = next.consoles.flatMap((c) => (kept.has(c.name) ? (kept.get(c.name) ? [kept.get(c.name)!] : []) : [c]));
  for (const [name, c] of kept) if (c && !next.consoles.some((n) => n.name === name)) consoles.push(c);
  const inForce: Config = { ...next, consoles };
  h.commit(inForce);
  h.reloadAlerts?.(inForce.server);
  await h.reloadCluster?.(before.server, inForce.server);
  h.server?.reconfigure(inForce.server, h.reserved(inForce));
  h.dlog.notice(summaryLine(file, diff, kept.size));
  return true;
}

function retargetDaemonLog(h: ReloadHost, s: ServerConfig): void {
  const lf = s.logfile;
  const file = lf ? expandSpecifiers(lf.path, { pid: process.pid, now: new Date() }) : null;
  // as at start: /dev/stdout and friends are links an operator names on purpose
  h.dlog.retarget(file, s.logSymlinks || (lf !== null && /^\/(dev|proc)\//.test(lf.path)));
}

/** Listener, client limits, marks, replay rings. A listener that cannot move stays where it was. */
async function applyServer(h: ReloadHost, before: ServerConfig, next: ServerConfig, changed: Set<keyof ServerConfig>): Promise<void> {
  if (h.server) {
    h.server.reconfigure(next);
    if (changed.has('port') || changed.has('loopback')) {
      try {
        const port = await h.server.rebind(before);
        h.setPort(port);
        h.dlog.notice(`Listening on TCP port ${port}${next.loopback ? ' (loopback)' : ''}: moved by a reload from port ${before.port}${before.loopback ? ' (loopback)' : ''}`);
      } catch (e) {
        h.dlog.err(`Reload: cannot listen on TCP port ${next.port}: ${(e as Error).message}; still listening on port ${before.port}`);
        next.port = before.port;
        next.loopback = before.loopback;
        h.server.reconfigure(next);
      }
    }
    // the certificate is read again even when its file name did not change (renewed in place)
    await h.server.reloadTls();
  }
  await h.reloadWeb(next);
  if (changed.has('timestamp')) h.startMarks(next.timestamp);
  if (changed.has('replayBytes')) for (const c of h.registry.list()) c.resizeReplay(next.replayBytes);
}

/**
 * Remove, add and change consoles, all at once (a release waits for a BMC's
 * answer). Returns the consoles whose change could not be applied, with the
 * configuration that stays in force for each (null: none, an add that failed).
 */
async function applyConsoles(h: ReloadHost, d: ConfigDiff, server: ServerConfig): Promise<Map<string, ConsoleConfig | null>> {
  const kept = new Map<string, ConsoleConfig | null>();
  const work: Promise<void>[] = [];
  const failed = (name: string, what: string, e: unknown, keep: ConsoleConfig | null): void => {
    h.dlog.err(`Reload: console [${name}] not ${what}: ${(e as Error).message}`);
    kept.set(name, keep);
  };

  for (const c of d.removed) {
    const con = h.registry.remove(c.name);
    if (!con) continue;
    h.dlog.info(`Console [${c.name}] removed by a reload`);
    work.push(con.retire().catch((e: unknown) => h.dlog.err(`Reload: console [${c.name}] removal: ${(e as Error).message}`)));
  }
  for (const c of d.added) {
    try {
      const con = new Console(c, h.device(c, server), h.consoleLog(c, server), h.dlog, server.replayBytes);
      h.registry.add(con);
      if (h.startConsole) h.startConsole(con);
      else con.start();
      h.dlog.info(`Console [${c.name}] added by a reload`);
    } catch (e) {
      failed(c.name, 'added', e, null);
    }
  }
  for (const ch of d.changed) {
    const con = h.registry.get(ch.after.name);
    if (!con) continue;
    let device: Device;
    let log: ConsoleLog | null | undefined;
    try {
      device = h.device(ch.after, server);
      log = ch.keys.includes('log') || ch.keys.includes('logopts') ? h.consoleLog(ch.after, server) : undefined;
    } catch (e) {
      failed(ch.after.name, 'changed', e, ch.before);
      if (ch.keys.includes('log') || ch.keys.includes('logopts')) con.log?.open(); // skipped by the reopen above
      continue;
    }
    h.dlog.info(`Console [${ch.after.name}] changed by a reload: ${ch.keys.join(', ')}`);
    work.push(
      con.reconfigure(ch.after, device, log, changedNotice(ch.keys)).catch((e: unknown) => h.dlog.err(`Reload: console [${ch.after.name}] change: ${(e as Error).message}`)),
    );
  }
  await Promise.all(work);
  return kept;
}

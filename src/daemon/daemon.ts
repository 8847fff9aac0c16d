// The running daemon: builds a Console per config entry, starts the client
// listener, reloads the configuration (and reopens logs) on SIGHUP, and
// releases everything on shutdown.

import type { Config, ConsoleConfig, ServerConfig } from '../config/types.js';
import type { Device } from '../devices/device.js';
import { ConfigError } from '../config/types.js';
import { Console } from '../engine/console.js';
import { ConsoleRegistry } from '../engine/registry.js';
import { createDevice } from '../devices/index.js';
import { autoIpmiThreads, IpmiThreads } from '../devices/ipmi-threads.js';
import { ConsoleLog } from '../logging/console-log.js';
import { deviceSpecifier } from '../config/specifiers.js';
import type { DaemonLog } from '../logging/daemon-log.js';
import { ConmanServer } from '../protocol/server.js';
import { WebServer } from '../web/web-server.js';
import { VERSION } from '../util/version.js';
import { TimestampMarks } from './timestamp-marks.js';
import { defaultStateDir } from './state-dir.js';
import { keepAliveMark, SessionStore } from '../ipmi/session-record.js';
import { applyReload, type ReloadHost } from './reload.js';
import { AlertManager } from '../alerts/manager.js';
import { Cluster } from '../cluster/cluster.js';
import type { EtcdTls } from '../cluster/etcd.js';
import { oneLine } from '../cluster/keys.js';
import { longTime } from '../util/notice.js';
import { setFence } from '../util/fence.js';
import type { SolHandover } from '../devices/index.js';
import * as os from 'node:os';

export interface DaemonOptions {
  /** -z: truncate console logs on the first open */
  truncateLogs: boolean;
  /** -p: the port given on the command line; it stays in force across reloads */
  port?: number | null;
  /** -v: the daemon log's priority is debug, whatever a reload reads */
  verbose?: boolean;
}

export class Daemon {
  readonly registry = new ConsoleRegistry();
  private server: ConmanServer | null = null;
  /** the web terminal, API and metrics (server httpport=) */
  private web: WebServer | null = null;
  private readonly startedAt = new Date();
  private lastReload: { at: Date; ok: boolean; goodAt: Date } | null = null;
  private marks: TimestampMarks | null = null;
  private stopAliveMark: (() => void) | null = null;
  private ipmiThreadPool: IpmiThreads | null;
  /** chosen at start; a reload cannot move it (session records live there) */
  private readonly stateDir: string;
  /** the IPMI consoles' sessions across restarts (src/ipmi/session-record.ts) */
  private sessions: SessionStore | null = null;
  private _cfg: Config;
  /** the reload running, and whether another SIGHUP came meanwhile */
  private reloading: Promise<void> | null = null;
  private reloadAgain = false;
  port = 0;
  /** threads running the IPMI sessions (0: the main thread does) */
  ipmiThreads: number;
  /** pattern alerts on every console's output (docs/alerts.md): recent() and counters() for the API and metrics */
  readonly alerts: AlertManager;
  /** this daemon as a node of a cluster on etcd (server cluster=), else null */
  cluster: Cluster | null = null;

  constructor(
    cfg: Config,
    readonly dlog: DaemonLog,
    private readonly opts: DaemonOptions,
  ) {
    this._cfg = cfg;
    const nIpmi = cfg.consoles.filter((c) => c.spec.type === 'ipmi').length;
    this.ipmiThreads = nIpmi === 0 ? 0 : (cfg.server.ipmiThreads ?? autoIpmiThreads(nIpmi));
    this.ipmiThreadPool = this.ipmiThreads > 0 ? new IpmiThreads(this.ipmiThreads) : null;
    this.stateDir = cfg.server.stateDir ?? defaultStateDir();
    if (nIpmi > 0) {
      this.stopAliveMark = keepAliveMark(this.stateDir);
      this.sessions = new SessionStore(this.stateDir);
    }
    // Build every console before starting any: a bad entry fails the whole start.
    for (const c of cfg.consoles) {
      let device;
      try {
        device = this.device(c, cfg.server);
      } catch (e) {
        throw new ConfigError(c.loc, (e as Error).message);
      }
      this.registry.add(new Console(c, device, this.consoleLog(c, cfg.server, opts.truncateLogs), dlog, cfg.server.replayBytes));
    }
    // every console gets its tap (a bad rules file fails the start); those a reload adds get theirs as they come
    this.alerts = new AlertManager({ registry: this.registry, dlog, server: cfg.server });
  }

  /** the configuration in force */
  get cfg(): Config {
    return this._cfg;
  }

  private device(c: ConsoleConfig, server: ServerConfig, handover?: SolHandover): Device {
    if (c.spec.type === 'ipmi') {
      // an IPMI console added by a reload when threads were asked for but none run yet
      if (!this.ipmiThreadPool && (server.ipmiThreads ?? 0) > 0) {
        this.ipmiThreads = server.ipmiThreads!;
        this.ipmiThreadPool = new IpmiThreads(this.ipmiThreads);
      }
      this.stopAliveMark ??= keepAliveMark(this.stateDir);
      this.sessions ??= new SessionStore(this.stateDir);
    }
    return createDevice(c, { ...server, stateDir: this.stateDir }, this.ipmiThreadPool, handover ?? this.cluster?.handoverFor(c.name), this.sessions);
  }

  private consoleLog(c: ConsoleConfig, server: ServerConfig, truncate: boolean): ConsoleLog | null {
    return c.log
      ? new ConsoleLog(c.log, c.logOpts, { name: c.name, dev: deviceSpecifier(c.spec) }, this.dlog, {
          truncate,
          followSymlinks: server.logSymlinks,
        })
      : null;
  }

  async start(): Promise<void> {
    const cfg = this._cfg;
    this.server = new ConmanServer({ registry: this.registry, server: cfg.server, dlog: this.dlog, reservedFds: reservedDescriptors(cfg) });
    this.port = await this.server.listen();
    this.dlog.notice(`Listening on TCP port ${this.port}`);
    if (cfg.server.clusterEtcd) this.startCluster(cfg.server, cfg.server.clusterEtcd);
    if (cfg.server.httpPort !== null) await this.startWeb(cfg.server);
    if (!this.cluster) for (const c of this.registry.list()) c.start();
    this.startMarks(cfg.server.timestamp);
    const threads = this.ipmiThreads > 0 ? ` (IPMI on ${this.ipmiThreads} thread${this.ipmiThreads === 1 ? '' : 's'})` : '';
    this.dlog.notice(`conchd started with ${this.registry.size} console${this.registry.size === 1 ? '' : 's'}${threads}`);
  }

  /**
   * A node of a cluster (docs/cluster.md): no console starts here until
   * etcd gives it to this node; joining is retried until etcd answers.
   */
  private startCluster(server: ServerConfig, endpoints: string[], revoke: string[] = []): void {
    const host = os.hostname();
    const cluster = new Cluster(
      {
        endpoints,
        tls: clusterTls(server),
        prefix: server.clusterPrefix,
        node: server.node ?? host,
        addr: server.nodeAddr ?? `${host}:${this.port}`,
        ttlSec: server.clusterTtl,
      },
      {
        registry: this.registry,
        dlog: this.dlog,
        own: (c, handover, note) => {
          const cur = this._cfg.server;
          c.startWith(this.device(c.cfg, cur, handover), this.consoleLog(c.cfg, cur, false), note);
          this.dlog.info(note);
        },
        disown: (c, why) => {
          c.dismiss(`Console [${c.name}] is no longer run by node ${this.cluster?.node}: ${why}; connect again to reach it where it runs now`);
          return c.stop(why);
        },
      },
    );
    // a reload's earlier membership: its lease, if etcd could not be told (an etcd that moved), goes before any claim
    cluster.revokeOnJoin(revoke);
    this.cluster = cluster;
    this.server!.cluster = cluster;
    void cluster.start();
  }

  /** The web listener, sharing the conman port's access control and reset runner. */
  private async startWeb(server: ServerConfig): Promise<void> {
    const conman = this.server!;
    const cluster = (): Cluster | null => this.cluster;
    const web = new WebServer({
      registry: this.registry,
      access: conman.access,
      dlog: this.dlog,
      server,
      resets: () => conman.resetRunner,
      stateDir: this.stateDir,
      daemon: {
        startedAt: this.startedAt,
        version: VERSION,
        lastReload: () => this.lastReload,
        clientsByTransport: () => clientsByTransport(this.registry),
        alerts: this.alerts,
        // a reload may make this daemon a cluster node, or a single daemon again
        get cluster() {
          return cluster();
        },
      },
    });
    await web.listen();
    this.web = web;
  }

  /** the web listener's port (null: none) */
  get httpPort(): number | null {
    return this.web?.port ?? null;
  }

  private startMarks(intervalSec: number): void {
    this.marks?.stop();
    this.marks = null;
    if (intervalSec <= 0) return;
    this.marks = new TimestampMarks(intervalSec, () => {
      const now = new Date();
      for (const c of this.registry.list()) if (c.active) c.log?.mark(now);
    });
  }

  /**
   * SIGHUP: re-read the configuration file and apply it as a difference
   * (reload.ts), reopening the logs as SIGHUP always did. A file with errors
   * changes nothing but the reopen. Reloads run one at a time: a SIGHUP
   * during one runs another after it. Never throws.
   */
  reload(): Promise<void> {
    if (this.reloading) {
      this.reloadAgain = true;
      return this.reloading;
    }
    this.reloading = (async () => {
      try {
        do {
          this.reloadAgain = false;
          let ok = false;
          try {
            ok = await applyReload(this.reloadHost());
          } catch (e) {
            this.dlog.err(`Reload failed: ${(e as Error).stack ?? String(e)}`);
          }
          const at = new Date();
          this.lastReload = { at, ok, goodAt: ok ? at : (this.lastReload?.goodAt ?? this.startedAt) };
        } while (this.reloadAgain);
      } finally {
        this.reloading = null;
      }
    })();
    return this.reloading;
  }

  /** what reload.ts may touch */
  private reloadHost(): ReloadHost {
    return {
      cfg: this._cfg,
      dlog: this.dlog,
      registry: this.registry,
      portOverride: this.opts.port ?? null,
      verbose: this.opts.verbose ?? false,
      server: this.server,
      reloadWeb: async (next) => {
        if (this.web) await this.web.reconfigure(next);
        else if (next.httpPort !== null) await this.startWeb(next).catch((e: unknown) => this.dlog.err(`Reload: no web listener: ${(e as Error).message}`));
      },
      setPort: (p) => (this.port = p),
      startMarks: (s) => this.startMarks(s),
      device: (c, server) => this.device(c, server),
      consoleLog: (c, server) => this.consoleLog(c, server, false),
      reserved: (cfg) => reservedDescriptors(cfg),
      commit: (cfg) => (this._cfg = cfg),
      reloadAlerts: (next) => this.alerts.reconfigure(next),
      // a cluster node starts an added console only when etcd gives it to it
      startConsole: (c) => {
        if (!this.cluster) c.start();
      },
      reloadCluster: (before, next) => this.reloadCluster(before, next),
    };
  }

  /**
   * A reload's cluster settings (docs/cluster.md, "Reload"). Other etcd
   * endpoints or TLS files for the same etcd cluster are taken in place:
   * no console moves. Another etcd cluster, prefix, node name or lease TTL
   * is another membership: the node leaves (its consoles handed over, as at
   * a stop) and joins with the new settings. A node joining stops its
   * consoles first; one leaving runs them all again as a single daemon.
   */
  private async reloadCluster(before: ServerConfig, next: ServerConfig): Promise<void> {
    const cl = this.cluster;
    if (cl && next.nodeAddr !== before.nodeAddr) cl.addr = next.nodeAddr ?? `${os.hostname()}:${this.port}`;
    const membership = (s: ServerConfig): string => JSON.stringify([s.clusterEtcd !== null, s.clusterPrefix, s.node ?? os.hostname(), s.clusterTtl]);
    const tls = clusterTls(next);
    if (cl && next.clusterEtcd && membership(before) === membership(next)) {
      const moved = next.clusterEtcd.join(',') !== before.clusterEtcd!.join(',');
      if (!moved && !cl.tlsDiffers(tls)) return;
      const to = next.clusterEtcd.join(',');
      let same: boolean;
      try {
        same = await cl.retarget(next.clusterEtcd, tls);
      } catch (e) {
        // nothing changed: what is in force stays the old settings (the next reload tries again)
        for (const k of ['clusterEtcd', 'clusterCa', 'clusterCert', 'clusterKey'] as const) (this._cfg.server as unknown as Record<string, unknown>)[k] = before[k];
        this.dlog.err(`Reload: cluster: etcd through ${to} not taken: ${oneLine((e as Error).message)}; still through ${before.clusterEtcd!.join(',')}`);
        return;
      }
      if (same) {
        this.dlog.notice(`Reload: cluster: etcd now reached through ${to}${tls ? ' (TLS files read again)' : ''}, the same etcd cluster: no console moves`);
        return;
      }
      this.dlog.notice(`Reload: cluster: ${to} is another etcd cluster, or the old endpoints do not answer: node ${cl.node} leaves and joins through ${to}`);
    }
    if (!cl && !next.clusterEtcd) return;
    let left: string[] = [];
    if (cl) {
      this.dlog.notice(`Reload: cluster: node ${cl.node} leaves the cluster to ${next.clusterEtcd ? 'join again with the new settings' : 'run every console alone (cluster= removed)'}`);
      await cl.leave();
      left = cl.leasesLeft();
      this.cluster = null;
      this.server!.cluster = null;
    } else {
      this.dlog.notice(`Reload: cluster: this daemon joins a cluster: its consoles stop here until etcd gives them to it`);
      await Promise.all(this.registry.list().map((c) => c.stop('this node joins a cluster (a reload)')));
    }
    if (next.clusterEtcd) {
      this.startCluster(next, next.clusterEtcd, left);
      return;
    }
    // a single daemon acts without a lease (the one it left closed the fence)
    setFence(Infinity);
    for (const c of this.registry.list()) c.startWith(this.device(c.cfg, next), this.consoleLog(c.cfg, next, false), `Console [${c.name}] run by this daemon alone since ${longTime()}: it left its cluster (a reload)`);
  }

  /** SIGTERM/SIGINT: stop listening, release every device, flush every log. */
  async stop(): Promise<void> {
    this.marks?.stop();
    this.stopAliveMark?.();
    const t0 = Date.now();
    await this.web?.close();
    await this.server?.close();
    // a cluster node hands its consoles over before it goes
    await this.cluster?.leave();
    await this.alerts.stop();
    // every console at once: IPMI payloads are deactivated in parallel, each within Console's RELEASE_MS
    const consoles = this.registry.list();
    let left = consoles.length;
    const slow = setInterval(() => this.dlog.notice(`Stopping: waiting for ${left} console${left === 1 ? '' : 's'} to release ${left === 1 ? 'its device' : 'their devices'} (IPMI sessions closing, programs exiting)`), 1000);
    await Promise.all(consoles.map((c) => c.stop().finally(() => left--)));
    clearInterval(slow);
    // the sessions closed (or not) at the BMCs, for the next run
    await this.sessions?.flush();
    this.dlog.notice(`conchd stopped (in ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  }
}

/** the etcd TLS files of `s` (null: none given) */
function clusterTls(s: ServerConfig): EtcdTls | null {
  return s.clusterCa || s.clusterCert ? { ca: s.clusterCa, cert: s.clusterCert, key: s.clusterKey } : null;
}

/** descriptors a console holds beyond its log: IPMI consoles share their threads' sockets, a pty has two ends */
const DEVICE_FDS: Partial<Record<ConsoleConfig['spec']['type'], number>> = { ipmi: 0, test: 0, process: 2 };

/**
 * Descriptors kept from clients, so that a flood of connections can never
 * starve logs, devices or a SIGHUP's reopen: one per log, one per device
 * (see DEVICE_FDS), and a margin for the daemon log, the threads and reopens.
 */
export function reservedDescriptors(cfg: Config): number {
  return 256 + cfg.consoles.reduce((n, c) => n + (c.log ? 1 : 0) + (DEVICE_FDS[c.spec.type] ?? 1), 0);
}

/** clients attached now by transport; each session counted once */
function clientsByTransport(registry: ConsoleRegistry): Record<string, number> {
  const seen = new Set<string>();
  const out: Record<string, number> = { conman: 0, tls: 0, web: 0 };
  for (const c of registry.list()) {
    for (const l of c.clients()) {
      const key = `${l.identity.transport}:${l.identity.address}:${l.identity.port}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out[l.identity.transport] = (out[l.identity.transport] ?? 0) + 1;
    }
  }
  return out;
}

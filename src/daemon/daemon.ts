// The running daemon: builds a Console per config entry, starts the client
// listener, reopens logs on SIGHUP and releases everything on shutdown.

import type { Config, ConsoleConfig } from '../config/types.js';
import { ConfigError } from '../config/types.js';
import { Console } from '../engine/console.js';
import { ConsoleRegistry } from '../engine/registry.js';
import { createDevice } from '../devices/index.js';
import { autoIpmiThreads, IpmiShards } from '../devices/ipmi-shard.js';
import { ConsoleLog } from '../logging/console-log.js';
import { deviceSpecifier } from '../config/specifiers.js';
import type { DaemonLog } from '../logging/daemon-log.js';
import { ConmanServer } from '../protocol/server.js';
import { TimestampMarks } from './timestamp-marks.js';
import { defaultStateDir } from './state-dir.js';
import { keepAliveMark } from '../ipmi/session-record.js';

export interface DaemonOptions {
  /** -z: truncate console logs on the first open */
  truncateLogs: boolean;
}

export class Daemon {
  readonly registry = new ConsoleRegistry();
  private server: ConmanServer | null = null;
  private marks: TimestampMarks | null = null;
  private stopAliveMark: (() => void) | null = null;
  port = 0;
  /** threads running the IPMI sessions (0: the main thread does) */
  readonly ipmiThreads: number;

  constructor(
    readonly cfg: Config,
    readonly dlog: DaemonLog,
    opts: DaemonOptions,
  ) {
    const nIpmi = cfg.consoles.filter((c) => c.spec.type === 'ipmi').length;
    this.ipmiThreads = nIpmi === 0 ? 0 : (cfg.server.ipmiThreads ?? autoIpmiThreads(nIpmi));
    const shards = this.ipmiThreads > 0 ? new IpmiShards(this.ipmiThreads) : null;
    const server = { ...cfg.server, stateDir: cfg.server.stateDir ?? defaultStateDir() };
    if (nIpmi > 0) this.stopAliveMark = keepAliveMark(server.stateDir);
    // Build every console before starting any: a bad entry fails the whole start.
    for (const c of cfg.consoles) {
      let device;
      try {
        device = createDevice(c, server, shards);
      } catch (e) {
        throw new ConfigError(c.loc, (e as Error).message);
      }
      const log = c.log
        ? new ConsoleLog(c.log, c.logOpts, { name: c.name, dev: deviceSpecifier(c.spec) }, dlog, {
            truncate: opts.truncateLogs,
            followSymlinks: cfg.server.logSymlinks,
          })
        : null;
      this.registry.add(new Console(c, device, log, dlog, cfg.server.replayBytes));
    }
  }

  async start(): Promise<void> {
    this.server = new ConmanServer({ registry: this.registry, server: this.cfg.server, dlog: this.dlog, reservedFds: reservedDescriptors(this.cfg) });
    this.port = await this.server.listen();
    this.dlog.notice(`Listening on TCP port ${this.port}`);
    for (const c of this.registry.list()) c.start();
    if (this.cfg.server.timestamp > 0) {
      this.marks = new TimestampMarks(this.cfg.server.timestamp, () => {
        const now = new Date();
        for (const c of this.registry.list()) c.log?.mark(now);
      });
    }
    const threads = this.ipmiThreads > 0 ? ` (IPMI on ${this.ipmiThreads} thread${this.ipmiThreads === 1 ? '' : 's'})` : '';
    this.dlog.notice(`conchd started with ${this.registry.size} console${this.registry.size === 1 ? '' : 's'}${threads}`);
  }

  /** SIGHUP: reopen the daemon log and every console log, re-evaluating specifiers. */
  reopenLogs(): void {
    this.dlog.reopen();
    for (const c of this.registry.list()) c.log?.open();
    this.dlog.info('Reopened logs');
  }

  /** SIGTERM/SIGINT: stop listening, release every device, flush every log. */
  async stop(): Promise<void> {
    this.marks?.stop();
    this.stopAliveMark?.();
    const t0 = Date.now();
    await this.server?.close();
    // every console at once: IPMI payloads are deactivated in parallel, each within Console's RELEASE_MS
    const consoles = this.registry.list();
    let left = consoles.length;
    const slow = setInterval(() => this.dlog.notice(`Stopping: waiting for ${left} console${left === 1 ? '' : 's'} to release ${left === 1 ? 'its device' : 'their devices'} (IPMI sessions closing, programs exiting)`), 1000);
    await Promise.all(consoles.map((c) => c.stop().finally(() => left--)));
    clearInterval(slow);
    this.dlog.notice(`conchd stopped (in ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  }
}

/** descriptors a console holds beyond its log: IPMI consoles share their threads' sockets, a pty has two ends */
const DEVICE_FDS: Partial<Record<ConsoleConfig['spec']['type'], number>> = { ipmi: 0, test: 0, process: 2 };

/**
 * Descriptors kept from clients, so that a flood of connections can never
 * starve logs, devices or a SIGHUP's reopen: one per log, one per device
 * (see DEVICE_FDS), and a margin for the daemon log, the threads and reopens.
 */
function reservedDescriptors(cfg: Config): number {
  return 256 + cfg.consoles.reduce((n, c) => n + (c.log ? 1 : 0) + (DEVICE_FDS[c.spec.type] ?? 1), 0);
}

// What the web routes may use of the daemon: one object, built by the web
// server, handed to each route module.

import type { ConsoleRegistry } from '../engine/registry.js';
import type { AccessControl } from '../access/access-control.js';
import type { ServerConfig } from '../config/types.js';
import type { DaemonLog } from '../logging/daemon-log.js';
import type { ResetRunner } from '../protocol/reset.js';
import type { WebAuth } from './web-auth.js';
import type { AlertManager } from '../alerts/manager.js';

export interface WebContext {
  registry: ConsoleRegistry;
  access: AccessControl;
  dlog: DaemonLog;
  auth: WebAuth;
  /** the SERVER settings in force (a reload replaces them) */
  server(): ServerConfig;
  /** the resetcmd runner in force */
  resets(): ResetRunner;
  /** facts about the daemon for metrics and the API */
  daemon: DaemonFacts;
}

export interface DaemonFacts {
  startedAt: Date;
  version: string;
  /** the last reload: when, and whether it applied (null: none yet); when the configuration was last loaded well (the start counts) */
  lastReload(): { at: Date; ok: boolean; goodAt: Date } | null;
  /** clients attached now, by transport (conman, tls, web) */
  clientsByTransport(): Record<string, number>;
  /** pattern alerts: recent ones and the counters (src/alerts/manager.ts) */
  alerts: Pick<AlertManager, 'recent' | 'counters'> | null;
  /** this daemon as a node of a cluster (null or absent: a single daemon; a reload may change it) */
  readonly cluster?: WebCluster | null;
}

/** what the web side needs of a cluster node: its name, who runs each console, the other live nodes (a console's history is gathered from them) */
export interface WebCluster {
  readonly node: string;
  ownerOf(name: string): { node: string; addr: string | null } | null;
  peers(): { node: string; addr: string }[];
}

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
  /** a cluster node: which node runs each console (null: none now); absent for a single daemon */
  ownerOf?: (name: string) => { node: string; addr: string | null } | null;
  /** a cluster node: its own name */
  node?: string;
  /** a cluster node: the other live nodes and their addresses (a console's history is gathered from them) */
  peers?: () => { node: string; addr: string }[];
}

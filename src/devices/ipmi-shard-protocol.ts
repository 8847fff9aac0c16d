// Messages between the main thread and an IPMI thread (ipmi-shard.ts, the
// main side; ipmi-shard-worker.ts, the thread). A console is known on both
// sides by a number the main side gives it.

import type { SolSteal } from '../config/types.js';
import type { IpmiSpec } from './ipmi.js';

/** main → IPMI thread, one message per call */
export type ToShard =
  | { t: 'add'; id: number; spec: IpmiSpec; consoleName: string; steal: SolSteal; stateDir: string | null }
  | { t: 'connect'; id: number }
  /** `ack`: say `drained` with this number once the bytes are taken (the main side's input count) */
  | { t: 'write'; id: number; data: Uint8Array; ack?: number }
  | { t: 'break'; id: number }
  | { t: 'force'; id: number; by: string; req: number }
  | { t: 'close'; id: number; req: number }
  /** after close: the console is gone (a reload removed or replaced it) */
  | { t: 'remove'; id: number };

/** an event other than console bytes */
export type ShardCtl =
  | { k: 'up' }
  | { k: 'down'; reason: string }
  | { k: 'notice'; text: string }
  /** when another client took SOL (ms), or null: sent whenever it may have changed */
  | { k: 'held'; since: number | null }
  /** the input of a write with `ack` has been taken */
  | { k: 'drained'; upTo: number }
  /** a force or close asked for with `req` has finished */
  | { k: 'done'; req: number; error: string | null };

/**
 * IPMI thread → main: one batch of events (up to 10 ms of them), in the
 * order they happened. Entry i is for console ids[i]: lens[i] ≥ 0 is that many bytes of
 * its output, the next ones in `data`; -1 is the next event of `ctl`.
 * Typed arrays and one buffer, so a batch of hundreds of packets is one
 * cheap message instead of hundreds of cloned objects.
 */
export interface ShardEvents {
  ids: Int32Array;
  lens: Int32Array;
  ctl: ShardCtl[];
  data: ArrayBuffer;
}

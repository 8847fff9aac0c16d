// Messages between the main thread and an IPMI thread (ipmi-threads.ts, the
// main side; ipmi-thread-worker.ts, the thread), with one encode and one
// decode function per direction: the only places where what crosses is
// converted (src/util/worker-pool.ts on Cloned). A console is known on both
// sides by a number the main side gives it.

import type { SolSteal } from '../config/types.js';
import type { IpmiSpec } from './ipmi.js';
import type { SolCounts } from '../ipmi/sol-console.js';
import type { IpmiCounts } from '../ipmi/transport.js';
import type { SessionRecordEntry } from '../ipmi/session-record.js';
import { asBuffer, unpackBatch, type Batcher, type Cloned, type Encoded, type PackedBatch } from '../util/worker-pool.js';

/** main → IPMI thread, one message per call */
export type ToIpmiThread =
  /** `earlier`, `tellSessions`: see IpmiDeviceContext (the recorded sessions and a cluster's handover) */
  | { t: 'add'; id: number; spec: IpmiSpec; consoleName: string; steal: SolSteal; earlier: SessionRecordEntry[]; tellSessions: boolean }
  | { t: 'connect'; id: number }
  /** `ack`: say `drained` with this number once the bytes are taken (the main side's input count) */
  | { t: 'write'; id: number; data: Buffer; ack?: number }
  | { t: 'break'; id: number }
  | { t: 'force'; id: number; by: string; req: number }
  | { t: 'close'; id: number; req: number }
  /** after close: the console is gone (a reload removed or replaced it) */
  | { t: 'remove'; id: number };

export type ToIpmiThreadWire = Cloned<ToIpmiThread>;

// A Buffer is sent as a copy of just its bytes: the clone of a view carries
// its whole backing store across (for a small Buffer, 8 KiB of Node's pool).
export function encodeToIpmiThread(m: ToIpmiThread): Encoded<ToIpmiThreadWire> {
  switch (m.t) {
    case 'add': {
      const o = m.spec.opts;
      return { wire: { ...m, spec: { ...m.spec, opts: { ...o, password: new Uint8Array(o.password), kg: o.kg && new Uint8Array(o.kg) } } }, transfer: [] };
    }
    case 'write': {
      const data = new Uint8Array(m.data);
      return { wire: { ...m, data }, transfer: [data.buffer] };
    }
    default:
      return { wire: m, transfer: [] };
  }
}

export function decodeToIpmiThread(w: ToIpmiThreadWire): ToIpmiThread {
  switch (w.t) {
    case 'add': {
      const o = w.spec.opts;
      return { ...w, spec: { ...w.spec, opts: { ...o, password: asBuffer(o.password), kg: o.kg && asBuffer(o.kg) } } };
    }
    case 'write':
      return { ...w, data: asBuffer(w.data) };
    default:
      return w;
  }
}

/** what an IPMI thread says about one of its consoles */
export type IpmiThreadEvent =
  /** console output */
  | { k: 'data'; data: Buffer }
  | { k: 'up' }
  | { k: 'down'; reason: string }
  | { k: 'notice'; text: string }
  /** when another client took SOL (ms), or null, and the console's SOL counts: sent whenever they may have changed */
  | { k: 'held'; since: number | null; sol?: SolCounts }
  /** the sessions that may hold SOL at the BMC changed (only for a console added with tellSessions) */
  | { k: 'sessions'; list: SessionRecordEntry[] }
  /** the thread's IPMI counts so far, keyed THREAD_KEY (no console): with a batch, when they changed */
  | { k: 'counts'; counts: IpmiCounts }
  /** the input of a write with `ack` has been taken */
  | { k: 'drained'; upTo: number }
  /** a force or close asked for with `req` has finished */
  | { k: 'done'; req: number; error: string | null };

/** the key of events about the thread as a whole */
export const THREAD_KEY = -1;

type ControlWire = Cloned<Exclude<IpmiThreadEvent, { k: 'data' }>>;

/** the events an IPMI thread gathers before it posts them as one FromIpmiThreadWire */
export type IpmiThreadBatch = Batcher<ControlWire>;

/**
 * IPMI thread → main: a batch of events (up to 10 ms of them), in the order
 * they happened, keyed by console; the console output is the batch's bytes.
 */
export type FromIpmiThreadWire = PackedBatch<ControlWire>;

/** thread side: add one event to the batch (take() it to post) */
export function encodeFromIpmiThread(batch: IpmiThreadBatch, id: number, ev: IpmiThreadEvent): void {
  if (ev.k === 'data') batch.addBytes(id, ev.data);
  else batch.addEvent(id, ev);
}

/** main side: each entry of a batch, in order: a console's bytes to `onData` (no event object per chunk), its other events to `deliver` */
export function decodeFromIpmiThread(w: FromIpmiThreadWire, deliver: (id: number, ev: Exclude<IpmiThreadEvent, { k: 'data' }>) => void, onData: (id: number, data: Buffer) => void): void {
  unpackBatch(w, onData, deliver);
}

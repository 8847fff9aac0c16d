// Messages between the index writer (main thread, index-writer.ts) and its
// thread (index-writer-worker.ts), with one encode and one decode function
// per direction: the only places where what crosses is converted
// (src/util/worker-pool.ts on Cloned).
//
// A sidecar's path crosses once, when its log names it, under a number (its
// key); a save is then a few numbers per sidecar in three typed arrays and
// the records in one Float64Array, all transferred: the save of 10,000
// sidecars every SAVE_MS is one cheap postMessage.

import type { Cloned, Encoded } from '../util/worker-pool.js';

/** the thread's name, as `top -H` and /proc/PID/task/TID/comm show it */
export const THREAD_NAME = 'conch-index';

/** entry flag: the sidecar starts over (a fresh log's first save: O_TRUNC, then the header) */
export const TRUNCATE = 1;

/** A batch of saves, main → thread. */
export interface SaveBatch {
  id: number;
  /** sidecars new to the thread: [key, path], before the entries */
  names: [number, string][];
  /** entry i: `counts[i]` records for sidecar `keys[i]`, the next ones of `recs`; `flags[i]`: TRUNCATE */
  keys: Int32Array;
  counts: Int32Array;
  flags: Uint8Array;
  /** time, offset, time, offset, … */
  recs: Float64Array;
  /** keys the thread may forget after the entries (their log was closed) */
  forget: Int32Array;
}

/** as it crosses (a Float64Array crosses as itself) */
export type SaveBatchWire = Cloned<Omit<SaveBatch, 'recs'>> & { recs: Float64Array };

/** What the thread does with a batch, called by decodeSaveBatch in this order. */
export interface SaveBatchSteps {
  name(key: number, side: string): void;
  /** `n` records (pairs of `recs` from pair `at`) for sidecar `key` */
  save(key: number, truncate: boolean, recs: Float64Array, at: number, n: number): void;
  forget(key: number): void;
}

export function encodeSaveBatch(b: SaveBatch): Encoded<SaveBatchWire> {
  return { wire: b, transfer: [b.keys.buffer, b.counts.buffer, b.flags.buffer, b.recs.buffer] as ArrayBuffer[] };
}

/** Runs the batch's steps; returns its id. */
export function decodeSaveBatch(w: SaveBatchWire, steps: SaveBatchSteps): number {
  for (const [key, side] of w.names) steps.name(key, side);
  let at = 0;
  for (let i = 0; i < w.keys.length; i++) {
    const n = w.counts[i]!;
    steps.save(w.keys[i]!, (w.flags[i]! & TRUNCATE) !== 0, w.recs, at, n);
    at += n;
  }
  for (const key of w.forget) steps.forget(key);
  return w.id;
}

/** thread → main: the batch is done; errors are [key, message], one per sidecar that failed (its later saves are skipped). */
export interface SaveDone {
  id: number;
  errors: [number, string][] | null;
}

export type SaveDoneWire = Cloned<SaveDone>;

export function encodeSaveDone(d: SaveDone): Encoded<SaveDoneWire> {
  return { wire: d, transfer: [] };
}

export function decodeSaveDone(w: SaveDoneWire): SaveDone {
  return w;
}

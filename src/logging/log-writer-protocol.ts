// Messages between the log writer (main thread, log-writer.ts) and its
// thread (log-writer-worker.ts), with one encode and one decode function per
// direction: the only places where what crosses is converted
// (src/util/worker-pool.ts on Cloned).

import { unpackBatch, type Cloned, type Encoded, type PackedBatch, type TakenBatch } from '../util/worker-pool.js';

/**
 * main → writer thread, a batch: entry i of `writes` is lens[i] bytes for
 * descriptor keys[i]. Before the entries, the failing mark of each fd in
 * `resume` is cleared (the main thread retries it); after them, that of
 * each fd in `closes` (the main thread closes those once this batch is
 * done, and a descriptor number it reuses later must start clean).
 */
export interface WriteBatchWire {
  id: number;
  writes: PackedBatch<never>;
  resume: Int32Array;
  closes: Int32Array;
}

/** What the writer thread does with a batch, called by decodeWriteBatch in this order. */
export interface WriteBatchSteps {
  /** the main thread retries `fd`: write to it again */
  resume(fd: number): void;
  /** entry `entry` of the batch: `bytes` for `fd` */
  write(fd: number, bytes: Buffer, entry: number): void;
  /** the main thread closes `fd` after this batch */
  closing(fd: number): void;
}

export function encodeWriteBatch(id: number, writes: TakenBatch<never>, resume: readonly number[], closes: readonly number[]): Encoded<WriteBatchWire> {
  const wire: WriteBatchWire = { id, writes: writes.wire, resume: Int32Array.from(resume), closes: Int32Array.from(closes) };
  return { wire, transfer: [...writes.transfer, wire.resume.buffer as ArrayBuffer, wire.closes.buffer as ArrayBuffer] };
}

/** Runs the batch's steps; returns its id. */
export function decodeWriteBatch(w: WriteBatchWire, steps: WriteBatchSteps): number {
  for (const fd of w.resume) steps.resume(fd);
  unpackBatch(w.writes, (fd, bytes, entry) => steps.write(fd, bytes, entry), () => {});
  for (const fd of w.closes) steps.closing(fd);
  return w.id;
}

/**
 * writer thread → main: the batch is done; errors are [entry index, bytes of
 * the entry written, message], in entry order. A null message: the entry was
 * skipped because an earlier write to its descriptor failed and the main
 * thread has not resumed it yet (so nothing lands after a gap unmarked).
 */
export interface BatchDone {
  id: number;
  errors: [number, number, string | null][] | null;
}

export type BatchDoneWire = Cloned<BatchDone>;

export function encodeBatchDone(d: BatchDone): Encoded<BatchDoneWire> {
  return { wire: d, transfer: [] };
}

export function decodeBatchDone(w: BatchDoneWire): BatchDone {
  return w;
}

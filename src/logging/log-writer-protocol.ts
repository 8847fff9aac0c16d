// Messages between the log writer (main thread, log-writer.ts) and its
// thread (log-writer-worker.ts), with one encode and one decode function per
// direction: the only places where what crosses is converted
// (src/util/worker-pool.ts on Cloned).

import { unpackBatch, type Cloned, type Encoded, type PackedBatch, type TakenBatch } from '../util/worker-pool.js';

/**
 * main → writer thread, a batch: entry i of `writes` is lens[i] bytes for
 * descriptor keys[i]. Before the entries, the failing mark of each fd in
 * `resume` is cleared (the main thread retries it); after them, the files of
 * `tails` (pairs: fd, bytes) are read back, their newest bytes (a replay: it
 * sees every byte queued before it); then the failing mark of each fd in
 * `closes` is cleared (the main thread closes those once this batch is done,
 * and a descriptor number it reuses later must start clean).
 */
export interface WriteBatchWire {
  id: number;
  writes: PackedBatch<never>;
  resume: Int32Array;
  tails: Int32Array;
  closes: Int32Array;
}

/** What the writer thread does with a batch, called by decodeWriteBatch in this order. */
export interface WriteBatchSteps {
  /** the main thread retries `fd`: write to it again */
  resume(fd: number): void;
  /** entry `entry` of the batch: `bytes` for `fd` */
  write(fd: number, bytes: Buffer, entry: number): void;
  /** the newest `max` bytes of the file open as `fd`, or why they cannot be read */
  tail(fd: number, max: number): Uint8Array | string;
  /** the main thread closes `fd` after this batch */
  closing(fd: number): void;
}

export function encodeWriteBatch(id: number, writes: TakenBatch<never>, resume: readonly number[], tails: readonly number[], closes: readonly number[]): Encoded<WriteBatchWire> {
  const wire: WriteBatchWire = { id, writes: writes.wire, resume: Int32Array.from(resume), tails: Int32Array.from(tails), closes: Int32Array.from(closes) };
  return { wire, transfer: [...writes.transfer, wire.resume.buffer as ArrayBuffer, wire.tails.buffer as ArrayBuffer, wire.closes.buffer as ArrayBuffer] };
}

/** Runs the batch's steps; returns its id and the tails read, in request order. */
export function decodeWriteBatch(w: WriteBatchWire, steps: WriteBatchSteps): { id: number; tails: (Uint8Array | string)[] | null } {
  for (const fd of w.resume) steps.resume(fd);
  unpackBatch(w.writes, (fd, bytes, entry) => steps.write(fd, bytes, entry), () => {});
  let tails: (Uint8Array | string)[] | null = null;
  for (let i = 0; i + 1 < w.tails.length; i += 2) (tails ??= []).push(steps.tail(w.tails[i]!, w.tails[i + 1]!));
  for (const fd of w.closes) steps.closing(fd);
  return { id: w.id, tails };
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
  /** the tails asked for, in order: the bytes, or why they could not be read */
  tails: (Uint8Array | string)[] | null;
}

export type BatchDoneWire = Cloned<BatchDone>;

export function encodeBatchDone(d: BatchDone): Encoded<BatchDoneWire> {
  const transfer: ArrayBuffer[] = [];
  for (const t of d.tails ?? []) if (typeof t !== 'string' && t.byteLength > 0) transfer.push(t.buffer as ArrayBuffer);
  return { wire: d, transfer };
}

export function decodeBatchDone(w: BatchDoneWire): BatchDone {
  return w;
}

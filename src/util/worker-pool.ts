// Worker threads kept below a module's own interface: the log writer's
// thread (src/logging/log-writer.ts) and the IPMI threads
// (src/devices/ipmi-threads.ts). What they share lives here:
//
// - WorkerPool: a fixed number of threads, each started at its first
//   message and again after it died; an idle thread does not keep the
//   process alive (hold()/release() while an answer is awaited); a thread
//   that dies is reported once, with why, through onLost (what then happens
//   is the user's business); terminate() ends them without a report.
// - Batcher / unpackBatch: many small entries (bytes for a key, or an event
//   for a key) gathered over an event-loop turn (or a few ms) into one
//   message of two typed arrays and one buffer, transferred rather than
//   copied, so that hundreds of entries cost one cheap postMessage.
// - Cloned / Encoded: the types of a message as it crosses. Each user
//   writes one encode and one decode function per direction; a decode
//   returns the user's own type from the Cloned one, so a Buffer field
//   (which arrives as a plain Uint8Array) that a decoder does not convert
//   fails to type-check.

import * as fs from 'node:fs';
import * as os from 'node:os';
import { parentPort, Worker } from 'node:worker_threads';

/** the log and index writers' niceness: they yield to the main and IPMI threads, and use what those leave */
export const BULK_NICE = 10;

/** how a pool tells its threads their niceness (a worker's own copy of the environment) */
const NICE_ENV = 'CONCH_THREAD_NICE';

/**
 * This thread's niceness raised by `by` (Linux: a thread is a task with an ID
 * of its own, /proc/thread-self names it, and setpriority takes it). Where
 * that cannot be done the thread runs as it is: a scheduling preference, not
 * a requirement.
 */
function lowerPriority(by: number): void {
  if (!(by > 0)) return;
  try {
    const tid = Number(fs.readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isInteger(tid) || tid <= 0) return;
    os.setPriority(tid, Math.min(19, os.getPriority(tid) + by));
  } catch {
    /* not Linux, or not allowed: as it is */
  }
}

/**
 * What a value of type T is on the other side of postMessage (a structured
 * clone): a Buffer arrives as a plain Uint8Array, a function cannot cross,
 * the rest keeps its shape.
 */
export type Cloned<T> = T extends Buffer
  ? Uint8Array
  : T extends Uint8Array | Int32Array | ArrayBuffer
    ? T
    : T extends (...args: never[]) => unknown
      ? never
      : T extends object
        ? { [K in keyof T]: Cloned<T[K]> }
        : T;

/** A message ready to post: its wire form and the buffers to transfer (not copy) with it. */
export interface Encoded<W> {
  wire: W;
  transfer: ArrayBuffer[];
}

/** a Buffer over the bytes of a Uint8Array that crossed (no copy) */
export const asBuffer = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

export interface WorkerPoolOptions<FromWire> {
  /** the threads' code */
  script: URL;
  /** how many threads */
  size: number;
  /** thread i's name, as debuggers and `top -H` show it */
  name?: (i: number) => string;
  /** given to every thread as its workerData */
  workerData?: unknown;
  /**
   * the threads' CPU niceness above the daemon's (Linux): bulk work (the
   * log and index writers) yields the cores to the threads a typing person
   * waits on, and still runs in full when they leave it room
   */
  nice?: number;
  /** a message from thread i, as it crossed (decode it) */
  onMessage: (i: number, wire: FromWire) => void;
  /**
   * thread i died (an uncaught error, or it exited): `why` is the error's
   * message or "exit code N". Its holds are gone; the next post() starts a
   * new thread.
   */
  onLost: (i: number, why: string) => void;
}

export class WorkerPool<ToWire, FromWire> {
  private readonly workers: (Worker | null)[];
  /** answers awaited from each thread: while any, it keeps the process alive */
  private readonly holds: number[];
  private terminated = false;

  constructor(private readonly opts: WorkerPoolOptions<FromWire>) {
    this.workers = Array.from({ length: opts.size }, () => null);
    this.holds = Array.from({ length: opts.size }, () => 0);
  }

  get size(): number {
    return this.workers.length;
  }

  /** Post to thread i, starting it if it is not running. False (nothing posted) once terminated. */
  post(i: number, m: Encoded<ToWire>): boolean {
    if (this.terminated) return false;
    this.worker(i).postMessage(m.wire, m.transfer);
    return true;
  }

  /** an answer from thread i is awaited: keep the process alive until the matching release(i) */
  hold(i: number): void {
    if (this.holds[i]!++ === 0) this.workers[i]?.ref();
  }

  release(i: number): void {
    if (this.holds[i]! > 0 && --this.holds[i]! === 0) this.workers[i]?.unref();
  }

  /** End every thread; none is reported lost, and nothing is posted afterwards. */
  async terminate(): Promise<void> {
    this.terminated = true;
    const running = this.workers.filter((w): w is Worker => w !== null);
    this.workers.fill(null);
    this.holds.fill(0);
    await Promise.all(running.map((w) => w.terminate()));
  }

  private worker(i: number): Worker {
    const running = this.workers[i];
    if (running) return running;
    const name = this.opts.name?.(i);
    const nice = this.opts.nice ? { env: { ...process.env, [NICE_ENV]: String(this.opts.nice) } } : {};
    const w = new Worker(this.opts.script, { ...(name === undefined ? {} : { name }), workerData: this.opts.workerData, ...nice });
    // what uses the threads keeps the process alive, not an idle thread
    if (this.holds[i] === 0) w.unref();
    w.on('message', (m: FromWire) => this.opts.onMessage(i, m));
    w.on('error', (e) => this.lost(i, w, e.message));
    w.on('exit', (code) => this.lost(i, w, `exit code ${code}`));
    this.workers[i] = w;
    return w;
  }

  /** the first of a dead thread's 'error' and 'exit' reports it; a terminated one is not */
  private lost(i: number, w: Worker, why: string): void {
    if (this.workers[i] !== w) return;
    this.workers[i] = null;
    this.holds[i] = 0;
    this.opts.onLost(i, why);
  }
}

/**
 * A thread's end of a WorkerPool: `onMessage` gets each message as it
 * crossed (decode it); returns the function that posts one back.
 */
export function poolThread<ToWire, FromWire>(onMessage: (wire: ToWire) => void): (m: Encoded<FromWire>) => void {
  const port = parentPort;
  if (!port) throw new Error('poolThread: not on a worker thread');
  lowerPriority(Number(process.env[NICE_ENV] ?? 0));
  port.on('message', onMessage);
  return (m) => port.postMessage(m.wire, m.transfer);
}

/**
 * Entries gathered into one message: entry i is for keys[i]; lens[i] ≥ 0 is
 * that many bytes, the next ones in `data`; -1 is the next of `events`.
 */
export interface PackedBatch<E> {
  keys: Int32Array;
  lens: Int32Array;
  data: ArrayBuffer;
  events: E[];
}

/** a batch taken from a Batcher: the message, and each entry's length (lens is transferred away with it) */
export interface TakenBatch<E> extends Encoded<PackedBatch<E>> {
  lens: number[];
}

/**
 * Gathers entries, in order, for one PackedBatch. schedule() runs `flush`
 * once: at the end of this event-loop turn (setImmediate), or `delayMs`
 * later; `flush` calls take() (it may also be called at once).
 */
const NO_BYTES = Buffer.alloc(0);

export class Batcher<E> {
  private keys: number[] = [];
  private lens: number[] = [];
  private events: E[] = [];
  private bufs: Buffer[] = [];
  private bytes = 0;
  private scheduled = false;

  constructor(
    private readonly flush: () => void,
    private readonly delayMs = 0,
  ) {}

  /** entries gathered */
  get size(): number {
    return this.keys.length;
  }

  /** whether an entry for `key` is gathered (a scan: for the rare caller, not per entry) */
  has(key: number): boolean {
    return this.keys.includes(key);
  }

  /**
   * Bytes for `key`. `join`: add them to the last entry if it is bytes for
   * the same key (one write of both). Returns whether a new entry began.
   */
  addBytes(key: number, b: Buffer, join = false): boolean {
    const last = this.keys.length - 1;
    const joined = join && last >= 0 && this.keys[last] === key && this.lens[last]! >= 0;
    if (joined) this.lens[last]! += b.length;
    else {
      this.keys.push(key);
      this.lens.push(b.length);
    }
    this.bufs.push(b);
    this.bytes += b.length;
    return !joined;
  }

  addEvent(key: number, e: E): void {
    this.keys.push(key);
    this.lens.push(-1);
    this.events.push(e);
  }

  schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    const run = (): void => {
      this.scheduled = false;
      this.flush();
    };
    if (this.delayMs > 0) setTimeout(run, this.delayMs);
    else setImmediate(run);
  }

  /** Everything gathered, as one message (the bytes copied into one buffer of their own); starts afresh. */
  take(): TakenBatch<E> {
    // not from the pool: its buffer is transferred
    const data = Buffer.allocUnsafeSlow(this.bytes);
    let off = 0;
    for (const b of this.bufs) off += b.copy(data, off);
    const wire: PackedBatch<E> = { keys: Int32Array.from(this.keys), lens: Int32Array.from(this.lens), data: data.buffer as ArrayBuffer, events: this.events };
    const lens = this.lens;
    this.keys.length = 0;
    this.lens = [];
    this.events = [];
    // emptied slot by slot and kept: with thousands of logs flushed in one turn this array is large
    // enough to live in the old generation, and a dropped one would keep the young buffers it
    // pointed at alive through the next scavenges
    this.bufs.fill(NO_BYTES);
    this.bufs.length = 0;
    this.bytes = 0;
    return { wire, transfer: [wire.data, wire.keys.buffer as ArrayBuffer, wire.lens.buffer as ArrayBuffer], lens };
  }
}

/** A batch's entries in order: bytes (a Buffer over the batch's own buffer) or an event, each with its key and index. */
export function unpackBatch<E>(w: PackedBatch<E>, onBytes: (key: number, bytes: Buffer, entry: number) => void, onEvent: (key: number, e: E, entry: number) => void): void {
  const data = Buffer.from(w.data);
  let off = 0;
  let ev = 0;
  for (let i = 0; i < w.keys.length; i++) {
    const len = w.lens[i]!;
    if (len >= 0) {
      onBytes(w.keys[i]!, data.subarray(off, off + len), i);
      off += len;
    } else onEvent(w.keys[i]!, w.events[ev++]!, i);
  }
}

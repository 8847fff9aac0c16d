// Every console log's write(2)s go through one worker thread, a batch per
// event-loop turn: the main thread only copies the bytes of that turn into
// one buffer and posts it. With thousands of consoles, an fs.writev per log
// per flush cost the main thread ~17 µs each (request object, thread-pool
// hand-off, completion callback) and was its largest cost after the UDP
// sends; a slow disk now delays only the writer thread, never the consoles.
// One thread and one queue keep every file's bytes in order, and a close
// runs after the writes queued before it. A descriptor whose write failed
// is skipped by the thread until its client resume()s it (see
// log-writer-worker.ts), and every client learns how many of its bytes
// were written.

import * as fs from 'node:fs';
import { Batcher, BULK_NICE, WorkerPool } from '../util/worker-pool.js';
import { decodeBatchDone, encodeWriteBatch, type BatchDone, type BatchDoneWire, type WriteBatchWire } from './log-writer-protocol.js';

/** What the writer tells an appender about its entries of a batch. */
export interface WriterClient {
  /**
   * `bytes` of this client's queued bytes (the oldest not yet reported) were
   * not all written: only the first `written`. `message` is null when the
   * thread skipped them because an earlier write to the descriptor failed.
   * A failed close reports (message, 0, 0).
   */
  failed(message: string | null, bytes: number, written: number): void;
  /** the next `bytes` queued bytes of this client were written */
  wrote(bytes: number): void;
}

interface Closing {
  client: WriterClient;
  fd: number;
  done: () => void;
}

interface Tail {
  fd: number;
  max: number;
  done: (b: Buffer | Error) => void;
}

interface InFlight {
  clients: WriterClient[];
  lens: number[];
  tails: Tail[];
  closing: Closing[];
}

export class LogWriter {
  private readonly thread: WorkerPool<WriteBatchWire, BatchDoneWire>;
  /** this turn's writes, posted at its end */
  private readonly batch = new Batcher<never>(() => this.post());
  /** whose each entry of the batch is */
  private clients: WriterClient[] = [];
  private closing: Closing[] = [];
  private tails: Tail[] = [];
  private resumes: number[] = [];
  /** the last entry must not grow */
  private lastAlone = false;
  private nextId = 1;
  private readonly inFlight = new Map<number, InFlight>();

  /** `script`: the thread's code */
  constructor(script = new URL('./log-writer-worker.js', import.meta.url)) {
    this.thread = new WorkerPool({ script, size: 1, nice: BULK_NICE, onMessage: (_, w) => this.done(decodeBatchDone(w)), onLost: (_, why) => this.lost(why) });
  }

  /**
   * Queue `b` for `fd`; consecutive writes of one client become one write(2).
   * `alone`: a write(2) of its own (a marker: small enough that a pipe takes
   * it whole or not at all, and no half of it is glued to the bytes after it).
   */
  write(c: WriterClient, fd: number, b: Buffer, alone = false): void {
    if (b.length === 0) return;
    const join = !alone && !this.lastAlone && this.clients.at(-1) === c;
    if (this.batch.addBytes(fd, b, join)) this.clients.push(c);
    this.lastAlone = alone;
    this.batch.schedule();
  }

  /**
   * Let the thread write to `fd` again after a failure: it applies before
   * every entry of the next batch, so call it before the first write(), and
   * only once every earlier write of `fd` has been reported.
   */
  resume(fd: number): void {
    this.resumes.push(fd);
    this.batch.schedule();
  }

  /**
   * The newest `max` bytes of the file open as `fd`, read by the thread after
   * every write queued before this call (a replay sees all of them).
   */
  tail(fd: number, max: number): Promise<Buffer> {
    this.batch.schedule();
    return new Promise((resolve, reject) => this.tails.push({ fd, max, done: (b) => (b instanceof Error ? reject(b) : resolve(b)) }));
  }

  /** Close `fd` after everything queued for it; resolves once it is closed (or failed to). */
  close(c: WriterClient, fd: number): Promise<void> {
    this.batch.schedule();
    return new Promise((done) => this.closing.push({ client: c, fd, done }));
  }

  private post(): void {
    if (this.batch.size === 0 && this.closing.length === 0 && this.resumes.length === 0 && this.tails.length === 0) return;
    const id = this.nextId++;
    const writes = this.batch.take();
    const batch = encodeWriteBatch(
      id,
      writes,
      this.resumes,
      this.tails.flatMap((t) => [t.fd, t.max]),
      this.closing.map((c) => c.fd),
    );
    this.inFlight.set(id, { clients: this.clients, lens: writes.lens, tails: this.tails, closing: this.closing });
    this.clients = [];
    this.tails = [];
    this.closing = [];
    this.resumes = [];
    this.lastAlone = false;
    this.thread.post(0, batch);
    this.thread.hold(0); // bytes on their way keep the process alive
  }

  /** a writer thread that dies takes its queued batches with it: say so on each of their logs */
  private lost(why: string): void {
    for (const f of this.inFlight.values()) {
      // how much of these it wrote is unknown: count them all as lost
      f.clients.forEach((c, i) => c.failed(`log writer thread stopped: ${why}`, f.lens[i]!, 0));
      for (const t of f.tails) t.done(new Error(`log writer thread stopped: ${why}`));
      this.closeAll(f.closing);
    }
    this.inFlight.clear();
  }

  private done(m: BatchDone): void {
    const f = this.inFlight.get(m.id);
    if (!f) return;
    this.inFlight.delete(m.id);
    this.thread.release(0);
    let e = 0;
    f.clients.forEach((c, i) => {
      if (m.errors && e < m.errors.length && m.errors[e]![0] === i) {
        const [, written, message] = m.errors[e++]!;
        c.failed(message, f.lens[i]!, written);
      } else c.wrote(f.lens[i]!);
    });
    f.tails.forEach((t, i) => {
      const r = m.tails?.[i];
      if (r === undefined || typeof r === 'string') t.done(new Error(r ?? 'no answer from the log writer thread'));
      else t.done(Buffer.from(r.buffer, r.byteOffset, r.byteLength));
    });
    this.closeAll(f.closing);
  }

  /** every write queued before these closes is done: close (on this thread, which opened them) */
  private closeAll(cs: Closing[]): void {
    for (const c of cs) {
      fs.close(c.fd, (e) => {
        if (e) c.client.failed(e.message, 0, 0);
        c.done();
      });
    }
  }
}

let shared: LogWriter | null = null;
/** The process's one log writer. */
export function logWriter(): LogWriter {
  return (shared ??= new LogWriter());
}

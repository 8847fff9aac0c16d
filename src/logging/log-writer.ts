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

import { Worker } from 'node:worker_threads';
import * as fs from 'node:fs';
import type { Batch, BatchDone } from './log-writer-protocol.js';

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

interface InFlight {
  clients: WriterClient[];
  lens: number[];
  closing: Closing[];
}

export class LogWriter {
  private worker: Worker | null = null;
  private clients: WriterClient[] = [];
  private fds: number[] = [];
  private lens: number[] = [];
  private bufs: Buffer[] = [];
  private bytes = 0;
  private closing: Closing[] = [];
  private resumes: number[] = [];
  /** the last entry must not grow */
  private lastAlone = false;
  private posting = false;
  private nextId = 1;
  private readonly inFlight = new Map<number, InFlight>();

  /**
   * Queue `b` for `fd`; consecutive writes of one client become one write(2).
   * `alone`: a write(2) of its own (a marker: small enough that a pipe takes
   * it whole or not at all, and no half of it is glued to the bytes after it).
   */
  write(c: WriterClient, fd: number, b: Buffer, alone = false): void {
    if (b.length === 0) return;
    const last = this.clients.length - 1;
    if (!alone && !this.lastAlone && last >= 0 && this.clients[last] === c) this.lens[last] += b.length;
    else {
      this.clients.push(c);
      this.fds.push(fd);
      this.lens.push(b.length);
    }
    this.lastAlone = alone;
    this.bufs.push(b);
    this.bytes += b.length;
    this.schedule();
  }

  /**
   * Let the thread write to `fd` again after a failure: it applies before
   * every entry of the next batch, so call it before the first write(), and
   * only once every earlier write of `fd` has been reported.
   */
  resume(fd: number): void {
    this.resumes.push(fd);
    this.schedule();
  }

  /** Close `fd` after everything queued for it; resolves once it is closed (or failed to). */
  close(c: WriterClient, fd: number): Promise<void> {
    this.schedule();
    return new Promise((done) => this.closing.push({ client: c, fd, done }));
  }

  private schedule(): void {
    if (this.posting) return;
    this.posting = true;
    setImmediate(() => this.post());
  }

  private post(): void {
    this.posting = false;
    if (this.clients.length === 0 && this.closing.length === 0 && this.resumes.length === 0) return;
    const data = Buffer.allocUnsafeSlow(this.bytes);
    let off = 0;
    for (const b of this.bufs) off += b.copy(data, off);
    const id = this.nextId++;
    const batch: Batch = {
      id,
      fds: Int32Array.from(this.fds),
      lens: Int32Array.from(this.lens),
      data: data.buffer as ArrayBuffer,
      resume: Int32Array.from(this.resumes),
      closes: Int32Array.from(this.closing, (c) => c.fd),
    };
    this.inFlight.set(id, { clients: this.clients, lens: this.lens, closing: this.closing });
    this.clients = [];
    this.fds = [];
    this.lens = [];
    this.bufs = [];
    this.bytes = 0;
    this.closing = [];
    this.resumes = [];
    this.lastAlone = false;
    const w = this.thread();
    w.ref(); // bytes on their way keep the process alive
    w.postMessage(batch, [batch.data, batch.fds.buffer as ArrayBuffer, batch.lens.buffer as ArrayBuffer, batch.resume.buffer as ArrayBuffer, batch.closes.buffer as ArrayBuffer]);
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(new URL('./log-writer-worker.js', import.meta.url));
    w.on('message', (m: BatchDone) => this.done(m));
    // a writer thread that dies takes its queued batches with it: say so on each of their logs
    const lost = (why: string): void => {
      if (this.worker !== w) return;
      this.worker = null;
      for (const f of this.inFlight.values()) {
        // how much of these it wrote is unknown: count them all as lost
        f.clients.forEach((c, i) => c.failed(`log writer thread stopped: ${why}`, f.lens[i]!, 0));
        this.closeAll(f.closing);
      }
      this.inFlight.clear();
    };
    w.on('error', (e) => lost(e.message));
    w.on('exit', (code) => lost(`exit code ${code}`));
    this.worker = w;
    return w;
  }

  private done(m: BatchDone): void {
    const f = this.inFlight.get(m.id);
    if (!f) return;
    this.inFlight.delete(m.id);
    let e = 0;
    f.clients.forEach((c, i) => {
      if (m.errors && e < m.errors.length && m.errors[e]![0] === i) {
        const [, written, message] = m.errors[e++]!;
        c.failed(message, f.lens[i]!, written);
      } else c.wrote(f.lens[i]!);
    });
    this.closeAll(f.closing);
    if (this.inFlight.size === 0) this.worker?.unref();
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

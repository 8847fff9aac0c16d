// Every console log's write(2)s go through one worker thread, a batch per
// event-loop turn: the main thread only copies the bytes of that turn into
// one buffer and posts it. With thousands of consoles, an fs.writev per log
// per flush cost the main thread ~17 µs each (request object, thread-pool
// hand-off, completion callback) and was its largest cost after the UDP
// sends; a slow disk now delays only the writer thread, never the consoles.
// One thread and one queue keep every file's bytes in order, and a close
// runs after the writes queued before it.

import { Worker } from 'node:worker_threads';
import * as fs from 'node:fs';
import type { Batch, BatchDone } from './log-writer-protocol.js';

/** What the writer tells an appender about its entries of a batch. */
export interface WriterClient {
  /** a write or close of this client failed */
  failed(message: string): void;
  /** a write of this client went through */
  wrote(): void;
}

interface Closing {
  client: WriterClient;
  fd: number;
  done: () => void;
}

interface InFlight {
  clients: WriterClient[];
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
  private posting = false;
  private nextId = 1;
  private readonly inFlight = new Map<number, InFlight>();

  /** Queue `b` for `fd`; consecutive writes of one client become one write(2). */
  write(c: WriterClient, fd: number, b: Buffer): void {
    if (b.length === 0) return;
    const last = this.clients.length - 1;
    if (last >= 0 && this.clients[last] === c) this.lens[last] += b.length;
    else {
      this.clients.push(c);
      this.fds.push(fd);
      this.lens.push(b.length);
    }
    this.bufs.push(b);
    this.bytes += b.length;
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
    if (this.clients.length === 0 && this.closing.length === 0) return;
    const data = Buffer.allocUnsafeSlow(this.bytes);
    let off = 0;
    for (const b of this.bufs) off += b.copy(data, off);
    const id = this.nextId++;
    const batch: Batch = { id, fds: Int32Array.from(this.fds), lens: Int32Array.from(this.lens), data: data.buffer as ArrayBuffer };
    this.inFlight.set(id, { clients: this.clients, closing: this.closing });
    this.clients = [];
    this.fds = [];
    this.lens = [];
    this.bufs = [];
    this.bytes = 0;
    this.closing = [];
    const w = this.thread();
    w.ref(); // bytes on their way keep the process alive
    w.postMessage(batch, [batch.data, batch.fds.buffer as ArrayBuffer, batch.lens.buffer as ArrayBuffer]);
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
        for (const c of f.clients) c.failed(`log writer thread stopped: ${why}`);
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
      if (m.errors && e < m.errors.length && m.errors[e]![0] === i) c.failed(m.errors[e++]![1]);
      else c.wrote();
    });
    this.closeAll(f.closing);
    if (this.inFlight.size === 0) this.worker?.unref();
  }

  /** every write queued before these closes is done: close (on this thread, which opened them) */
  private closeAll(cs: Closing[]): void {
    for (const c of cs) {
      fs.close(c.fd, (e) => {
        if (e) c.client.failed(e.message);
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

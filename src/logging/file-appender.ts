// Appends buffers to one open file descriptor with at most one write in
// flight, so bytes land in order; whatever arrives meanwhile goes out in the
// next writev. Leaner than fs.WriteStream, which matters with thousands of
// logs each written several times a second.

import * as fs from 'node:fs';

/** buffers handed to one writev at most (IOV_MAX is 1024 on Linux) */
const MAX_IOV = 256;

export class FileAppender {
  private queue: Buffer[] = [];
  private busy = false;
  private ended = false;
  private closed: Promise<void> | null = null;
  private drained: (() => void) | null = null;
  /** true after a failed write, until one succeeds: one message per outage */
  private failing = false;

  constructor(
    private readonly fd: number,
    /** a write failed (disk full, I/O error); the batch is gone */
    private readonly onError: (e: Error) => void,
  ) {}

  write(b: Buffer): void {
    if (this.ended || b.length === 0) return;
    this.queue.push(b);
    if (!this.busy) this.next();
  }

  /** Several buffers in order, as one writev when nothing is in flight. */
  writeAll(bufs: Buffer[]): void {
    if (this.ended) return;
    for (const b of bufs) if (b.length) this.queue.push(b);
    if (!this.busy) this.next();
  }

  /** Write what is queued, then close the descriptor. */
  end(): Promise<void> {
    this.ended = true;
    this.closed ??= new Promise<void>((resolve) => {
      this.drained = resolve;
      if (!this.busy) this.next();
    }).then(() => new Promise<void>((resolve) => fs.close(this.fd, () => resolve())));
    return this.closed;
  }

  private next(): void {
    if (this.queue.length === 0) {
      this.busy = false;
      if (this.ended) this.drained?.();
      return;
    }
    this.busy = true;
    const bufs = this.queue.length <= MAX_IOV ? this.queue : this.queue.splice(0, MAX_IOV);
    if (bufs === this.queue) this.queue = [];
    let total = 0;
    for (const b of bufs) total += b.length;
    fs.writev(this.fd, bufs, (err, written) => {
      if (err) {
        if (!this.failing) this.onError(err);
        this.failing = true;
      } else {
        this.failing = false;
        // a short write (rare on regular files): the rest goes first next time
        if (written < total) this.queue.unshift(...rest(bufs, written));
      }
      this.next();
    });
  }
}

/** the parts of `bufs` after the first `skip` bytes */
function rest(bufs: Buffer[], skip: number): Buffer[] {
  const out: Buffer[] = [];
  for (const b of bufs) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    out.push(skip > 0 ? b.subarray(skip) : b);
    skip = 0;
  }
  return out;
}

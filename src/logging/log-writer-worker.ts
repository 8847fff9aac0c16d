// The log writer's thread: takes batches of (descriptor, bytes) from the
// main thread and does the write(2)s, in order, one batch after another.
// Nothing here may throw out of a batch: an error is reported for its
// entry and the batch goes on. Descriptors are the main thread's: it
// closes them once the batches before the close are done. See log-writer.ts for the other side.
//
// A descriptor whose write fails is marked failing: every later entry for it
// is skipped (and reported) until the main thread resumes it. Its appender
// then writes a marker counting the lost bytes before anything else, so a
// log never has bytes silently cut out of its middle (a full disk that frees
// a little would otherwise splice later bytes onto a half-written line).

import * as fs from 'node:fs';
import { poolThread } from '../util/worker-pool.js';
import { decodeWriteBatch, encodeBatchDone, type BatchDone, type BatchDoneWire, type WriteBatchSteps, type WriteBatchWire } from './log-writer-protocol.js';

class LogWriterThread implements WriteBatchSteps {
  private readonly failing = new Set<number>();
  /** the errors of the batch being written */
  private errors: BatchDone['errors'] = null;

  run(w: WriteBatchWire): BatchDone {
    this.errors = null;
    const { id, tails } = decodeWriteBatch(w, this);
    return { id, errors: this.errors, tails };
  }

  /**
   * A replay: the file's newest `max` bytes. The descriptor is write-only
   * (O_APPEND): the same file is opened again for reading through
   * /proc/self/fd, and only a regular file (a FIFO would be drained).
   */
  tail(fd: number, max: number): Uint8Array | string {
    let rfd = -1;
    try {
      if (!fs.fstatSync(fd).isFile()) return 'the log is not a regular file';
      rfd = fs.openSync(`/proc/self/fd/${fd}`, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
      const size = fs.fstatSync(rfd).size;
      const from = Math.max(0, size - max);
      // its own buffer: it is transferred to the main thread
      const b = new Uint8Array(new ArrayBuffer(size - from));
      let got = 0;
      while (got < b.length) {
        const n = fs.readSync(rfd, b, got, b.length - got, from + got);
        if (n === 0) break;
        got += n;
      }
      return got === b.length ? b : b.slice(0, got);
    } catch (e) {
      return (e as Error).message;
    } finally {
      if (rfd >= 0) fs.closeSync(rfd);
    }
  }

  resume(fd: number): void {
    this.failing.delete(fd);
  }

  write(fd: number, bytes: Buffer, entry: number): void {
    if (this.failing.has(fd)) {
      (this.errors ??= []).push([entry, 0, null]);
      return;
    }
    let done = 0;
    try {
      // a short write (rare on regular files) goes on from where it stopped
      while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done);
    } catch (e) {
      this.failing.add(fd);
      (this.errors ??= []).push([entry, done, (e as Error).message]);
    }
  }

  closing(fd: number): void {
    this.failing.delete(fd);
  }
}

const thread = new LogWriterThread();
const post = poolThread<WriteBatchWire, BatchDoneWire>((w) => post(encodeBatchDone(thread.run(w))));

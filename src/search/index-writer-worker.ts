// The index writer's thread: takes batches of sidecar saves from the main
// thread (index-writer.ts) and appends the records, each sidecar by open,
// write, close (no descriptor is held between saves: 10,000 logs do not
// cost 10,000 more descriptors), with plain synchronous calls: three system
// calls a sidecar a save, and no request objects or callbacks on the main
// thread. Nothing here may throw out of a batch: an error is reported for
// its sidecar, whose later saves are skipped.

import * as fs from 'node:fs';
import { openLogSync } from '../logging/open-log.js';
import { poolThread } from '../util/worker-pool.js';
import { header, HEADER_BYTES, RECORD_BYTES } from './index-format.js';
import { decodeSaveBatch, encodeSaveDone, THREAD_NAME, type SaveBatchSteps, type SaveBatchWire, type SaveDone, type SaveDoneWire } from './index-writer-protocol.js';

interface Sidecar {
  path: string;
  /** its size is known to be the header and whole records (this thread wrote it last) */
  aligned: boolean;
  failed: boolean;
}

class IndexWriterThread implements SaveBatchSteps {
  private readonly sidecars = new Map<number, Sidecar>();
  private errors: SaveDone['errors'] = null;

  run(w: SaveBatchWire): SaveDone {
    this.errors = null;
    const id = decodeSaveBatch(w, this);
    return { id, errors: this.errors };
  }

  name(key: number, side: string): void {
    this.sidecars.set(key, { path: side, aligned: false, failed: false });
  }

  forget(key: number): void {
    this.sidecars.delete(key);
  }

  save(key: number, truncate: boolean, recs: Float64Array, at: number, n: number): void {
    const s = this.sidecars.get(key);
    if (!s || s.failed || n === 0) return;
    let fd = -1;
    try {
      fd = truncate ? create(s.path) : openLogSync(s.path, { nonblock: true, mode: 0o600 });
      let pre = 0;
      let size = 0;
      if (truncate) pre = HEADER_BYTES;
      else if (!s.aligned) {
        size = fs.fstatSync(fd).size;
        // a new file gets its header; a torn last record (a crash) is padded to a whole one with 0xFF
        // bytes, which make its offset (and, when the tear is in the time, its time) negative or not a
        // number: the reader drops it
        pre = size === 0 ? HEADER_BYTES : (RECORD_BYTES - ((size - HEADER_BYTES) % RECORD_BYTES)) % RECORD_BYTES;
      }
      const buf = Buffer.allocUnsafe(pre + n * RECORD_BYTES);
      if (pre > 0) {
        if (truncate || size === 0) header().copy(buf, 0);
        else buf.fill(0xff, 0, pre);
      }
      for (let i = 0; i < n; i++) {
        buf.writeDoubleLE(recs[2 * (at + i)]!, pre + i * RECORD_BYTES);
        buf.writeDoubleLE(recs[2 * (at + i) + 1]!, pre + i * RECORD_BYTES + 8);
      }
      // a torn write leaves the sidecar unaligned: the next save looks again
      s.aligned = false;
      let done = 0;
      while (done < buf.length) done += fs.writeSync(fd, buf, done, buf.length - done);
      s.aligned = true;
    } catch (e) {
      s.failed = true;
      (this.errors ??= []).push([key, (e as Error).message]);
    } finally {
      if (fd >= 0) closeQuietly(fd);
    }
  }
}

const { O_WRONLY, O_APPEND, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = fs.constants;

/**
 * A fresh log's sidecar, which seldom exists: created at once (O_EXCL, no
 * link followed), else opened and truncated the careful way of open-log.ts
 * (a failed open is an exception, which costs more than the open).
 */
function create(side: string): number {
  try {
    return fs.openSync(side, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK, 0o600);
  } catch {
    return openLogSync(side, { truncate: true, nonblock: true, mode: 0o600 });
  }
}

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    /* what was written is written */
  }
}

// named for `top -H` and the benchmarks (Linux; elsewhere it keeps its name)
try {
  fs.writeFileSync('/proc/thread-self/comm', THREAD_NAME);
} catch {
  /* not Linux */
}

const thread = new IndexWriterThread();
const post = poolThread<SaveBatchWire, SaveDoneWire>((w) => post(encodeSaveDone(thread.run(w))));

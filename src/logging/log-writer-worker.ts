// The log writer's thread: takes batches of (descriptor, bytes) from the
// main thread and does the write(2)s, in order, one batch after another.
// Nothing here may throw out of a batch: an error is reported for its
// entry and the batch goes on. Descriptors are the main thread's: it
// closes them once the batches before the close are done. See log-writer.ts for the other side.

import * as fs from 'node:fs';
import { parentPort } from 'node:worker_threads';
import type { Batch, BatchDone } from './log-writer-protocol.js';

function writeAll(fd: number, data: Buffer): void {
  let off = 0;
  // a short write (rare on regular files) goes on from where it stopped
  while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off);
}

parentPort!.on('message', (b: Batch) => {
  const data = Buffer.from(b.data);
  let off = 0;
  let errors: BatchDone['errors'] = null;
  for (let i = 0; i < b.lens.length; i++) {
    const fd = b.fds[i]!;
    const len = b.lens[i]!;
    try {
      writeAll(fd, data.subarray(off, off + len));
    } catch (e) {
      (errors ??= []).push([i, (e as Error).message]);
    }
    off += len;
  }
  parentPort!.postMessage({ id: b.id, errors } satisfies BatchDone);
});

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
import { parentPort } from 'node:worker_threads';
import type { Batch, BatchDone } from './log-writer-protocol.js';

const failing = new Set<number>();

parentPort!.on('message', (b: Batch) => {
  for (const fd of b.resume) failing.delete(fd);
  const data = Buffer.from(b.data);
  let off = 0;
  let errors: BatchDone['errors'] = null;
  for (let i = 0; i < b.lens.length; i++) {
    const fd = b.fds[i]!;
    const len = b.lens[i]!;
    if (failing.has(fd)) (errors ??= []).push([i, 0, null]);
    else {
      let done = 0;
      try {
        // a short write (rare on regular files) goes on from where it stopped
        while (done < len) done += fs.writeSync(fd, data, off + done, len - done);
      } catch (e) {
        failing.add(fd);
        (errors ??= []).push([i, done, (e as Error).message]);
      }
    }
    off += len;
  }
  for (const fd of b.closes) failing.delete(fd);
  parentPort!.postMessage({ id: b.id, errors } satisfies BatchDone);
});

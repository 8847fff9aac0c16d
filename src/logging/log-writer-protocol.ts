// Messages between the log writer (main thread) and its worker thread.

/**
 * main → worker: entry i writes lens[i] bytes (taken in turn from data) to
 * fds[i]. Before the entries, the failing mark of each fd in `resume` is
 * cleared (the main thread retries it); after them, that of each fd in
 * `closes` (the main thread closes those once this batch is done, and a
 * descriptor number it reuses later must start clean).
 */
export interface Batch {
  id: number;
  fds: Int32Array;
  lens: Int32Array;
  data: ArrayBuffer;
  resume: Int32Array;
  closes: Int32Array;
}

/**
 * worker → main: the batch is done; errors are [entry index, bytes of the
 * entry written, message], in entry order. A null message: the entry was
 * skipped because an earlier write to its descriptor failed and the main
 * thread has not resumed it yet (so nothing lands after a gap unmarked).
 */
export interface BatchDone {
  id: number;
  errors: [number, number, string | null][] | null;
}

// Messages between the log writer (main thread) and its worker thread.

/** main → worker: entry i writes lens[i] bytes (taken in turn from data) to fds[i] */
export interface Batch {
  id: number;
  fds: Int32Array;
  lens: Int32Array;
  data: ArrayBuffer;
}

/** worker → main: the batch is done; errors are [entry index, message] */
export interface BatchDone {
  id: number;
  errors: [number, string][] | null;
}

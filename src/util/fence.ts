// The node's permission to act on its consoles in a cluster (docs/cluster.md):
// a deadline on the monotonic clock, shared by the main thread and the IPMI
// threads through one SharedArrayBuffer. Every action that a second holder of
// a console would make harmful (a log write, a SOL activation or
// deactivation, any datagram to a BMC) checks it first, so a process that was paused (SIGSTOP, a
// stalled VM) past its etcd lease does nothing on waking, before any timer of
// the cluster code has run. Without a cluster the deadline is +Infinity.

let cell = new Float64Array(new SharedArrayBuffer(8)).fill(Infinity);

/** milliseconds on the process-wide monotonic clock (the same in every thread; it runs on while the process is stopped) */
export function monoMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** may this node act on its consoles now? */
export function fenceOk(): boolean {
  const d = cell[0]!;
  return d === Infinity || monoMs() < d;
}

/** until when (monoMs) this node may act; Infinity: no cluster; 0: not at all */
export function setFence(deadlineMs: number): void {
  // one writer (the main thread); an aligned 8-byte store is read whole by the threads
  cell[0] = deadlineMs;
}

/** the buffer to give a thread, which installs it with useFence() */
export function fenceBuffer(): SharedArrayBuffer {
  return cell.buffer as SharedArrayBuffer;
}

export function useFence(buf: SharedArrayBuffer): void {
  cell = new Float64Array(buf);
}

// The contract between the console engine and one console device (one module
// per type in this folder). A device makes ONE connection attempt per
// connect() call; the engine owns retries, backoff and fan-out.

import type { DevType } from '../config/types.js';

export interface DeviceHandler {
  /**
   * bytes from the console, in order. Never called while not up. The buffer
   * is the handler's to keep: a device never reuses or changes it afterwards.
   */
  onData(buf: Buffer): void;
  /** the attempt succeeded; the device is now up. */
  onUp(): void;
  /**
   * the attempt failed, or an up connection ended. `reason` is short and
   * human-readable (e.g. "connection refused"); it never contains secrets.
   * After onDown the device holds no resources until the next connect().
   */
  onDown(reason: string): void;
  /** the device learnt it can probably connect now (e.g. a unix socket appeared). */
  onReady(): void;
  /** an informational line for logs and clients (e.g. "SOL session taken over ..."). */
  onNotice(text: string): void;
  /**
   * After write() returned false: the device's input queue is back at or
   * below its low-water mark and it takes input again. Not called after
   * onDown (a device that goes down drops its queue).
   */
  onDrain?(): void;
}

/**
 * Client input a device holds for a peer that does not read. write() returns
 * false from INPUT_HIGH_WATER on (devices with a slow line pick less); the
 * engine pauses the writing clients and drops input past INPUT_CAP queued.
 */
export const INPUT_HIGH_WATER = 64 * 1024;
export const INPUT_CAP = 1024 * 1024;

export interface Backoff {
  /** first retry delay, ms */
  minMs: number;
  /** ceiling, ms */
  maxMs: number;
  /** an up period at least this long resets the delay, ms */
  healthyMs: number;
}

/**
 * What a device counts, for metrics (src/web/metrics.ts reads it at scrape
 * time; nothing is updated per byte). Absent fields: not this device type's.
 */
export interface DeviceStats {
  /** IPMI SOL: times another client took SOL from conch */
  solTakeovers?: number;
  /** IPMI SOL: times SOL became conch's again after another client held it */
  solResumes?: number;
  /** IPMI SOL: ms another client held SOL, up to now */
  solHeldElsewhereMs?: number;
}

export interface Device {
  readonly type: DevType;
  readonly backoff: Backoff;
  /**
   * How conman's notices name the device right now: `"/dev/ttyS0"`,
   * `<host:port>`, `"prog" (pid 42)`. Used in
   * `Console [x] connected to <label>` and `... disconnected from <label>`.
   */
  label(): string;
  /** begin one attempt; reports by handler.onUp / handler.onDown. */
  connect(h: DeviceHandler): void;
  /**
   * Bytes to the console (already un-escaped client input); dropped if down.
   * The device queues what its peer does not take at once (no limit of its
   * own: the engine keeps queued() under INPUT_CAP). Returns false once the
   * queue is over the device's high-water mark; handler.onDrain() follows
   * when it is back under the low-water mark (unless the device goes down).
   */
  write(buf: Buffer): boolean;
  /** bytes of client input written but not yet taken by the peer (0 while down) */
  queued(): number;
  /** a serial break, by whatever this device type means by it. */
  sendBreak(): void;
  /**
   * Start watching for readiness while down (unix: the socket file appears).
   * Optional; the engine calls it when it enters backoff.
   */
  watch?(h: DeviceHandler): void;
  /**
   * An operator forced a session (conch -f / &F): take the console even if
   * another client outside conch holds it (IPMI SOL). `by` names who, for the log.
   */
  force?(by: string): Promise<void>;
  /** a short state detail beyond up/down, e.g. "SOL held elsewhere since …" */
  detail?(): string | null;
  /** counters since the device was made (cheap: called per console at each metrics scrape) */
  stats?(): DeviceStats;
  /** tear down the connection and any child process; resolves when released. */
  close(): Promise<void>;
  /**
   * After close(): the device is never used again (a reload removed or
   * replaced its console); free what outlives a close (an IPMI thread's copy).
   */
  dispose?(): void;
}

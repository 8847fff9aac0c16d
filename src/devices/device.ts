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
}

export interface Backoff {
  /** first retry delay, ms */
  minMs: number;
  /** ceiling, ms */
  maxMs: number;
  /** an up period at least this long resets the delay, ms */
  healthyMs: number;
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
  /** bytes to the console (already un-escaped client input). Dropped if down. */
  write(buf: Buffer): void;
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
  /** tear down the connection and any child process; resolves when released. */
  close(): Promise<void>;
}

// conman's load-test console (`dev="test:"`, `testopts="b:..,m:..,n:..,p:.."`).
//
// Like conman's server-test.c: a tick runs at once on connect, then after a
// delay of `m` ms (or uniformly n..m ms when 0 <= n < m; 100 ms when m < 0);
// at each tick a burst starts with probability p %. Characters cycle through
// printable ASCII 0x20..0x7E across bursts, so a reader can check that no byte
// was lost or reordered.
//
// Differences from conman, on purpose: each burst of `b` printable characters
// is followed by CRLF so logs have lines; writes are discarded like conman's
// (it writes them to /dev/null) unless `echo` is set.

import type { TestOpts } from '../config/types.js';
import type { Backoff, Device, DeviceHandler } from './device.js';
import { guarded } from './socket-util.js';

const FIRST = 0x20;
const LAST = 0x7e;
/** a large burst goes out in pieces of this size, one per turn of the event loop */
const CHUNK = 16384;
const DEFAULT_DELAY_MS = 100;
const CRLF = Buffer.from('\r\n');

export interface TestDeviceOptions {
  /** send written bytes back as console output (conman does not) */
  echo?: boolean;
  /** random source in [0, 1), for tests */
  random?: () => number;
}

export class TestDevice implements Device {
  readonly type = 'test' as const;
  readonly backoff: Backoff = { minMs: 1000, maxMs: 60000, healthyMs: 15000 };
  private h: DeviceHandler | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** printable characters still owed in the current burst */
  private left = 0;
  private next = FIRST;
  private readonly random: () => number;

  constructor(
    private readonly spec: { opts: TestOpts },
    private readonly options: TestDeviceOptions = {},
  ) {
    this.random = options.random ?? Math.random;
  }

  label(): string {
    return '"test:"';
  }

  connect(h: DeviceHandler): void {
    if (this.h) return; // already up
    this.h = h;
    this.left = 0;
    // report asynchronously, like the socket devices
    this.schedule(0, () => {
      h.onUp();
      this.tick();
    });
  }

  /** nothing is queued: input is discarded or echoed at once */
  write(buf: Buffer): boolean {
    if (this.h && this.options.echo && buf.length > 0) this.h.onData(Buffer.from(buf));
    return true;
  }

  queued(): number {
    return 0;
  }

  sendBreak(): void {}

  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.h = null;
  }

  private schedule(ms: number, fn: () => void): void {
    const h = this.h;
    if (!h) return;
    this.timer = setTimeout(
      guarded('test console', (t) => h.onNotice(t), () => {
        this.timer = null;
        if (this.h === h) fn();
      }),
      ms,
    );
  }

  private tick(): void {
    const h = this.h;
    if (!h) return;
    const o = this.spec.opts;
    if (this.left === 0 && o.bytes > 0 && this.random() * 100 < Math.min(o.prob, 100)) this.left = o.bytes;
    if (this.left > 0) {
      const n = Math.min(this.left, CHUNK);
      this.left -= n;
      const last = this.left === 0;
      const buf = Buffer.allocUnsafe(n + (last ? 2 : 0));
      for (let i = 0; i < n; i++) {
        buf[i] = this.next;
        this.next = this.next === LAST ? FIRST : this.next + 1;
      }
      if (last) CRLF.copy(buf, n);
      h.onData(buf);
      if (this.h !== h) return; // closed from inside onData
    }
    this.schedule(this.left > 0 ? 0 : this.delay(), () => this.tick());
  }

  private delay(): number {
    const { maxMs, minMs } = this.spec.opts;
    if (maxMs < 0) return DEFAULT_DELAY_MS;
    if (minMs < 0 || minMs >= maxMs) return maxMs;
    return minMs + Math.floor(this.random() * (maxMs - minMs + 1));
  }
}

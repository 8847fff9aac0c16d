// One timer for the whole fleet. Every deadline (host output, SOL
// retransmissions, session sweeps, delayed packets) goes into a bucket of
// TICK_MS; a single interval walks the buckets that are due. Idle BMCs cost
// no timers at all, and 10,000 hosts do not mean 10,000 setIntervals.

export const TICK_MS = 20;

export interface ClockEntry {
  cancelled: boolean;
  fn: () => void;
}

export class FleetClock {
  private buckets = new Map<number, ClockEntry[]>();
  private done: number;
  private timer: NodeJS.Timeout | null = null;
  /** entries run (for the benchmark) */
  fired = 0;

  constructor(private readonly now: () => number = Date.now) {
    this.done = Math.floor(this.now() / TICK_MS);
  }

  /** Run `fn` in about `ms` milliseconds; cancel by setting `.cancelled`. */
  after(ms: number, fn: () => void): ClockEntry {
    const e: ClockEntry = { cancelled: false, fn };
    let key = Math.floor((this.now() + Math.max(0, ms)) / TICK_MS);
    if (key <= this.done) key = this.done + 1;
    const b = this.buckets.get(key);
    if (b) b.push(e);
    else this.buckets.set(key, [e]);
    if (!this.timer) this.timer = setInterval(() => this.tick(), TICK_MS);
    return e;
  }

  private tick(): void {
    const until = Math.floor(this.now() / TICK_MS);
    if (until - this.done > this.buckets.size) {
      // after a long stall walk the keys that exist instead of every skipped tick
      for (;;) {
        let min = Infinity;
        for (const k of this.buckets.keys()) if (k < min) min = k;
        if (min > until) break;
        this.done = min;
        this.runBucket(min);
      }
    } else {
      for (let k = this.done + 1; k <= until; k++) {
        this.done = k; // entries added while running land in a later bucket
        this.runBucket(k);
      }
    }
    this.done = until;
    if (this.buckets.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  private runBucket(k: number): void {
    const b = this.buckets.get(k);
    if (!b) return;
    this.buckets.delete(k);
    for (const e of b) {
      if (e.cancelled) continue;
      this.fired++;
      try {
        e.fn();
      } catch (err) {
        process.stderr.write(`conch-bmcsim: timer task failed: ${String(err)}\n`);
      }
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.buckets.clear();
  }
}

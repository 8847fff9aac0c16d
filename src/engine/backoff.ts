// Exponential reconnect backoff with jitter, one per console. Holds at most
// one timer, and none while the console is up.

import type { Backoff } from '../devices/device.js';

/** ±10 %: consoles that failed together do not all retry in the same tick. */
const JITTER = 0.1;

export class BackoffTimer {
  private delayMs: number;
  private timer: NodeJS.Timeout | null = null;
  private due: number | null = null;

  constructor(
    private readonly policy: Backoff,
    private readonly fire: () => void,
    private readonly random: () => number = Math.random,
  ) {
    this.delayMs = policy.minMs;
  }

  /** When the pending retry fires, or null. */
  get dueAt(): Date | null {
    return this.due === null ? null : new Date(this.due);
  }

  /** The delay the next schedule() would use (before jitter). */
  get nextDelayMs(): number {
    return this.delayMs;
  }

  /** Arm the retry timer: now if `immediate`, else after the current delay, which then doubles. */
  schedule(immediate = false): void {
    this.cancel();
    let ms = 0;
    if (!immediate) {
      ms = Math.round(this.delayMs * (1 - JITTER + 2 * JITTER * this.random()));
      this.delayMs = Math.min(this.delayMs * 2, this.policy.maxMs);
    }
    this.due = Date.now() + ms;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.due = null;
      this.fire();
    }, ms);
  }

  /** Back to the first delay (after a healthy period, or a client asking). */
  reset(): void {
    this.delayMs = this.policy.minMs;
  }

  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.due = null;
  }
}

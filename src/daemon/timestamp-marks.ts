// `server timestamp=N`: a `log at` mark in every console log, on a schedule
// aligned to local midnight (every 1h → 01:00, 02:00, …) as conman does.
// One timer for all consoles.

export class TimestampMarks {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly intervalSec: number,
    private readonly fire: () => void,
  ) {
    this.arm();
  }

  /** ms from `now` until the next aligned mark. */
  static nextDelay(intervalSec: number, now = new Date()): number {
    const midnight = new Date(now);
    midnight.setHours(0, 0, 0, 0);
    const since = now.getTime() - midnight.getTime();
    const step = intervalSec * 1000;
    return step - (since % step);
  }

  private arm(): void {
    this.timer = setTimeout(() => {
      this.fire();
      this.arm();
    }, TimestampMarks.nextDelay(this.intervalSec));
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

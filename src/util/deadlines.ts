// Many deadlines that move often, on one timer. Every IPMI console's next
// ownership check moves with each SOL packet; a setTimeout per console per
// check made a Timeout object that lived for seconds, the largest share of
// what outlived an IPMI thread's young generation (bench/results/
// memory-2026-12-07-vm-telnet-2000.md). Here a deadline is a number in an
// entry its owner keeps, and one timer per clock serves them all: it fires
// at the earliest deadline, runs every entry that is due, and waits at
// least `slackMs` before the next run (deadlines that close together are
// run together, at most that late).

export interface Deadline {
  /** when it is due (the clock's ms) */
  due: number;
  fire(): void;
}

const SLACK_MS = 25;

export class Deadlines {
  private readonly entries = new Set<Deadline>();
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;
  /** the run under way (entries set while it fires are left to the next) */
  private running = false;

  constructor(
    private readonly now: () => number,
    private readonly slackMs = SLACK_MS,
  ) {}

  /** `d` is due at `at` (instead of when it was) */
  set(d: Deadline, at: number): void {
    d.due = at;
    this.entries.add(d);
    if (at < this.timerAt && !this.running) this.arm(at);
  }

  /** `d` is not due any more */
  clear(d: Deadline): void {
    this.entries.delete(d);
    if (this.entries.size === 0 && this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
      this.timerAt = Infinity;
    }
  }

  get size(): number {
    return this.entries.size;
  }

  private arm(at: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.run(), Math.max(0, at - this.now()));
  }

  private run(): void {
    this.timer = null;
    this.timerAt = Infinity;
    const now = this.now();
    const due: Deadline[] = [];
    for (const d of this.entries) if (d.due <= now) due.push(d);
    for (const d of due) this.entries.delete(d);
    // one entry that throws must not stop the others' timer
    let err: unknown = null;
    this.running = true;
    for (const d of due) {
      try {
        d.fire();
      } catch (e) {
        err ??= e;
      }
    }
    this.running = false;
    let next = Infinity;
    for (const d of this.entries) if (d.due < next) next = d.due;
    if (next < Infinity) this.arm(due.length > 0 ? Math.max(next, now + this.slackMs) : next);
    if (err !== null) throw err;
  }
}

const perClock = new WeakMap<object, Deadlines>();

/** the one Deadlines of a clock (keyed by the clock object, read with its `now`) */
export function deadlinesOf(clock: { now(): number }): Deadlines {
  let d = perClock.get(clock);
  if (!d) {
    d = new Deadlines(() => clock.now());
    perClock.set(clock, d);
  }
  return d;
}

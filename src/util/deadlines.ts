// Many deadlines that move often, on one timer per clock. Every IPMI
// console's next ownership check moves with each SOL packet, and every IPMI
// request has a retransmission deadline; a setTimeout each made Timeout
// objects that outlived an IPMI thread's young generation (bench/results/
// memory-2026-12-07-vm-telnet-2000.md). Here a deadline is a number in an
// entry its owner keeps, and one timer serves them all.
//
// The entries were one Set, scanned whole twice per run: at 5,000 consoles
// (~40 runs a second, ~25 entries due in each) `run` was 10-11 % of the IPMI
// thread's busy time, all of it scanning. So the entries now sit in buckets
// of `slackMs` by due time (`Math.floor(due / slackMs)`) with a min-heap of
// bucket keys: a run takes the buckets that are due and scans at most one
// more (the bucket `now` is in), never the rest.
//
// A bucket, and the run under way, is a list linked through the entries
// themselves, not a Set: a Set's table grows and shrinks as entries move in
// and out, and those tables were a third of what an IPMI thread promoted to
// its old generation at 10,000 consoles (a sampling heap profile). Now a
// `set`, `clear` or run allocates nothing but a new bucket's list.
//
// Timing as before: an entry fires at most once per `set`, never before its
// `due`; the timer runs at the earliest due, and a run that fired something
// waits at least `slackMs` for the next (close deadlines run together, at
// most that late).

export interface Deadline {
  /** when it is due (the clock's ms). Written by `set`; its owner does not write it. */
  due: number;
  fire(): void;
  /**
   * The Deadlines' own links: the list the entry is in (a bucket, or the run
   * under way) and its neighbours there. An entry is set on one Deadlines at
   * a time. Its owner starts them as `null` (the object keeps its shape; see
   * `DEADLINE_LINKS`) and never writes them.
   */
  dlList?: DeadlineList | null;
  dlPrev?: Deadline | null;
  dlNext?: Deadline | null;
}

/** an entry's links before it is first set: spread into the entry where it is made */
export const DEADLINE_LINKS = { dlList: null, dlPrev: null, dlNext: null } as const;

/** entries in the order they came: a bucket (`key`), or the run under way */
export class DeadlineList {
  head: Deadline | null = null;
  tail: Deadline | null = null;
  size = 0;

  constructor(readonly key: number) {}

  append(d: Deadline): void {
    d.dlList = this;
    d.dlNext = null;
    d.dlPrev = this.tail;
    if (this.tail !== null) this.tail.dlNext = d;
    else this.head = d;
    this.tail = d;
    this.size++;
  }

  remove(d: Deadline): void {
    const prev = d.dlPrev ?? null;
    const next = d.dlNext ?? null;
    if (prev !== null) prev.dlNext = next;
    else this.head = next;
    if (next !== null) next.dlPrev = prev;
    else this.tail = prev;
    d.dlList = d.dlPrev = d.dlNext = null;
    this.size--;
  }

  /** every entry moved to the end of `into`, in order; this list left empty */
  moveAllTo(into: DeadlineList): void {
    for (let d = this.head; d !== null; ) {
      const next = d.dlNext ?? null; // append rewrites the links
      into.append(d);
      d = next;
    }
    this.head = this.tail = null;
    this.size = 0;
  }
}

const SLACK_MS = 25;

export class Deadlines {
  /** the entries set, by bucket key `Math.floor(due / width)`; an empty bucket is deleted */
  private readonly buckets = new Map<number, DeadlineList>();
  /**
   * min-heap of the bucket keys. Lazy: the key of a bucket that emptied
   * stays until it reaches the top (or the heap is rebuilt), so a key may be
   * here twice; `peek` skips those.
   */
  private heap: number[] = [];
  private count = 0;
  private readonly width: number;
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;
  /** no run before this: a run that fired something leaves `slackMs` to the next */
  private quietUntil = -Infinity;
  /** the run under way: its entries still to fire (`clear`/`set` take one out), and entries set meanwhile wait for the next run */
  private readonly firing = new DeadlineList(NaN);
  private running = false;

  constructor(
    private readonly now: () => number,
    private readonly slackMs = SLACK_MS,
  ) {
    this.width = slackMs > 0 ? slackMs : 1;
  }

  /** `d` is due at `at` (instead of when it was); at Infinity (or NaN) it is not set at all */
  set(d: Deadline, at: number): void {
    const k = Math.floor(at / this.width);
    // a move within its bucket (e.g. a console's check put off by a packet) is one write
    // (the run's list has key NaN, equal to none; no bucket has key Infinity or NaN)
    if (d.dlList?.key !== k) {
      this.unlink(d);
      if (!(at < Infinity)) {
        // never due: holding it would only keep it alive
        d.due = at;
        return;
      }
      let b = this.buckets.get(k);
      if (b === undefined) {
        b = new DeadlineList(k);
        this.buckets.set(k, b);
        this.push(k);
      }
      b.append(d);
      this.count++;
    }
    d.due = at;
    if (this.running) return; // the run arms the timer when it ends
    const when = Math.max(at, this.quietUntil);
    if (when < this.timerAt) this.arm(when);
  }

  /** `d` is not due any more */
  clear(d: Deadline): void {
    this.unlink(d);
    if (this.count === 0 && this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
      this.timerAt = Infinity;
    }
  }

  get size(): number {
    return this.count;
  }

  /** take `d` out of its bucket or out of the run under way */
  private unlink(d: Deadline): void {
    const l = d.dlList;
    if (l == null) return;
    l.remove(d);
    if (l === this.firing) return;
    this.count--;
    if (l.size === 0) this.buckets.delete(l.key); // its heap key goes stale
  }

  private arm(at: number): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.run(), Math.max(0, at - this.now()));
  }

  private run(): void {
    this.timer = null;
    this.timerAt = Infinity;
    const now = this.now();
    // every entry of a bucket below `cut` is due; of bucket `cut`, those due by now
    const cut = Math.floor(now / this.width);
    const firing = this.firing;
    /** the earliest due left in bucket `cut` */
    let rest = Infinity;
    for (let k = this.peek(); k !== undefined && k <= cut; k = this.peek()) {
      const b = this.buckets.get(k)!;
      if (k < cut) {
        this.pop();
        this.buckets.delete(k);
        this.count -= b.size;
        b.moveAllTo(firing);
        continue;
      }
      for (let d = b.head; d !== null; ) {
        const next = d.dlNext ?? null;
        if (d.due <= now) {
          b.remove(d);
          this.count--;
          firing.append(d);
        } else if (d.due < rest) rest = d.due;
        d = next;
      }
      if (b.size === 0) {
        this.pop();
        this.buckets.delete(k);
      }
      break;
    }
    const fired = firing.size > 0;
    // one entry that throws must not stop the others, nor the timer
    let err: unknown = null;
    this.running = true;
    for (let d = firing.head; d !== null; d = firing.head) {
      firing.remove(d);
      try {
        d.fire();
      } catch (e) {
        err ??= e;
      }
    }
    this.running = false;
    if (fired) this.quietUntil = now + this.slackMs;
    const k = this.peek();
    if (k !== undefined) {
      // With nothing fired nothing moved, so `rest` is bucket `cut`'s earliest.
      // Else the bucket's start: no later than its earliest, and a run that
      // comes early fires nothing and finds the exact time.
      this.arm(Math.max(!fired && k === cut ? rest : k * this.width, this.quietUntil));
    }
    if (err !== null) throw err;
  }

  /** the earliest bucket's key (dropping stale keys), or undefined */
  private peek(): number | undefined {
    const h = this.heap;
    while (h.length > 0 && !this.buckets.has(h[0])) this.pop();
    return h.length > 0 ? h[0] : undefined;
  }

  private push(k: number): void {
    const h = this.heap;
    if (h.length > 2 * this.buckets.size + 32) {
      // mostly stale keys (buckets that emptied as entries moved): start again
      // from the live ones (a sorted array is a heap); amortised O(log buckets) a push
      this.heap = Array.from(this.buckets.keys()).sort((a, b) => a - b);
      return;
    }
    let i = h.push(k) - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p] <= k) break;
      h[i] = h[p];
      i = p;
    }
    h[i] = k;
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    const n = h.length;
    if (n === 0) return;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && h[c + 1] < h[c]) c++;
      if (h[c] >= last) break;
      h[i] = h[c];
      i = c;
    }
    h[i] = last;
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

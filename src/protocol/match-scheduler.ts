// Runs console-matching work on the main thread without stalling it: every
// event-loop turn gives all pending matches together at most SLICE_MS, in
// round-robin quanta, then yields (setImmediate) so sockets, logs and timers
// run. Each match has a budget of its own running time and of wall time, and
// stops at once when its client has gone. At most MAX_ACTIVE matches hold a
// compiled program and its state sets at once; the rest wait their turn.

import { performance } from 'node:perf_hooks';

/** A piece of resumable work: runs until `deadline` (performance.now() ms) or done. */
export interface Task<T> {
  /** The result when done, or undefined to be called again. */
  step(deadline: number): T | undefined;
}

export type Outcome<T> = { kind: 'done'; value: T } | { kind: 'budget' } | { kind: 'aborted' };

export interface Budget {
  /** the task's own running time, ms */
  cpuMs: number;
  /** from submission to answer, ms (waiting included) */
  wallMs: number;
}

/** main-thread time all matches get per event-loop turn */
export const SLICE_MS = 4;
/** one match's share before the next one's turn */
const QUANTUM_MS = 1;
export const MAX_ACTIVE = 16;
export const DEFAULT_BUDGET: Budget = { cpuMs: 2000, wallMs: 20000 };

interface Job<T> {
  make: () => Task<T>;
  task: Task<T> | null;
  usedMs: number;
  submitted: number;
  budget: Budget;
  signal: AbortSignal | undefined;
  resolve: (o: Outcome<T>) => void;
  reject: (e: unknown) => void;
}

export class MatchScheduler {
  private readonly active: Job<unknown>[] = [];
  private readonly waiting: Job<unknown>[] = [];
  private armed = false;

  /** `make` is called when the job gets an active slot (so waiting jobs hold no big state). */
  run<T>(make: () => Task<T>, signal?: AbortSignal, budget: Budget = DEFAULT_BUDGET): Promise<Outcome<T>> {
    return new Promise((resolve, reject) => {
      const job: Job<T> = { make, task: null, usedMs: 0, submitted: performance.now(), budget, signal, resolve, reject };
      this.waiting.push(job as Job<unknown>);
      this.arm();
    });
  }

  /** matches running or waiting (for tests and logs) */
  get pending(): number {
    return this.active.length + this.waiting.length;
  }

  private arm(): void {
    if (this.armed) return;
    this.armed = true;
    setImmediate(this.turn);
  }

  private readonly turn = (): void => {
    this.armed = false;
    const turnEnd = performance.now() + SLICE_MS;
    this.dropFinishedWaiters();
    while (this.active.length < MAX_ACTIVE && this.waiting.length > 0) this.active.push(this.waiting.shift()!);
    let now = performance.now();
    while (this.active.length > 0 && now < turnEnd) {
      const job = this.active.shift()!;
      if (job.signal?.aborted) {
        job.resolve({ kind: 'aborted' });
        this.promote();
        continue;
      }
      let value: unknown;
      try {
        job.task ??= job.make();
        value = job.task.step(Math.min(turnEnd, now + QUANTUM_MS));
      } catch (e) {
        job.reject(e);
        this.promote();
        continue;
      }
      const after = performance.now();
      job.usedMs += after - now;
      now = after;
      if (value !== undefined) {
        job.resolve({ kind: 'done', value });
        this.promote();
      } else if (job.usedMs > job.budget.cpuMs || now - job.submitted > job.budget.wallMs) {
        job.resolve({ kind: 'budget' });
        this.promote();
      } else {
        this.active.push(job);
      }
    }
    if (this.active.length > 0 || this.waiting.length > 0) this.arm();
  };

  /** Waiting jobs whose client left or whose wall time ran out end without starting. */
  private dropFinishedWaiters(): void {
    const now = performance.now();
    for (let k = this.waiting.length - 1; k >= 0; k--) {
      const job = this.waiting[k];
      if (job.signal?.aborted) job.resolve({ kind: 'aborted' });
      else if (now - job.submitted > job.budget.wallMs) job.resolve({ kind: 'budget' });
      else continue;
      this.waiting.splice(k, 1);
    }
  }

  private promote(): void {
    const next = this.waiting.shift();
    if (next) this.active.push(next);
  }
}

/** The daemon's one scheduler: all clients share the main thread's slice. */
export const matchScheduler = new MatchScheduler();

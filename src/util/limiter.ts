// At most `max` tasks at once, the rest waiting first come first served in a
// queue of at most `queueMax`; past that a task is not run at all and its
// caller gets the overflow value at once. A flood of logins thus costs a
// bounded amount of CPU and memory, whatever its size.

export class Limiter {
  private running = 0;
  private readonly queue: (() => void)[] = [];

  constructor(
    readonly max = 8,
    readonly queueMax = 256,
  ) {}

  get active(): number {
    return this.running;
  }

  get waiting(): number {
    return this.queue.length;
  }

  run<T>(task: () => Promise<T>, overflow: T): Promise<T> {
    if (this.running < this.max) return this.start(task);
    if (this.queue.length >= this.queueMax) return Promise.resolve(overflow);
    return new Promise<T>((resolve, reject) => {
      this.queue.push(() => this.start(task).then(resolve, reject));
    });
  }

  private start<T>(task: () => Promise<T>): Promise<T> {
    this.running++;
    let p: Promise<T>;
    try {
      p = task();
    } catch (e) {
      p = Promise.reject(e);
    }
    return p.finally(() => {
      this.running--;
      // the queue is short (queueMax): shift() is cheap enough
      if (this.running < this.max) this.queue.shift()?.();
    });
  }
}

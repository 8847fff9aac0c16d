// How many IPMI session setups run at once on one transport. A setup is
// five round trips (Open Session … Set Session Privilege), so a start of
// thousands of consoles is bound by how many are under way: 512 at a time
// started 10,000 simulated BMCs in 11-14 s, 1,024 in 9 s, with the BMCs
// answering no slower. But a socket whose receive buffer overflows, a lossy
// network or BMCs that fall behind lose packets, and setups started over add
// to the load. So the count is a window, as TCP's: it opens by one with every
// setup done without a retransmission and halves (at most once a second)
// when a setup was done but needed one. A setup that failed says nothing:
// a powered-off BMC never answers, however few setups run.

export const SETUP_WINDOW = { min: 64, start: 512, max: 2048 } as const;
/** the window halves at most this often: a burst of losses is one signal */
const HALVE_EVERY_MS = 1000;

/** how a setup ended, for the window */
export type SetupOutcome = 'clean' | 'retransmitted' | 'failed';

export class SetupWindow {
  /** setups that may run at once now */
  private limit: number = SETUP_WINDOW.start;
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private lastHalved = -Infinity;

  constructor(private readonly now: () => number = () => performance.now()) {}

  get size(): number {
    return Math.floor(this.limit);
  }

  /** Resolves when a setup may start; call the function it gives when the setup is over. */
  async slot(): Promise<(outcome: SetupOutcome) => void> {
    if (this.running >= this.size) await new Promise<void>((r) => this.waiting.push(r));
    else this.running++;
    let released = false;
    return (outcome) => {
      if (released) return;
      released = true;
      this.running--;
      this.adjust(outcome);
      // a slot freed, or more of them after the window opened, go to those waiting in order
      while (this.running < this.size && this.waiting.length > 0) {
        this.running++;
        this.waiting.shift()!();
      }
    };
  }

  private adjust(outcome: SetupOutcome): void {
    if (outcome === 'clean') this.limit = Math.min(SETUP_WINDOW.max, this.limit + 1);
    else if (outcome === 'retransmitted') {
      const t = this.now();
      if (t - this.lastHalved < HALVE_EVERY_MS) return;
      this.lastHalved = t;
      this.limit = Math.max(SETUP_WINDOW.min, this.limit / 2);
    }
  }
}

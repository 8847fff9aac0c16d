// The per-console series of /metrics, read at scrape time from what the
// consoles already count (Console.counters, ConsoleLog.loggedBytes,
// Device.stats): nothing is updated per byte for metrics. What the engine does
// not count, reconnect attempts, is counted here from its state events (a
// few per console per outage, never per byte).
//
// A reload may give a console a new device or a new log, whose counts start
// at zero: what the old one had counted when last read is carried over, so a
// console's counters never go down while the daemon runs.

import type { Console, ConsoleState } from '../engine/console.js';
import type { ConsoleRegistry } from '../engine/registry.js';

export type Labels = Readonly<Record<string, string>>;

/** one sample of a series, as prom-client's registry formats it */
export interface Sample {
  value: number;
  labels: Labels;
  /** labels whose formatted text prom-client caches (per object): see metrics.ts */
  sharedLabels?: Labels;
}

/** how a sample is made (metrics.ts picks the cheapest that works) */
export type MakeSample = (labels: Labels, value: number) => Sample;

export const STATES: readonly ConsoleState[] = ['up', 'connecting', 'backoff', 'down'];

/** The per-console samples of one scrape, one array per metric. */
export interface ConsoleSamples {
  up: Sample[];
  receivedBytes: Sample[];
  loggedBytes: Sample[];
  reconnects: Sample[];
  clients: Sample[];
  solTakeovers: Sample[];
  solResumes: Sample[];
  solHeldSeconds: Sample[];
  /** consoles in each state */
  byState: Record<ConsoleState, number>;
  total: number;
}

/** A count read from an object a reload may replace (a device, a log): never goes down. */
class Carried {
  private owner: object | null = null;
  /** what earlier owners had counted when last read */
  private base = 0;
  private last = 0;

  read(owner: object, count: number): number {
    if (owner !== this.owner) {
      this.base += this.last;
      this.owner = owner;
    }
    this.last = count;
    return this.base + count;
  }
}

/** What metrics keep about one console. */
class Book {
  readonly labels: Labels;
  private typed: Labels;
  /** connection attempts made from backoff: retries after a failure or a disconnection */
  reconnects = 0;
  lastState: ConsoleState | null = null;
  readonly logged = new Carried();
  readonly takeovers = new Carried();
  readonly resumes = new Carried();
  readonly heldMs = new Carried();

  constructor(name: string) {
    this.labels = { console: name };
    this.typed = { console: name, type: '' };
  }

  /** the labels with the device type (kept while the type stays: prom-client caches their text per object) */
  withType(type: string): Labels {
    if (this.typed.type !== type) this.typed = { ...this.labels, type };
    return this.typed;
  }
}

export class ConsoleBooks {
  private readonly books = new WeakMap<Console, Book>();

  constructor(private readonly registry: ConsoleRegistry) {
    registry.events.on((e) => {
      if (e.type === 'state') this.stateChanged(e.console, e.state);
    });
  }

  private book(c: Console): Book {
    let b = this.books.get(c);
    if (!b) this.books.set(c, (b = new Book(c.name)));
    return b;
  }

  private stateChanged(name: string, state: ConsoleState): void {
    const c = this.registry.get(name);
    if (!c) return;
    const b = this.book(c);
    if (state === 'connecting' && b.lastState === 'backoff') b.reconnects++;
    b.lastState = state;
  }

  /** Every console's samples now; `visible`: the consoles the scraper may see (default all). */
  samples(make: MakeSample, visible?: (name: string) => boolean): ConsoleSamples {
    const s: ConsoleSamples = {
      up: [],
      receivedBytes: [],
      loggedBytes: [],
      reconnects: [],
      clients: [],
      solTakeovers: [],
      solResumes: [],
      solHeldSeconds: [],
      byState: { up: 0, connecting: 0, backoff: 0, down: 0 },
      total: 0,
    };
    for (const c of this.registry.list()) {
      if (visible && !visible(c.name)) continue;
      const b = this.book(c);
      const l = b.labels;
      const state = c.state;
      s.total++;
      s.byState[state]++;
      const dev = c.device;
      s.up.push(make(b.withType(dev.type), state === 'up' ? 1 : 0));
      s.receivedBytes.push(make(l, c.counters.bytesIn));
      s.reconnects.push(make(l, b.reconnects));
      s.clients.push(make(l, c.clients().length));
      const log = c.log;
      if (log) s.loggedBytes.push(make(l, b.logged.read(log, log.loggedBytes)));
      const st = dev.stats?.();
      if (st?.solTakeovers !== undefined) s.solTakeovers.push(make(l, b.takeovers.read(dev, st.solTakeovers)));
      if (st?.solResumes !== undefined) s.solResumes.push(make(l, b.resumes.read(dev, st.solResumes)));
      if (st?.solHeldElsewhereMs !== undefined) s.solHeldSeconds.push(make(l, b.heldMs.read(dev, st.solHeldElsewhereMs) / 1000));
    }
    return s;
  }
}

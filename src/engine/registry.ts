// All consoles of the daemon, by name, and in conman's natural order.

import type { Console } from './console.js';
import { EventHub } from './events.js';
import { naturalCompare } from './natural-sort.js';

export class ConsoleRegistry {
  private readonly byName = new Map<string, Console>();
  private sorted: Console[] | null = null;
  /** every console's events, for live watchers */
  readonly events = new EventHub();

  add(c: Console): void {
    this.byName.set(c.name, c);
    this.sorted = null;
    c.events = this.events;
    if (this.events.listening) this.events.emit({ type: 'console', console: c.name, action: 'added' });
  }

  /** A reload removed it: new clients no longer find it (its sessions are the console's to end). */
  remove(name: string): Console | undefined {
    const c = this.byName.get(name);
    if (c && this.byName.delete(name)) {
      this.sorted = null;
      this.events.emit({ type: 'console', console: name, action: 'removed' });
    }
    return c;
  }

  get(name: string): Console | undefined {
    return this.byName.get(name);
  }

  get size(): number {
    return this.byName.size;
  }

  /** Every console, natural order (n1 < n2 < n10). */
  list(): Console[] {
    this.sorted ??= [...this.byName.values()].sort((a, b) => naturalCompare(a.name, b.name));
    return this.sorted;
  }
}

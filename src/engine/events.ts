// What happens to consoles, for whoever watches live (the web UI's list, the
// API's event stream): state changes, device notices (a SOL takeover, its
// end), clients coming and going, consoles added or removed by a reload.
// Listeners are called synchronously and must be cheap (queue, not work).

import type { ConsoleState } from './console.js';
import type { ClientLink } from './session.js';
import type { AlertPhase, AlertRecord } from '../alerts/alert.js';

export type ConsoleEvent =
  | { type: 'state'; console: string; state: ConsoleState; since: Date; error: string | null }
  | { type: 'notice'; console: string; text: string }
  | { type: 'client'; console: string; action: 'attach' | 'detach' | 'mode'; client: Pick<ClientLink, 'mode'> & { user: string; transport: string } }
  | { type: 'console'; console: string; action: 'added' | 'removed' }
  /** a pattern alert (src/alerts): fired on the matched line, complete once its context is in, repeat when its hold-down window ends with more matches */
  | { type: 'alert'; console: string; phase: AlertPhase; alert: AlertRecord };

export type ConsoleListener = (e: ConsoleEvent) => void;

export class EventHub {
  private readonly listeners = new Set<ConsoleListener>();

  /** Start listening; returns the function that stops it. */
  on(fn: ConsoleListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  get listening(): boolean {
    return this.listeners.size > 0;
  }

  emit(e: ConsoleEvent): void {
    for (const fn of this.listeners) {
      try {
        fn(e);
      } catch {
        /* a listener's fault must not reach the console that emitted */
      }
    }
  }
}

/** What a console has done since the daemon started it (for metrics). */
export interface ConsoleCounters {
  /** bytes the device delivered */
  bytesIn: number;
  /** times the device came up */
  connects: number;
  /** times it went down after being up */
  disconnects: number;
}

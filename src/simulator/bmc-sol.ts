// One SOL payload instance on the BMC side (IPMI v2.0 §15): stop-and-wait in
// each direction, 4-bit sequence numbers, ACKs with accepted counts,
// retransmission on the fleet clock, BREAK to the host.

import { decodeSol, encodeSol, NO_DATA, OP_BREAK, ST_DEACTIVATING, type SolPacket } from '../ipmi/sol-packet.js';
import type { FleetClock, ClockEntry } from './bmc-clock.js';
import type { BmcProfile } from './bmc-profiles.js';
import type { BmcSession } from './bmc-session.js';

/** largest SOL payload (header included) we announce and send */
export const SOL_PAYLOAD_SIZE = 255;
const MAX_CHARS = SOL_PAYLOAD_SIZE - 4;
/** host output kept while the console is slow; beyond it the oldest is dropped (overrun) */
const MAX_BUFFERED = 64 * 1024;

export interface SolHooks {
  clock: FleetClock;
  profile: () => BmcProfile;
  /** send a SOL payload to a session */
  send(s: BmcSession, payload: Buffer): void;
  /** characters (and a BREAK before them) for the host */
  toHost(data: Buffer, brk: boolean): void;
  counters: SolCounters;
}

export interface SolCounters {
  bytesToConsole: number;
  bytesFromConsole: number;
  retransmits: number;
  droppedOutput: number;
  breaks: number;
}

const next = (seq: number): number => (seq >= 15 ? 1 : seq + 1);

export class SolInstance {
  owner: BmcSession | null = null;
  private pending: Buffer[] = [];
  private pendingLen = 0;
  private outSeq = 0;
  private outstanding: { seq: number; data: Buffer; tries: number; timer: ClockEntry | null } | null = null;
  private lastInSeq = 0;
  private lastInCount = 0;
  private flushQueued = false;

  constructor(private readonly h: SolHooks) {}

  activate(s: BmcSession): void {
    this.reset();
    this.owner = s;
  }

  deactivate(): void {
    this.reset();
    this.owner = null;
  }

  private reset(): void {
    if (this.outstanding?.timer) this.outstanding.timer.cancelled = true;
    this.outstanding = null;
    this.pending = [];
    this.pendingLen = 0;
    this.outSeq = 0;
    this.lastInSeq = 0;
    this.lastInCount = 0;
  }

  /** Tell a displaced owner with the "SOL deactivating" status bit. */
  sendDeactivating(s: BmcSession): void {
    this.h.send(s, encodeSol({ seq: 0, ackSeq: 0, accepted: 0, flags: ST_DEACTIVATING, data: Buffer.alloc(0) }));
  }

  /** Host output: sent when a console owns the instance, else gone (like ipmi_sim without history). */
  hostOutput(data: Buffer): void {
    if (!this.owner || this.owner.phantom) {
      this.h.counters.droppedOutput += data.length;
      return;
    }
    this.pending.push(data);
    this.pendingLen += data.length;
    while (this.pendingLen > MAX_BUFFERED && this.pending.length > 1) {
      const old = this.pending.shift()!;
      this.pendingLen -= old.length;
      this.h.counters.droppedOutput += old.length;
    }
    if (!this.flushQueued && !this.outstanding) {
      this.flushQueued = true;
      setImmediate(() => {
        this.flushQueued = false;
        this.flush();
      });
    }
  }

  private flush(): void {
    if (this.outstanding || !this.owner || this.pendingLen === 0) return;
    const all = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending);
    const data = all.subarray(0, MAX_CHARS);
    const rest = all.subarray(data.length);
    this.pending = rest.length ? [rest] : [];
    this.pendingLen = rest.length;
    this.outSeq = next(this.outSeq);
    this.outstanding = { seq: this.outSeq, data: Buffer.from(data), tries: 0, timer: null };
    this.transmit();
  }

  private transmit(): void {
    const o = this.outstanding;
    if (!o || !this.owner) return;
    this.h.send(this.owner, encodeSol({ seq: o.seq, ackSeq: 0, accepted: 0, flags: 0, data: o.data }));
    const p = this.h.profile();
    o.timer = this.h.clock.after(p.solRetryMs, () => {
      if (this.outstanding !== o) return;
      if (o.tries >= p.solRetries) {
        // give up on this data and go on with the next, as BMCs do
        this.outstanding = null;
        this.flush();
        return;
      }
      o.tries++;
      this.h.counters.retransmits++;
      this.transmit();
    });
  }

  /** A SOL packet from a session (the owner or not). */
  fromConsole(s: BmcSession, payload: Buffer): void {
    if (s !== this.owner) return; // ipmi_sim and OpenBMC ignore SOL from non-owners
    let p: SolPacket;
    try {
      p = decodeSol(payload);
    } catch {
      return;
    }
    if (p.ackSeq !== 0) this.onAck(p);
    if (p.seq !== 0) this.onData(s, p);
    else if (p.flags & OP_BREAK) this.deliver(Buffer.alloc(0), true);
  }

  private onAck(p: SolPacket): void {
    const o = this.outstanding;
    if (!o || p.ackSeq !== o.seq) return;
    if (o.timer) o.timer.cancelled = true;
    this.outstanding = null;
    const accepted = Math.min(p.accepted, o.data.length);
    this.h.counters.bytesToConsole += accepted;
    if (accepted < o.data.length) {
      // partial ACK or NACK: the unaccepted tail goes again with a new seq
      const tail = o.data.subarray(accepted);
      this.pending.unshift(tail);
      this.pendingLen += tail.length;
    }
    this.flush();
  }

  private onData(s: BmcSession, p: SolPacket): void {
    const strict = this.h.profile().strictSeq;
    if (strict) {
      if (p.seq !== next(this.lastInSeq)) return; // OpenBMC: out of order → dropped without ACK
    } else if (p.seq === this.lastInSeq) {
      // a retransmission of what we took: ACK again, do not deliver twice
      this.ack(s, p.seq, this.lastInCount);
      return;
    }
    this.lastInSeq = p.seq;
    this.lastInCount = p.data.length;
    this.deliver(p.data, (p.flags & OP_BREAK) !== 0);
    this.ack(s, p.seq, p.data.length);
  }

  /** Characters that came with a BREAK were typed before it (ipmitool sends "\r" + BREAK in one packet). */
  private deliver(data: Buffer, brk: boolean): void {
    if (brk) this.h.counters.breaks++;
    this.h.counters.bytesFromConsole += data.length;
    this.h.toHost(data, brk);
  }

  private ack(s: BmcSession, seq: number, count: number): void {
    this.h.send(s, encodeSol({ seq: 0, ackSeq: seq, accepted: count, flags: 0, data: NO_DATA }));
  }
}

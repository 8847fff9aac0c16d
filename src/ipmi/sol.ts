// The SOL payload stream on an open session (IPMI v2.0 §15, SOL payload
// format Table 15-2; Activate/Deactivate Payload §24.1-24.2): activation,
// stop-and-wait data with ACK/NACK, partial acceptance, retransmission,
// BREAK. Bytes go out in order, none lost or duplicated; bytes in are
// delivered once even when the BMC resends with data appended.

import { fenceOk } from '../util/fence.js';
import { IpmiError } from './errors.js';
import { CMD_ACTIVATE_PAYLOAD, CMD_DEACTIVATE_PAYLOAD, NETFN_APP } from './commands.js';
import type { IpmiSession } from './session.js';
import { decodeSol, encodeSol, NO_DATA, OP_BREAK, ST_DEACTIVATING, ST_NACK, type SolPacket } from './sol-packet.js';

/** Activate Payload's completion code "payload already active" (IPMI v2.0 §24.1) */
export const CC_ALREADY_ACTIVE = 0x80;
/** deactivate()'s answer when nothing was sent (a cluster node past its lease) */
export const CC_NOT_SENT = 0xff;
const RETRY_MS = 1000;
const MAX_TRIES = 5;
const NACK_BACKOFF_MS = 100;
/** queued input beyond this is dropped (a client pasting into a dead console) */
const MAX_QUEUED = 64 * 1024;

type Item = Buffer | 'break';

interface Outstanding {
  seq: number;
  data: Buffer;
  brk: boolean;
  /** the empty packet sent right after activation (ipmi_sim keeps old seq state) */
  sync: boolean;
  tries: number;
  timer: NodeJS.Timeout | null;
}

export interface SolHandlers {
  onData(b: Buffer): void;
  /** our SOL instance is gone: the BMC says so, or stopped ACKing */
  onLost(reason: string): void;
  /**
   * a SOL packet from the BMC on our session (data, or an ACK of ours):
   * the BMC still sends the instance to us, so it is ours (no poll needed)
   */
  onProof?(): void;
}

export class SolLink {
  active = false;
  /** characters per packet, from the sizes the BMC announced */
  maxChars = 32;
  private queue: Item[] = [];
  private queued = 0;
  private out: Outstanding | null = null;
  private nextSeq = 1;
  private lastInSeq = 0;
  private lastInLen = 0;
  private nackTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly s: IpmiSession,
    private readonly h: SolHandlers,
    /** W:solpayloadsize: ignore the sizes the BMC announces, send 32 characters a packet */
    private readonly fixedSize = false,
  ) {
    s.onSol = (p) => this.receive(p);
  }

  /** Activate Payload SOL instance 1. Resolves 'busy' if another session holds it. */
  async activate(): Promise<'ok' | 'busy'> {
    // a cluster node past its lease (paused, cut off from etcd) no longer holds this console
    if (!fenceOk()) throw new IpmiError('Activate Payload (SOL) not sent: this cluster node no longer holds the console');
    const cs = this.s.cipherSuite;
    // bit 7 encrypt, bit 6 authenticate (must match the session), alerts deferred, CTS/DCD handshake
    const aux = (cs.conf !== 'none' ? 0x80 : 0) | (cs.integrity !== 'none' ? 0x40 : 0) | 0x04 | 0x02;
    const r = await this.s.request(NETFN_APP, CMD_ACTIVATE_PAYLOAD, Buffer.from([0x01, 0x01, aux, 0, 0, 0]));
    if (r.cc === CC_ALREADY_ACTIVE) return 'busy';
    if (r.cc !== 0) throw new IpmiError(`Activate Payload (SOL) refused: completion code 0x${r.cc.toString(16)}`, r.cc);
    if (this.fixedSize) this.maxChars = 32;
    else if (r.data.length >= 6) {
      const inbound = r.data.readUInt16LE(4);
      // sizes include the 4-byte header; silly values fall back to 32 characters
      this.maxChars = inbound >= 5 && inbound <= 259 ? Math.min(inbound - 4, 255) : 32;
    }
    this.started();
    return 'ok';
  }

  /**
   * The BMC says our own session already holds the instance: the answer to
   * a retransmitted Activate overtook the first one. Run it as activated,
   * with the smallest payload size, since the sizes were in the lost answer.
   */
  adopt(): void {
    this.maxChars = 32;
    this.started();
  }

  private started(): void {
    this.reset();
    this.active = true;
    // sync packet: an empty data packet absorbs ipmi_sim's carried-over sequence state
    this.send({ seq: this.takeSeq(), data: Buffer.alloc(0), brk: false, sync: true, tries: 0, timer: null });
  }

  /** Deactivate Payload SOL instance 1 (ours, or - by policy - someone else's). */
  async deactivate(): Promise<number> {
    this.stop();
    // past its lease another node may own the payload now: never end its session
    if (!fenceOk()) return CC_NOT_SENT;
    const r = await this.s.request(NETFN_APP, CMD_DEACTIVATE_PAYLOAD, Buffer.from([0x01, 0x01, 0, 0, 0, 0]));
    return r.cc;
  }

  /** Forget our SOL state without telling the BMC (after a takeover). Queued input is kept. */
  stop(): void {
    this.active = false;
    if (this.out?.timer) clearTimeout(this.out.timer);
    this.out = null;
    if (this.nackTimer) clearTimeout(this.nackTimer);
    this.nackTimer = null;
  }

  private reset(): void {
    this.stop();
    this.nextSeq = 1;
    this.lastInSeq = 0;
    this.lastInLen = 0;
  }

  write(b: Buffer): void {
    if (b.length === 0) return;
    if (this.queued + b.length > MAX_QUEUED) return;
    this.s.typed();
    this.queue.push(Buffer.from(b));
    this.queued += b.length;
    this.pump();
  }

  sendBreak(): void {
    this.s.typed();
    this.queue.push('break');
    this.pump();
  }

  /** drop queued input (e.g. when the console goes down) */
  clearQueue(): void {
    this.queue = [];
    this.queued = 0;
  }

  private takeSeq(): number {
    const s = this.nextSeq;
    this.nextSeq = s === 15 ? 1 : s + 1;
    return s;
  }

  private pump(): void {
    if (!this.active || this.out || this.nackTimer || this.queue.length === 0 || !fenceOk()) return;
    const head = this.queue[0];
    if (head === 'break') {
      this.queue.shift();
      return this.send({ seq: this.takeSeq(), data: Buffer.alloc(0), brk: true, sync: false, tries: 0, timer: null });
    }
    const parts: Buffer[] = [];
    let n = 0;
    while (this.queue.length && this.queue[0] !== 'break' && n < this.maxChars) {
      const b = this.queue[0] as Buffer;
      const take = Math.min(b.length, this.maxChars - n);
      parts.push(b.subarray(0, take));
      n += take;
      if (take === b.length) this.queue.shift();
      else this.queue[0] = b.subarray(take);
    }
    this.queued -= n;
    this.send({ seq: this.takeSeq(), data: Buffer.concat(parts), brk: false, sync: false, tries: 0, timer: null });
  }

  private send(o: Outstanding): void {
    this.out = o;
    o.tries++;
    this.s.sendSol(encodeSol({ seq: o.seq, ackSeq: 0, accepted: 0, flags: o.brk ? OP_BREAK : 0, data: o.data }));
    o.timer = setTimeout(() => {
      o.timer = null;
      if (this.out !== o || !fenceOk()) return;
      // same SOL seq and data, new session seq
      if (o.tries < MAX_TRIES) return this.send(o);
      this.out = null;
      if (!o.sync && !o.brk) this.unshift(o.data);
      this.h.onLost(`no SOL acknowledgement after ${o.tries} tries`);
    }, RETRY_MS);
  }

  /** put unaccepted characters back at the front of the queue */
  private unshift(b: Buffer): void {
    if (b.length === 0) return;
    this.queue.unshift(b);
    this.queued += b.length;
  }

  private receive(payload: Buffer): void {
    let p: SolPacket;
    try {
      p = decodeSol(payload);
    } catch {
      return; // counted by the session layer as a short payload would be; nothing to do
    }
    // a cluster node past its lease (woken from a pause) neither ACKs nor types: an ACK would keep the
    // BMC sending to us after another node may own the console (util/fence.ts)
    if (!this.active || !fenceOk()) return;
    if (p.flags & ST_DEACTIVATING) {
      this.stop();
      this.h.onLost('the BMC is deactivating SOL');
      return;
    }
    this.h.onProof?.();
    const o = this.out;
    if (p.ackSeq !== 0 && o && p.ackSeq === o.seq) this.acked(o, p);
    if (p.seq !== 0) {
      let fresh = p.data;
      if (p.seq === this.lastInSeq) fresh = p.data.length > this.lastInLen ? p.data.subarray(this.lastInLen) : NO_DATA;
      this.lastInSeq = p.seq;
      this.lastInLen = p.data.length;
      // the bytes first, then the ACK: an echo reaches its typist without waiting for the ACK's
      // encryption and send (a sendmsg took 0.1 ms here, a tenth of a key's whole echo)
      if (fresh.length) this.h.onData(fresh); // p.data is this packet's own decrypted buffer
      if (this.active) this.s.sendSol(encodeSol({ seq: 0, ackSeq: p.seq, accepted: p.data.length, flags: 0, data: NO_DATA }));
    }
    this.pump();
  }

  private acked(o: Outstanding, p: SolPacket): void {
    if (o.timer) clearTimeout(o.timer);
    this.out = null;
    if (o.sync || o.brk) return;
    const nack = (p.flags & ST_NACK) !== 0;
    const accepted = Math.min(p.accepted, o.data.length);
    if (accepted < o.data.length) {
      this.unshift(o.data.subarray(accepted));
      if (nack && accepted === 0) {
        // the BMC's buffer is full: give it a moment instead of spinning
        this.nackTimer = setTimeout(() => {
          this.nackTimer = null;
          this.pump();
        }, NACK_BACKOFF_MS);
      }
    }
  }
}

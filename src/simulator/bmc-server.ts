// One simulated BMC: a UDP socket speaking RMCP/RMCP+ (IPMI v2.0 §13),
// its sessions, one SOL instance and the SimHost behind it. Bad datagrams
// are counted and dropped; nothing a client sends can throw out of here.

import * as crypto from 'node:crypto';
import * as dgram from 'node:dgram';
import { decodeDatagram, encodeV15, encodeV20, openV20, PT_IPMI, PT_OPEN_REQ, PT_OPEN_RSP, PT_RAKP1, PT_RAKP2, PT_RAKP3, PT_RAKP4, PT_SOL } from '../ipmi/packet.js';
import { literalLookup } from '../ipmi/transport.js';
import { SimHost } from './host.js';
import type { FleetClock } from './bmc-clock.js';
import { sessionCommand, sessionlessCommand, type CommandContext } from './bmc-commands.js';
import { encodeBmcRequest, NETFN_TRANSPORT, parseRequest } from './bmc-ipmi.js';
import { CMD_SOL_ACTIVATING } from '../ipmi/commands.js';
import type { BmcProfile } from './bmc-profiles.js';
import { openSession, PRIV_ADMIN, rakp1, rakp3, type BmcUser, type BmcSession } from './bmc-session.js';
import { SolInstance, type SolCounters } from './bmc-sol.js';

export interface BmcOptions {
  name: string;
  address: string;
  port: number;
  user: BmcUser;
  profile: BmcProfile;
  /** print the boot log when the fleet starts */
  boot: boolean;
}

export interface BmcCounters extends SolCounters {
  packetsIn: number;
  packetsOut: number;
  badPackets: number;
  lostInjected: number;
  sessions: number;
  /** Open Session requests answered: more than `sessions` when clients started setups over (retransmitted or timed out) */
  openRequests: number;
  authFailures: number;
  activations: number;
  steals: number;
}

export interface Faults {
  /** probability 0..1 that a datagram (either direction) is dropped */
  loss: number;
  /** added delay for outgoing datagrams, plus up to jitterMs */
  delayMs: number;
  jitterMs: number;
}

/** half-open sessions (no RAKP3 yet) are forgotten after this */
const SETUP_TIMEOUT_MS = 10_000;
const MAX_SESSIONS = 32;

export class Bmc implements CommandContext {
  readonly name: string;
  readonly address: string;
  readonly port: number;
  readonly guid: Buffer;
  readonly host: SimHost;
  profile: BmcProfile;
  user: BmcUser;
  readonly counters: BmcCounters = {
    packetsIn: 0, packetsOut: 0, badPackets: 0, lostInjected: 0, sessions: 0, openRequests: 0, authFailures: 0, activations: 0, steals: 0,
    bytesToConsole: 0, bytesFromConsole: 0, retransmits: 0, droppedOutput: 0, breaks: 0,
  };
  faults: Faults = { loss: 0, delayMs: 0, jitterMs: 0 };
  private readonly sessions = new Map<number, BmcSession>();
  private readonly sol: SolInstance;
  private socket: dgram.Socket | null = null;
  private downUntil = 0;
  private sweeping = false;
  private replyHooks: (() => void)[] = [];
  private unsolicitedSeq = 0;
  private phantomTimer: { cancelled: boolean } | null = null;

  constructor(
    opts: BmcOptions,
    private readonly clock: FleetClock,
  ) {
    this.name = opts.name;
    this.address = opts.address;
    this.port = opts.port;
    this.user = opts.user;
    this.profile = opts.profile;
    // a per-BMC GUID, stable for a given name
    this.guid = crypto.createHash('sha256').update(`conch-bmcsim:${opts.name}`).digest().subarray(0, 16);
    this.host = new SimHost({ name: opts.name, interval: 0, boot: opts.boot }, (s) => this.sol.hostOutput(Buffer.from(s, 'latin1')));
    this.sol = new SolInstance({
      clock,
      profile: () => this.profile,
      send: (s, payload) => this.sendPayload(s, PT_SOL, payload),
      toHost: (data, brk) => {
        if (data.length) this.host.input(data);
        if (brk) this.host.breakSignal();
      },
      counters: this.counters,
    });
  }

  /** Bind the UDP socket; rejects with the address in the message (EADDRINUSE, EMFILE…). */
  async start(): Promise<void> {
    const fam = this.address.includes(':') ? 'udp6' : 'udp4'; // an IPv6 literal (--address ::1) needs a udp6 socket
    const sock = dgram.createSocket({ type: fam, recvBufferSize: 64 * 1024, sendBufferSize: 64 * 1024, lookup: literalLookup(fam) });
    await new Promise<void>((resolve, reject) => {
      sock.once('error', (e) => reject(new Error(`${this.name}: cannot bind UDP ${this.address}:${this.port}: ${e.message}`)));
      sock.bind(this.port, this.address, () => resolve());
    });
    sock.removeAllListeners('error');
    sock.on('error', () => this.counters.badPackets++);
    sock.on('message', (m, r) => this.onDatagram(m, r));
    this.socket = sock;
    this.host.start();
  }

  close(): void {
    this.host.stop();
    this.sol.deactivate();
    this.sessions.clear();
    try {
      this.socket?.close();
    } catch {
      /* already closed */
    }
    this.socket = null;
  }

  // ------------------------------------------------------------ datagrams

  private onDatagram(msg: Buffer, r: dgram.RemoteInfo): void {
    this.counters.packetsIn++;
    if (this.downUntil > Date.now()) return;
    if (this.faults.loss > 0 && Math.random() < this.faults.loss) {
      this.counters.lostInjected++;
      return;
    }
    try {
      this.handle(msg, r);
    } catch {
      this.counters.badPackets++;
    }
    const hooks = this.replyHooks;
    this.replyHooks = [];
    for (const fn of hooks) fn();
  }

  private handle(msg: Buffer, r: dgram.RemoteInfo): void {
    if (msg.length >= 12 && msg[0] === 0x06 && (msg[3] & 0x1f) === 0x06) {
      if (msg[8] === 0x80) this.pong(msg[9], r);
      return;
    }
    const d = decodeDatagram(msg);
    if (d.kind === 'pong') return;
    if (d.kind === 'v15') {
      if (d.sessionId !== 0) return; // no IPMI 1.5 sessions here
      const rq = parseRequest(d.msg);
      if (rq) this.out(encodeV15(sessionlessCommand(this, rq)), r.address, r.port);
      return;
    }
    const now = Date.now();
    if (d.sessionId === 0) {
      if (d.encrypted || d.authenticated) return;
      this.setup(d.payloadType, d.payload, r, now);
      return;
    }
    const s = this.sessions.get(d.sessionId);
    if (!s || s.state !== 'active') return;
    const payload = openV20(d, s.cs);
    s.address = r.address;
    s.port = r.port;
    s.lastHeard = now;
    if (this.profile.timeoutRefresh === 'any') s.lastActive = now;
    if (d.payloadType === PT_IPMI) {
      s.lastActive = now;
      const rq = parseRequest(payload);
      if (!rq) return;
      if (rq.netFn & 1) return; // a response to our unsolicited request
      this.sendPayload(s, PT_IPMI, sessionCommand(this, s, rq));
    } else if (d.payloadType === PT_SOL) {
      this.sol.fromConsole(s, payload);
    }
  }

  /** Session-less RMCP+: IPMI messages, Open Session and RAKP. */
  private setup(type: number, p: Buffer, r: dgram.RemoteInfo, now: number): void {
    const reply = (t: number, b: Buffer): void => this.out(encodeV20(t, 0, 0, b, null), r.address, r.port);
    if (type === PT_IPMI) {
      const rq = parseRequest(p);
      if (rq) reply(PT_IPMI, sessionlessCommand(this, rq));
      return;
    }
    if (type === PT_OPEN_REQ) {
      this.counters.openRequests++;
      this.evictForRoom(now);
      if (this.sessions.size >= MAX_SESSIONS) {
        reply(PT_OPEN_RSP, Buffer.from([p[0] ?? 0, 0x01, 0, 0, ...p.subarray(4, 8)]));
        return;
      }
      const { rsp, session } = openSession(p, (sid) => this.sessions.has(sid), r.address, r.port, now);
      if (session) {
        this.sessions.set(session.sidC, session);
        this.scheduleSweep();
      }
      reply(PT_OPEN_RSP, rsp);
      return;
    }
    if ((type === PT_RAKP1 || type === PT_RAKP3) && p.length >= 8) {
      const s = this.sessions.get(p.readUInt32LE(4));
      if (!s || s.phantom) {
        const b = Buffer.alloc(8);
        b[0] = p[0];
        b[1] = 0x02; // invalid session ID
        reply(type === PT_RAKP1 ? PT_RAKP2 : PT_RAKP4, b);
        return;
      }
      s.address = r.address;
      s.port = r.port;
      if (type === PT_RAKP1) {
        if (p.length < 28) return;
        const { rsp, ok } = rakp1(s, p, this.user, this.guid);
        if (!ok) this.counters.authFailures++;
        reply(PT_RAKP2, rsp);
      } else {
        const wasActive = s.state === 'active';
        const { rsp, ok } = rakp3(s, p, this.user, this.guid);
        if (!ok) {
          this.counters.authFailures++;
          this.sessions.delete(s.sidC);
        } else if (!wasActive) {
          this.counters.sessions++;
          s.lastActive = now;
        }
        if (rsp) reply(PT_RAKP4, rsp);
      }
    }
  }

  private pong(tag: number, r: dgram.RemoteInfo): void {
    const b = Buffer.from('0600ff06000011be40000010000011be000000008100000000000000', 'hex');
    b[9] = tag;
    this.out(b, r.address, r.port);
  }

  private sendPayload(s: BmcSession, type: number, payload: Buffer): void {
    if (s.phantom) return;
    const seq = s.outSeq;
    s.outSeq = s.outSeq >= 0xffffffff ? 1 : s.outSeq + 1;
    this.out(encodeV20(type, s.sidM, seq, payload, s.cs), s.address, s.port);
  }

  private out(pkt: Buffer, address: string, port: number): void {
    const f = this.faults;
    if (f.loss > 0 && Math.random() < f.loss) {
      this.counters.lostInjected++;
      return;
    }
    const send = (): void => {
      if (!this.socket) return;
      this.counters.packetsOut++;
      this.socket.send(pkt, port, address);
    };
    if (f.delayMs > 0 || f.jitterMs > 0) this.clock.after(f.delayMs + Math.random() * f.jitterMs, send);
    else send();
  }

  // ------------------------------------------------------------ sessions

  private evictForRoom(now: number): void {
    if (this.sessions.size < MAX_SESSIONS) return;
    for (const s of this.sessions.values()) {
      if (s.state !== 'active' && now - s.created > 1000) this.sessions.delete(s.sidC);
    }
  }

  /** One clock entry per BMC, and only while it has sessions. */
  private scheduleSweep(): void {
    if (this.sweeping) return;
    this.sweeping = true;
    this.clock.after(1000, () => {
      this.sweeping = false;
      this.sweep();
    });
  }

  private sweep(): void {
    const now = Date.now();
    for (const s of [...this.sessions.values()]) {
      if (s.state !== 'active') {
        if (now - s.created > SETUP_TIMEOUT_MS) this.sessions.delete(s.sidC);
      } else if (now - s.lastActive > this.profile.sessionTimeoutMs) {
        this.closeSession(s); // silently, as ipmi_sim does
      }
    }
    if (this.sessions.size > 0) this.scheduleSweep();
  }

  closeSession(s: BmcSession): void {
    this.sessions.delete(s.sidC);
    if (this.sol.owner === s) this.sol.deactivate();
  }

  findSession(sid: number): BmcSession | undefined {
    return this.sessions.get(sid);
  }

  afterReply(fn: () => void): void {
    this.replyHooks.push(fn);
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  // ------------------------------------------------------------ SOL

  /** the last 32 SOL takeovers between clients (see noteTakeover) */
  readonly takeovers: { at: number; by: string; from: string; fromSilentMs: number }[] = [];

  solOwner(): BmcSession | null {
    return this.sol.owner;
  }

  activateSol(s: BmcSession): void {
    this.counters.activations++;
    this.sol.activate(s);
  }

  deactivateSol(by: BmcSession | null): void {
    const old = this.sol.owner;
    if (!old) return;
    if (old.phantom && this.phantomTimer) this.phantomTimer.cancelled = true;
    if (old !== by && !old.phantom) {
      this.notifyDisplaced(old);
      if (by && !by.phantom) this.noteTakeover(by, old);
    }
    this.sol.deactivate();
  }

  /**
   * SOL taken from one client by another: who, from whom, and how long the
   * displaced one had been silent (a cluster's tests prove with it that no
   * node ever displaced a live session of another node).
   */
  private noteTakeover(by: BmcSession, old: BmcSession): void {
    const now = Date.now();
    this.takeovers.push({ at: now, by: `${by.address}:${by.port}`, from: `${old.address}:${old.port}`, fromSilentMs: now - (old.lastHeard ?? old.created) });
    if (this.takeovers.length > 32) this.takeovers.shift();
  }

  private notifyDisplaced(old: BmcSession): void {
    const how = this.profile.notifyDisplaced;
    if (how === 'activating') {
      // SOL Activating, state 0 = deactivated, instance 1, format 1.0 (OpenBMC)
      this.unsolicitedSeq = (this.unsolicitedSeq + 1) & 0x3f;
      this.sendPayload(old, PT_IPMI, encodeBmcRequest(NETFN_TRANSPORT, CMD_SOL_ACTIVATING, this.unsolicitedSeq, [0x00, 0x01, 0x01, 0x00]));
    } else if (how === 'deactivating-bit') {
      this.sol.sendDeactivating(old);
    }
  }

  /** "Someone else takes SOL now for `seconds`": a phantom session deactivates the owner and holds the instance. */
  steal(seconds: number): void {
    const now = Date.now();
    const phantom: BmcSession = {
      sidC: crypto.randomBytes(4).readUInt32LE(0) | 1,
      sidM: 0,
      state: 'active',
      suite: { id: 3, auth: 'hmac-sha1', integrity: 'hmac-sha1-96', conf: 'aes-cbc-128' },
      cs: null,
      role: 0x14,
      maxPriv: PRIV_ADMIN,
      priv: PRIV_ADMIN,
      rM: Buffer.alloc(0),
      rC: Buffer.alloc(0),
      address: '',
      port: 0,
      outSeq: 1,
      lastActive: now,
      created: now,
      phantom: true,
    };
    this.deactivateSol(phantom);
    this.counters.steals++;
    this.sol.activate(phantom);
    const t = this.clock.after(seconds * 1000, () => {
      if (this.sol.owner === phantom) this.sol.deactivate();
    });
    this.phantomTimer = t;
  }

  /** BMC restart: every session is gone at once, and nothing answers for `seconds`. */
  restart(seconds: number): void {
    for (const s of [...this.sessions.values()]) this.closeSession(s);
    if (this.sol.owner) this.sol.deactivate();
    this.downUntil = Date.now() + seconds * 1000;
  }

  /** state for the control channel (no credentials) */
  status(): Record<string, unknown> {
    const owner = this.sol.owner;
    return {
      name: this.name,
      address: this.address,
      port: this.port,
      profile: this.profile.name,
      sessions: this.sessions.size,
      solOwner: owner ? (owner.phantom ? 'injected-steal' : `0x${owner.sidC.toString(16).padStart(8, '0')}`) : null,
      host: { lastSeq: this.host.lastSeq, breaks: this.host.breaks },
      faults: this.faults,
      counters: this.counters,
      takeovers: this.takeovers,
    };
  }
}

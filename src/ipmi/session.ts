// One RMCP+ session with one BMC: Get Channel Auth Caps, Open Session,
// RAKP 1–4, Set Session Privilege, requests with retransmission, inbound
// replay window, Close Session (IPMI v2.0 §13: Open Session §13.17–13.18,
// RAKP §13.20–13.23; the commands in src/ipmi/commands.ts). SOL rides on top
// (sol.ts).
// Timers exist only while a request or setup step is outstanding.

import * as crypto from 'node:crypto';
import { DEADLINE_LINKS, Deadlines, type Deadline } from '../util/deadlines.js';
import { fenceOk } from '../util/fence.js';
import type { IpmiTransport, TransportClient } from './transport.js';
import { IpmiDecodeError, IpmiError } from './errors.js';
import {
  CMD_CLOSE_SESSION,
  CMD_GET_CHANNEL_AUTH_CAPS,
  CMD_GET_CHANNEL_CIPHER_SUITES,
  CMD_NAMES,
  CMD_SET_SESSION_PRIVILEGE,
  NETFN_APP,
} from './commands.js';
import {
  AUTH_ALG_NUM,
  CONF_ALG_NUM,
  INTEGRITY_ALG_NUM,
  CipherState,
  deriveK,
  rakp2Code,
  rakp3Code,
  rakp4Icv,
  sameBytes,
  cipherSuite,
  sessionIntegrityKey,
  type CipherSuite,
  type RakpInputs,
} from './crypto.js';
import {
  decodeMessage,
  encodeRequest,
  encodeV15,
  encodeV20,
  openV20,
  PT_IPMI,
  PT_OPEN_REQ,
  PT_OPEN_RSP,
  PT_RAKP1,
  PT_RAKP2,
  PT_RAKP3,
  PT_RAKP4,
  PT_SOL,
  type Datagram,
  type IpmiMessage,
} from './packet.js';
import { decodeOpenSessionResponse, decodeRakp2, decodeRakp4, encodeOpenSessionRequest, encodeRakp1, encodeRakp3, rmcpStatusText } from './rakp.js';

export const PRIV_LEVEL = { user: 2, operator: 3, admin: 4 } as const;

export interface IpmiSessionOptions {
  /** numeric IP address (resolve names before) */
  address: string;
  port: number;
  user: Buffer;
  password: Buffer;
  kg: Buffer | null;
  /** the cipher suite to use; with `fallback`, only the first choice */
  suite: CipherSuite;
  /**
   * no suite configured: `suite` first; once the BMC refused it in Open
   * Session, ask which suites it offers (Get Channel Cipher Suites) and fall
   * back along FALLBACK_ORDER to those it offers (all, when it does not say)
   */
  fallback?: boolean;
  privilege: keyof typeof PRIV_LEVEL;
  /** FreeIPMI-style workaround names that change behaviour here: authcap, integritycheckvalue, nochecksumcheck */
  workarounds?: ReadonlySet<string>;
  /** first retransmission timeout, ms (later ones grow) */
  retryMs?: number;
  /** attempts per request */
  attempts?: number;
}

/** tries for the goodbye requests (Deactivate, Close Session): 1 + 2 + 3 s */
export const CLOSE_ATTEMPTS = 3;

/** Suites tried in this order when none is configured: 3 first, 0 only where nothing better is offered. */
export const FALLBACK_ORDER = [3, 17, 2, 1, 0];
/** Open Session status codes (IPMI v2.0 §13.24) that mean "not with these algorithms" (try the next suite) */
const SUITE_REFUSED = new Set([0x04, 0x05, 0x06, 0x07, 0x10, 0x11]);

export interface Response {
  cc: number;
  data: Buffer;
}

/** every session's request retransmissions in this thread, on one timer (monotonic ms) */
const REQUEST_TIMERS = new Deadlines(() => performance.now());
/** how long after a keystroke a session's datagrams skip the transport's queue (a person's pauses between keys are shorter) */
const URGENT_MS = 2000;

/** a request awaiting its answer; its retransmission is a deadline on the thread's one timer (util/deadlines.ts) */
interface Pending extends Deadline {
  netFn: number;
  cmd: number;
  data: Buffer;
  tries: number;
  attempts: number;
  /** when the first try went out (round trips are sampled from answers to a first try only) */
  sentAt: number;
  sessionless: boolean;
  resolve(r: Response): void;
  reject(e: Error): void;
}

interface SetupWait {
  type: number;
  timer: NodeJS.Timeout;
  resolve(b: Buffer): void;
  reject(e: Error): void;
}

export { CMD_NAMES } from './commands.js';
const cmdName = (cmd: number): string => CMD_NAMES[cmd] ?? `command 0x${cmd.toString(16)}`;

export type SessionState = 'idle' | 'opening' | 'active' | 'closed';

/** Counters a console can show; all packets that were dropped say why in lastDrop. */
export interface SessionStats {
  dropped: number;
  lastDrop: string;
}

export class IpmiSession implements TransportClient {
  readonly sidM: number;
  readonly address: string;
  readonly port: number;
  sidC = 0;
  state: SessionState = 'idle';
  readonly stats: SessionStats = { dropped: 0, lastDrop: '' };
  /** SOL payloads (decrypted, verified, in-window) */
  onSol: (payload: Buffer) => void = () => {};
  /** unsolicited requests from the BMC (e.g. OpenBMC's SOL Activating) */
  onUnsolicited: (m: IpmiMessage) => void = () => {};
  /** until when (performance.now()) the transport hands this session's datagrams on ahead of the fleet's: see typed() */
  urgentUntil = 0;
  /** the transport's count of this session's queued datagrams */
  waiting = 0;

  private cs: CipherState | null = null;
  private suite: CipherSuite;
  /** the suite in use (after open(): the negotiated one) */
  get cipherSuite(): CipherSuite {
    return this.suite;
  }
  /** suite IDs the BMC listed in Get Channel Cipher Suites (empty: not asked or no answer) */
  offeredSuites: number[] = [];
  private outSeq = 1;
  private inHigh = 0;
  private inSeen = 0; // bit i = (inHigh - 1 - i) was received
  private rqSeq = 0;
  /** requests in flight by their 6-bit sequence number (a slot each: no map to grow and rehash per request) */
  private readonly pending: (Pending | undefined)[] = new Array<Pending | undefined>(64).fill(undefined);
  private setupWait: SetupWait | null = null;
  private readonly retryMs: number;
  private readonly attempts: number;

  constructor(
    private readonly transport: IpmiTransport,
    private readonly o: IpmiSessionOptions,
  ) {
    this.address = o.address;
    this.port = o.port;
    this.retryMs = o.retryMs ?? 1000;
    // 6 tries (1+2+3+3+3+3 s) ride out 10 % packet loss each way without a false alarm
    this.attempts = o.attempts ?? 6;
    this.suite = o.suite;
    this.sidM = transport.newSessionId();
  }

  /** someone typed at this session's console: its answers (the echo) skip the transport's queue for a while */
  typed(): void {
    this.urgentUntil = performance.now() + URGENT_MS;
  }

  /** Establish the session; rejects with an IpmiError that names the failing step. */
  async open(): Promise<void> {
    if (this.state !== 'idle') throw new IpmiError('IPMI session already used');
    this.state = 'opening';
    this.transport.register(this);
    const release = await this.transport.setupSlot();
    this.transport.stats.setups++;
    const retx = this.retransmitted;
    let done = false;
    try {
      await this.authCaps();
      // the first choice first, as ipmitool and ipmiconsole do: nearly every BMC takes suite 3, and asking
      // which suites it offers (one to four more exchanges per setup) is worth it only once it refused
      const order = [this.o.suite];
      let lastErr: Error | null = null;
      for (let i = 0; i < order.length; i++) {
        lastErr = await this.handshakeRetrying(order[i]!);
        if (!lastErr) break;
        // another suite only when the BMC refused this one's algorithms
        if (!(this.o.fallback && lastErr instanceof IpmiError && lastErr.code !== null && SUITE_REFUSED.has(lastErr.code))) break;
        if (i === 0) order.push(...(await this.fallbacks()));
      }
      if (lastErr) throw lastErr;
      this.state = 'active';
      const lvl = PRIV_LEVEL[this.o.privilege];
      if (lvl > PRIV_LEVEL.user) {
        const r = await this.request(NETFN_APP, CMD_SET_SESSION_PRIVILEGE, Buffer.from([lvl]));
        if (r.cc !== 0) throw new IpmiError(`Set Session Privilege Level (${this.o.privilege}) refused: completion code 0x${r.cc.toString(16)}`, r.cc);
      }
      done = true;
    } catch (e) {
      this.transport.stats.setupFailures++;
      this.teardown(e as Error);
      throw e;
    } finally {
      release(!done ? 'failed' : this.retransmitted === retx ? 'clean' : 'retransmitted');
    }
  }

  /** requests sent again and setups started over by this session (the setup window's signal) */
  private retransmitted = 0;

  private countRetransmission(): void {
    this.retransmitted++;
    this.transport.stats.retransmissions++;
  }

  private hasWorkaround(name: string): boolean {
    return this.o.workarounds?.has(name) ?? false;
  }

  private async authCaps(): Promise<void> {
    const lvl = PRIV_LEVEL[this.o.privilege];
    const r = await this.request(NETFN_APP, CMD_GET_CHANNEL_AUTH_CAPS, Buffer.from([0x8e, lvl]), true);
    if (r.cc !== 0 || r.data.length < 4) throw new IpmiError(`Get Channel Authentication Capabilities failed: completion code 0x${r.cc.toString(16)}`, r.cc);
    // W:authcap: some BMCs (Asus, Intel, Sun ELOM) misreport their capabilities
    if (this.hasWorkaround('authcap')) return;
    if ((r.data[1] & 0x80) === 0 || (r.data[3] & 0x02) === 0) throw new IpmiError('BMC does not offer IPMI 2.0 (RMCP+) on this channel');
  }

  /**
   * After the first choice was refused: the rest of FALLBACK_ORDER, best
   * first, keeping those the BMC lists. No usable list (command not
   * supported, odd records, none of these): try them all; Open Session
   * refusals decide.
   */
  private async fallbacks(): Promise<CipherSuite[]> {
    const ids = FALLBACK_ORDER.filter((id) => id !== this.o.suite.id);
    this.offeredSuites = await this.listCipherSuites().catch(() => []);
    const offered = ids.filter((id) => this.offeredSuites.includes(id));
    return (offered.length ? offered : ids).map((id) => cipherSuite(id));
  }

  /** Get Channel Cipher Suites (IPMI v2.0 §22.15), sessionless, all pages (16 bytes of records each). */
  private async listCipherSuites(): Promise<number[]> {
    const records: Buffer[] = [];
    for (let index = 0; index < 4; index++) {
      // optional command: a BMC that ignores it costs 3 s, not a full retry cycle
      const r = await this.request(NETFN_APP, CMD_GET_CHANNEL_CIPHER_SUITES, Buffer.from([0x0e, 0x00, 0x80 | index]), true, 2);
      if (r.cc !== 0 || r.data.length < 1) break;
      const page = r.data.subarray(1);
      records.push(page);
      if (page.length < 16) break;
    }
    return parseCipherSuiteRecords(Buffer.concat(records));
  }

  /** One suite: Open Session and RAKP, started over on a timeout. Resolves with the error, or null. */
  private async handshakeRetrying(suite: CipherSuite): Promise<Error | null> {
    let lastErr: Error | null = null;
    // lost setup packets are not retransmitted one by one: start over from Open Session
    for (let attempt = 0; attempt < 3; attempt++) {
      if (attempt > 0) this.countRetransmission();
      try {
        await this.handshake(suite);
        this.suite = suite;
        return null;
      } catch (e) {
        lastErr = e as Error;
        if (!(e instanceof IpmiError && e.code === -1)) break; // only timeouts are retried
      }
    }
    return lastErr;
  }

  private async handshake(s: CipherSuite): Promise<void> {
    const lvl = PRIV_LEVEL[this.o.privilege];
    const tag = crypto.randomInt(256);
    this.sendRaw(encodeV20(PT_OPEN_REQ, 0, 0, encodeOpenSessionRequest(tag, lvl, this.sidM, s), null));
    const os = decodeOpenSessionResponse(await this.waitSetup(PT_OPEN_RSP, 'Open Session'));
    if (os.status !== 0) throw new IpmiError(`Open Session refused: ${rmcpStatusText(os.status)}`, os.status);
    if (os.auth !== AUTH_ALG_NUM[s.auth] || os.integrity !== INTEGRITY_ALG_NUM[s.integrity] || os.conf !== CONF_ALG_NUM[s.conf]) {
      throw new IpmiError(`Open Session: BMC chose other algorithms than cipher suite ${s.id}`, 0x11);
    }
    if (os.sidC === 0) throw new IpmiError('Open Session: BMC gave session ID 0');
    this.sidC = os.sidC;

    const inp: RakpInputs = {
      sidM: this.sidM,
      sidC: os.sidC,
      rM: crypto.randomBytes(16),
      rC: Buffer.alloc(0),
      guidC: Buffer.alloc(0),
      role: 0x10 | lvl, // name-only lookup
      user: this.o.user,
    };
    this.sendRaw(encodeV20(PT_RAKP1, 0, 0, encodeRakp1(tag, os.sidC, inp.rM, inp.role, this.o.user), null));
    const r2 = decodeRakp2(await this.waitSetup(PT_RAKP2, 'RAKP 2'));
    if (r2.status !== 0) throw new IpmiError(`RAKP 2: ${rmcpStatusText(r2.status)}`, r2.status);
    inp.rC = r2.rC;
    inp.guidC = r2.guidC;
    const kuid = this.o.password;
    if (!sameBytes(r2.code, rakp2Code(s.auth, kuid, inp))) {
      this.sendRaw(encodeV20(PT_RAKP3, 0, 0, encodeRakp3(tag, 0x0f, os.sidC, Buffer.alloc(0)), null));
      throw new IpmiError('RAKP 2: authentication code mismatch (wrong user name or password?)', 0x0f);
    }
    this.sendRaw(encodeV20(PT_RAKP3, 0, 0, encodeRakp3(tag, 0, os.sidC, rakp3Code(s.auth, kuid, inp)), null));
    const r4 = decodeRakp4(await this.waitSetup(PT_RAKP4, 'RAKP 4'));
    if (r4.status !== 0) throw new IpmiError(`RAKP 4: ${rmcpStatusText(r4.status)}`, r4.status);
    const sik = sessionIntegrityKey(s.auth, this.o.kg ?? kuid, inp);
    // W:integritycheckvalue: with suite 0 some BMCs still send an ICV; ignore it
    const icvOk = s.auth === 'none' && this.hasWorkaround('integritycheckvalue') ? true : sameBytes(r4.icv, rakp4Icv(s.auth, sik, inp));
    if (!icvOk) throw new IpmiError('RAKP 4: integrity check value mismatch (wrong K_g?)', 0x0f);
    this.cs = new CipherState(s, deriveK(s.auth, sik, 1), deriveK(s.auth, sik, 2));
    this.outSeq = 1;
    this.inHigh = 0;
    this.inSeen = 0;
  }

  private waitSetup(type: number, what: string): Promise<Buffer> {
    const sentAt = performance.now();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.setupWait = null;
        reject(new IpmiError(`${what}: no answer from ${this.address}:${this.port}`, -1));
      }, this.transport.timeout(this.retryMs * 2));
      this.setupWait = {
        type,
        timer,
        resolve: (b) => {
          this.transport.noteRoundTrip(performance.now() - sentAt);
          resolve(b);
        },
        reject,
      };
    });
  }

  /** Send an IPMI request and wait for its response (retransmitted on timeout). */
  request(netFn: number, cmd: number, data: Buffer = Buffer.alloc(0), sessionless = false, attempts = this.attempts): Promise<Response> {
    if (!sessionless && this.state !== 'active') return Promise.reject(new IpmiError(`${cmdName(cmd)}: IPMI session is not open`));
    return new Promise((resolve, reject) => {
      // 6-bit request sequence, skipping ones still in flight
      let seq = this.rqSeq;
      for (let i = 0; i < 64; i++) {
        seq = (seq + 1) & 0x3f;
        if (this.pending[seq] === undefined) break;
      }
      if (this.pending[seq] !== undefined) return reject(new IpmiError(`${cmdName(cmd)}: too many requests in flight`));
      this.rqSeq = seq;
      const p: Pending = { netFn, cmd, data, tries: 0, attempts, due: Infinity, fire: () => this.retry(seq, p), ...DEADLINE_LINKS, sentAt: performance.now(), sessionless, resolve, reject };
      this.pending[seq] = p;
      this.transmit(seq, p);
    });
  }

  private transmit(seq: number, p: Pending): void {
    if (p.tries++ > 0) this.countRetransmission();
    const msg = encodeRequest(p.netFn, p.cmd, seq, p.data);
    this.sendRaw(p.sessionless ? encodeV15(msg) : this.wrap(PT_IPMI, msg));
    REQUEST_TIMERS.set(p, performance.now() + this.transport.timeout(this.retryMs * Math.min(p.tries, 3)));
  }

  /** no answer in time: send again, or give up */
  private retry(seq: number, p: Pending): void {
    if (this.pending[seq] !== p) return;
    if (p.tries < p.attempts) return this.transmit(seq, p);
    this.pending[seq] = undefined;
    p.reject(new IpmiError(`${cmdName(p.cmd)}: no answer from ${this.address}:${this.port} after ${p.tries} tries`, -1));
  }

  /** A SOL payload out; SOL does its own retransmission. */
  sendSol(payload: Buffer): void {
    if (this.state !== 'active') return;
    this.sendRaw(this.wrap(PT_SOL, payload));
  }

  private wrap(type: number, payload: Buffer): Buffer {
    const seq = this.outSeq;
    this.outSeq = (this.outSeq + 1) >>> 0 || 1; // never 0
    return encodeV20(type, this.sidC, seq, payload, this.cs);
  }

  private sendRaw(b: Buffer): void {
    // a cluster node past its lease (woken from a pause) sends nothing to any BMC: not a request, not
    // a retransmission, not a SOL ACK; another node may own the console now (util/fence.ts)
    if (!fenceOk()) return;
    this.transport.send(this, b);
  }

  private drop(why: string): void {
    this.stats.dropped++;
    this.stats.lastDrop = why;
  }

  /** From the transport. Anything odd is dropped and counted. */
  receive(d: Datagram): void {
    try {
      this.receiveUnsafe(d);
    } catch (e) {
      if (e instanceof IpmiDecodeError) this.drop(e.message);
      else throw e;
    }
  }

  private receiveUnsafe(d: Datagram): void {
    if (d.kind === 'pong') return this.drop('unexpected presence pong');
    if (d.kind === 'v15') {
      if (this.state !== 'opening') return this.drop('IPMI 1.5 packet outside setup');
      return this.response(decodeMessage(d.msg, !this.hasWorkaround('nochecksumcheck')), true);
    }
    if (d.sessionId === 0) {
      // setup payloads carry our SIDm inside
      const w = this.setupWait;
      if (this.state !== 'opening' || !w || d.payloadType !== w.type) return this.drop(`unexpected setup payload 0x${d.payloadType.toString(16)}`);
      if (d.payload.length < 8 || d.payload.readUInt32LE(4) !== this.sidM) return this.drop('setup payload for another session');
      clearTimeout(w.timer);
      this.setupWait = null;
      return w.resolve(Buffer.from(d.payload));
    }
    if (this.state !== 'active') return this.drop('session packet while not active');
    if (d.payloadType !== PT_IPMI && d.payloadType !== PT_SOL) return this.drop(`unknown payload type 0x${d.payloadType.toString(16)}`);
    const payload = openV20(d, this.cs); // throws on bad integrity / flags
    if (!this.acceptSeq(d.seq)) return this.drop(`session sequence ${d.seq} outside the replay window`);
    if (d.payloadType === PT_SOL) return this.onSol(payload);
    const m = decodeMessage(payload, !this.hasWorkaround('nochecksumcheck'));
    if (m.cc === null) return this.onUnsolicited(m);
    this.response(m, false);
  }

  /** replay window: 32 behind the highest seen, any reasonable distance ahead */
  private acceptSeq(seq: number): boolean {
    if (seq === 0) return false;
    const diff = (seq - this.inHigh) | 0;
    if (diff > 0) {
      if (diff > 0x10000 && this.inHigh !== 0) return false;
      this.inSeen = diff >= 32 ? 0 : ((this.inSeen << diff) | (1 << (diff - 1))) >>> 0;
      this.inHigh = seq;
      return true;
    }
    const back = -diff; // 0 = duplicate of the highest
    if (back === 0 || back > 32) return false;
    const bit = 1 << (back - 1);
    if (this.inSeen & bit) return false;
    this.inSeen = (this.inSeen | bit) >>> 0;
    return true;
  }

  private response(m: IpmiMessage, sessionless: boolean): void {
    const p = this.pending[m.rqSeq & 0x3f];
    if (!p || p.sessionless !== sessionless || p.cmd !== m.cmd || p.netFn + 1 !== m.netFn) return this.drop(`unmatched response to ${cmdName(m.cmd)}`);
    if (m.cc === 0xcf) return; // "duplicate request": the real answer follows
    REQUEST_TIMERS.clear(p);
    if (p.tries === 1) this.transport.noteRoundTrip(performance.now() - p.sentAt);
    this.pending[m.rqSeq & 0x3f] = undefined;
    p.resolve({ cc: m.cc ?? 0, data: m.data });
  }

  /** Close Session (best effort, one short wait) and release everything. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    if (this.state === 'active') {
      const sid = Buffer.alloc(4);
      sid.writeUInt32LE(this.sidC);
      try {
        // short: a shutdown must not wait long for a BMC that is gone
        const r = await this.request(NETFN_APP, CMD_CLOSE_SESSION, sid, false, CLOSE_ATTEMPTS);
        this.closedAtBmc = r.cc === 0;
      } catch {
        /* the BMC may already have dropped us */
      }
    }
    this.teardown(new IpmiError('IPMI session closed'));
  }
  /** the BMC confirmed our Close Session (else the session may live on there until it times out) */
  closedAtBmc = false;

  /** Drop all state without talking to the BMC. */
  teardown(why: Error): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    if (this.setupWait) {
      clearTimeout(this.setupWait.timer);
      this.setupWait.reject(why);
      this.setupWait = null;
    }
    for (const [seq, p] of this.pending.entries()) {
      if (!p) continue;
      REQUEST_TIMERS.clear(p);
      this.pending[seq] = undefined;
      p.reject(why);
    }
    this.cs = null;
    this.transport.unregister(this);
  }
}

/**
 * Suite IDs from Get Channel Cipher Suites records: `C0h id algs…` (standard)
 * or `C1h id IANA(3) algs…` (OEM); algorithm bytes never have both top bits set.
 */
export function parseCipherSuiteRecords(b: Buffer): number[] {
  const ids: number[] = [];
  let i = 0;
  while (i < b.length) {
    const start = b[i];
    if (start !== 0xc0 && start !== 0xc1) {
      i++;
      continue;
    }
    if (i + 1 >= b.length) break;
    ids.push(b[i + 1] & 0x3f);
    i += start === 0xc0 ? 2 : 5;
    while (i < b.length && (b[i] & 0xc0) !== 0xc0) i++;
  }
  return ids;
}

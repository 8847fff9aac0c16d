// One SOL console: an IPMI session, its SOL link, the IPMI keepalive and the
// steal policy (issue 4). A single poll timer per console does three jobs:
// it is the IPMI-level keepalive ipmi_sim needs (≤15 s, SOL traffic does not
// count), it detects a takeover (Get Payload Instance Info names another
// owner), and while SOL is held elsewhere it watches for the instance to be
// released (Get Payload Activation Status). Every exchange with the BMC
// (poll, force, take-back) runs one at a time on a promise chain, so an
// operator's force never races a poll.

import { IpmiError } from './errors.js';
import { CLOSE_ATTEMPTS, IpmiSession, type SessionOptions } from './session.js';
import { CC_ALREADY_ACTIVE, SolLink } from './sol.js';
import type { IpmiTransport } from './transport.js';
import type { IpmiMessage } from './packet.js';

export type StealPolicy = 'polite' | 'never' | 'always';

export interface SolConsoleHandlers {
  onData(b: Buffer): void;
  /** a line for the console log and clients (takeover, resume, waiting) */
  onNotice(text: string): void;
  /** the IPMI session is gone; the console is down */
  onDown(reason: string): void;
  /** the session is open at the BMC with this session ID (before SOL is activated) */
  onOpened?(sidC: number): void;
}

export interface SolTiming {
  /** poll interval while SOL is ours (keepalive + takeover detection) */
  ownPollMs: number;
  /** poll interval while SOL is held elsewhere */
  waitPollMs: number;
  /** how long the instance must stay free before we take it (polite) */
  quietMs: number;
}

export const DEFAULT_TIMING: SolTiming = { ownPollMs: 10000, waitPollMs: 5000, quietMs: 4000 };

/**
 * Polls are spread ±20 % around their interval. Consoles that come up
 * together (a start-up activates hundreds within a few milliseconds) would
 * otherwise poll together for ever: at 1,000 consoles a clump of a few
 * hundred polls and their answers held the event loop for 15-20 ms every
 * 10 s, and every keystroke in that moment waited. 8-12 s stays well inside
 * ipmi_sim's 30 s session timeout.
 */
const POLL_JITTER = 0.2;

export type SolState = 'connecting' | 'ours' | 'elsewhere' | 'closed';

/**
 * BMC session IDs of this daemon's sessions to one BMC that ended without
 * Close Session, so may still hold SOL there. Entries expire: a BMC may
 * reuse an ID for someone else long after it timed ours out.
 */
export class EarlierSessions {
  private ids = new Map<number, number>();
  /** told after every change (the device keeps the list on disk across restarts) */
  onChange: (() => void) | null = null;
  constructor(
    private readonly keepMs = 10 * 60_000,
    private readonly max = 8,
  ) {}
  add(sidC: number, now: number): void {
    if (sidC === 0) return;
    this.ids.delete(sidC);
    this.ids.set(sidC, now);
    for (const k of this.ids.keys()) {
      if (this.ids.size <= this.max) break;
      this.ids.delete(k);
    }
    this.onChange?.();
  }
  has(sidC: number, now: number): boolean {
    const at = this.ids.get(sidC);
    if (at === undefined) return false;
    if (now - at <= this.keepMs) return true;
    this.forget(sidC);
    return false;
  }
  forget(sidC: number): void {
    if (this.ids.delete(sidC)) this.onChange?.();
  }
  /** oldest first, with when each was last ours */
  entries(): { sid: number; at: number }[] {
    return [...this.ids].map(([sid, at]) => ({ sid, at }));
  }
  size(): number {
    return this.ids.size;
  }
}

/** injected so notices carry the daemon's time format */
export interface Clock {
  now(): number;
  stamp(ms: number): string;
  delta(ms: number): string;
}

export class SolConsole {
  state: SolState = 'connecting';
  /** when SOL was lost to another client (ms), or null */
  heldElsewhereSince: number | null = null;
  readonly session: IpmiSession;
  private readonly sol: SolLink;
  private timer: NodeJS.Timeout | null = null;
  private freeSince: number | null = null;
  /** one BMC exchange at a time (polls, force, take-backs) */
  private chain: Promise<void> = Promise.resolve();
  /** a force that arrived while the session was still opening */
  private pendingForce: string | null = null;
  /** last Deactivate refusal told to the log (said once, not every poll) */
  private refusedCc: number | null = null;
  /** W:solstatus: the BMC has no usable Get Payload Activation Status */
  private readonly noStatus: boolean;
  /** polls done (keepalive / takeover / release checks) */
  polls = 0;
  /** Activates answered "busy" that turned out to be our own session's */
  adopted = 0;

  constructor(
    transport: IpmiTransport,
    opts: SessionOptions,
    private readonly policy: StealPolicy,
    private readonly h: SolConsoleHandlers,
    private readonly clock: Clock,
    private readonly timing: SolTiming = DEFAULT_TIMING,
    /** this daemon's earlier sessions at this BMC that ended without Close Session */
    private readonly earlier: EarlierSessions = new EarlierSessions(),
  ) {
    this.session = new IpmiSession(transport, opts);
    this.noStatus = opts.workarounds?.has('solstatus') ?? false;
    this.sol = new SolLink(
      this.session,
      {
        onData: (b) => h.onData(b),
        onLost: (why) => this.suspect(why),
      },
      opts.workarounds?.has('solpayloadsize') ?? false,
    );
    this.session.onUnsolicited = (m) => this.unsolicited(m);
  }

  /** Open the session and take SOL if policy allows. Rejects if the session cannot be opened. */
  async start(): Promise<void> {
    await this.session.open();
    this.h.onOpened?.(this.session.sidC);
    await this.serial(async () => {
      // W:solstatus: no status check; Activate answers "busy" itself
      const busy = this.noStatus ? false : await this.isActive();
      if (busy && (await this.reclaimEarlier())) return;
      if (busy && this.policy !== 'always') return this.enterElsewhere(null, this.heldNotice());
      if (busy) await this.takeOver('at start-up (steal policy "always")', null);
      else await this.tryActivate(null);
    }, true);
    const by = this.pendingForce;
    this.pendingForce = null;
    if (by !== null && this.state === 'elsewhere') void this.force(by);
  }

  write(b: Buffer): void {
    if (this.state === 'ours') this.sol.write(b);
  }

  sendBreak(): void {
    if (this.state === 'ours') this.sol.sendBreak();
  }

  /**
   * Operator force: take SOL even from another session, whatever the policy.
   * If we think SOL is ours, ask the BMC first: the takeover may not have
   * been noticed yet.
   */
  async force(by: string): Promise<void> {
    if (this.state === 'connecting') {
      this.pendingForce = by;
      return;
    }
    await this.serial(async () => {
      if (this.state === 'ours') {
        if (await this.stillOurs()) return;
        this.lost();
      }
      if (this.state !== 'elsewhere') return;
      await this.takeOver(`by ${by}`, by);
    });
  }

  /** Run one BMC exchange after the previous ones; an IPMI failure ends the session. */
  private serial(fn: () => Promise<void>, rethrow = false): Promise<void> {
    const run = this.chain.then(async () => {
      if (this.state === 'closed') return;
      try {
        await fn();
      } catch (e) {
        if (rethrow) throw e;
        if ((this.state as SolState) !== 'closed') this.fail(e instanceof IpmiError ? e.message : `IPMI error: ${(e as Error).message}`);
      }
    });
    this.chain = run.catch(() => {});
    return run;
  }

  private heldNotice(): string {
    return this.policy === 'never'
      ? 'SOL session held by another client; not taking it (steal policy "never"): an operator can force it (conch -f)'
      : 'SOL session held by another client; waiting for it to be released';
  }

  private async isActive(): Promise<boolean> {
    const r = await this.session.request(0x06, 0x4a, Buffer.from([0x01]));
    if (r.cc !== 0 || r.data.length < 2) throw new IpmiError(`Get Payload Activation Status failed: completion code 0x${r.cc.toString(16)}`, r.cc);
    return (r.data[1] & 0x01) !== 0;
  }

  /** The BMC session ID that owns SOL instance 1 (Get Payload Instance Info), or null if the BMC does not say. */
  private async instanceOwner(): Promise<number | null> {
    const r = await this.session.request(0x06, 0x4b, Buffer.from([0x01, 0x01]));
    return r.cc === 0 && r.data.length >= 4 ? r.data.readUInt32LE(0) : null;
  }

  /** Get Payload Instance Info names our session as the owner (a BMC without the command: assume so). */
  private async stillOurs(): Promise<boolean> {
    const owner = await this.instanceOwner();
    return owner === null || owner === this.session.sidC;
  }

  /**
   * SOL held by a session of ours that died without Close Session (a timed
   * out exchange under load, a daemon restart): that is no person's
   * console, so take it back at once instead of waiting politely for the
   * BMC's session timeout. True when the instance is ours now.
   */
  private async reclaimEarlier(): Promise<boolean> {
    if (this.earlier.size() === 0) return false;
    const owner = await this.instanceOwner();
    if (owner === null || !this.earlier.has(owner, this.clock.now())) return false;
    const cc = await this.sol.deactivate();
    if (this.state === 'closed' || (cc !== 0 && cc !== CC_ALREADY_ACTIVE)) return false;
    this.earlier.forget(owner);
    if ((await this.activate()) !== 'ok' || (this.state as SolState) === 'closed') return false;
    this.h.onNotice(`SOL session was held by this daemon's earlier IPMI session (ended without Close Session); taken back`);
    this.becomeOurs(null);
    return true;
  }

  /** Activate SOL; "busy" because our own session already holds it (a duplicate Activate) counts as done. */
  private async activate(): Promise<'ok' | 'busy'> {
    const res = await this.sol.activate();
    if (res === 'ok' || this.state === 'closed') return res;
    if ((await this.instanceOwner()) !== this.session.sidC) return 'busy';
    this.sol.adopt();
    this.adopted++;
    return 'ok';
  }

  private async tryActivate(lostAt: number | null): Promise<void> {
    const res = await this.activate();
    if (this.state === 'closed') return;
    if (res === 'busy') {
      if (this.state !== 'elsewhere') this.enterElsewhere(lostAt, lostAt === null ? this.heldNotice() : null);
      return;
    }
    this.becomeOurs(lostAt);
  }

  private becomeOurs(lostAt: number | null): void {
    this.state = 'ours';
    this.freeSince = null;
    this.refusedCc = null;
    if (lostAt !== null) {
      const now = this.clock.now();
      this.h.onNotice(`SOL session resumed at ${this.clock.stamp(now)} after ${this.clock.delta(now - lostAt)}`);
    }
    this.heldElsewhereSince = null;
    this.schedule(this.timing.ownPollMs);
  }

  /**
   * Deactivate whoever holds SOL and activate ours (force, or policy
   * "always"). `how` completes the log line: "by <user@host>", "(steal policy …)".
   */
  private async takeOver(how: string, by: string | null): Promise<void> {
    const lostAt = this.heldElsewhereSince;
    const held = this.noStatus || (await this.isActive());
    const cc = held ? await this.sol.deactivate() : CC_ALREADY_ACTIVE; // 0x80 here: nothing was active
    if (this.state === 'closed') return;
    if (cc === 0) this.h.onNotice(`SOL session taken back from another client ${how}`);
    else if (cc === CC_ALREADY_ACTIVE) {
      if (by !== null) this.h.onNotice(`SOL session reactivated ${how}`);
    } else {
      // e.g. OpenBMC: only the owner or an ADMIN session may deactivate (0xD4)
      if (by !== null || this.refusedCc !== cc) this.h.onNotice(`SOL session could not be taken back ${how}: the BMC refused Deactivate Payload (completion code 0x${cc.toString(16)})`);
      this.refusedCc = cc;
      if (this.state !== 'elsewhere') this.enterElsewhere(lostAt, null);
      return;
    }
    const res = await this.activate();
    if ((this.state as SolState) === 'closed') return;
    if (res === 'busy') {
      // someone was quicker; stay polite about it and keep watching
      if (this.state !== 'elsewhere') this.enterElsewhere(lostAt, this.heldNotice());
      return;
    }
    this.becomeOurs(lostAt);
  }

  private enterElsewhere(since: number | null, notice: string | null): void {
    this.sol.stop();
    this.state = 'elsewhere';
    this.heldElsewhereSince = since ?? this.clock.now();
    this.freeSince = null;
    if (notice) this.h.onNotice(notice);
    this.schedule(this.policy === 'always' ? 0 : this.timing.waitPollMs);
  }

  /** our SOL instance belongs to someone else now */
  private lost(): void {
    if (this.state !== 'ours') return;
    const now = this.clock.now();
    this.h.onNotice(`SOL session taken over by another client at ${this.clock.stamp(now)}`);
    if (this.policy === 'never') this.h.onNotice('SOL session left to the other client (steal policy "never") until an operator forces it (conch -f)');
    this.enterElsewhere(now, null);
  }

  /** SOL stopped ACKing or the BMC flagged deactivation: check now who owns it */
  private suspect(_why: string): void {
    if (this.state !== 'ours') return;
    this.schedule(0);
  }

  private unsolicited(m: IpmiMessage): void {
    // OpenBMC: SOL Activating (transport 0x0C / 0x20) with state 0 for instance 1 = taken away
    if (m.netFn === 0x0c && m.cmd === 0x20 && m.data.length >= 2 && (m.data[0] & 0x0f) === 0 && m.data[1] === 1) this.lost();
  }

  private schedule(ms: number): void {
    if (this.state === 'closed') return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(
      () => {
        this.timer = null;
        void this.serial(() => this.poll());
      },
      Math.round(ms * (1 - POLL_JITTER + 2 * POLL_JITTER * Math.random())),
    );
  }

  private async poll(): Promise<void> {
    this.polls++;
    if (this.state === 'ours') {
      if (!(await this.stillOurs())) this.lost();
      if ((this.state as SolState) === 'elsewhere' && this.policy === 'always') await this.takeOver('(steal policy "always")', null);
    } else if (this.state === 'elsewhere') {
      if (this.policy === 'always') await this.takeOver('(steal policy "always")', null);
      else if (this.policy === 'never') {
        // keepalive only: stay off until forced — unless the holder is this daemon's own earlier session
        if (!(await this.reclaimEarlier())) await this.stillOurs();
      }
      else if (this.noStatus) await this.tryActivate(this.heldElsewhereSince); // Activate never steals: "busy" = still held
      else if (await this.isActive()) {
        if (await this.reclaimEarlier()) return;
        this.freeSince = null;
      }
      else {
        const now = this.clock.now();
        this.freeSince ??= now;
        if (now - this.freeSince >= this.timing.quietMs) await this.tryActivate(this.heldElsewhereSince);
      }
    }
    if (this.state === 'ours') this.schedule(this.timing.ownPollMs);
    else if (this.state === 'elsewhere') this.schedule(this.freeSince !== null ? Math.min(this.timing.waitPollMs, this.timing.quietMs) : this.timing.waitPollMs);
  }

  private fail(reason: string): void {
    this.release();
    this.session.teardown(new IpmiError(reason));
    this.h.onDown(reason);
  }

  private release(): void {
    this.state = 'closed';
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.sol.stop();
    this.sol.clearQueue();
  }

  /** Graceful end: deactivate OUR payload only, then Close Session. */
  async close(): Promise<void> {
    const wasOurs = this.state === 'ours';
    if (this.state === 'closed' && this.session.state === 'closed') return;
    this.release();
    if (wasOurs && this.session.state === 'active') {
      try {
        await this.session.request(0x06, 0x49, Buffer.from([0x01, 0x01, 0, 0, 0, 0]), false, CLOSE_ATTEMPTS);
      } catch (e) {
        // BMC gone: nothing left to deactivate, and no one to say goodbye to
        if (e instanceof IpmiError && e.code === -1) return this.session.teardown(e);
      }
    }
    await this.session.close();
  }
}

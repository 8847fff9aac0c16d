// One SOL console: an IPMI session, its SOL link, the IPMI keepalive and the
// steal policy (docs/ipmi.md, "Steal policy" and "Takeover timing"). One
// timer per console, whose checks are:
// - SOL ours: silence is the cue. Every SOL packet from the BMC (data, or an
//   ACK of what we typed) proves the instance is still ours; after 2 s
//   without one, Get Payload Instance Info (IPMI v2.0 §24.4, Table 24-4)
//   asks who owns it. A printing host costs no request beyond the keepalive
//   ipmi_sim needs (its session times out after 30 s without IPMI traffic;
//   SOL does not count), a silent one one request per 2-2.4 s.
// - SOL held elsewhere (polite): Get Payload Activation Status (§24.3,
//   Table 24-3) every 0.6-0.9 s; seen free twice 1.5 s apart, it is ours
//   again. A client's scripted deactivate → activate leaves SOL free for
//   0.04-0.13 s (ipmitool) or 0.27-0.78 s (ipmiconsole --deactivate, then
//   ipmiconsole), measured on loopback: never mistaken for a release.
// Every exchange with the BMC (check, force, take-back) runs one at a time
// on a promise chain, and each check is timed from the previous answer, so
// a BMC never has more than one request of ours outstanding.

import { fenceOk } from '../util/fence.js';
import { DEADLINE_LINKS, deadlinesOf, type Deadline, type Deadlines } from '../util/deadlines.js';
import { IpmiError } from './errors.js';
import {
  CMD_DEACTIVATE_PAYLOAD,
  CMD_GET_PAYLOAD_ACTIVATION_STATUS,
  CMD_GET_PAYLOAD_INSTANCE_INFO,
  CMD_SOL_ACTIVATING,
  NETFN_APP,
  NETFN_TRANSPORT,
} from './commands.js';
import { CLOSE_ATTEMPTS, IpmiSession, type IpmiSessionOptions, type Response } from './session.js';
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
  /** keepalive while SOL is ours and proven by its data (8-12 s: inside ipmi_sim's 30 s session timeout) */
  ownPollMs: number;
  /** free check while SOL is held elsewhere (±20 %) */
  waitPollMs: number;
  /** polite: the instance must be seen free twice this far apart before we take it */
  quietMs: number;
  /** SOL ours and nothing from the BMC for this long (+0-20 %): ask who owns it */
  silenceMs?: number;
}

/**
 * Sized from measurements (this machine, ipmi_sim and conch-bmcsim):
 * silenceMs 2000: the takeover of a silent console is noticed within
 * 2.4 s + one round trip, and a silent BMC gets at most one request per 2 s;
 * quietMs 1500: twice the longest free gap of a scripted takeover measured
 * (0.78 s, FreeIPMI's ipmiconsole --deactivate then ipmiconsole; ipmitool's
 * sol deactivate then sol activate: 0.13 s); waitPollMs 750: with the quiet
 * period, SOL is back within 0.9 + 1.5 s + three round trips of a release.
 */
export const DEFAULT_TIMING: Required<SolTiming> = { ownPollMs: 10000, waitPollMs: 750, quietMs: 1500, silenceMs: 2000 };

/**
 * Checks are spread ±20 % around their interval (silence checks +0-20 %,
 * never sooner). Consoles that come up together (a start-up activates
 * hundreds within a few milliseconds) would otherwise poll together for
 * ever: at 1,000 consoles a clump of a few hundred polls and their answers
 * held the event loop for 15-20 ms every 10 s, and every keystroke in that
 * moment waited.
 */
const POLL_JITTER = 0.2;
/** `always` after a take-back the BMC refused or lost to a quicker client: try again this often */
const RETAKE_MS = 5000;
/** Get Payload Instance Info's request data: SOL, instance 1 (sent unchanged every check) */
const SOL_INSTANCE_1 = Buffer.from([0x01, 0x01]);

export type SolState = 'connecting' | 'ours' | 'elsewhere' | 'closed';

/** What a SOL console counts, for metrics (see IpmiDevice.stats). */
export interface SolCounts {
  /** SOL taken from us by another client */
  takeovers: number;
  /** SOL ours again after another client held it */
  resumes: number;
  /** ms another client held SOL, over the stretches that have ended */
  heldMs: number;
  /** when the stretch under way began (clock ms), or null */
  heldFrom: number | null;
}

export const noSolCounts = (): SolCounts => ({ takeovers: 0, resumes: 0, heldMs: 0, heldFrom: null });

/** `from`'s counts added to `into`, a stretch under way counted up to `now` (for a console that is done) */
export function bankSolCounts(into: SolCounts, from: SolCounts, now: number): void {
  into.takeovers += from.takeovers;
  into.resumes += from.resumes;
  into.heldMs += from.heldMs + (from.heldFrom === null ? 0 : Math.max(0, now - from.heldFrom));
}

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

/** injected so notices carry the daemon's time format (and tests their own time) */
export interface Clock {
  now(): number;
  stamp(ms: number): string;
  delta(ms: number): string;
  /** [0, 1) for the jitter (default Math.random) */
  random?(): number;
}

export class SolConsole {
  state: SolState = 'connecting';
  /** when conch saw SOL held by another client (ms), or null */
  heldElsewhereSince: number | null = null;
  readonly session: IpmiSession;
  private readonly sol: SolLink;
  private readonly timing: Required<SolTiming>;
  /** the next check: a deadline on the clock's one timer (util/deadlines.ts), not a setTimeout per check */
  private readonly check: Deadline = { due: Infinity, fire: () => this.fire(), ...DEADLINE_LINKS };
  private readonly deadlines: Deadlines;
  /** SOL ours: check who owns it at the next firing whatever the data says (SOL stopped ACKing) */
  private checkNow = false;
  /** SOL ours: the last moment it was shown ours (a SOL packet from the BMC, the sending of a confirming request, activation) */
  private provenAt = 0;
  /** when the BMC last answered a request of ours (checks are timed from it) */
  private answeredAt = 0;
  /** this keepalive interval's jitter factor, drawn at each answer */
  private keepJitter = 1;
  /** SOL lost: the last moment it was ours (the console is dark since), or null */
  private darkSince: number | null = null;
  /** held elsewhere: when a free answer arrived, the first of this free run, or null */
  private freeSeenAt: number | null = null;
  /** one BMC exchange at a time (polls, force, take-backs) */
  private chain: Promise<void> = Promise.resolve();
  /** BMC exchanges on the chain or under way (0: a check may go out at once) */
  private exchanges = 0;
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
  /** takeovers, resumes, time held elsewhere */
  readonly counts: SolCounts = noSolCounts();

  constructor(
    transport: IpmiTransport,
    opts: IpmiSessionOptions,
    private readonly policy: StealPolicy,
    private readonly h: SolConsoleHandlers,
    private readonly clock: Clock,
    timing: SolTiming = DEFAULT_TIMING,
    /** this daemon's earlier sessions at this BMC that ended without Close Session */
    private readonly earlier: EarlierSessions = new EarlierSessions(),
    /** tests: a stand-in session */
    newSession: (t: IpmiTransport, o: IpmiSessionOptions) => IpmiSession = (t, o) => new IpmiSession(t, o),
  ) {
    this.timing = { ...DEFAULT_TIMING, ...timing };
    this.deadlines = deadlinesOf(clock);
    this.session = newSession(transport, opts);
    this.noStatus = opts.workarounds?.has('solstatus') ?? false;
    this.sol = new SolLink(
      this.session,
      {
        onData: (b) => h.onData(b),
        onLost: (why) => this.suspect(why),
        onProof: () => this.proven(this.clock.now()),
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
      // an earlier session of ours may hold SOL (a restart, a cluster's handover): who holds it also says
      // whether anyone does, one exchange instead of two (a BMC that does not say: asked the usual way)
      // (without that command no earlier session can be recognised: reclaimEarlier needs it too)
      const owner = !this.noStatus && this.earlier.size() > 0 ? await this.instanceOwner() : null;
      // W:solstatus: no status check; Activate answers "busy" itself (and never steals, whatever the answers before it)
      const busy = owner !== null ? owner !== 0 : this.noStatus ? false : await this.isActive();
      if (busy && owner !== null && (await this.reclaimEarlier(owner))) return;
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
    this.exchanges++;
    const run = this.chain.then(async () => {
      try {
        if (this.state === 'closed') return;
        await fn();
      } catch (e) {
        if (rethrow) throw e;
        this.failed(e);
      } finally {
        this.exchanges--;
      }
    });
    this.chain = run.catch(() => {});
    return run;
  }

  /** an exchange failed: the session ends (unless closed meanwhile) */
  private failed(e: unknown): void {
    if ((this.state as SolState) !== 'closed') this.fail(e instanceof IpmiError ? e.message : `IPMI error: ${(e as Error).message}`);
  }

  private heldNotice(): string {
    return this.policy === 'never'
      ? 'SOL session held by another client; not taking it (steal policy "never"): an operator can force it (conch -f)'
      : 'SOL session held by another client; waiting for it to be released';
  }

  /** Get Payload Activation Status (IPMI v2.0 §24.3, Table 24-3): is SOL instance 1 active, for anyone? */
  private async isActive(): Promise<boolean> {
    const r = await this.session.request(NETFN_APP, CMD_GET_PAYLOAD_ACTIVATION_STATUS, Buffer.from([0x01]));
    this.answered();
    if (r.cc !== 0 || r.data.length < 2) throw new IpmiError(`Get Payload Activation Status failed: completion code 0x${r.cc.toString(16)}`, r.cc);
    return (r.data[1] & 0x01) !== 0;
  }

  /** The BMC session ID that owns SOL instance 1 (Get Payload Instance Info), or null if the BMC does not say. */
  private async instanceOwner(): Promise<number | null> {
    return this.owner(await this.session.request(NETFN_APP, CMD_GET_PAYLOAD_INSTANCE_INFO, SOL_INSTANCE_1));
  }

  /** the owner an Instance Info answer names (null: the BMC does not say); the BMC answered */
  private owner(r: Response): number | null {
    this.answered();
    return r.cc === 0 && r.data.length >= 4 ? r.data.readUInt32LE(0) : null;
  }

  /**
   * Get Payload Instance Info (§24.4, Table 24-4) names our session as the
   * owner (a BMC without the command: assume so). An answer "ours" proves
   * it as of the request's sending (the BMC looked between then and now).
   */
  private async stillOurs(): Promise<boolean> {
    const sentAt = this.clock.now();
    return this.oursIn(await this.session.request(NETFN_APP, CMD_GET_PAYLOAD_INSTANCE_INFO, SOL_INSTANCE_1), sentAt);
  }

  /** an Instance Info answer to the request sent at `sentAt`: SOL ours (then proven as of `sentAt`) or not */
  private oursIn(r: Response, sentAt: number): boolean {
    const owner = this.owner(r);
    const ours = owner === null || owner === this.session.sidC;
    if (ours) this.proven(sentAt);
    return ours;
  }

  /** SOL was ours at `at` (ms) */
  private proven(at: number): void {
    if (at > this.provenAt) this.provenAt = at;
  }

  /** the BMC answered: the keepalive interval and the spacing of checks start again */
  private answered(): void {
    this.answeredAt = this.clock.now();
    this.keepJitter = this.jitter();
  }

  /** a factor in [1 - POLL_JITTER, 1 + POLL_JITTER) */
  private jitter(): number {
    return 1 - POLL_JITTER + 2 * POLL_JITTER * (this.clock.random?.() ?? Math.random());
  }

  /**
   * SOL held by a session of ours that died without Close Session (a timed
   * out exchange under load, a daemon restart): that is no person's
   * console, so take it back at once instead of waiting politely for the
   * BMC's session timeout. True when the instance is ours now. `known`:
   * the owner, asked already.
   */
  private async reclaimEarlier(known?: number): Promise<boolean> {
    if (this.earlier.size() === 0) return false;
    const owner = known ?? (await this.instanceOwner());
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

  /** SOL is ours (again); `darkSince`: the console was dark from then (the resume notice counts from it) */
  private becomeOurs(darkSince: number | null): void {
    const now = this.clock.now();
    if (this.state === 'elsewhere') this.counts.resumes++;
    this.endHeld(now);
    this.state = 'ours';
    this.freeSeenAt = null;
    this.refusedCc = null;
    this.provenAt = now;
    if (darkSince !== null) this.h.onNotice(`SOL session resumed at ${this.clock.stamp(now)} after ${this.clock.delta(now - darkSince)}`);
    this.heldElsewhereSince = null;
    this.darkSince = null;
    this.armOwnCheck();
  }

  /**
   * Deactivate whoever holds SOL and activate ours (force, or policy
   * "always"). `how` completes the log line: "by <user@host>", "(steal policy …)".
   */
  private async takeOver(how: string, by: string | null): Promise<void> {
    const lostAt = this.darkSince;
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

  /**
   * SOL is held by another client. `since`: when that was seen (default
   * now); `darkSince`: when the console was last ours (default: `since`).
   */
  private enterElsewhere(since: number | null, notice: string | null, darkSince: number | null = null): void {
    this.sol.stop();
    if (this.state !== 'elsewhere') this.counts.heldFrom = this.clock.now();
    this.state = 'elsewhere';
    this.heldElsewhereSince = since ?? this.clock.now();
    this.darkSince ??= darkSince ?? this.heldElsewhereSince;
    this.freeSeenAt = null;
    if (notice) this.h.onNotice(notice);
    this.schedule(this.policy === 'always' ? 0 : this.elsewhereInterval());
  }

  /** polite: the free check; never: only the keepalive; always: the next take-back attempt */
  private elsewhereInterval(): number {
    if (this.policy === 'never') return this.timing.ownPollMs;
    if (this.policy === 'always') return Math.max(this.timing.waitPollMs, RETAKE_MS);
    return this.timing.waitPollMs;
  }

  /**
   * Our SOL instance belongs to someone else now. The takeover happened
   * after SOL was last shown ours and before now: the notice gives that
   * window, and the console is dark from its start.
   */
  private lost(): void {
    if (this.state !== 'ours') return;
    const now = this.clock.now();
    const ours = Math.min(this.provenAt, now);
    this.counts.takeovers++;
    this.h.onNotice(`SOL session taken over by another client at some time between ${this.clock.stamp(ours)} and ${this.clock.stamp(now)}`);
    if (this.policy === 'never') this.h.onNotice('SOL session left to the other client (steal policy "never") until an operator forces it (conch -f)');
    this.enterElsewhere(now, null, ours);
  }

  /** SOL stopped ACKing or the BMC flagged deactivation: check now who owns it */
  private suspect(_why: string): void {
    if (this.state !== 'ours') return;
    this.checkNow = true;
    this.arm(this.clock.now());
  }

  private unsolicited(m: IpmiMessage): void {
    // OpenBMC: SOL Activating (IPMI v2.0 §26.1) with state 0 for instance 1 = taken away
    if (m.netFn === NETFN_TRANSPORT && m.cmd === CMD_SOL_ACTIVATING && m.data.length >= 2 && (m.data[0] & 0x0f) === 0 && m.data[1] === 1) this.lost();
  }

  /** the next check in `ms` (±20 %) */
  private schedule(ms: number): void {
    this.arm(this.clock.now() + Math.round(ms * this.jitter()));
  }

  /** the timer at `due` (clock ms); the check runs on the chain */
  private arm(due: number): void {
    if (this.state === 'closed') return;
    this.deadlines.set(this.check, due);
  }

  /**
   * SOL ours: the ownership check is due after `silenceMs` (+0-20 %)
   * without a sign of ownership, counted from the later of the last sign
   * and the last answer (so a silent BMC gets at most one request per
   * `silenceMs`), or at the keepalive, whichever comes first.
   */
  private ownCheckDue(): number {
    const silence = Math.max(this.provenAt, this.answeredAt) + this.timing.silenceMs * (1 + POLL_JITTER * (this.clock.random?.() ?? Math.random()));
    const keepalive = this.answeredAt + this.timing.ownPollMs * this.keepJitter;
    return Math.round(Math.min(silence, keepalive));
  }

  private armOwnCheck(): void {
    this.arm(this.ownCheckDue());
  }

  private fire(): void {
    // SOL data arrived since the timer was armed: the check moves on (no request)
    if (this.state === 'ours' && !this.checkNow) {
      const due = this.ownCheckDue();
      if (due > this.clock.now()) return this.arm(due);
    }
    if (this.state === 'ours' && this.exchanges === 0) return this.checkOwner();
    void this.serial(() => this.poll());
  }

  /**
   * The check of every console whose SOL is ours (the keepalive, a silence),
   * with no other exchange under way: one request and its callbacks, on the
   * chain for what comes after. Through the chain's async steps (serial,
   * poll, stillOurs) each check kept ~1.5 KB alive while a slow BMC
   * answered: at 10,000 consoles the largest share of what an IPMI thread's
   * collector had to move to its old generation.
   */
  private checkOwner(): void {
    this.checkNow = false;
    this.polls++;
    this.exchanges++;
    const sentAt = this.clock.now();
    this.chain = this.session.request(NETFN_APP, CMD_GET_PAYLOAD_INSTANCE_INFO, SOL_INSTANCE_1).then(
      (r) => {
        this.exchanges--;
        if (this.state !== 'ours') return;
        if (this.oursIn(r, sentAt)) return this.armOwnCheck();
        this.lost();
        // taken: what a poll does next (a take-back by policy, the next check)
        void this.serial(() => this.afterLost());
      },
      (e: unknown) => {
        this.exchanges--;
        this.failed(e);
      },
    );
  }

  private async afterLost(): Promise<void> {
    if (this.state === 'elsewhere' && this.policy === 'always') await this.takeOver('(steal policy "always")', null);
    this.armNext();
  }

  private async poll(): Promise<void> {
    if (this.state === 'ours') {
      // data may have come while this check waited on the chain
      if (!this.checkNow && this.ownCheckDue() > this.clock.now()) return this.armOwnCheck();
      this.checkNow = false;
      this.polls++;
      if (!(await this.stillOurs())) {
        this.lost();
        return this.afterLost();
      }
    } else if (this.state === 'elsewhere') {
      this.polls++;
      await this.checkElsewhere();
    }
    this.armNext();
  }

  /** after a check: the next one, as the state says */
  private armNext(): void {
    if (this.state === 'ours') this.armOwnCheck();
    else if (this.state === 'elsewhere' && this.freeSeenAt !== null) this.arm(this.freeSeenAt + this.timing.quietMs);
    else if (this.state === 'elsewhere') this.schedule(this.elsewhereInterval());
  }

  /** one check while SOL is held elsewhere, as the policy says */
  private async checkElsewhere(): Promise<void> {
    if (this.policy === 'always') await this.takeOver('(steal policy "always")', null);
    else if (this.policy === 'never') {
      // keepalive only: stay off until forced — unless the holder is this daemon's own earlier session
      if (!(await this.reclaimEarlier())) await this.stillOurs();
    } else if (this.noStatus) await this.tryActivate(this.darkSince); // Activate never steals: "busy" = still held
    else await this.checkFree();
  }

  /**
   * polite: take SOL once it has been seen free twice, the second request
   * sent at least `quietMs` after the first free answer arrived. However
   * slowly the BMC answers, both looks then fell inside one free stretch
   * at least `quietMs` long: a deactivate → activate gap shorter than that
   * is never taken for a release.
   */
  private async checkFree(): Promise<void> {
    const sentAt = this.clock.now();
    if (await this.isActive()) {
      this.freeSeenAt = null;
      await this.reclaimEarlier();
      return;
    }
    if (this.freeSeenAt === null) this.freeSeenAt = this.clock.now();
    else if (sentAt - this.freeSeenAt >= this.timing.quietMs) await this.tryActivate(this.darkSince);
  }

  private fail(reason: string): void {
    this.release();
    this.session.teardown(new IpmiError(reason));
    this.h.onDown(reason);
  }

  /** a stretch of SOL held elsewhere ends (counted) */
  private endHeld(now: number): void {
    const c = this.counts;
    if (c.heldFrom === null) return;
    c.heldMs += Math.max(0, now - c.heldFrom);
    c.heldFrom = null;
  }

  private release(): void {
    this.endHeld(this.clock.now());
    this.state = 'closed';
    this.deadlines.clear(this.check);
    this.sol.stop();
    this.sol.clearQueue();
  }

  /** Graceful end: deactivate OUR payload only, then Close Session. */
  async close(): Promise<void> {
    const wasOurs = this.state === 'ours';
    if (this.state === 'closed' && this.session.state === 'closed') return;
    this.release();
    if (wasOurs && this.session.state === 'active' && fenceOk()) {
      try {
        await this.session.request(NETFN_APP, CMD_DEACTIVATE_PAYLOAD, Buffer.from([0x01, 0x01, 0, 0, 0, 0]), false, CLOSE_ATTEMPTS);
      } catch (e) {
        // BMC gone: nothing left to deactivate, and no one to say goodbye to
        if (e instanceof IpmiError && e.code === -1) return this.session.teardown(e);
      }
    }
    await this.session.close();
  }
}

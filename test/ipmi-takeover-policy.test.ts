// The timing of the steal policy (docs/ipmi.md, "Takeover timing"), on fake
// time: a SolConsole over a stand-in IPMI session whose BMC keeps one SOL
// instance and answers Get Payload Activation Status / Instance Info /
// Activate / Deactivate (IPMI v2.0 §24) after a chosen delay, or never. Every
// request is recorded with the (fake) time it reached the BMC.

import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import { SolConsole, DEFAULT_TIMING, type Clock, type StealPolicy } from '../src/ipmi/sol-console.js';
import type { IpmiSession, Response, IpmiSessionOptions } from '../src/ipmi/session.js';
import type { IpmiTransport } from '../src/ipmi/transport.js';
import { IpmiError } from '../src/ipmi/errors.js';
import { cipherSuite } from '../src/ipmi/crypto.js';
import { encodeSol, decodeSol } from '../src/ipmi/sol-packet.js';
import { rng } from './helpers/seeded.js';

/** fake time (ms), moved only by advance() */
let now = 1_000_000;

const CMD = { status: 0x4a, info: 0x4b, activate: 0x48, deactivate: 0x49 } as const;
const OTHER = 0x7777;

class FakeBmc {
  /** session ID holding SOL instance 1 (0: free) */
  owner = 0;
  /** ms between a request and its answer; the BMC looks at its state halfway */
  delayMs = 5;
  /** requests are never answered; the stand-in session gives up after 15 s, as the real one does */
  mute = false;
  readonly requests: { cmd: number; at: number; sid: number }[] = [];
  count(cmd: number, from = 0): number {
    return this.requests.filter((r) => r.cmd === cmd && r.at >= from).length;
  }
}

let nextSid = 0x100;

/** What SolConsole and SolLink use of IpmiSession. */
class FakeSession {
  sidC = 0;
  state: 'idle' | 'active' | 'closed' = 'idle';
  closedAtBmc = false;
  stats = { dropped: 0, lastDrop: '' };
  cipherSuite = cipherSuite(3);
  onSol: (p: Buffer) => void = () => {};
  onUnsolicited: (m: unknown) => void = () => {};
  /** SOL payloads we sent (ACKs, data) */
  readonly sent: Buffer[] = [];
  private inSeq = 0;
  constructor(readonly bmc: FakeBmc) {}

  async open(): Promise<void> {
    this.state = 'active';
    this.sidC = nextSid++;
  }

  request(_netFn: number, cmd: number, data: Buffer = Buffer.alloc(0)): Promise<Response> {
    if (this.state !== 'active') return Promise.reject(new IpmiError('IPMI session is not open'));
    const b = this.bmc;
    return new Promise((resolve, reject) => {
      if (b.mute) {
        setTimeout(() => reject(new IpmiError(`no answer after 6 tries`, -1)), 15000);
        return;
      }
      let answer: Response;
      setTimeout(() => {
        b.requests.push({ cmd, at: now, sid: this.sidC });
        answer = this.execute(cmd, data);
      }, b.delayMs / 2);
      setTimeout(() => resolve(answer), b.delayMs);
    });
  }

  private execute(cmd: number, _data: Buffer): Response {
    const b = this.bmc;
    const u32 = Buffer.alloc(12);
    switch (cmd) {
      case CMD.status:
        return { cc: 0, data: Buffer.from([0x01, b.owner ? 1 : 0, 0]) };
      case CMD.info:
        u32.writeUInt32LE(b.owner, 0);
        return { cc: 0, data: u32 };
      case CMD.activate:
        if (b.owner) return { cc: 0x80, data: Buffer.alloc(0) };
        b.owner = this.sidC;
        return { cc: 0, data: Buffer.from([0, 0, 0, 0, 0xff, 0, 0xff, 0, 0x6f, 0x02, 0xff, 0xff]) };
      case CMD.deactivate:
        if (!b.owner) return { cc: 0x80, data: Buffer.alloc(0) };
        b.owner = 0;
        return { cc: 0, data: Buffer.alloc(0) };
    }
    return { cc: 0xc1, data: Buffer.alloc(0) };
  }

  sendSol(p: Buffer): void {
    this.sent.push(p);
    // the BMC ACKs what its owner sends (the sync packet after activation)
    const q = decodeSol(p);
    if (q.seq !== 0 && this.bmc.owner === this.sidC) setTimeout(() => this.onSol(encodeSol({ seq: 0, ackSeq: q.seq, accepted: q.data.length, flags: 0, data: Buffer.alloc(0) })), this.bmc.delayMs);
  }

  /** host output from the BMC, if SOL is ours there */
  data(text: string): void {
    if (this.bmc.owner !== this.sidC) return;
    this.inSeq = this.inSeq === 15 ? 1 : this.inSeq + 1;
    this.onSol(encodeSol({ seq: this.inSeq, ackSeq: 0, accepted: 0, flags: 0, data: Buffer.from(text) }));
  }

  async close(): Promise<void> {
    this.state = 'closed';
  }
  teardown(): void {
    this.state = 'closed';
  }
}

/** a deterministic [0, 1) sequence (for the jitter) */
const seeded = rng;

interface Rig {
  c: SolConsole;
  s: FakeSession;
  bmc: FakeBmc;
  notices: { at: number; text: string }[];
  downs: string[];
}

function rig(policy: StealPolicy = 'polite', bmc = new FakeBmc(), seed = 1): Rig {
  const notices: Rig['notices'] = [];
  const downs: string[] = [];
  let s: FakeSession | null = null;
  // stamps are the fake ms themselves, so the notices can be checked exactly
  const clock: Clock = { now: () => now, stamp: (ms) => `@${ms}`, delta: (ms) => `${ms}ms`, random: seeded(seed) };
  const c = new SolConsole(
    null as unknown as IpmiTransport,
    {} as IpmiSessionOptions,
    policy,
    { onData: () => {}, onNotice: (text) => notices.push({ at: now, text }), onDown: (r) => downs.push(r) },
    clock,
    DEFAULT_TIMING,
    undefined,
    () => (s = new FakeSession(bmc)) as unknown as IpmiSession,
  );
  return { c, s: s!, bmc, notices, downs };
}

/** fake time moves in 10 ms steps; promises settle between them */
async function advance(ms: number, each?: () => void): Promise<void> {
  const end = now + ms;
  while (now < end) {
    const step = Math.min(10, end - now);
    now += step;
    mock.timers.tick(step);
    for (let i = 0; i < 4; i++) await new Promise<void>((r) => setImmediate(r));
    each?.();
  }
}

/** a promise that needs fake time to settle (a Deactivate on close, a force) */
async function settled<T>(p: Promise<T>): Promise<T> {
  await advance(3000);
  return p;
}

async function started(r: Rig): Promise<void> {
  const p = r.c.start();
  await advance(100);
  await p;
}

mock.timers.enable({ apis: ['setTimeout'] });

const notice = (r: Rig, prefix: string): { at: number; text: string } | undefined => r.notices.find((n) => n.text.startsWith(prefix));

test('SOL ours and data flowing: no request but the keepalive; silence: an ownership check every 2-2.4 s', async () => {
  const r = rig();
  await started(r);
  assert.equal(r.c.state, 'ours');
  const t0 = now;
  // the host prints every 300 ms for 30 s
  let next = now;
  await advance(30000, () => {
    if (now >= next) {
      r.s.data('line\r\n');
      next = now + 300;
    }
  });
  const flowing = r.bmc.requests.filter((q) => q.at >= t0 && q.cmd === CMD.info).map((q) => q.at - t0);
  // keepalive only: 8-12 s apart, so 2 or 3 in 30 s
  assert.ok(flowing.length >= 2 && flowing.length <= 3, `requests while data flowed at ${flowing}`);
  assert.ok(flowing[0]! >= 7800, `first request at ${flowing[0]} ms`);
  for (let i = 1; i < flowing.length; i++) assert.ok(flowing[i]! - flowing[i - 1]! >= 8000, `keepalives ${flowing}`);

  // the host falls silent
  const quietFrom = now;
  await advance(30000);
  const silent = r.bmc.requests.filter((q) => q.at >= quietFrom).map((q) => q.at);
  assert.ok(silent[0]! - quietFrom >= 1700 && silent[0]! - quietFrom <= 2500, `first check ${silent[0]! - quietFrom} ms into the silence`);
  for (let i = 1; i < silent.length; i++) {
    const gap = silent[i]! - silent[i - 1]!;
    assert.ok(gap >= 2000 && gap <= 2500, `checks ${gap} ms apart`);
  }
  assert.ok(silent.length >= 12 && silent.length <= 15, `${silent.length} checks in 30 s of silence`);
  assert.equal(r.c.state, 'ours');
  await settled(r.c.close());
});

test('a takeover is noticed within 2.5 s, printing or silent; the notice gives the window; the resume counts from its start', async () => {
  for (const printing of [true, false]) {
    for (let trial = 0; trial < 20; trial++) {
      const r = rig('polite', new FakeBmc(), 100 + trial);
      await started(r);
      let next = now;
      let lastData = now;
      const print = (): void => {
        if (printing && now >= next) {
          r.s.data('x');
          if (r.bmc.owner === r.s.sidC) lastData = now;
          next = now + 640;
        }
      };
      await advance(5000 + trial * 137, print);
      // another client deactivates us and activates itself
      const stolenAt = now;
      r.bmc.owner = OTHER;
      await advance(4000, print);
      const n = notice(r, 'SOL session taken over by another client at some time between ');
      assert.ok(n, `no takeover notice (${JSON.stringify(r.notices)})`);
      assert.ok(n.at - stolenAt <= 2500, `${printing ? 'printing' : 'silent'}: noticed ${n.at - stolenAt} ms after the takeover`);
      const [, from, to] = /between @(\d+) and @(\d+)$/.exec(n.text)!.map(Number);
      assert.ok(from! <= stolenAt && to! >= stolenAt && to === n.at, `window ${from}-${to}, takeover at ${stolenAt}`);
      if (printing) assert.ok(from! >= lastData - 10, `window starts at ${from}, last data at ${lastData}`);
      assert.equal(r.c.state, 'elsewhere');
      // the other client leaves; conch resumes, and counts the dark time from the window's start
      const releasedAt = now;
      r.bmc.owner = 0;
      await advance(4000);
      const b = notice(r, 'SOL session resumed at ');
      assert.ok(b, 'no resume notice');
      assert.ok(b.at - releasedAt <= 2600, `back ${b.at - releasedAt} ms after the release`);
      assert.equal(b.text, `SOL session resumed at @${b.at} after ${b.at - from!}ms`);
      await settled(r.c.close());
    }
  }
});

test('no activation inside a deactivate → activate gap shorter than the quiet period, whatever its phase', async () => {
  for (const gapMs of [100, 300, 800, 1400]) {
    for (let trial = 0; trial < 15; trial++) {
      const bmc = new FakeBmc();
      bmc.owner = OTHER; // held when conch starts
      const r = rig('polite', bmc, 7 * trial + gapMs);
      await started(r);
      assert.equal(r.c.state, 'elsewhere');
      await advance(1000 + trial * 71);
      // a scripted takeover by the other side: deactivate, then activate gapMs later
      bmc.owner = 0;
      await advance(gapMs);
      assert.equal(bmc.owner, 0, `conch took SOL inside a ${gapMs} ms gap`);
      bmc.owner = OTHER + 1;
      await advance(5000);
      assert.equal(bmc.count(CMD.activate), 0, `an Activate inside a ${gapMs} ms gap (trial ${trial})`);
      assert.equal(r.c.state, 'elsewhere');
      await settled(r.c.close());
    }
  }
});

test('a BMC that answers slowly: a short gap is still not a release, a real one is', async () => {
  const bmc = new FakeBmc();
  bmc.owner = OTHER;
  bmc.delayMs = 1200; // each answer takes 1.2 s
  const r = rig('polite', bmc, 3);
  const p = r.c.start();
  await advance(3000);
  await p;
  for (let trial = 0; trial < 10; trial++) {
    await advance(500 + trial * 97);
    bmc.owner = 0;
    await advance(1400);
    bmc.owner = OTHER;
    await advance(6000);
    assert.equal(bmc.count(CMD.activate), 0, `an Activate inside a 1.4 s gap with slow answers (trial ${trial})`);
  }
  bmc.owner = 0;
  const releasedAt = now;
  await advance(10000);
  assert.equal(r.c.state, 'ours');
  assert.equal(bmc.owner, r.s.sidC);
  const b = notice(r, 'SOL session resumed at ')!;
  assert.ok(b.at - releasedAt <= 7000, `back ${b.at - releasedAt} ms after the release with 1.2 s answers`);
  await settled(r.c.close());
});

test('a BMC that stops answering while SOL is held elsewhere is not taken as released: the console goes down', async () => {
  const bmc = new FakeBmc();
  bmc.owner = OTHER;
  const r = rig('polite', bmc, 5);
  await started(r);
  bmc.mute = true;
  bmc.owner = 0; // whatever it would say, it says nothing
  await advance(30000);
  assert.equal(bmc.count(CMD.activate), 0);
  assert.equal(r.downs.length, 1, 'the console is down');
  assert.match(r.downs[0]!, /no answer/);
  assert.equal(r.c.state, 'closed');
});

test('jitter spreads the checks of consoles that came up together', async () => {
  const rs: Rig[] = [];
  for (let i = 0; i < 200; i++) rs.push(rig('polite', new FakeBmc(), 1000 + i));
  const ps = rs.map((r) => r.c.start());
  await advance(100);
  await Promise.all(ps);
  const t0 = now;
  await advance(40000);
  // per console: checks 2-2.4 s apart; across consoles, in the last 10 s, no 100 ms slot holds more than 6 % of the checks
  const slots = new Map<number, number>();
  let total = 0;
  for (const r of rs) {
    const at = r.bmc.requests.filter((q) => q.at > t0).map((q) => q.at);
    for (let i = 1; i < at.length; i++) assert.ok(at[i]! - at[i - 1]! >= 2000 && at[i]! - at[i - 1]! <= 2500, `checks ${at[i]! - at[i - 1]!} ms apart`);
    for (const a of at.filter((x) => x > now - 10000)) {
      const slot = Math.floor(a / 100);
      slots.set(slot, (slots.get(slot) ?? 0) + 1);
      total++;
    }
  }
  const busiest = Math.max(...slots.values());
  assert.ok(busiest <= total * 0.06, `${busiest} of ${total} checks in one 100 ms slot`);
  await settled(Promise.all(rs.map((r) => r.c.close())));
});

test('policies: never leaves a free SOL alone (keepalive only); always takes it back at once', async () => {
  const bmc = new FakeBmc();
  const r = rig('never', bmc, 9);
  await started(r);
  bmc.owner = OTHER;
  await advance(3000);
  assert.ok(notice(r, 'SOL session left to the other client (steal policy "never")'));
  bmc.owner = 0;
  const from = now;
  await advance(30000);
  assert.equal(r.c.state, 'elsewhere');
  assert.equal(bmc.count(CMD.activate, from), 0);
  assert.ok(bmc.requests.filter((q) => q.at >= from).length <= 4, 'never: keepalive only (8-12 s)');
  const forced = r.c.force('op@host');
  await advance(100);
  await forced;
  assert.equal(r.c.state, 'ours');
  assert.ok(notice(r, 'SOL session reactivated by op@host'));
  await settled(r.c.close());

  const b2 = new FakeBmc();
  const a = rig('always', b2, 11);
  await started(a);
  b2.owner = OTHER;
  await advance(3000);
  assert.equal(b2.owner, a.s.sidC);
  assert.ok(notice(a, 'SOL session taken back from another client (steal policy "always")'));
  await settled(a.c.close());
});

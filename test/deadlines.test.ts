// util/deadlines.ts: many moving deadlines on one timer (the IPMI consoles' ownership checks).

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { DEADLINE_LINKS, Deadlines, deadlinesOf, type Deadline } from '../src/util/deadlines.js';
import { rng, seedFrom } from './helpers/seeded.js';

test('deadlines fire in time on one timer; moved, cleared, batched within the slack; one that throws stops none of the others', (t) => {
  // a millisecond at a time: the mock moves its Date to the end of a tick before it runs the timers in it
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
  const tick = (ms: number): void => {
    for (let i = 0; i < ms; i++) t.mock.timers.tick(1);
  };
  const d = new Deadlines(() => Date.now(), 25);
  const fired: string[] = [];
  const entry = (name: string, again?: () => void): Deadline => ({ due: Infinity, fire: () => (fired.push(`${name}@${Date.now()}`), again?.()) });
  const a = entry('a');
  const b = entry('b');
  const c = entry('c');
  d.set(a, 100);
  d.set(b, 50);
  d.set(c, 300);
  tick(49);
  assert.deepEqual(fired, []);
  tick(1);
  assert.deepEqual(fired, ['b@50']);
  // moved later: it fires at its new time, not its old one
  d.set(a, 200);
  tick(100);
  assert.deepEqual(fired, ['b@50']);
  // cleared: never fires
  d.clear(c);
  tick(100);
  assert.deepEqual(fired, ['b@50', 'a@200']);
  tick(500);
  assert.equal(d.size, 0);
  assert.equal(fired.length, 2);

  // two due close together after a run: the second waits for the slack, not its own timer
  fired.length = 0;
  d.set(a, Date.now() + 10);
  d.set(b, Date.now() + 12);
  tick(10);
  assert.deepEqual(fired, [`a@${Date.now()}`]);
  tick(2);
  assert.equal(fired.length, 1, 'b waits for the slack after a run');
  tick(23);
  assert.deepEqual(fired.at(-1), `b@${Date.now()}`);

  // an entry that re-arms itself while firing, and one that throws: the others still fire
  fired.length = 0;
  let n = 0;
  const again: Deadline = entry('again', () => {
    if (++n < 3) d.set(again, Date.now() + 1000);
  });
  const bad: Deadline = { due: Infinity, fire: () => { throw new Error('boom'); } };
  d.set(bad, Date.now() + 100);
  d.set(again, Date.now() + 100);
  assert.throws(() => tick(100), /boom/);
  tick(1000);
  tick(1000);
  assert.deepEqual((fired as string[]).map((f) => f.split('@')[0]), ['again', 'again', 'again']);
  assert.equal(d.size, 0);
});

// ---- the buckets (a run's work is the entries due, not all of them) ----

/** mocked setTimeout and Date from 0; `tick` moves a millisecond at a time (timers run at the end of each) */
function fakeTime(t: TestContext): (ms: number) => void {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
  return (ms: number): void => {
    for (let i = 0; i < ms; i++) t.mock.timers.tick(1);
  };
}

const SLACK = 25;

test('10,000 entries with spread due times each fire once, never early, at most the slack late, in runs at least the slack apart', (t) => {
  const tick = fakeTime(t);
  const d = new Deadlines(() => Date.now(), SLACK);
  const N = 10_000;
  const fires = new Array<number>(N).fill(0);
  const runs: number[] = [];
  let early = 0;
  let late = 0;
  let fired = 0;
  const es = Array.from({ length: N }, (_, i): Deadline => {
    const e: Deadline = {
      due: Infinity,
      fire: () => {
        const now = Date.now();
        fires[i]++;
        fired++;
        if (now < e.due) early++;
        // +1: mocked time moves in whole milliseconds, the dues are fractional
        if (now > e.due + SLACK + 1) late++;
        if (runs.at(-1) !== now) runs.push(now);
      },
    };
    return e;
  });
  // spread over 5 s, fractional, set in no order
  for (let i = 0; i < N; i++) d.set(es[i], 1 + ((i * 7919) % 5000) + (i % 4) * 0.3);
  assert.equal(d.size, N);
  for (let ms = 0; ms < 5100; ms++) {
    tick(1);
    assert.equal(d.size, N - fired);
  }
  assert.equal(early, 0, 'none fired before its due');
  assert.equal(late, 0, 'none fired more than the slack late');
  assert.ok(fires.every((n) => n === 1), 'each fired exactly once');
  assert.equal(d.size, 0);
  for (let i = 1; i < runs.length; i++) assert.ok(runs[i] - runs[i - 1] >= SLACK, `runs ${runs[i - 1]} and ${runs[i]} closer than the slack`);
  assert.ok(runs.length <= 5000 / SLACK + 2, `${runs.length} runs for 5 s`);
});

test('an entry moved many times fires once, at its last due', (t) => {
  const tick = fakeTime(t);
  const d = new Deadlines(() => Date.now(), SLACK);
  const at: number[] = [];
  const e: Deadline = { due: Infinity, fire: () => void at.push(Date.now()) };

  // moved back and forth at one instant, across many buckets, then left at 333
  for (let i = 0; i < 1000; i++) d.set(e, 50 + ((i * 37) % 2000));
  d.set(e, 333);
  assert.equal(d.size, 1);
  tick(332);
  assert.deepEqual(at, []);
  tick(1);
  assert.deepEqual(at, [333]);
  assert.equal(d.size, 0);

  // moved earlier: the timer follows
  at.length = 0;
  d.set(e, 2000);
  d.set(e, 400);
  tick(67);
  assert.deepEqual(at, [400]);

  // put off as time goes (a console's check with SOL data flowing): it never fires while it moves
  at.length = 0;
  let last = 0;
  for (let ms = 0; ms < 2000; ms += 5) {
    last = Date.now() + 100;
    d.set(e, last);
    tick(5);
  }
  assert.deepEqual(at, []);
  tick(200);
  assert.equal(at.length, 1);
  assert.ok(at[0] >= last && at[0] <= last + SLACK, `fired at ${at[0]}, due ${last}`);

  // between two buckets 10,000 times (each move empties one bucket and makes the other)
  at.length = 0;
  const from = Date.now();
  for (let i = 0; i < 10_000; i++) d.set(e, from + (i % 2 === 0 ? 500 : 700));
  d.set(e, from + 600);
  tick(599);
  assert.deepEqual(at, []);
  tick(200);
  assert.equal(at.length, 1);
  assert.ok(at[0] >= from + 600 && at[0] <= from + 600 + SLACK);
  assert.equal(d.size, 0);
});

test('cleared before its due an entry never fires; Infinity or NaN is not set; size follows', (t) => {
  const tick = fakeTime(t);
  const d = new Deadlines(() => Date.now(), SLACK);
  const fired = new Set<number>();
  const es = Array.from({ length: 1000 }, (_, i): Deadline => ({ due: Infinity, fire: () => void fired.add(i) }));
  for (let i = 0; i < es.length; i++) d.set(es[i], 10 + i);
  d.set(es[0], 20); // a move does not count twice
  assert.equal(d.size, 1000);
  for (let i = 0; i < es.length; i += 2) d.clear(es[i]);
  d.clear(es[0]); // twice
  d.clear({ due: 5, fire: () => assert.fail('never set') }); // never set, its due notwithstanding
  assert.equal(d.size, 500);
  tick(1100);
  assert.equal(fired.size, 500);
  assert.ok([...fired].every((i) => i % 2 === 1));
  assert.equal(d.size, 0);

  // never due: not held, not counted, never fired; it may be set again
  let n = 0;
  const e: Deadline = { due: Infinity, fire: () => void n++ };
  d.set(e, Date.now() + 50);
  d.set(e, Infinity);
  assert.equal(d.size, 0);
  d.set(e, NaN);
  assert.equal(d.size, 0);
  tick(200);
  assert.equal(n, 0);
  d.set(e, -Infinity); // overdue: the next run
  assert.equal(d.size, 1);
  tick(1);
  assert.equal(n, 1);
  assert.equal(d.size, 0);
});

test('set and clear from inside fire(): cleared ones do not fire, moved and new ones wait for a later run', (t) => {
  const tick = fakeTime(t);
  const d = new Deadlines(() => Date.now(), SLACK);
  tick(1000);
  const log: string[] = [];
  const entry = (name: string, f?: () => void): Deadline => ({ due: Infinity, fire: () => (log.push(`${name}@${Date.now()}`), f?.()) });
  let again = true;
  const q = entry('q');
  const r = entry('r');
  const s = entry('s');
  const p: Deadline = entry('p', () => {
    if (!again) return;
    again = false;
    d.clear(r); // due in this run, not fired yet: it must not fire
    d.set(q, Date.now() + 500); // due in this run too: moved, it fires once, then
    d.set(s, Date.now() - 5); // new, already due: the next run
    assert.equal(d.size, 2); // q and s (p, r and what this run fires are out)
    d.set(p, Date.now()); // itself: the next run, not this one
  });
  // all overdue, in three buckets: one run; p's bucket comes first
  d.set(p, 900);
  d.set(q, 990);
  d.set(r, 995);
  d.set(r, 999); // moved within its bucket
  assert.equal(d.size, 3);
  tick(1);
  assert.deepEqual(log, ['p@1001']);
  assert.equal(d.size, 3); // q, s, p
  tick(24);
  assert.deepEqual(log, ['p@1001']);
  tick(1);
  assert.deepEqual(log, ['p@1001', 's@1026', 'p@1026']);
  tick(500);
  assert.deepEqual(log, ['p@1001', 's@1026', 'p@1026', 'q@1501']);
  assert.equal(d.size, 0);

  // an entry that clears one that already fired in the same run, and one that clears itself: no harm
  log.length = 0;
  const a = entry('a');
  const b: Deadline = entry('b', () => (d.clear(a), d.clear(b)));
  d.set(a, Date.now() + 10);
  d.set(b, Date.now() + 10);
  tick(10);
  assert.deepEqual(log.map((l) => l.split('@')[0]), ['a', 'b']);
  assert.equal(d.size, 0);
});

test('fire()s that throw: the others in the run still fire, the first error is thrown, the timer goes on', (t) => {
  const tick = fakeTime(t);
  const d = new Deadlines(() => Date.now(), SLACK);
  const log: string[] = [];
  const thrower = (msg: string): Deadline => ({ due: Infinity, fire: () => { log.push(msg); throw new Error(msg); } });
  const ok = (name: string): Deadline => ({ due: Infinity, fire: () => void log.push(name) });
  const es = [thrower('first'), ok('ok1'), thrower('second'), ok('ok2')];
  for (const e of es) d.set(e, 100);
  const later = ok('later');
  d.set(later, 300);
  tick(99);
  assert.throws(() => tick(1), /first/);
  assert.deepEqual(log, ['first', 'ok1', 'second', 'ok2']);
  assert.equal(d.size, 1);
  tick(200);
  assert.deepEqual(log.at(-1), 'later');
  assert.equal(d.size, 0);
});

test('a run reads no entry that is not due: 100,000 far-future entries and 10 due ones', (t) => {
  const tick = fakeTime(t);
  const d = new Deadlines(() => Date.now(), SLACK);
  // far entries count every read of their due (the old code read each one twice a run)
  const readOf = new Set<number>();
  let farFired = 0;
  const far = (_: unknown, i: number): Deadline => {
    let due = Infinity;
    return {
      get due() {
        readOf.add(i);
        return due;
      },
      set due(v: number) {
        due = v;
      },
      fire: () => void farFired++,
    };
  };
  const fars = Array.from({ length: 100_000 }, far);
  for (let i = 0; i < fars.length; i++) d.set(fars[i], 1_000_000 + i * 3.7);
  const near: number[] = [];
  for (let i = 0; i < 10; i++) d.set({ due: Infinity, fire: () => void near.push(i) }, 100 + i * 10);
  assert.equal(d.size, 100_010);
  readOf.clear();
  tick(300);
  assert.equal(near.length, 10);
  assert.equal(readOf.size, 0, `the runs read ${readOf.size} far entries`);
  assert.equal(farFired, 0);
  assert.equal(d.size, 100_000);
  // a set or clear reads no other entry
  d.set(fars[5], 2_000_000);
  d.clear(fars[7]);
  assert.ok([...readOf].every((i) => i === 5 || i === 7), `read ${[...readOf].join(', ')}`);
  assert.equal(d.size, 99_999);
});

test('one timer for all the entries (real timers), cleared when none is left', async () => {
  const timeouts = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const base = timeouts();
  const d = new Deadlines(() => performance.now(), SLACK);
  const es = Array.from({ length: 1000 }, (): Deadline => ({ due: Infinity, fire: () => assert.fail('cleared') }));
  es.forEach((e, i) => d.set(e, performance.now() + 60_000 + i));
  assert.equal(timeouts(), base + 1);
  for (const e of es) d.clear(e);
  assert.equal(timeouts(), base);

  // and after the last one fires
  let n = 0;
  const done = new Promise<void>((resolve) => {
    for (let i = 0; i < 3; i++) d.set({ due: Infinity, fire: () => void (++n === 3 && resolve()) }, performance.now() + 5 + i * 5);
  });
  await done;
  await new Promise((r) => setImmediate(r));
  assert.equal(d.size, 0);
  assert.equal(timeouts(), base);
});

test('random sets, moves, clears and clears from inside fire(), against a model: each set fires once, never early, at most the slack late; a cleared one never', (t) => {
  const seed = seedFrom('DEADLINES_SEED');
  t.diagnostic(`DEADLINES_SEED=${seed}`);
  const random = rng(seed);
  const int = (n: number): number => Math.floor(random() * n);
  const tick = fakeTime(t);
  const d = new Deadlines(() => Date.now(), SLACK);
  const N = 300;
  /** the model: each entry's due while it is set, else null */
  const armed = new Array<number | null>(N).fill(null);
  const problems: string[] = [];
  const es: Deadline[] = Array.from({ length: N }, (_, i) => ({
    due: Infinity,
    ...DEADLINE_LINKS,
    fire: () => {
      const now = Date.now();
      const due = armed[i];
      if (due === null) problems.push(`${i} fired at ${now}, not set`);
      else if (now < due || now > due + SLACK + 1) problems.push(`${i} due ${due} fired at ${now}`);
      armed[i] = null;
      // now and then a fire() clears or moves another entry, or sets itself again
      const j = int(N);
      const r = random();
      if (r < 0.1) {
        d.clear(es[j]!);
        armed[j] = null;
      } else if (r < 0.2) {
        const at = Date.now() + int(300);
        d.set(es[j]!, at);
        armed[j] = at;
      }
    },
  }));
  for (let step = 0; step < 4000; step++) {
    const i = int(N);
    const r = random();
    if (r < 0.5) {
      // set or moved: often within a few ms of its due (a console's check put off by a packet), else anywhere ahead
      const at = Date.now() + (random() < 0.5 ? int(40) : int(2000)) + int(4) * 0.25;
      d.set(es[i]!, at);
      armed[i] = at;
    } else if (r < 0.6) {
      d.clear(es[i]!);
      armed[i] = null;
    } else if (r < 0.65) {
      d.set(es[i]!, r < 0.625 ? Infinity : NaN);
      armed[i] = null;
    } else tick(1 + int(8));
    assert.equal(d.size, armed.filter((x) => x !== null).length, `step ${step}`);
  }
  tick(3000);
  assert.deepEqual(problems, []);
  assert.equal(d.size, 0);
  assert.ok(armed.every((x) => x === null), 'every entry set fired');
});

test('deadlinesOf: one Deadlines a clock', () => {
  const c1 = { now: () => 0 };
  const c2 = { now: () => 0 };
  assert.equal(deadlinesOf(c1), deadlinesOf(c1));
  assert.notEqual(deadlinesOf(c1), deadlinesOf(c2));
});

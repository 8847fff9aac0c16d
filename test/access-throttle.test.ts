// The login throttle: steep per source address, gentle per user name,
// forgetting after the window, bounded in memory.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AuthThrottle } from '../src/access/throttle.js';

/** A throttle on a clock the test moves. */
function throttle(opts: ConstructorParameters<typeof AuthThrottle>[0] = {}): { t: AuthThrottle; clock: { now: number } } {
  const clock = { now: 1_000_000 };
  return { t: new AuthThrottle({ ...opts, now: () => clock.now }), clock };
}

const ATTACKER = '203.0.113.66';
const OFFICE = '198.51.100.7';

test('a first attempt waits nothing; failures from one address double its wait up to 8 s', () => {
  const { t } = throttle();
  assert.equal(t.delayFor(ATTACKER, 'alice'), 0);
  assert.equal(t.baseMs, 250);
  const seen: number[] = [];
  for (let i = 0; i < 8; i++) {
    t.failed(ATTACKER, 'alice');
    seen.push(t.delayFor(ATTACKER, 'alice'));
  }
  assert.deepEqual(seen, [250, 500, 1000, 2000, 4000, 8000, 8000, 8000]);
  // the address is slow whatever name it tries next
  assert.equal(t.delayFor(ATTACKER, 'bob'), 8000);
});

test('20 wrong passwords cost the attacker minutes while alice still logs in from her office within 2 s', () => {
  const { t } = throttle();
  let attackerWaited = 0;
  for (let i = 0; i < 20; i++) {
    attackerWaited += t.delayFor(ATTACKER, 'alice');
    t.failed(ATTACKER, 'alice');
  }
  assert.ok(attackerWaited >= 100_000, `attacker waited ${attackerWaited} ms`);
  assert.equal(t.delayFor(OFFICE, 'alice'), 2000);
  assert.equal(t.delayFor(OFFICE, 'bob'), 0, 'other users are not slowed');
});

test('failures against one user name from many addresses slow that name gently', () => {
  const { t } = throttle();
  const seen: number[] = [];
  for (let i = 0; i < 9; i++) {
    t.failed(`10.0.${i}.1`, 'alice');
    seen.push(t.delayFor(OFFICE, 'alice'));
  }
  assert.deepEqual(seen, [250, 250, 500, 500, 1000, 1000, 2000, 2000, 2000]);
});

test('failures older than the window are forgotten, one by one', () => {
  const { t, clock } = throttle({ windowMs: 15 * 60_000 });
  t.failed(ATTACKER, 'alice');
  clock.now += 10 * 60_000;
  t.failed(ATTACKER, 'alice');
  assert.equal(t.delayFor(ATTACKER, 'alice'), 500);
  clock.now += 6 * 60_000; // the first failure is now 16 minutes old
  assert.equal(t.delayFor(ATTACKER, 'alice'), 250);
  clock.now += 10 * 60_000;
  assert.equal(t.delayFor(ATTACKER, 'alice'), 0);
  assert.deepEqual(t.size, { sources: 0, users: 0 });
});

test("a success clears its address and the user's failures from there, not from elsewhere", () => {
  const { t } = throttle();
  for (let i = 0; i < 3; i++) t.failed(OFFICE, 'alice');
  for (let i = 0; i < 4; i++) t.failed(ATTACKER, 'alice');
  t.succeeded(OFFICE, 'alice');
  assert.equal(t.delayFor(OFFICE, 'carol'), 0);
  // the 4 failures from the attacker still count against alice's name
  assert.equal(t.delayFor(OFFICE, 'alice'), 500);
  assert.equal(t.delayFor(ATTACKER, 'carol'), 2000);
});

test('an IPv6 /64 is one source; an IPv4-mapped address is its IPv4 address', () => {
  const { t } = throttle();
  t.failed('2001:db8:1:2::1', 'x');
  t.failed('2001:db8:1:2:ffff::9', 'y');
  assert.equal(t.delayFor('2001:db8:1:2::abcd', 'z'), 500);
  assert.equal(t.delayFor('2001:db8:1:3::1', 'z'), 0);
  t.failed('::ffff:192.0.2.1', 'x');
  assert.equal(t.delayFor('192.0.2.1', 'z'), 250);
});

test('the tables are bounded, dropping the entry that failed least recently', () => {
  const { t } = throttle({ maxEntries: 100 });
  t.failed('192.0.2.1', 'first');
  for (let i = 0; i < 1000; i++) t.failed(`10.${i >> 8}.${i & 255}.1`, `user${i}`);
  assert.deepEqual(t.size, { sources: 100, users: 100 });
  assert.equal(t.delayFor('192.0.2.1', 'first'), 0, 'the oldest was dropped');
  assert.equal(t.delayFor('10.3.231.1', 'user999'), 250, 'the newest is kept');
  // a huge claimed name does not make a huge entry
  t.failed('192.0.2.2', 'x'.repeat(1_000_000));
  assert.equal(t.delayFor('192.0.2.3', 'x'.repeat(1_000_000)), 250);
});

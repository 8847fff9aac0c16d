// util/deadlines.ts: many moving deadlines on one timer (the IPMI consoles' ownership checks).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Deadlines, type Deadline } from '../src/util/deadlines.js';

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

// The window of IPMI session setups run at once (src/ipmi/setup-window.ts):
// it starts at 512, opens by one with every clean setup up to its maximum,
// halves (once a second at most, never below its minimum) when a setup
// needed a retransmission, ignores failed setups (a BMC that is off), and
// hands freed slots to the waiting setups in the order they asked.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SETUP_WINDOW, SetupWindow, type SetupOutcome } from '../src/ipmi/setup-window.js';

type Release = (o: SetupOutcome) => void;

/** ask for `n` slots; `started` holds the releases of those that started, in the order they did */
function ask(w: SetupWindow, n: number, started: { id: number; release: Release }[]): void {
  for (let id = 0; id < n; id++) void w.slot().then((release) => started.push({ id, release }));
}
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

test('the first 512 start at once, the rest wait, in order, for slots', async () => {
  const w = new SetupWindow(() => 0);
  const started: { id: number; release: Release }[] = [];
  ask(w, 600, started);
  await settle();
  assert.equal(started.length, SETUP_WINDOW.start);
  // a clean setup frees its slot and opens the window by one: two of those waiting start
  started[0]!.release('clean');
  await settle();
  assert.equal(started.length, 514);
  assert.deepEqual(started.slice(512).map((s) => s.id), [512, 513]);
  assert.equal(w.size, 513);
});

test('a retransmitted setup halves the window, once a second at most; a failed one changes nothing', async () => {
  let now = 0;
  const w = new SetupWindow(() => now);
  const started: { id: number; release: Release }[] = [];
  ask(w, 2000, started);
  await settle();
  started[0]!.release('failed');
  await settle();
  assert.equal(w.size, 512);
  assert.equal(started.length, 513, 'a failed setup only frees its slot');
  started[1]!.release('retransmitted');
  assert.equal(w.size, 256);
  started[2]!.release('retransmitted');
  assert.equal(w.size, 256, 'a burst of losses is one signal');
  now = 1000;
  started[3]!.release('retransmitted');
  assert.equal(w.size, 128);
  await settle();
  // 509 still run against a window of 128: nothing starts until they are under it
  assert.equal(started.length, 513);
  for (let i = 4; i < 4 + 381; i++) started[i]!.release('failed');
  await settle();
  assert.equal(started.length, 513, '128 run: the window is full');
  started[385]!.release('failed');
  await settle();
  assert.equal(started.length, 514, 'under the window: the next waiting setup starts');
  // never below the minimum
  for (let k = 0; k < 10; k++) {
    now += 1000;
    started[386 + k]!.release('retransmitted');
  }
  assert.equal(w.size, SETUP_WINDOW.min);
});

test('clean setups open the window up to its maximum', async () => {
  const w = new SetupWindow(() => 0);
  for (let i = 0; i < 3 * SETUP_WINDOW.max; i++) (await w.slot())('clean');
  assert.equal(w.size, SETUP_WINDOW.max);
  // and a release twice counts once
  const r = await w.slot();
  r('retransmitted');
  r('retransmitted');
  assert.equal(w.size, SETUP_WINDOW.max / 2);
});

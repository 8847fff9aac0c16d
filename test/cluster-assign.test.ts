// Which node runs each console (src/cluster/assign.ts): every node computes
// it alone, so it must be the same everywhere, balanced, and move little.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assign, capacity } from '../src/cluster/assign.js';

const consoles = (n: number): string[] => Array.from({ length: n }, (_, i) => `node${String(i + 1).padStart(5, '0')}`);

test('every console to one live node, none above its bound, the same whatever order the inputs come in', () => {
  for (const n of [1, 7, 306, 3000]) {
    const cs = consoles(n);
    const a = assign(cs, ['n1', 'n2', 'n3']);
    assert.equal(a.size, n);
    const load = new Map<string, number>();
    for (const v of a.values()) load.set(v, (load.get(v) ?? 0) + 1);
    for (const k of load.values()) assert.ok(k <= capacity(n, 3), `${k} > ${capacity(n, 3)}`);
    assert.deepEqual(assign([...cs].reverse(), ['n3', 'n1', 'n2']), a);
  }
  assert.equal(assign(consoles(5), []).size, 0);
});

test('balanced within ±15 % from 300 consoles on 3 nodes up', () => {
  for (const n of [300, 306, 1000, 3000, 10000]) {
    const load = new Map<string, number>();
    for (const v of assign(consoles(n), ['n1', 'n2', 'n3']).values()) load.set(v, (load.get(v) ?? 0) + 1);
    for (const [node, k] of load) assert.ok(Math.abs(k - n / 3) <= (n / 3) * 0.15, `${n} consoles: ${node} has ${k}`);
  }
});

test("a node's death moves only its own consoles; a node's arrival takes its share and moves almost nothing else", () => {
  const cs = consoles(3000);
  const three = assign(cs, ['n1', 'n2', 'n3']);
  const two = assign(cs, ['n1', 'n3']);
  assert.equal(cs.filter((c) => three.get(c) !== 'n2' && two.get(c) !== three.get(c)).length, 0);
  const four = assign(cs, ['n1', 'n2', 'n3', 'n4']);
  const toNew = cs.filter((c) => four.get(c) === 'n4').length;
  const others = cs.filter((c) => four.get(c) !== 'n4' && four.get(c) !== three.get(c)).length;
  assert.ok(Math.abs(toNew - 750) <= 750 * 0.15, `n4 got ${toNew}`);
  assert.ok(others <= 30, `${others} consoles moved between the old nodes`);
});

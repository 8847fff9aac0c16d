// The linear-time pattern engine: pathological globs and EREs that froze the
// old backtracking matcher return at once, programs past the size limit are
// refused with glibc's text, a seeded differential test against JS RegExp
// (set CONCH_NFA_SEED to replay a run), and the sliced, budgeted, abortable
// match scheduler.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { globMatch, compileGlob } from '../src/protocol/glob.js';
import { compileEre, EreError, E } from '../src/protocol/ere.js';
import { Run } from '../src/protocol/nfa.js';
import { MatchScheduler, type Task } from '../src/protocol/match-scheduler.js';
import { matchConsoles } from '../src/protocol/match.js';
import type { ConsoleRegistry } from '../src/engine/registry.js';
import type { Console } from '../src/engine/console.js';
import { rng, seedFrom } from './helpers/seeded.js';

const LONG = 'a'.repeat(1000);
const SLOW = { timeout: 30_000 };

test('pathological globs against 1,000-character names return', SLOW, () => {
  assert.equal(globMatch(`${'*'.repeat(80)}b`, LONG), false);
  assert.equal(globMatch(`${'*'.repeat(80)}a`, LONG), true);
  assert.equal(globMatch('*a'.repeat(40) + 'b', LONG), false);
  assert.equal(globMatch('*a*?'.repeat(40) + 'b', LONG), false);
  assert.equal(globMatch('[a-z]*'.repeat(200) + '[0-9]', LONG), false);
  // a pattern of many unterminated `[` is linear to parse, not quadratic
  assert.equal(globMatch('[\\]'.repeat(20000), LONG), false);
  assert.equal(globMatch('['.repeat(60000), '['.repeat(60000)), true);
});

test('pathological EREs against 1,000-character names return', SLOW, () => {
  const cases: [string, boolean][] = [
    ['(a|aa)*c', false],
    ['(a*)*b', true],
    ['((a+)+)+b', true],
    ['(x+x+)+y', false],
    ['(a|a?)+b', true],
    ['(.*)*(.*)*b', true],
    ['(a{1,30}){1,30}b', false], // at most 900 a's
  ];
  for (const [p, endsInB] of cases) {
    const re = compileEre(p);
    assert.equal(re.test(LONG), false, p);
    assert.equal(re.test(`${LONG}b`), endsInB, p);
  }
  assert.equal(compileEre('(x+x+)+y').test(`${'x'.repeat(1000)}y`), true);
  assert.equal(compileEre('(a|aa)*c').test(`${LONG}c`), true);
});

test('programs past the size limit are refused with glibc\'s text; bounds within it are fine', () => {
  for (const p of ['a{1000}{1000}', '(a{32767}){3}', '((a|b){300}){300}', `${'('.repeat(2000)}a${')*'.repeat(2000)}`, `a${'*'.repeat(5000)}`]) {
    assert.throws(() => compileEre(p), (e: unknown) => e instanceof EreError && e.message === E.tooBig, p.slice(0, 40));
  }
  assert.equal(compileEre('a{1000}').test('a'.repeat(1000)), true);
  assert.equal(compileEre('a{1000}').test('a'.repeat(999)), false);
  assert.equal(compileEre('(ab){2,3}').test('ABAB'), true);
  assert.equal(compileEre(`${'('.repeat(5000)}a${')'.repeat(5000)}`).test('A'), true);
  assert.equal(compileEre(`${'('.repeat(200)}a${')*'.repeat(200)}`).test('AAA'), true);
});

test('anchors and word boundaries', () => {
  const t = (p: string, n: string): boolean => compileEre(p).test(n);
  assert.equal(t('\\<n1\\>', 'n1'), true);
  assert.equal(t('a\\>b', 'ab'), false);
  assert.equal(t('a\\b-b', 'a-b'), true);
  assert.equal(t('a\\Bb', 'ab'), true);
  assert.equal(t('a\\bb', 'ab'), false);
  assert.equal(t('a^b', 'ab'), false);
  assert.equal(t('(^a|b)+', 'abb'), true);
  assert.equal(t('\\`a.*b\\\'', 'axb'), true);
  assert.equal(t('\\w+\\W\\s\\S', 'ab- x'), true);
  assert.equal(t('[[:upper:]]+', 'abc'), true); // case-insensitive, as glibc with REG_ICASE
  assert.equal(t('[^a]', 'A'), false);
  assert.equal(globMatch('N*', 'n1'), false); // globs are case-sensitive
});

test('back-references are refused, after glibc\'s own errors', () => {
  const msg = (p: string): string => {
    try {
      compileEre(p);
      return 'compiled';
    } catch (e) {
      return (e as Error).message;
    }
  };
  assert.equal(msg('(a)\\1'), E.backrefUnsupported);
  assert.equal(msg('\\1(a)'), E.backref);
  assert.equal(msg('(a)\\1('), E.paren);
});

// ---- differential: our ERE engine against JS RegExp on small patterns ----

/** A random ERE and the equivalent JS source (a subset both read alike). */
function randomPattern(r: () => number, depth = 0): [string, string] {
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)];
  const atom = (): [string, string] => {
    const k = r();
    if (depth < 3 && k < 0.2) {
      const [a, ja] = randomPattern(r, depth + 1);
      return [`(${a})`, `(?:${ja})`];
    }
    if (k < 0.35) return pick([['.', '[^]'], ['[ab]', '[ab]'], ['[^a]', '[^a]'], ['[a-c_]', '[a-c_]'], ['[[:digit:]]', '[0-9]']]) as [string, string];
    if (k < 0.4) return pick([['\\b', '\\b'], ['\\B', '\\B'], ['\\<', '\\b(?=\\w)'], ['\\>', '\\b(?<=\\w)'], ['^', '^'], ['$', '$']]) as [string, string];
    const c = pick(['a', 'b', 'A', 'c', '1', '-', '_']);
    return [c, c === '-' ? '\\-' : c];
  };
  const quantifiable = (a: string): boolean => !/^(\\[bB<>]|\^|\$)$/.test(a);
  const branch = (): [string, string] => {
    let e = '';
    let j = '';
    const n = 1 + Math.floor(r() * 4);
    for (let i = 0; i < n; i++) {
      const [a, ja] = atom();
      const q = quantifiable(a) && r() < 0.4 ? pick(['*', '+', '?', '{2}', '{1,3}', '{0,2}', '{2,}']) : '';
      e += a + q;
      j += ja + q;
    }
    return [e, j];
  };
  let [e, j] = branch();
  while (r() < 0.25) {
    const [b, jb] = branch();
    e += `|${b}`;
    j += `|${jb}`;
  }
  return [e, j];
}

test('differential: the NFA agrees with JS RegExp on random patterns and names', SLOW, () => {
  const seed = seedFrom('CONCH_NFA_SEED');
  console.log(`# differential seed ${seed} (replay with CONCH_NFA_SEED=${seed})`);
  const r = rng(seed);
  const alphabet = 'abAB1c-_';
  let compared = 0;
  for (let k = 0; k < 1500; k++) {
    const [ere, js] = randomPattern(r);
    const ours = compileEre(ere);
    const theirs = new RegExp(`^(?:${js})$`, 'i');
    for (let m = 0; m < 12; m++) {
      let name = '';
      const len = Math.floor(r() * 7);
      for (let i = 0; i < len; i++) name += alphabet[Math.floor(r() * alphabet.length)];
      assert.equal(ours.test(name), theirs.test(name), `seed ${seed}: /${ere}/ (JS /${js}/i) on ${JSON.stringify(name)}`);
      compared++;
    }
  }
  assert.equal(compared, 1500 * 12);
});

// ---- slicing, budget and abort ----

/** A fake registry of `n` consoles with the given names. */
function registry(names: string[]): ConsoleRegistry {
  const consoles = names.map((name) => ({ name }) as Console);
  return { list: () => consoles } as unknown as ConsoleRegistry;
}

test('matching 10,000 long names runs in slices and keeps the event loop turning', SLOW, async () => {
  const names = Array.from({ length: 10_000 }, (_, i) => `${'n'.repeat(200)}${i}`);
  let ticks = 0;
  let longestGap = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    longestGap = Math.max(longestGap, now - last);
    last = now;
    ticks++;
  }, 1);
  try {
    const m = await matchConsoles(registry(names), ['(n|nn)*1(0|1)*'], true);
    assert.ok(m && m.ok);
    assert.equal(m.consoles.length, names.filter((n) => /^n+1[01]*$/.test(n)).length);
    const g = await matchConsoles(registry(names), ['*n*n*n*9'], false);
    assert.ok(g && g.ok);
    assert.equal(g.consoles.length, 1000);
  } finally {
    clearInterval(timer);
  }
  assert.ok(ticks > 0);
  // generous for a loaded 2-core machine; the old matcher blocked for seconds
  assert.ok(longestGap < 250, `the event loop stalled for ${longestGap} ms`);
});

test('a costly match ends with a budget error, and an aborted one stops', SLOW, async () => {
  const names = Array.from({ length: 2000 }, (_, i) => `${'a'.repeat(1000)}${i}`);
  const costly = `(${'(a|b|.)?'.repeat(400)})*z`;
  const scheduler = new MatchScheduler();
  const started = performance.now();
  const m = await matchConsoles(registry(names), [costly], true, undefined, { scheduler, budget: { cpuMs: 200, wallMs: 5000 } });
  assert.ok(m && !m.ok);
  assert.match(m.error, /too costly/);
  assert.ok(performance.now() - started < 5000);

  const ac = new AbortController();
  const p = matchConsoles(registry(names), [costly], true, ac.signal, { scheduler });
  setTimeout(() => ac.abort(), 50);
  assert.equal(await p, null);
  assert.equal(scheduler.pending, 0);
});

test('the scheduler shares each turn among all pending matches', async () => {
  const scheduler = new MatchScheduler();
  const order: number[] = [];
  const task = (id: number, steps: number): Task<number> => {
    let n = 0;
    return {
      step: () => {
        order.push(id);
        return ++n >= steps ? id : undefined;
      },
    };
  };
  const rs = await Promise.all([scheduler.run(() => task(1, 3)), scheduler.run(() => task(2, 3))]);
  assert.deepEqual(rs, [{ kind: 'done', value: 1 }, { kind: 'done', value: 2 }]);
  assert.deepEqual(order, [1, 2, 1, 2, 1, 2]);
});

test('a Run resumes after any character', () => {
  const p = compileGlob('*b*')!;
  const run = new Run(p);
  run.reset('aaaaaaaaab');
  let calls = 0;
  while (!run.advance(1)) calls++;
  assert.ok(calls >= 5);
  assert.equal(run.result, true);
});

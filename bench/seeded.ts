// Reproducible randomness, for generated test cases and for the benchmarks'
// jitter: a seeded xorshift32 stream, and the seed taken from an environment
// variable when given (to replay a failure) or picked at random and printed.
// test/helpers/seeded.ts re-exports it for the tests.

import * as crypto from 'node:crypto';

/** xorshift32: a reproducible stream of numbers in [0, 1) from a seed */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
}

/** A random seed, for a run that was given none. */
export function freshSeed(): number {
  return crypto.randomInt(1, 0x100000000);
}

/**
 * The seed in environment variable `name` (an integer 0…2^32-1), or a fresh
 * random one. Print it at the start of the test: `${name}=<seed>` replays it.
 */
export function seedFrom(name: string): number {
  const v = process.env[name];
  if (v === undefined || v === '') return freshSeed();
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`${name}=${v}: not a seed (an integer 0 to 4294967295)`);
  return n;
}

/**
 * A seed of its own for the stream called `label`, derived from `seed`:
 * streams that run side by side (the typist and the machine's floor beside
 * it) must not draw the same numbers, and each still replays from `seed`.
 */
export function streamSeed(seed: number, label: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0; // FNV-1a over the label, from the seed
  for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193) >>> 0;
  return h || 1;
}

/** A seeded source with the calls the tests use in place of node:crypto's. */
export class Seeded {
  private readonly next: () => number;
  constructor(readonly seed: number) {
    this.next = rng(seed);
  }
  /** a number in [0, 1) */
  float(): number {
    return this.next();
  }
  /** like crypto.randomInt: an integer in [0, a) or, with b, in [a, b) */
  int(a: number, b?: number): number {
    const [lo, hi] = b === undefined ? [0, a] : [a, b];
    return lo + Math.floor(this.next() * (hi - lo));
  }
  /** like crypto.randomBytes */
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(this.next() * 256);
    return b;
  }
}

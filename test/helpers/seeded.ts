// Reproducible randomness for generated test cases: a seeded xorshift32
// stream, and the seed taken from an environment variable when given (to
// replay a failure) or picked at random and printed by the test.

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

/**
 * The seed in environment variable `name` (an integer 0…2^32-1), or a fresh
 * random one. Print it at the start of the test: `${name}=<seed>` replays it.
 */
export function seedFrom(name: string): number {
  const v = process.env[name];
  if (v === undefined || v === '') return crypto.randomInt(1, 0x100000000);
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`${name}=${v}: not a seed (an integer 0 to 4294967295)`);
  return n;
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

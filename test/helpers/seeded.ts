// Reproducible randomness for generated test cases: a seeded xorshift32
// stream, and the seed taken from an environment variable when given (to
// replay a failure) or picked at random and printed by the test. It is
// bench/seeded.ts, which the benchmarks use for their jitter too.

export { rng, Seeded, seedFrom } from '../../bench/seeded.js';

// The measuring client of the fleet benchmark: attaches `attaches` times
// (time to OK), then types `keystrokes` keys one at a time on one session
// (time to echo), a person's pause apart: GAP_MS on average, drawn from
// 0.4-1.6 × GAP_MS. Keys typed back to back (0.5-1 ms each) put all samples
// into well under a second of the run, so their p99 told whether one
// hiccup of the machine fell into that second; paced keys sample the whole
// busy stretch. Run as a process of its own, so that the benchmark's own
// work (reading logs for the takeover, sampling /proc) does not sit in the
// measured path. Prints one line, `latency {json}`. The pauses come from
// SEED (seeded.ts; a fresh one when not given), so that a run replays them.
//
//   node dist/bench/fleet-typist.js PORT CONSOLE ATTACHES KEYSTROKES [GAP_MS [SEED]]

import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { WireClient } from './wire-client.js';
import { ReclaimMeter } from './kernel-reclaim.js';
import { freshSeed, rng } from './seeded.js';

/** Keystrokes the hosts never print on their own (their lines are letters, digits, `[]/:-`). */
export const KEYS = '!$%*+=?{}|_;';

/** A person's pause between two keys: 0.4-1.6 × `gapMs` (none for 0), `random` in [0, 1) drawing where. */
export function typingPause(gapMs: number, random: () => number): Promise<void> {
  return gapMs > 0 ? sleep(gapMs * (0.4 + 1.2 * random())) : Promise.resolve();
}

/** The pauses' stream for a measuring process: SEED from its command line, or a fresh one. */
export function pauseStream(seed: string | undefined): () => number {
  return rng(seed === undefined ? freshSeed() : Number(seed));
}

export interface Latency {
  attach: number[];
  echo: number[];
  /** wall-clock ms each key of `echo` was sent (to match a slow key with the daemon's stalls: fleet-keys.ts) */
  echoAt?: number[];
  /** ms the kernel's memory-reclaim threads ran during each key of `echo` (kernel-reclaim.ts) */
  reclaim?: number[];
  lostFirstKeys: number;
  error?: string;
}

/**
 * Types one key and waits for its echo; records the echo time and how long
 * the kernel's reclaim threads ran meanwhile (read just outside the timed part).
 */
export async function typeKey(l: Latency, meter: ReclaimMeter, echo: () => Promise<number>): Promise<void> {
  const r0 = meter.cpuMs();
  (l.echoAt ??= []).push(Math.round((performance.timeOrigin + performance.now()) * 10) / 10);
  l.echo.push(await echo());
  (l.reclaim ??= []).push(meter.cpuMs() - r0);
}

async function measure(port: number, name: string, n: number, k: number, gapMs: number, random: () => number): Promise<Latency> {
  const l: Latency = { attach: [], echo: [], reclaim: [], lostFirstKeys: 0 };
  const meter = ReclaimMeter.open();
  try {
    for (let i = 0; i < n; i++) {
      const { client, times } = await WireClient.attach(port, name, 10000);
      try {
        l.lostFirstKeys += await client.firstEcho(KEYS, 2000, 10000);
        l.attach.push(times.ok);
      } finally {
        client.close();
      }
    }
    const { client } = await WireClient.attach(port, name, 10000);
    try {
      await client.firstEcho(KEYS, 2000, 10000);
      for (let i = 0; i < k; i++) {
        await typingPause(gapMs, random);
        await typeKey(l, meter, () => client.echo(KEYS[i % KEYS.length]!, 10000));
      }
    } finally {
      client.close();
    }
  } catch (e) {
    l.error = (e as Error).message;
  } finally {
    meter.close();
  }
  return l;
}

const isMain = process.argv[1]?.endsWith('fleet-typist.js');
if (isMain) {
  const [port, name, n, k, gap = '0', seed] = process.argv.slice(2);
  if (!name || ![port, n, k, gap, seed ?? '0'].every((x) => Number.isInteger(Number(x)))) {
    process.stderr.write('usage: fleet-typist.js PORT CONSOLE ATTACHES KEYSTROKES [GAP_MS [SEED]]\n');
    process.exit(1);
  }
  const l = await measure(Number(port), name, Number(n), Number(k), Number(gap), pauseStream(seed));
  process.stdout.write(`latency ${JSON.stringify(l)}\n`);
  process.exit(0);
}

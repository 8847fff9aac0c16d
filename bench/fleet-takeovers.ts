// Takeover trials (bench/README.md, "Takeovers"; docs/ipmi.md, "Takeover
// timing"): another client takes a console's SOL, one console at a time, on
// hosts that print (100 B/s) and on silent ones. Measured from the console
// logs: *noticed*, from the steal to the "taken over" notice in the log;
// *back*, from the other client's release to the "resumed" notice. Plus the
// requests a silent BMC whose SOL is ours gets from the daemon (its packets
// in: no SOL flows there). Log stamps are read every 50 ms and the log gathers
// up to 200 ms: both figures include up to ~0.25 s of that.

import * as fs from 'node:fs';
import { logFile } from './fleet-logs.js';
import type { Fleet } from './fleet-sims.js';

export interface TakeoverTrial {
  /** ms from the steal to the notice in the log (Infinity: never) */
  noticedMs: number;
  /** ms from the release to the resume notice in the log (Infinity: never) */
  backMs: number;
}

export interface TakeoverResult {
  printing: TakeoverTrial[];
  silent: TakeoverTrial[];
  /** requests per second each silent BMC (SOL ours) got from the daemon, mean over the silent consoles */
  silentPollsPerS: number;
  errors: string[];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const TAKEN = 'SOL session taken over by another client';
const RESUMED = 'SOL session resumed at ';

function count(file: string, needle: string): number {
  let text = '';
  try {
    text = fs.readFileSync(file, 'latin1');
  } catch {
    return 0;
  }
  return text.split(needle).length - 1;
}

/** wait until `file` holds more than `before` of `needle`; resolves with when it was seen (ms), or Infinity */
async function seen(file: string, needle: string, before: number, deadline: number): Promise<number> {
  for (;;) {
    if (count(file, needle) > before) return Date.now();
    if (Date.now() > deadline) return Infinity;
    await sleep(50);
  }
}

/** One takeover of `name` for `stealS` seconds. */
async function trial(f: Fleet, logdir: string, name: string, stealS: number): Promise<TakeoverTrial> {
  const file = logFile(logdir, name);
  const taken0 = count(file, TAKEN);
  const back0 = count(file, RESUMED);
  const t0 = Date.now();
  await f.steal!(name, stealS);
  const release = t0 + stealS * 1000;
  const noticed = await seen(file, TAKEN, taken0, release + 30000);
  const back = await seen(file, RESUMED, back0, Math.max(release, Date.now()) + 30000);
  return { noticedMs: noticed - t0, backMs: back - release };
}

/**
 * `k` trials on printing consoles, then `k` on consoles made silent; one
 * at a time, each `stealS` seconds long, a random 0-3 s apart (so that the
 * steals fall anywhere in the daemon's check cycles; `random` in [0, 1)
 * draws the gaps: a seeded stream, to replay them).
 */
export async function takeoverTrials(f: Fleet, logdir: string, victims: string[], k: number, stealS: number, log: (m: string) => void, random: () => number): Promise<TakeoverResult> {
  const r: TakeoverResult = { printing: [], silent: [], silentPollsPerS: NaN, errors: [] };
  if (!f.steal || !f.setRate || !f.packetsIn || victims.length < 2 * k) {
    r.errors.push(`takeover trials need ${2 * k} consoles and a simulator control channel`);
    return r;
  }
  const printing = victims.slice(0, k);
  const silent = victims.slice(k, 2 * k);
  for (const n of silent) await f.setRate(n, 0);
  await sleep(3000); // the last lines are out; from here only the daemon's requests reach these BMCs
  const WINDOW_MS = 20000;
  const before = await Promise.all(silent.map((n) => f.packetsIn!(n)));
  await sleep(WINDOW_MS);
  const after = await Promise.all(silent.map((n) => f.packetsIn!(n)));
  r.silentPollsPerS = after.reduce((a, x, i) => a + (x - before[i]!), 0) / silent.length / (WINDOW_MS / 1000);
  log(`  silent BMCs: ${r.silentPollsPerS.toFixed(2)} requests/s each`);
  for (const [kind, names] of [['printing', printing], ['silent', silent]] as const) {
    for (const n of names) {
      await sleep(random() * 3000);
      try {
        const t = await trial(f, logdir, n, stealS);
        r[kind].push(t);
        log(`  takeover ${kind} ${n}: noticed ${(t.noticedMs / 1000).toFixed(2)} s, back ${(t.backMs / 1000).toFixed(2)} s after the release`);
      } catch (e) {
        r.errors.push(`${n}: ${(e as Error).message}`);
      }
    }
  }
  return r;
}

// How a fleet run is specified from a benchmark's options: the load every
// run carries (bench/fleet.ts, bench/scale.ts), the telnet fleet that fits
// the open-file limit, and one run's spec for a console type, N and daemon.

import * as os from 'node:os';
import * as path from 'node:path';
import type { RunSpec } from './fleet-run.js';
import { BOOTS_PER_S, type BaseSpec } from './fleet-report.js';
import { nofileLimits } from './fleet-proc.js';
import type { FleetKind } from './fleet-sims.js';

/**
 * IPMI consoles one conmand 0.2.7 starts at most: past 4,096 (32 threads × 128) its
 * libipmiconsole engine fails ("Unable to start IPMI SOL engine"); conman's
 * guide has large sites run one conmand per core, each with a share.
 */
const CONMAND_IPMI_MAX = 4096;
/** a person's pause between two keys, on average (ms) */
export const KEY_GAP_MS = 50;

/** the largest telnet or SSH fleet (a multiple of 500) whose 2 descriptors per console fit the hard limit */
export function telnetFit(n: number): number {
  const fit = Math.floor((nofileLimits().hard - 512) / 2 / 500) * 500;
  return Math.min(n, Math.max(500, fit));
}

export interface LoadOptions {
  quick: boolean;
  /** keys each typist types */
  keys: number;
  /** seconds; default: long enough for the typing */
  steady?: number;
  settle?: number;
  steal?: number;
  /** attaches each typist times before its keys (default 20; a p99 of 20 is their largest) */
  attaches?: number;
  ipmiThreads?: string;
  simNice: number;
  takeovers: number;
  trialsOwnCpu: boolean;
  seed: number;
}

/** The load every run carries: hosts printing 100 B/s with one 10 KB burst each, a typist with 1 and with 50 clients. */
export function baseSpec(o: LoadOptions): BaseSpec {
  return {
    rate: 100,
    burstBytes: 10240,
    // the typing (1 client, then 50, KEY_GAP_MS apart) stays inside the window
    steadyS: o.steady ?? (o.quick ? 10 : Math.max(60, Math.ceil((2 * o.keys * KEY_GAP_MS * 1.25) / 1000))),
    settleS: o.settle ?? (o.quick ? 1 : 10),
    stealS: o.steal ?? (o.quick ? 3 : 10),
    attaches: o.attaches ?? (o.quick ? 3 : 20),
    // 400 keys: ~20 s of typing for 1 client and again for 50, inside the 60 s window while echoes are fast
    // (where they take hundreds of ms, from 5,000 consoles, the window stretches to fit them)
    keystrokes: o.keys,
    keyGapMs: KEY_GAP_MS,
    readers: o.quick ? 9 : 49,
    // ipmi_sim-like BMCs, but sessions live 1 h: conmand sends no keepalive while SOL output flows, and the
    // ipmi_sim profile ends a session after 30 s without IPMI messages (docs/ipmi.md, "Simulated BMC profiles")
    profileArgs: ['--profile', 'ipmi_sim', '--session-timeout', '3600'],
    ipmiThreads: o.ipmiThreads,
    simNice: o.simNice,
    takeovers: o.takeovers,
    trialsOwnCpu: o.trialsOwnCpu,
    seed: o.seed,
  };
}

/** One run's spec: the console type, N and the daemon (`profDir`: conchd's CPU profiles under it). */
export function runSpec(base: BaseSpec, kind: FleetKind, n: number, daemon: RunSpec['daemon'], profDir?: string): RunSpec {
  // bursts (simulated reboots) come at most BOOTS_PER_S a second fleet-wide
  const steadyS = Math.max(base.steadyS, Math.ceil(n / BOOTS_PER_S / 0.8));
  // one conmand cannot start more than CONMAND_IPMI_MAX IPMI consoles: share them out, one conmand per core at least
  const shards = daemon === 'conmand' && kind === 'ipmi' && n > CONMAND_IPMI_MAX ? Math.max(os.cpus().length, Math.ceil(n / CONMAND_IPMI_MAX)) : 1;
  return { ...base, kind, n, daemon, shards, steadyS, loggingTimeoutS: Math.max(60, n / 50), cpuProfDir: daemon === 'conchd' && profDir ? path.join(profDir, `${kind}-${n}`) : undefined };
}

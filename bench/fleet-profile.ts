// Where conchd's CPU went: the top functions by self time in a V8
// .cpuprofile (written by `node --cpu-prof` when conchd exits).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT } from './rig.js';

interface ProfNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: ProfNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Markdown lines: the `top` functions by self time, as file:line function, ms and share. */
export function summarise(dir: string, top = 15): string[] {
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')) : [];
  if (!files.length) return [`(no .cpuprofile in ${dir}: did conchd exit cleanly?)`];
  const out: string[] = [];
  for (const f of files) {
    const p = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as Profile;
    const self = new Map<number, number>();
    p.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
    const byFn = new Map<string, number>();
    let total = 0;
    for (const n of p.nodes) {
      const us = self.get(n.id) ?? 0;
      total += us;
      const url = n.callFrame.url.replace(`file://${ROOT}/`, '').replace(/^node:/, 'node:');
      const key = `${n.callFrame.functionName || '(anonymous)'} ${url ? `${url}:${n.callFrame.lineNumber + 1}` : ''}`.trim();
      byFn.set(key, (byFn.get(key) ?? 0) + us);
    }
    const idle = [...byFn].filter(([k]) => k.startsWith('(idle)')).reduce((a, [, v]) => a + v, 0);
    out.push(`Profile ${f}: ${(total / 1e6).toFixed(1)} s sampled, ${((total - idle) / 1e6).toFixed(1)} s busy`, '');
    out.push('| self ms | % of busy | function |', '|---:|---:|---|');
    for (const [k, us] of [...byFn].filter(([k]) => !k.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, top)) {
      out.push(`| ${(us / 1000).toFixed(0)} | ${((100 * us) / Math.max(1, total - idle)).toFixed(1)} | \`${k}\` |`);
    }
    out.push('');
  }
  return out;
}

/**
 * The event loop's long turns in a main-thread profile: stretches of
 * consecutive busy samples (no idle sample between them) of at least
 * `minMs`, counted by length, and what they were busy with (the function
 * just below the root of the stack, weighted by time). What a key typed
 * meanwhile waited behind. Only samples after `fromMs` into the profile.
 */
export function longTurns(file: string, minMs = 10, fromMs = 0, top = 12): string[] {
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const root = p.nodes[0]!.id;
  // the frame under the root (the task's entry), and the deepest project frame (what it was doing)
  const entryOf = new Map<number, string>();
  const label = (n: ProfNode): string => `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(`file://${ROOT}/`, '').replace(/^.*node_modules\//, '')}:${n.callFrame.lineNumber + 1}`;
  const entry = (id: number): string => {
    const known = entryOf.get(id);
    if (known) return known;
    let own: string | null = null;
    let cur = id;
    while (parent.has(cur) && parent.get(cur) !== root) {
      const n = byId.get(cur)!;
      if (!own && n.callFrame.url.includes('/dist/')) own = label(n);
      cur = parent.get(cur)!;
    }
    const n = byId.get(cur)!;
    const r = own ?? label(n);
    entryOf.set(id, r);
    return r;
  };
  const idle = (id: number): boolean => ['(idle)', '(program)'].includes(byId.get(id)?.callFrame.functionName ?? '');
  let t = 0;
  let start = -1;
  let busy = new Map<string, number>();
  const turns: { ms: number; what: Map<string, number> }[] = [];
  const end = (at: number): void => {
    if (start >= 0 && (at - start) / 1000 >= minMs) turns.push({ ms: (at - start) / 1000, what: busy });
    start = -1;
    busy = new Map();
  };
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    if (t / 1000 < fromMs) continue;
    const id = p.samples[i]!;
    if (idle(id)) {
      end(t);
      continue;
    }
    if (start < 0) start = t;
    const k = byId.get(id)!.callFrame.functionName === '(garbage collector)' ? '(garbage collector)' : entry(id);
    busy.set(k, (busy.get(k) ?? 0) + (p.timeDeltas[i + 1] ?? 0) / 1000);
  }
  end(t);
  const lens = turns.map((x) => x.ms).sort((a, b) => a - b);
  const what = new Map<string, number>();
  for (const x of turns) for (const [k, ms] of x.what) what.set(k, (what.get(k) ?? 0) + ms);
  const total = [...what.values()].reduce((a, b) => a + b, 0);
  const out = [
    `Turns of ${minMs} ms or more: ${turns.length} (${lens.length ? `median ${lens[Math.floor(lens.length / 2)]!.toFixed(0)} ms, max ${lens.at(-1)!.toFixed(0)} ms` : 'none'}), busy with:`,
    '',
    '| ms in long turns | share | in |',
    '|---:|---:|---|',
  ];
  for (const [k, ms] of [...what].sort((a, b) => b[1] - a[1]).slice(0, top)) out.push(`| ${ms.toFixed(0)} | ${((100 * ms) / Math.max(1, total)).toFixed(1)} % | \`${k}\` |`);
  return out;
}

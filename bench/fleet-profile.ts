// Where conchd's CPU went: the top functions by self time in a V8
// .cpuprofile (written by `node --cpu-prof` when conchd exits).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT } from './rig.js';

interface ProfNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
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

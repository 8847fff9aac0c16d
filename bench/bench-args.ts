// The small benchmarks' command line: `--NAME N` for each numeric option,
// `--out FILE`, and `--quick` for a smoke-sized run.

import * as path from 'node:path';
import { ROOT } from './rig.js';

export function benchArgs<T extends Record<string, number>>(
  argv: string[],
  name: string,
  defaults: T,
  quick: Partial<T>,
): T & { out: string } {
  const o = { ...defaults, out: path.join(ROOT, 'bench/results', `${name}-${new Date().toISOString().slice(0, 10)}.md`) } as T & { out: string };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--quick') Object.assign(o, quick);
    else if (a === '--out') o.out = argv[++i]!;
    else if (a.startsWith('--') && a.slice(2) in defaults) (o as Record<string, number | string>)[a.slice(2)] = Number(argv[++i]);
  }
  return o;
}

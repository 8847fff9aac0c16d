// Which files hold a console's log history, oldest first: the file its `log=`
// pattern names now, logrotate's rotations of it (`name.log.1`,
// `name.log.2.gz`, and dateext's `name.log-20250102[.gz]`) and, when the
// pattern's file name has time specifiers (`%N-%Y%m%d.log`), the files of
// earlier days (any digits where a time field stands) with their rotations.
// Only the directory the pattern names now is looked in; regular files only
// (a symbolic link is not followed).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { expandSpecifiers, sanitizeSpecifier } from '../config/specifiers.js';

export interface LogSource {
  file: string;
  gz: boolean;
  /** the file conchd is writing to now */
  live: boolean;
  size: number;
  mtimeMs: number;
}

export interface SourceCtx {
  name: string;
  dev: string;
  now?: Date;
}

const ROTATION = /^(?:\.(\d{1,6})|-(\d{8,14}))(\.gz)?$/;
const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');

/** A regex of the file names the pattern's last component expands to at any time (null: it has no time field). */
export function namePattern(base: string, ctx: SourceCtx): RegExp | null {
  let re = '';
  let timed = false;
  for (let i = 0; i < base.length; i++) {
    const c = base[i]!;
    if (c !== '%' || i + 1 >= base.length) {
      re += escapeRe(c);
      continue;
    }
    const s = base[++i]!;
    if (s === '%') re += '%';
    else if (s === 'N') re += escapeRe(sanitizeSpecifier(ctx.name));
    else if (s === 'D') re += escapeRe(sanitizeSpecifier(ctx.dev));
    else if ('PdgGHjmMsSuUVwWyY'.includes(s)) {
      re += '\\d+';
      timed = true;
    } else re += escapeRe(`%${s}`);
  }
  return timed ? new RegExp(`^${re}$`) : null;
}

interface Found {
  name: string;
  /** 0: the base file; rotations by age: dateext (its date), then .N */
  order: number;
  gz: boolean;
}

/** The console's log files, oldest first (none when it has no log). */
export async function consoleFiles(pattern: string, ctx: SourceCtx): Promise<LogSource[]> {
  const current = expandSpecifiers(pattern, { name: ctx.name, dev: ctx.dev, pid: process.pid, now: ctx.now ?? new Date() });
  const dir = path.dirname(current);
  const currentBase = path.basename(current);
  const others = namePattern(path.basename(pattern), ctx);
  let names: string[];
  try {
    names = await fs.promises.readdir(dir);
  } catch {
    return [];
  }
  const bases = new Set<string>([currentBase]);
  if (others) for (const n of names) if (others.test(n)) bases.add(n);
  const groups = new Map<string, Found[]>();
  for (const b of bases) groups.set(b, []);
  for (const n of names) {
    if (bases.has(n)) {
      groups.get(n)!.push({ name: n, order: Number.MAX_SAFE_INTEGER, gz: false });
      continue;
    }
    // the longest base that prefixes it (a base may itself prefix another)
    let best: string | null = null;
    for (const b of bases) if (n.startsWith(b) && (!best || b.length > best.length) && ROTATION.test(n.slice(b.length))) best = b;
    if (!best) continue;
    const m = ROTATION.exec(n.slice(best.length))!;
    // dateext: older dates first; .N: larger is older; both before the base
    const order = m[2] !== undefined ? Number(m[2]) - 1e15 : -Number(m[1]);
    groups.get(best)!.push({ name: n, order, gz: m[3] !== undefined });
  }
  const out: { group: LogSource[]; newest: number }[] = [];
  for (const [base, found] of groups) {
    found.sort((a, b) => a.order - b.order);
    const group: LogSource[] = [];
    let newest = 0;
    for (const f of found) {
      const file = path.join(dir, f.name);
      let st: fs.Stats;
      try {
        st = await fs.promises.lstat(file);
      } catch {
        continue;
      }
      if (!st.isFile()) continue;
      newest = Math.max(newest, st.mtimeMs);
      group.push({ file, gz: f.gz, live: f.name === currentBase, size: st.size, mtimeMs: st.mtimeMs });
    }
    // the file being written comes last whatever the clocks say
    if (base === currentBase) newest = Infinity;
    if (group.length > 0) out.push({ group, newest });
  }
  out.sort((a, b) => a.newest - b.newest);
  return out.flatMap((g) => g.group);
}

// Which consoles a request's CONSOLE patterns name. Glob mode (default) is
// fnmatch, case-sensitive, the union over all patterns; regex mode joins the
// patterns with `|` into one case-insensitive POSIX ERE matching whole names.
// The result is always in the registry's natural order, each console once.

import type { Console } from '../engine/console.js';
import type { ConsoleRegistry } from '../engine/registry.js';
import { globToRegExp } from './glob.js';
import { compileEre, EreError } from './ere.js';

export type MatchResult = { ok: true; consoles: Console[] } | { ok: false; regexError: string };

export function matchConsoles(registry: ConsoleRegistry, patterns: string[], regex: boolean): MatchResult {
  const all = registry.list();
  if (regex) {
    let re: RegExp;
    try {
      re = compileEre(patterns.length === 0 ? '.*' : patterns.join('|'));
    } catch (e) {
      if (e instanceof EreError) return { ok: false, regexError: e.message };
      throw e;
    }
    return { ok: true, consoles: all.filter((c) => re.test(c.name)) };
  }
  if (patterns.length === 0) return { ok: true, consoles: [...all] };
  // exact names are the common case: answer them without a scan
  if (patterns.every((p) => !/[*?[\\]/.test(p))) {
    const want = new Set(patterns);
    return { ok: true, consoles: all.filter((c) => want.has(c.name)) };
  }
  const res = patterns.map(globToRegExp).filter((r): r is RegExp => r !== null);
  return { ok: true, consoles: all.filter((c) => res.some((r) => r.test(c.name))) };
}

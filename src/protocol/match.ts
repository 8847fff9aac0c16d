// Which consoles a request's CONSOLE patterns name. Glob mode (default) is
// fnmatch, case-sensitive, the union over all patterns; regex mode joins the
// patterns with `|` into one case-insensitive POSIX ERE matching whole names.
// The result is always in the registry's natural order, each console once.
//
// Exact names (the common case) are answered at once from a set. Anything
// else is compiled to a linear-time NFA (nfa.ts) and run by the match
// scheduler in slices, within a budget, stopping when `signal` aborts.

import type { Console } from '../engine/console.js';
import type { ConsoleRegistry } from '../engine/registry.js';
import { ErrCode } from './messages.js';
import { parseGlob, GlobTooBig } from './glob.js';
import { parseEre, EreError } from './ere.js';
import { alt, TooBig, type Node } from './pattern-ast.js';
import { compile, Run } from './nfa.js';
import { DEFAULT_BUDGET, matchScheduler, type Budget, type MatchScheduler, type Task } from './match-scheduler.js';

export type MatchResult = { ok: true; consoles: Console[] } | { ok: false; code: number; error: string };

// conch additions (conman has no such limits)
export const MATCH_MSG = {
  globTooBig: 'Invalid console patterns: too big to match',
  budget: (cpuS: number) =>
    `Console patterns too costly: matching gave up after ${cpuS}s of work; use simpler patterns`,
};

/** How much matching work between looks at the clock. */
const WORK_CHUNK = 2048;

const isExact = (p: string): boolean => !/[*?[\\]/.test(p);

/** Match; resolves null when `signal` aborted first. */
export async function matchConsoles(
  registry: ConsoleRegistry,
  patterns: string[],
  regex: boolean,
  signal?: AbortSignal,
  opts: { scheduler?: MatchScheduler; budget?: Budget } = {},
): Promise<MatchResult | null> {
  const all = registry.list();
  if (!regex) {
    if (patterns.length === 0) return { ok: true, consoles: [...all] };
    // exact names are the common case: answer them without a scan
    if (patterns.every(isExact)) {
      const want = new Set(patterns);
      return { ok: true, consoles: all.filter((c) => want.has(c.name)) };
    }
  }
  const scheduler = opts.scheduler ?? matchScheduler;
  const o = await scheduler.run(() => new MatchTask(all, patterns, regex), signal, opts.budget);
  if (o.kind === 'aborted') return null;
  if (o.kind === 'budget') {
    const cpuS = (opts.budget ?? DEFAULT_BUDGET).cpuMs / 1000;
    return { ok: false, code: ErrCode.BAD_REQUEST, error: MATCH_MSG.budget(cpuS) };
  }
  return o.value;
}

/** Compile on the first step, then walk the consoles, resumably. */
class MatchTask implements Task<MatchResult> {
  private exact = new Set<string>();
  private run: Run | null = null;
  private compiled = false;
  private k = 0;
  private inName = false;
  private readonly found: Console[] = [];

  constructor(
    private readonly all: Console[],
    private readonly patterns: string[],
    private readonly regex: boolean,
  ) {}

  step(deadline: number): MatchResult | undefined {
    if (!this.compiled) {
      this.compiled = true;
      const err = this.compile();
      if (err) return err;
    }
    const run = this.run;
    while (this.k < this.all.length) {
      const c = this.all[this.k];
      if (!this.inName) {
        if (this.exact.has(c.name) || !run) {
          if (this.exact.has(c.name)) this.found.push(c);
          this.k++;
          continue;
        }
        run.reset(c.name);
        this.inName = true;
      }
      while (!run!.advance(WORK_CHUNK)) {
        if (performance.now() >= deadline) return undefined;
      }
      if (run!.result) this.found.push(c);
      this.inName = false;
      this.k++;
      if ((this.k & 15) === 0 && performance.now() >= deadline) return undefined;
    }
    return { ok: true, consoles: this.found };
  }

  private compile(): MatchResult | undefined {
    let tree: Node | null = null;
    if (this.regex) {
      try {
        tree = parseEre(this.patterns.length === 0 ? '.*' : this.patterns.join('|'));
      } catch (e) {
        if (e instanceof EreError) return { ok: false, code: ErrCode.BAD_REGEX, error: e.message };
        throw e;
      }
    } else {
      const trees: Node[] = [];
      try {
        for (const p of this.patterns) {
          if (isExact(p)) this.exact.add(p);
          else {
            const t = parseGlob(p);
            if (t) trees.push(t);
          }
        }
        if (trees.length > 0) tree = alt(trees);
      } catch (e) {
        if (e instanceof GlobTooBig || e instanceof TooBig) {
          return { ok: false, code: ErrCode.BAD_REQUEST, error: MATCH_MSG.globTooBig };
        }
        throw e;
      }
    }
    if (tree) this.run = new Run(compile(tree));
    return undefined;
  }
}

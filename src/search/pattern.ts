// A search pattern: the project's POSIX ERE (protocol/ere.ts, matched by the
// linear-time NFA of nfa.ts, case-insensitive as conman's console regexes
// are), found anywhere in a line, plus literals one of which every match must
// contain (the longest run of plain characters, or one per branch of an
// alternation). Lines are scanned for those first (a native indexOf over a
// lower-cased copy of the text), so the NFA runs only on the few lines that
// may match; a pattern with no literal runs the NFA on every line.
//
// A search program is held to SEARCH_MAX_PROGRAM states (stricter than a
// console pattern's): the NFA's work per character is at most its size, so
// this bounds the cost of every byte scanned whatever the pattern.

import { ANY, type CharSet } from '../protocol/charset.js';
import { EreError, parseEre } from '../protocol/ere.js';
import { compile, Run, type Program } from '../protocol/nfa.js';
import { cat, rep, setNode, TooBig, type Node } from '../protocol/pattern-ast.js';

/** the most NFA states a search pattern may compile to */
export const SEARCH_MAX_PROGRAM = 8192;
/** the longest pattern text accepted */
export const SEARCH_MAX_PATTERN = 4096;

export class PatternError extends Error {}

export interface SearchPattern {
  source: string;
  program: Program;
  /** lower-case strings one of which every match contains (empty: none known, every line is matched) */
  literals: Buffer[];
}

/** The one character a set stands for (lower-cased), or null. */
function single(s: CharSet): number | null {
  if (s.high) return null;
  let found = -1;
  for (let c = 0; c < 128; c++) {
    if (s.ascii[c] !== 1) continue;
    const low = c >= 65 && c <= 90 ? c + 32 : c;
    if (found >= 0 && found !== low) return null;
    found = low;
  }
  return found < 0 ? null : found;
}

/** the most literals a pattern is scanned for (an alternation of more runs the NFA on every line) */
const MAX_LITERALS = 16;

interface Lit {
  /** the one string the node matches, when it matches exactly one */
  exact: string | null;
  /** strings one of which every match of the node contains (null: none known) */
  any: string[] | null;
}

/** How much a set of literals narrows a scan: its shortest string (0 for none). */
const strength = (l: string[] | null): number => (l === null || l.length === 0 ? 0 : Math.min(...l.map((x) => x.length)) * 64 - l.length);
const better = (a: string[] | null, b: string[] | null): string[] | null => (strength(b) > strength(a) ? b : a);
const one = (s: string): string[] | null => (s === '' ? null : [s]);

/** The literals of a tree (see Lit). */
export function literalOf(n: Node): Lit {
  switch (n.t) {
    case 'set': {
      const c = single(n.set);
      const s = c === null ? null : String.fromCharCode(c);
      return { exact: s, any: s === null ? null : [s] };
    }
    case 'assert':
      return { exact: '', any: null };
    case 'cat': {
      let run = '';
      let best: string[] | null = null;
      let exact: string | null = '';
      for (const item of n.items) {
        const l = literalOf(item);
        if (l.exact !== null) {
          run += l.exact;
          if (exact !== null) exact += l.exact;
        } else {
          best = better(better(best, one(run)), l.any);
          run = '';
          exact = null;
        }
      }
      return { exact, any: better(best, one(run)) };
    }
    case 'alt': {
      const ls = n.alts.map(literalOf);
      const first = ls[0]?.exact ?? null;
      if (first !== null && ls.every((l) => l.exact === first)) return { exact: first, any: one(first) };
      if (ls.some((l) => l.any === null)) return { exact: null, any: null };
      const all = [...new Set(ls.flatMap((l) => l.any!))];
      return { exact: null, any: all.length <= MAX_LITERALS ? all : null };
    }
    case 'rep': {
      if (n.min === 0) return { exact: n.max === 0 ? '' : null, any: null };
      const l = literalOf(n.node);
      const exact = n.max === n.min && l.exact !== null ? l.exact.repeat(n.min) : null;
      return { exact, any: exact !== null ? one(exact) : l.any };
    }
  }
}

/** Compile a search pattern; throws PatternError with the reason. */
export function compileSearch(source: string): SearchPattern {
  if (source.length === 0) throw new PatternError('the search pattern is empty');
  if (source.length > SEARCH_MAX_PATTERN) throw new PatternError(`the search pattern is longer than ${SEARCH_MAX_PATTERN} characters`);
  // eslint-disable-next-line no-control-regex
  if (/[^\x00-\x7f]/.test(source)) throw new PatternError('search patterns are 7-bit ASCII (use . or a bracket for other bytes)');
  let tree: Node;
  try {
    tree = parseEre(source);
    // anywhere in the line: .*(RE).*
    tree = cat([rep(setNode(ANY), 0, null), tree, rep(setNode(ANY), 0, null)]);
  } catch (e) {
    if (e instanceof EreError) throw new PatternError(e.message);
    if (e instanceof TooBig) throw new PatternError('Regular expression too big');
    throw e;
  }
  if (tree.size > SEARCH_MAX_PROGRAM) {
    throw new PatternError(`Regular expression too big for a search: ${tree.size} states, at most ${SEARCH_MAX_PROGRAM}`);
  }
  const any = literalOf(tree).any ?? [];
  return { source, program: compile(tree), literals: any.map((l) => Buffer.from(l, 'latin1')) };
}

/** A reusable matcher of one pattern over lines (latin1 strings), resumable within a line. */
export class LineMatcher {
  private readonly run: Run;
  private active = false;

  constructor(readonly pattern: SearchPattern) {
    this.run = new Run(pattern.program);
  }

  /** NFA work done so far (states visited). */
  get work(): number {
    return this.run.work;
  }

  /**
   * Match `line` (call again with the same line while it returns undefined):
   * true/false once decided, undefined when `maxWork` ran out first.
   */
  test(line: string, maxWork: number): boolean | undefined {
    if (!this.active) {
      this.run.reset(line);
      this.active = true;
    }
    if (!this.run.advance(maxWork)) return undefined;
    this.active = false;
    return this.run.result;
  }
}

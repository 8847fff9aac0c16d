// A search pattern: the project's POSIX ERE (protocol/ere.ts, matched by the
// linear-time NFA of nfa.ts, case-insensitive as conman's console regexes
// are), found anywhere in a line, plus literals one of which every match must
// contain (the longest run of plain characters, or one per branch of an
// alternation: line-text.ts finds them, for alert rules too). Lines are
// scanned for those first (a native indexOf over a lower-cased copy of the
// cleaned text), so the NFA runs only on the few lines that may match; a
// pattern with no literal runs the NFA on every line.
//
// A search program is held to SEARCH_MAX_PROGRAM states (stricter than a
// console pattern's): the NFA's work per character is at most its size, so
// this bounds the cost of every byte scanned whatever the pattern.

import { ANY } from '../protocol/charset.js';
import { EreError, parseEre } from '../protocol/ere.js';
import { compile, Run, type Program } from '../protocol/nfa.js';
import { cat, rep, setNode, TooBig, type Node } from '../protocol/pattern-ast.js';
import { requiredLiterals } from './line-text.js';

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

/** the most literals a pattern is scanned for (an alternation of more runs the NFA on every line) */
const MAX_LITERALS = 16;

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
  const any = requiredLiterals(tree, MAX_LITERALS) ?? [];
  return { source, program: compile(tree), literals: any.map((l) => Buffer.from(l, 'latin1')) };
}

/** A reusable matcher of one pattern over lines (cleaned, as line-text.ts makes them), resumable within a line. */
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

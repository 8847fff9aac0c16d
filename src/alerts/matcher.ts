// Rule regexes over console lines. Each rule's ERE is compiled by the
// project's own engine (protocol/ere.ts → nfa.ts: a Pike VM, linear in the
// line's length times the program's size, whatever the pattern) as an
// unanchored search: `.*(RE).*` over the whole line, so `^` and `$` still
// mean the line's start and end.
//
// Most lines match no rule, and running every rule's NFA over every line
// would cost far more than everything else conchd does with a byte. So each
// rule also carries the literal strings one of which any match must contain
// (found in its syntax tree by search/line-text.ts, as a search's are:
// `Kernel panic - not syncing:` for the panic rule, one per branch of an
// alternation), and a console's rules are screened together with one
// JavaScript RegExp made of those literals only, escaped, run over the
// lowercased line: fixed strings, which cannot backtrack catastrophically. Only a line holding a literal of some rule
// runs that rule's NFA; a rule with no literal runs on every line.

import { parseEre, EreError } from '../protocol/ere.js';
import { ANY } from '../protocol/charset.js';
import { compile, Run } from '../protocol/nfa.js';
import { cat, rep, setNode, TooBig, type Node } from '../protocol/pattern-ast.js';
import { requiredLiterals } from '../search/line-text.js';
import { LiteralScanner } from './literal-scanner.js';

/** NFA instructions an alert rule may compile to: bounds the work per character of every line it screens in */
export const MAX_RULE_PROGRAM = 4096;
/** alternatives kept as a rule's literal set; more and the rule is screened by its NFA alone */
const MAX_LITERALS = 64;

export class PatternError extends Error {}

const NOTHING_TO_SCREEN: readonly string[] = [];

/** A compiled rule regex: a screen of literals and an NFA search. */
export class Pattern {
  private readonly run: Run;
  /** NFA state visits spent so far (for the counters: which rule costs what) */
  get work(): number {
    return this.run.work;
  }

  private constructor(
    /** lowercase; a line holding none of them cannot match (null: no screen, the NFA sees every line) */
    readonly literals: readonly string[] | null,
    readonly size: number,
    run: Run,
  ) {
    this.run = run;
  }

  /** Compile `re` (POSIX ERE, case-insensitive) as a search within a line. Throws PatternError. */
  static compile(re: string): Pattern {
    if (re === '') throw new PatternError('the regex is empty (it would match every line)');
    let root: Node;
    try {
      root = parseEre(re);
    } catch (e) {
      if (e instanceof EreError) throw new PatternError(e.message);
      throw e;
    }
    let program;
    try {
      const anyRun = (): Node => rep(setNode(ANY), 0, null);
      program = compile(cat([anyRun(), root, anyRun()]));
    } catch (e) {
      if (e instanceof TooBig) throw new PatternError('Regular expression too big');
      throw e;
    }
    if (program.size > MAX_RULE_PROGRAM) {
      throw new PatternError(`regex too big for an alert rule: ${program.size} NFA states, at most ${MAX_RULE_PROGRAM} (every line screened in costs its length times this)`);
    }
    return new Pattern(requiredLiterals(root, MAX_LITERALS), program.size, new Run(program));
  }

  /** Whether `line` contains a match (runs the NFA; screening is the caller's). */
  test(line: string): boolean {
    const r = this.run;
    r.reset(line);
    while (!r.advance(Number.MAX_SAFE_INTEGER));
    return r.result;
  }

  /** Screen and run: for tests and single lines. */
  matches(line: string): boolean {
    const l = this.literals;
    if (l) {
      const lower = line.toLowerCase();
      if (!l.some((s) => lower.includes(s))) return false;
    }
    return this.test(line);
  }
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

interface TrieNode {
  end: boolean;
  next: Map<string, TrieNode>;
}

/**
 * One expression matching any of `words` (fixed strings), as a trie. A word
 * that another one starts with ends its branch: for a yes/no answer the
 * shorter one is enough.
 */
export function trieRegex(words: readonly string[]): string {
  const root: TrieNode = { end: false, next: new Map() };
  for (const w of words) {
    let n = root;
    for (const ch of w) {
      let m = n.next.get(ch);
      if (!m) n.next.set(ch, (m = { end: false, next: new Map() }));
      n = m;
    }
    n.end = true;
  }
  const emit = (n: TrieNode): string => {
    if (n.end) return '';
    const alts = [...n.next].map(([ch, m]) => escapeRe(ch) + emit(m));
    return alts.length === 1 ? alts[0]! : `(?:${alts.join('|')})`;
  };
  return emit(root);
}

/**
 * An ordered list of rules screened together: the first rule (in order)
 * whose regex matches a line is that line's rule.
 */
export class RuleScreen<R extends { readonly pattern: Pattern }> {
  /** every screened rule's literals in one expression (null: no rule has literals) */
  private readonly any: RegExp | null;
  /** the same literals as an automaton over raw bytes (null: some rule has none, or too many) */
  readonly scanner: LiteralScanner | null;
  /** some rule has no literal: every line is tried against it */
  private readonly unscreened: boolean;
  /** lines that passed the screen (for the counters) */
  screenedIn = 0;

  constructor(readonly rules: readonly R[]) {
    const lits = new Set<string>();
    for (const r of rules) for (const l of r.pattern.literals ?? NOTHING_TO_SCREEN) lits.add(l);
    // as a trie (`k(?:ernel panic…|ernel bug at )|…`): the engine picks a branch by the next
    // character instead of trying every literal at every place, which costs half as much
    const re = lits.size > 0 ? trieRegex([...lits]) : null;
    // over the lowercased line (the per-rule checks want it anyway)
    this.any = re === null ? null : new RegExp(re);
    this.unscreened = rules.some((r) => r.pattern.literals === null);
    this.scanner = this.unscreened ? null : LiteralScanner.build([...lits]);
  }

  /** The first rule matching `line`, or null. */
  match(line: string): R | null {
    // ASCII letters lowercase to themselves only; any other change can only add a candidate, never hide one
    const lower = line.toLowerCase();
    const hit = this.any !== null && this.any.test(lower);
    if (!hit && !this.unscreened) return null;
    if (hit) this.screenedIn++;
    for (const r of this.rules) {
      const l = r.pattern.literals;
      if (l) {
        if (!hit) continue;
        let found = false;
        for (let k = 0; k < l.length && !found; k++) found = lower.includes(l[k]);
        if (!found) continue;
      }
      if (r.pattern.test(line)) return r;
    }
    return null;
  }
}

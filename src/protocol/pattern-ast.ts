// The tree both pattern languages (globs and EREs) parse into, and the NFA
// is compiled from. Each node carries its compiled size and nesting depth,
// computed as it is built, so a pattern that would blow up (`a{1000}{1000}`)
// or nest too deep is refused before anything large or recursive is made.

import type { CharSet } from './charset.js';

export type AssertKind = 'bol' | 'eol' | 'wordb' | 'nwordb' | 'wordstart' | 'wordend';

export type Node =
  | { t: 'set'; set: CharSet; size: number; depth: number }
  | { t: 'cat'; items: Node[]; size: number; depth: number }
  | { t: 'alt'; alts: Node[]; size: number; depth: number }
  | { t: 'rep'; node: Node; min: number; max: number | null; size: number; depth: number }
  | { t: 'assert'; kind: AssertKind; size: number; depth: number };

/** NFA instructions a program may have (glibc's own limit differs; ours bounds work per character). */
export const MAX_PROGRAM = 65536;
/** nesting of groups and repetitions; the compiler recurses this deep */
export const MAX_DEPTH = 1000;

export class TooBig extends Error {}

const check = <N extends Node>(n: N): N => {
  if (n.size > MAX_PROGRAM || n.depth > MAX_DEPTH) throw new TooBig();
  return n;
};

export const setNode = (set: CharSet): Node => ({ t: 'set', set, size: 1, depth: 1 });
export const assertNode = (kind: AssertKind): Node => ({ t: 'assert', kind, size: 1, depth: 1 });

export function cat(items: Node[]): Node {
  if (items.length === 1) return items[0];
  let size = 0;
  let depth = 0;
  for (const n of items) {
    size += n.size;
    depth = Math.max(depth, n.depth);
  }
  return check({ t: 'cat', items, size, depth: depth + 1 });
}

export function alt(alts: Node[]): Node {
  if (alts.length === 1) return alts[0];
  let size = 0;
  let depth = 0;
  for (const n of alts) {
    size += n.size + 2; // a split and a jump per alternative
    depth = Math.max(depth, n.depth);
  }
  return check({ t: 'alt', alts, size, depth: depth + 1 });
}

/** `node{min,max}`; max null = unbounded. */
export function rep(node: Node, min: number, max: number | null): Node {
  // min copies, then either a loop (node + split + jump) or max-min optional copies (node + split)
  const size = node.size * min + (max === null ? node.size + 2 : (max - min) * (node.size + 1));
  return check({ t: 'rep', node, min, max, size, depth: node.depth + 1 });
}

/** Matches only the empty string. */
export const empty = (): Node => ({ t: 'cat', items: [], size: 0, depth: 1 });

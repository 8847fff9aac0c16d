// Which live node should hold each console: rendezvous (highest random
// weight) hashing with bounded loads. Every node computes it alone from the
// same inputs (the console names of the shared conman.conf and the live
// nodes in etcd), so they agree without talking. Plain rendezvous hashing
// spreads 300 consoles over 3 nodes with a standard deviation of ~8 per
// node; the bound (the even share plus 5 %, rounded up) keeps every node
// within it, and a node's death or arrival still moves few consoles besides
// its own share.

import { createHash } from 'node:crypto';

/** a 52-bit score of (node, console): uniform, the same on every machine */
function score(node: string, consoleName: string): number {
  const h = createHash('sha256').update(node).update('\0').update(consoleName).digest();
  return h.readUIntBE(0, 6) * 32 + (h[6]! >> 3);
}

/** How many consoles one node may be given at most. */
export function capacity(consoles: number, nodes: number): number {
  return Math.ceil((consoles / nodes) * 1.05);
}

/**
 * Console name → node name, for every console. Consoles are placed in a
 * fixed order (by their best score, so the order does not favour any node),
 * each on its highest-ranked node that is not yet full.
 */
export function assign(consoles: readonly string[], nodes: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  if (nodes.length === 0) return out;
  const cap = capacity(consoles.length, nodes.length);
  const load = new Map(nodes.map((n) => [n, 0]));
  const ranked = consoles.map((c) => {
    const r = nodes.map((n) => ({ n, s: score(n, c) })).sort((a, b) => b.s - a.s || (a.n < b.n ? -1 : 1));
    return { c, r };
  });
  ranked.sort((a, b) => b.r[0]!.s - a.r[0]!.s || (a.c < b.c ? -1 : 1));
  for (const { c, r } of ranked) {
    const pick = r.find((x) => load.get(x.n)! < cap) ?? r[0]!;
    load.set(pick.n, load.get(pick.n)! + 1);
    out.set(c, pick.n);
  }
  return out;
}

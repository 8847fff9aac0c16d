// A cluster node's web side: this node and the other live nodes, for
// reading a console's history from all of them (src/cluster/history.ts).

import type { HistoryNodes } from '../cluster/history.js';
import type { WebContext } from './web-context.js';

/** null: not a cluster node */
export function webNodes(ctx: WebContext): HistoryNodes | null {
  const { peers, node } = ctx.daemon;
  if (!peers || node === undefined) return null;
  return { node, peers };
}

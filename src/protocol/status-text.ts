// `conch -q -v` (a query with OPTION=STATUS, a conch addition): after the OK
// line, one line per console saying what an operator asks first — is it up,
// since when, why not, what the device says (SOL held elsewhere …), and who
// is attached. conman clients never ask, so they never see these lines.

import type { Console } from '../engine/console.js';
import { stampTime, timeDelta } from '../util/notice.js';
import { whoText } from '../engine/session.js';

/** clients named per console; the rest are counted */
const MAX_NAMED = 5;

/** which cluster node runs a console: null when none does now */
export type OwnerOf = (name: string) => { node: string; addr: string | null } | null;

/** One line per console, names padded to one column; in a cluster, each says which node runs it. */
export function statusLines(consoles: Console[], ownerOf?: OwnerOf, self?: string): string {
  const width = Math.min(40, Math.max(...consoles.map((c) => c.name.length)));
  return consoles.map((c) => `${c.name.padEnd(width)}  ${ownerOf ? clusterText(c, ownerOf, self) : statusText(c)}\n`).join('');
}

/** a console another node runs is described by where it runs (its state is that node's to tell) */
function clusterText(c: Console, ownerOf: OwnerOf, self: string | undefined): string {
  const o = ownerOf(c.name);
  if (o === null) return 'no node runs it now (a handover is under way, or no node is live)';
  if (o.node === self) return `on node ${o.node}; ${statusText(c)}`;
  return `on node ${o.node} (${o.addr ?? 'address unknown'})`;
}

export function statusText(c: Console): string {
  const s = c.status();
  const parts: string[] = [];
  let head = `${s.state} since ${stampTime(s.since)} (${s.label})`;
  if (s.state === 'backoff' && s.retryAt) head += `, retry at ${stampTime(s.retryAt)}`;
  parts.push(head);
  if (s.lastError && s.state !== 'up') parts.push(`last error: ${oneLine(s.lastError)}`);
  if (s.detail) parts.push(oneLine(s.detail));
  const links = c.clients();
  if (links.length === 0) parts.push('no clients');
  else {
    const named = links.slice(0, MAX_NAMED).map((l) => `${whoText(l.identity)} ${l.mode}${l.mode === 'monitor' ? '' : ` idle ${timeDelta(l.idleMs)}`}`);
    if (links.length > MAX_NAMED) named.push(`${links.length - MAX_NAMED} more`);
    parts.push(`clients: ${named.join(', ')}`);
  }
  return parts.join('; ');
}

/** a device's text on one line, control characters shown as `?` */
function oneLine(t: string): string {
  // eslint-disable-next-line no-control-regex
  return t.replace(/[\x00-\x1f\x7f]/g, '?');
}

// conch --log: a console's log as the daemon has it (conch's HISTORY LOG
// request, docs/cluster.md): in a cluster, gathered from every node that
// ran the console, in time order. Written to stdout as the bytes are in the
// logs; --lines N or --tail BYTES keep the newest, --since/--until a range.

import type { ClientOptions } from './args.js';
import { FatalError } from './errors.js';
import { historyLine } from '../protocol/request.js';

export interface HistoryOptions {
  lines?: string;
  tail?: string;
  since?: string;
  until?: string;
}

/** --log and what goes with it (--lines, and --tail/--since/--until, which --grep shares: parsed into `opts.search`) */
export function checkHistory(opts: ClientOptions, given: Set<string>): void {
  if (!given.has('log')) {
    if (given.has('lines')) throw new FatalError('CMDLINE: option "--lines" needs --log');
    opts.history = undefined;
    return;
  }
  if (given.has('grep')) throw new FatalError('CMDLINE: --log and --grep do not go together');
  const stray = ['limit', 'follow'].find((n) => given.has(n));
  if (stray) throw new FatalError(`CMDLINE: option "--${stray}" goes with --grep, not --log`);
  if (opts.command !== 'connect' || opts.broadcast || opts.force || opts.join || opts.regex) {
    throw new FatalError('CMDLINE: --log prints one console\'s log: it does not go with -q, -m, -b, -f, -j or -r');
  }
  if (opts.consoles.length !== 1) throw new FatalError('CMDLINE: --log takes exactly one console name');
  const lines = opts.history?.lines;
  if (lines !== undefined && given.has('tail')) throw new FatalError('CMDLINE: give --lines or --tail (bytes), not both');
  const s = opts.search;
  opts.history = { lines, tail: s?.tail, since: s?.since, until: s?.until };
  opts.search = undefined;
  opts.command = 'history';
}

/** `HISTORY LOG [TAIL=n] [LINES=n] [SINCE='t'] [UNTIL='t'] CONSOLE='c'` */
export function historyLogLine(console: string, h: HistoryOptions): Buffer {
  return historyLine('log', console, { TAIL: h.tail, LINES: h.lines, SINCE: h.since, UNTIL: h.until });
}

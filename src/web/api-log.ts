// GET /api/v1/consoles/{name}/log: a console's current log file, streamed as
// text/plain. The file is the one the console's configuration names (its
// `log=` pattern expanded as conchd expands it), never anything the request
// says: the console name only picks a console the user may monitor. Ranges
// (tail=BYTES, lines=N, since=/until= times) are found by seeking (see
// api-log-scan.ts); nothing is read into memory whole. On a node of a
// cluster the pieces of the console's history on the other live nodes are
// gathered in time order (src/cluster/history.ts).

import type { ServerResponse } from 'node:http';
import type { Console } from '../engine/console.js';
import type { Identity } from '../engine/session.js';
import { nodesOf, writePieces, type HistoryNodes } from '../cluster/history.js';
import { gatherHistory } from './log-history-serve.js';
import { HttpError } from './http-util.js';
import { NoTimesError } from './api-log-scan.js';
import { visibleConsole, who } from './api-consoles.js';
import { parseLogQuery, type LogQuery } from './log-query.js';
import type { Router } from './router.js';
import type { WebContext } from './web-context.js';


const noTimes = (c: Console): HttpError =>
  new HttpError(400, `the log of console [${c.name}] has no times to search: neither line stamps (logopts="timestamp") nor "log at" marks (server timestamp=); use tail= or lines=`);

/** `filename="x.log"` in ASCII, and the exact name for clients that read filename*. */
function attachment(name: string): string {
  const ascii = name.replace(/[^A-Za-z0-9._-]/g, '_');
  return `attachment; filename="${ascii}.log"; filename*=UTF-8''${encodeURIComponent(name)}.log`;
}

export function register(router: Router, ctx: WebContext): void {
  router.add('GET', '/api/v1/consoles/:name/log', async (r) => {
    const id = who(r);
    const c = visibleConsole(ctx, id, r.params.name!);
    await serveLog(r.res, r.req.method === 'HEAD', ctx, ctx.daemon.cluster ?? null, id, c, parseLogQuery(r.url.searchParams));
  });
}

const described = (q: LogQuery): string => {
  const what = [q.tail !== null && `tail=${q.tail}`, q.lines !== null && `lines=${q.lines}`, q.since !== null && 'since', q.until !== null && 'until'].filter(Boolean).join(' ');
  return what ? ` (${what})` : '';
};

/**
 * The console's log; on a cluster node (`nodes`) its history from every
 * live node, in time order. `x-log-range` describes this node's file;
 * `x-log-nodes` names the nodes whose pieces are in, `x-log-missing` the
 * live ones that did not answer. A cluster node may never have run the
 * console (no file here).
 */
async function serveLog(res: ServerResponse, head: boolean, ctx: WebContext, nodes: HistoryNodes | null, id: Identity, c: Console, q: LogQuery): Promise<void> {
  const ac = new AbortController();
  res.once('close', () => ac.abort());
  let h;
  try {
    h = await gatherHistory(nodes ?? { node: '', peers: () => [] }, { id, via: nodes?.node ?? '', console: c.name }, c, q, ctx.server().logSymlinks, ac.signal);
  } catch (e) {
    throw e instanceof NoTimesError ? noTimes(c) : e;
  }
  try {
    const { pieces, missing, mine } = h;
    const length = pieces.reduce((n, p) => n + p.end - p.start, 0);
    if (h.sources === 0) throw new HttpError(404, `console [${c.name}] has no log file yet on any node that answered${missing.length ? ` (not answering: ${missing.join(', ')})` : ''}`);
    const names = nodesOf(pieces);
    const from = nodes ? ` from node${names.length === 1 ? '' : 's'} ${names.join(',') || '(none)'}` : '';
    ctx.access.record(id, 'monitor', 'ok', { console: c.name, detail: `log read over the web API${described(q)}: ${length} bytes${from}` });
    res.writeHead(200, {
      'content-type': 'text/plain; charset=utf-8',
      'content-length': String(length),
      'cache-control': 'no-store',
      ...(mine ? { 'x-log-range': `bytes ${mine.start}-${mine.end}/${mine.size}` } : {}),
      ...(nodes ? { 'x-log-nodes': names.join(',') } : {}),
      ...(missing.length ? { 'x-log-missing': headerText(missing.join(', ')) } : {}),
      ...(q.download ? { 'content-disposition': attachment(c.name) } : {}),
    });
    if (length === 0 || head) {
      res.end();
      return;
    }
    try {
      await writePieces(pieces, res);
      res.end();
    } catch (e) {
      // the length is promised: a piece that cannot be read (a peer's, or a file that shrank) ends the connection short
      if (nodes) ctx.dlog.notice(`Log of console [${c.name}] for <${id.user}@${id.address}>: ${(e as Error).message}`);
      res.destroy();
    }
  } finally {
    await h.close();
  }
}

/** printable ASCII for a header value */
const headerText = (s: string): string => s.replace(/[^\x20-\x7e]/g, '?').slice(0, 2000);

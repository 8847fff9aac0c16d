// GET /api/v1/consoles/{name}/log: a console's current log file, streamed as
// text/plain. The file is the one the console's configuration names (its
// `log=` pattern expanded as conchd expands it), never anything the request
// says: the console name only picks a console the user may monitor. Ranges
// (tail=BYTES, lines=N, since=/until= times) are found by seeking (see
// api-log-scan.ts); nothing is read into memory whole. On a node of a
// cluster the pieces of the console's history on the other live nodes are
// gathered in time order (src/cluster/history.ts).

import { pipeline } from 'node:stream/promises';
import type { ServerResponse } from 'node:http';
import type { Console } from '../engine/console.js';
import type { Identity } from '../engine/session.js';
import { nodesOf, writePieces, type HistoryNodes } from '../cluster/history.js';
import { gatherHistory } from './log-history-serve.js';
import { HttpError } from './http-util.js';
import { LogScanner, NoTimesError, rangeOf } from './api-log-scan.js';
import { visibleConsole, who } from './api-consoles.js';
import { logFileOf, openLog } from './log-file.js';
import { parseLogQuery, type LogQuery } from './log-query.js';
import { webNodes } from './cluster-peers.js';
import type { Router } from './router.js';
import type { WebContext } from './web-context.js';

export { logFileOf } from './log-file.js';
export { MAX_LINES, MAX_TAIL, parseLogQuery, type LogQuery } from './log-query.js';

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
    const q = parseLogQuery(r.url.searchParams);
    const file = logFileOf(c);
    if (file === null) throw new HttpError(404, `console [${c.name}] has no log (no log= in its configuration)`);
    const nodes = webNodes(ctx);
    if (nodes && nodes.peers().length > 0) return clusterLog(r.res, r.req.method === 'HEAD', ctx, nodes, id, c, q);
    const fh = await openLog(c, file, ctx.server().logSymlinks);
    try {
      const scan = new LogScanner(fh, (await fh.stat()).size);
      let range;
      try {
        range = await rangeOf(scan, q);
      } catch (e) {
        throw e instanceof NoTimesError ? noTimes(c) : e;
      }
      const { start, end } = range;
      ctx.access.record(id, 'monitor', 'ok', { console: c.name, detail: `log read over the web API${described(q)}: ${end - start} bytes` });
      r.res.writeHead(200, {
        'content-type': 'text/plain; charset=utf-8',
        'content-length': String(end - start),
        'cache-control': 'no-store',
        'x-log-range': `bytes ${start}-${end}/${scan.size}`,
        ...(q.download ? { 'content-disposition': attachment(c.name) } : {}),
      });
      if (end <= start || r.req.method === 'HEAD') {
        r.res.end();
        return;
      }
      try {
        await pipeline(fh.createReadStream({ start, end: end - 1, autoClose: false, highWaterMark: 64 * 1024 }), r.res);
      } catch {
        // the client went away, or the file shrank under us: the connection ends either way
        r.res.destroy();
      }
    } finally {
      await fh.close().catch(() => {});
    }
  });
}

const described = (q: LogQuery): string => {
  const what = [q.tail !== null && `tail=${q.tail}`, q.lines !== null && `lines=${q.lines}`, q.since !== null && 'since', q.until !== null && 'until'].filter(Boolean).join(' ');
  return what ? ` (${what})` : '';
};

/**
 * A cluster node: the console's history from every live node, in time
 * order. `x-log-range` still describes this node's file; `x-log-nodes`
 * names the nodes whose pieces are in, `x-log-missing` the live ones that
 * did not answer. This node may never have run the console (no file here).
 */
async function clusterLog(res: ServerResponse, head: boolean, ctx: WebContext, nodes: HistoryNodes, id: Identity, c: Console, q: LogQuery): Promise<void> {
  const ac = new AbortController();
  res.once('close', () => ac.abort());
  let h;
  try {
    h = await gatherHistory(nodes, { id, via: nodes.node, console: c.name }, c, q, ctx.server().logSymlinks, ac.signal);
  } catch (e) {
    throw e instanceof NoTimesError ? noTimes(c) : e;
  }
  try {
    const { pieces, missing, mine } = h;
    const length = pieces.reduce((n, p) => n + p.end - p.start, 0);
    if (h.sources === 0) throw new HttpError(404, `console [${c.name}] has no log file yet on any node that answered${missing.length ? ` (not answering: ${missing.join(', ')})` : ''}`);
    const names = nodesOf(pieces);
    ctx.access.record(id, 'monitor', 'ok', { console: c.name, detail: `log read over the web API${described(q)}: ${length} bytes from node${names.length === 1 ? '' : 's'} ${names.join(',') || '(none)'}` });
    res.writeHead(200, {
      'content-type': 'text/plain; charset=utf-8',
      'content-length': String(length),
      'cache-control': 'no-store',
      ...(mine ? { 'x-log-range': `bytes ${mine.start}-${mine.end}/${mine.size}` } : {}),
      'x-log-nodes': names.join(','),
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
      // the length is promised: a piece that cannot be read ends the connection short
      ctx.dlog.notice(`Log of console [${c.name}] for <${id.user}@${id.address}>: ${(e as Error).message}`);
      res.destroy();
    }
  } finally {
    await h.close();
  }
}

/** printable ASCII for a header value */
const headerText = (s: string): string => s.replace(/[^\x20-\x7e]/g, '?').slice(0, 2000);

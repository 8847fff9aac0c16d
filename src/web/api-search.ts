// GET /api/v1/search?re=RE[&consoles=a,b*][&regex=1][&since=T][&until=T]
// [&tail=N][&limit=N][&follow=1]: the consoles' logs searched (docs/search.md),
// streamed as JSON lines (application/x-ndjson, search/serve.ts), each match
// with its console, time and line. Only consoles the user may monitor are
// searched (others are not there for it, as everywhere in the API); the
// search is audited as a monitor action. Bad requests are a 400 before
// anything streams; a search cut short by its bounds says so in its summary.
// On a cluster node the other live nodes search their logs too (the same
// request passed on as a SEARCH, src/cluster/gather.ts), merged in time order.

import type { Writable } from 'node:stream';
import type { Console } from '../engine/console.js';
import { gatherSearch } from '../cluster/gather.js';
import { searchLine } from '../client/proto.js';
import { matchConsoles } from '../protocol/match.js';
import { parseQuery, PatternError, QueryError, type SearchQuery } from '../search/query.js';
import { searchSlot, TOO_MANY } from '../search/search.js';
import { serveSearch, targetOf } from '../search/serve.js';
import { who } from './api-consoles.js';
import { HttpError } from './http-util.js';
import type { Router } from './router.js';
import type { WebContext } from './web-context.js';

/** longest consoles= accepted */
const MAX_CONSOLES_PARAM = 8192;

function query(q: URLSearchParams): SearchQuery {
  const flag = (k: string): boolean => /^(1|true|yes|on)$/i.test(q.get(k) ?? '');
  try {
    return parseQuery({ re: q.get('re'), since: q.get('since'), until: q.get('until'), tail: q.get('tail'), limit: q.get('limit'), follow: flag('follow') });
  } catch (e) {
    if (e instanceof PatternError) throw new HttpError(400, `bad regular expression in re=: ${e.message}`);
    if (e instanceof QueryError) throw new HttpError(400, e.message);
    throw e;
  }
}

/** the search's keys as they came, for the SEARCH passed on to the other nodes */
function texts(q: URLSearchParams): { since?: string; until?: string; tail?: string; limit?: string } {
  const out: Record<string, string> = {};
  for (const k of ['since', 'until', 'tail', 'limit']) {
    const v = q.get(k);
    if (v !== null) out[k] = v;
  }
  return out;
}

export function register(router: Router, ctx: WebContext): void {
  router.add('GET', '/api/v1/search', async (r) => {
    const id = who(r);
    const params = r.url.searchParams;
    const q = query(params);
    const text = params.get('consoles') ?? '';
    if (text.length > MAX_CONSOLES_PARAM) throw new HttpError(400, `consoles= is longer than ${MAX_CONSOLES_PARAM} characters`);
    const patterns = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
    const regex = /^(1|true|yes|on)$/i.test(params.get('regex') ?? '');
    const ac = new AbortController();
    r.res.once('close', () => ac.abort());
    const m = await matchConsoles(ctx.registry, patterns, regex, ac.signal);
    if (m === null) return;
    if (!m.ok) throw new HttpError(400, `bad console pattern in consoles=: ${m.error}`);
    const found: Console[] = m.consoles.filter((c) => ctx.access.allows(id, c.name, 'monitor'));
    if (found.length === 0) throw new HttpError(404, 'no console to search (none matches consoles=, or none you may monitor)');
    const slot = searchSlot(q.follow);
    if (!slot) throw new HttpError(503, TOO_MANY, { 'retry-after': '5' });
    ctx.access.record(id, 'monitor', 'ok', { consoles: found.map((c) => c.name), detail: `search over the web API /${q.pattern.source}/${q.follow ? ' (follow)' : ''}` });
    r.res.writeHead(200, { 'content-type': 'application/x-ndjson; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
    if (r.req.method === 'HEAD') {
      slot.release();
      r.res.end();
      return;
    }
    const run = (into: Writable): Promise<void> => serveSearch(into, found.map(targetOf), q, slot, ac.signal, { dlog: ctx.dlog, peer: `<${id.user}@${id.address}:${id.port}> (web)` });
    // in a cluster a console's history is split between the nodes that ran it: the same SEARCH to every live node, merged (as conch --grep)
    const nodes = ctx.daemon.cluster ?? null;
    const peers = nodes?.peers() ?? [];
    if (nodes && peers.length > 0) {
      const requestLine = searchLine({
        command: 'search',
        quiet: false,
        regex,
        force: false,
        join: false,
        broadcast: false,
        consoles: patterns,
        search: { re: params.get('re') ?? '', ...texts(params), follow: q.follow },
      });
      await gatherSearch({ peers, id, via: nodes.node, requestLine, limit: q.bounds.limit, follow: q.follow }, run, r.res, ac.signal);
    } else await run(r.res);
    if (!r.res.destroyed) r.res.end();
  });
}

// The consoles of the API: the list (filtered by a whole-name POSIX ERE and
// by state, with counts by state), one console, and the actions break, reset
// and force. A console the user may not monitor is not there for it (a 404
// like a missing one); an action it lacks the right for is a 403, audited as
// the same refusal over the conman protocol is.

import type { Console, ConsoleState } from '../engine/console.js';
import { whoText, type Identity } from '../engine/session.js';
import type { Right } from '../access/rights.js';
import { matchConsoles } from '../protocol/match.js';
import { HttpError, sendJson } from './http-util.js';
import type { RouteRequest, Router } from './router.js';
import type { DaemonFacts, WebContext } from './web-context.js';

export const STATES: readonly ConsoleState[] = ['up', 'connecting', 'backoff', 'down'];
/** longest `match=` accepted */
export const MAX_MATCH = 4096;

export interface ClientJson {
  user: string;
  host: string;
  transport: string;
  mode: 'monitor' | 'write' | 'broadcast';
  since: string;
  idleMs: number;
}

export interface ConsoleJson {
  name: string;
  type: string;
  state: ConsoleState;
  since: string;
  retryAt: string | null;
  lastError: string | null;
  label: string;
  detail: string | null;
  clients: ClientJson[];
  /** a cluster: the node that runs it (null: none now) and that node's address; its state is that node's to tell */
  node?: string | null;
  nodeAddr?: string | null;
}

export type StateCounts = Record<ConsoleState | 'total', number>;

export function consoleJson(c: Console, daemon?: DaemonFacts): ConsoleJson {
  const s = c.status();
  const cl = daemon?.cluster;
  const owner = cl ? { o: cl.ownerOf(c.name) } : null;
  return {
    ...(owner ? { node: owner.o?.node ?? null, nodeAddr: owner.o?.addr ?? null } : {}),
    name: s.name,
    type: s.type,
    state: s.state,
    since: s.since.toISOString(),
    retryAt: s.retryAt ? s.retryAt.toISOString() : null,
    lastError: s.lastError,
    label: s.label,
    detail: s.detail,
    clients: c.clients().map((l) => ({
      user: l.identity.user,
      host: l.identity.host,
      transport: l.identity.transport,
      mode: l.mode,
      since: l.since.toISOString(),
      idleMs: l.idleMs,
    })),
  };
}

/** The request's identity (every API route but the public ones has one). */
export function who(r: RouteRequest): Identity {
  if (!r.identity) throw new HttpError(401, 'log in first (POST /api/v1/login) or send a bearer token', { 'www-authenticate': 'Bearer' });
  return r.identity;
}

/** The console `name` if `id` may monitor it; otherwise a 404, the same as for a console that does not exist. */
export function visibleConsole(ctx: WebContext, id: Identity, name: string): Console {
  const c = ctx.registry.get(name);
  if (!c || !ctx.access.allows(id, c.name, 'monitor')) throw new HttpError(404, `no console named ${JSON.stringify(name.slice(0, 100))}`);
  return c;
}

/** `right` on `c`, or a 403 (the refusal audited and logged). */
function requireRight(ctx: WebContext, id: Identity, c: Console, right: Right): void {
  if (ctx.access.allows(id, c.name, right)) return;
  ctx.access.denied(id, right, { console: c.name });
  throw new HttpError(403, `Permission denied: ${id.user} has no ${right} right on console [${c.name}]`);
}

/** `state=up,backoff`: the states asked for (null: all). */
function parseStates(text: string | null): Set<ConsoleState> | null {
  if (text === null || text.trim() === '') return null;
  const out = new Set<ConsoleState>();
  for (const raw of text.split(',')) {
    const s = raw.trim().toLowerCase();
    if (!(STATES as readonly string[]).includes(s)) throw new HttpError(400, `unknown state ${JSON.stringify(raw.slice(0, 50))} in state=; expected a comma-separated list of ${STATES.join(', ')}`);
    out.add(s as ConsoleState);
  }
  return out;
}

/** The consoles whose whole name matches `match` (POSIX ERE, case-insensitive), in natural order. */
async function matching(ctx: WebContext, match: string | null, r: RouteRequest): Promise<Console[]> {
  if (match === null || match === '') return ctx.registry.list();
  if (match.length > MAX_MATCH) throw new HttpError(400, `match= is longer than ${MAX_MATCH} characters`);
  // matched in slices by the same scheduler as conman's -r: a costly pattern never stalls the daemon
  const gone = new AbortController();
  const onClose = (): void => gone.abort();
  r.res.once('close', onClose);
  try {
    const m = await matchConsoles(ctx.registry, [match], true, gone.signal);
    if (m === null) throw new HttpError(499, 'the client went away');
    if (!m.ok) throw new HttpError(400, `bad console regex in match=: ${m.error}`);
    return m.consoles;
  } finally {
    r.res.off('close', onClose);
  }
}

export interface ConsoleList {
  consoles: ConsoleJson[];
  counts: StateCounts;
}

/**
 * GET /api/v1/consoles: what `id` may see of the consoles matching `match`,
 * counted by state before the state filter. O(consoles), no I/O.
 */
export async function listConsoles(ctx: WebContext, r: RouteRequest, id: Identity): Promise<ConsoleList> {
  const states = parseStates(r.url.searchParams.get('state'));
  const found = await matching(ctx, r.url.searchParams.get('match'), r);
  const counts: StateCounts = { up: 0, connecting: 0, backoff: 0, down: 0, total: 0 };
  const consoles: ConsoleJson[] = [];
  for (const c of found) {
    if (!ctx.access.allows(id, c.name, 'monitor')) continue;
    const state = c.state;
    counts[state]++;
    counts.total++;
    if (!states || states.has(state)) consoles.push(consoleJson(c, ctx.daemon));
  }
  return { consoles, counts };
}

type Action = 'break' | 'reset' | 'force';

/** The three actions: the right they need, what they do (or the 409 saying why not). */
const ACTIONS: Record<Action, (ctx: WebContext, c: Console, id: Identity) => void> = {
  break: (_ctx, c) => {
    if (c.state !== 'up') throw new HttpError(409, `console [${c.name}] is ${c.state}: a break can only be sent to a console that is up`);
    c.sendBreak();
  },
  reset: (ctx, c, id) => {
    const runner = ctx.resets();
    if (!runner.enabled) throw new HttpError(409, `console [${c.name}] cannot be reset: no "server resetcmd=" is configured`);
    runner.reset(c, id);
  },
  force: (_ctx, c, id) => {
    if (!c.device.force) {
      throw new HttpError(409, `console [${c.name}] is a ${c.device.type} console: only an IPMI console's SOL can be held elsewhere (to take it from another client, open its stream with mode=force)`);
    }
    c.force(whoText(id));
  },
};

export function register(router: Router, ctx: WebContext): void {
  router.add('GET', '/api/v1/consoles', async (r) => {
    sendJson(r.res, 200, await listConsoles(ctx, r, who(r)));
  });
  router.add('GET', '/api/v1/consoles/:name', (r) => {
    sendJson(r.res, 200, consoleJson(visibleConsole(ctx, who(r), r.params.name!), ctx.daemon));
  });
  for (const action of Object.keys(ACTIONS) as Action[]) {
    router.add('POST', `/api/v1/consoles/:name/${action}`, (r) => {
      const id = who(r);
      const c = visibleConsole(ctx, id, r.params.name!);
      requireRight(ctx, id, c, action);
      ACTIONS[action](ctx, c, id);
      ctx.access.record(id, action, 'ok', { console: c.name });
      ctx.dlog.info(`Web client <${id.user}@${id.address}> sent ${action} to [${c.name}]`);
      sendJson(r.res, 200, { ok: true, console: c.name, action });
    });
  }
}

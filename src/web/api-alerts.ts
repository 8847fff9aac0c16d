// GET /api/v1/alerts: the recent pattern alerts (src/alerts) of the consoles
// the user may monitor, newest last; `after=ID` polls for newer ones. Live
// alerts also come on /api/v1/events as `event: alert`.

import type { Router } from './router.js';
import type { WebContext } from './web-context.js';
import { HttpError, sendJson } from './http-util.js';
import type { RecentFilter } from '../alerts/sinks.js';
import type { Severity } from '../alerts/rules.js';
import { PRIORITIES as SEVERITIES } from '../config/types.js';

export function register(router: Router, ctx: WebContext): void {
  router.add('GET', '/api/v1/alerts', ({ res, url, identity }) => {
    const alerts = ctx.daemon.alerts;
    if (!alerts) return sendJson(res, 200, { alerts: [] });
    const q = url.searchParams;
    const filter: RecentFilter = {};
    const consoles = q.get('console');
    if (consoles) filter.console = consoles.split(',').slice(0, 1000);
    const rule = q.get('rule');
    if (rule) filter.rule = rule;
    const severity = q.get('severity');
    if (severity) {
      if (!(SEVERITIES as readonly string[]).includes(severity)) throw new HttpError(400, `severity must be one of ${SEVERITIES.join(', ')}`);
      filter.severity = severity as Severity;
    }
    const since = q.get('since');
    if (since) {
      if (Number.isNaN(Date.parse(since))) throw new HttpError(400, `since= must be an ISO 8601 time, got ${JSON.stringify(since.slice(0, 50))}`);
      filter.since = since;
    }
    const after = q.get('after');
    if (after) {
      if (!/^\d+$/.test(after)) throw new HttpError(400, 'after= must be an alert id (a number)');
      filter.afterId = Number(after);
    }
    const id = identity!;
    const visible = alerts.recent(filter).filter((a) => ctx.access.allows(id, a.console, 'monitor'));
    sendJson(res, 200, { alerts: visible });
  });
}

// The HTTP API under /api/v1 (besides the session routes of web-server.ts):
// consoles and their actions, logs, live events, search, pattern alerts, and
// its OpenAPI document.

import type { Router } from './router.js';
import type { WebContext } from './web-context.js';
import * as consoles from './api-consoles.js';
import * as log from './api-log.js';
import * as events from './api-events.js';
import * as openapi from './openapi.js';
import * as search from './api-search.js';
import * as alerts from './api-alerts.js';

export function register(router: Router, ctx: WebContext): void {
  consoles.register(router, ctx);
  log.register(router, ctx);
  events.register(router, ctx);
  openapi.register(router, ctx);
  search.register(router, ctx);
  alerts.register(router, ctx);
}

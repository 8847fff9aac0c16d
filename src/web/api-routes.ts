// (being written)
import type { Router } from './router.js';
import type { WebContext } from './web-context.js';

export function register(_router: Router, _ctx: WebContext): void {}

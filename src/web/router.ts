// Routes by method and path pattern (`/api/v1/consoles/:name/break`), with
// the path parameters decoded. A path that matches no pattern is a 404, one
// that matches with another method a 405 listing the allowed ones.

import type * as http from 'node:http';
import type { Identity } from '../engine/session.js';
import { HttpError } from './http-util.js';

export interface RouteRequest {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  url: URL;
  params: Record<string, string>;
  /** who is asking (null only on routes that need no login) */
  identity: Identity | null;
}

export interface RouteOptions {
  /** answers without a login (the login page and its API, static files, health) */
  public?: boolean;
}

type Handler = (r: RouteRequest) => void | Promise<void>;

interface Route {
  method: string;
  parts: string[];
  handler: Handler;
  opts: RouteOptions;
}

export class Router {
  private readonly routes: Route[] = [];

  add(method: string, pattern: string, handler: Handler, opts: RouteOptions = {}): void {
    this.routes.push({ method, parts: pattern.split('/').filter(Boolean), handler, opts });
  }

  /** The route for a request, its parameters; throws 404/405/400 as HttpError. */
  match(method: string, pathname: string): { route: Route; params: Record<string, string> } {
    const segs = pathname.split('/').filter(Boolean);
    const allowed: string[] = [];
    for (const r of this.routes) {
      const params = matchParts(r.parts, segs);
      if (!params) continue;
      if (r.method === method || (method === 'HEAD' && r.method === 'GET')) return { route: r, params };
      allowed.push(r.method);
    }
    if (allowed.length > 0) throw new HttpError(405, `method ${method} not allowed here (allowed: ${allowed.join(', ')})`, { allow: allowed.join(', ') });
    throw new HttpError(404, `no such resource: ${pathname.slice(0, 200)}`);
  }
}

/** `:name` matches one segment; a trailing `*rest` matches the rest of the path. */
function matchParts(parts: string[], segs: string[]): Record<string, string> | null {
  const params: Record<string, string> = {};
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    if (p.startsWith('*')) {
      params[p.slice(1)] = segs.slice(i).map(decode).join('/');
      return params;
    }
    const s = segs[i];
    if (s === undefined) return null;
    if (p.startsWith(':')) params[p.slice(1)] = decode(s);
    else if (p !== s) return null;
  }
  return segs.length === parts.length ? params : null;
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new HttpError(400, `bad percent-encoding in the path: ${s.slice(0, 100)}`);
  }
}

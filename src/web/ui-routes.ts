// The web UI: static files from the package's `web/` folder and the xterm.js
// assets from node_modules, served from a fixed table. No part of a request
// path ever reaches the file system: a URL either is a key of the table or
// is a 404, so there is nothing to traverse. `/` is the console list and
// `/consoles/{name}` the same page opened on that console's terminal (the
// page reads its own address), so a ticket can link straight to a console.
//
// Every response carries a Content-Security-Policy that allows scripts from
// this origin only (the UI has no inline script); styles may be inline
// because xterm.js writes its colours and cell sizes into <style> elements.
// Files are read once and kept in memory with an ETag; a changed file (an
// upgrade, a developer's edit) is noticed by its size and mtime.

import * as crypto from 'node:crypto';
import * as fsp from 'node:fs/promises';
import type * as http from 'node:http';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HttpError } from './http-util.js';
import type { Router } from './router.js';
import type { WebContext } from './web-context.js';

/** the package's web/ folder: dist/src/web → ../../../web */
export const WEB_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../web');

export const CSP = [
  "default-src 'self'",
  "connect-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** The files of web/ the UI is made of, by URL (index.html is served at / and /consoles/{name}). */
export const UI_FILES: Readonly<Record<string, string>> = {
  '/assets/app.js': 'app.js',
  '/assets/api.js': 'api.js',
  '/assets/list.js': 'list.js',
  '/assets/terminal.js': 'terminal.js',
  '/assets/dialogs.js': 'dialogs.js',
  '/assets/util.js': 'util.js',
  '/assets/app.css': 'app.css',
  '/favicon.svg': 'favicon.svg',
};

/** xterm.js and its fit addon (ES module builds), by URL: module specifiers resolved as Node resolves them */
export const VENDOR_FILES: Readonly<Record<string, string>> = {
  '/assets/xterm/xterm.mjs': '@xterm/xterm/lib/xterm.mjs',
  '/assets/xterm/xterm.css': '@xterm/xterm/css/xterm.css',
  '/assets/xterm/addon-fit.mjs': '@xterm/addon-fit/lib/addon-fit.mjs',
};

interface Cached {
  body: Buffer;
  etag: string;
  size: number;
  mtimeMs: number;
}

class StaticFiles {
  private readonly cache = new Map<string, Cached>();
  private readonly require = createRequire(import.meta.url);

  /** The absolute path behind a table entry. */
  resolve(kind: 'ui' | 'vendor', rel: string): string {
    if (kind === 'ui') return path.join(WEB_DIR, rel);
    try {
      return this.require.resolve(rel);
    } catch {
      throw new HttpError(500, `web UI asset ${rel} is not installed (npm package missing)`);
    }
  }

  async load(file: string): Promise<Cached> {
    let st;
    try {
      st = await fsp.stat(file);
    } catch {
      throw new HttpError(500, `web UI file ${path.basename(file)} is missing from the installation`);
    }
    const hit = this.cache.get(file);
    if (hit && hit.size === st.size && hit.mtimeMs === st.mtimeMs) return hit;
    const body = await fsp.readFile(file);
    const etag = `"${crypto.createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
    const c = { body, etag, size: st.size, mtimeMs: st.mtimeMs };
    this.cache.set(file, c);
    return c;
  }

  async send(req: http.IncomingMessage, res: http.ServerResponse, file: string): Promise<void> {
    const c = await this.load(file);
    const headers: Record<string, string> = {
      'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
      'content-security-policy': CSP,
      // revalidated on every use (cheap: a 304), so an upgrade shows at once
      'cache-control': 'no-cache',
      etag: c.etag,
    };
    if (req.headers['if-none-match'] === c.etag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    res.writeHead(200, { ...headers, 'content-length': String(c.body.length) });
    res.end(req.method === 'HEAD' ? undefined : c.body);
  }
}

export function register(router: Router, _ctx: WebContext): void {
  const files = new StaticFiles();
  const page = files.resolve('ui', 'index.html');
  const sendPage = ({ req, res }: { req: http.IncomingMessage; res: http.ServerResponse }): Promise<void> => files.send(req, res, page);
  router.add('GET', '/', sendPage, { public: true });
  router.add('GET', '/consoles/:name', sendPage, { public: true });
  for (const [url, rel] of Object.entries(UI_FILES)) {
    const file = files.resolve('ui', rel);
    router.add('GET', url, ({ req, res }) => files.send(req, res, file), { public: true });
  }
  for (const [url, spec] of Object.entries(VENDOR_FILES)) {
    // resolved on first use: a missing package is a 500 on its URL, not a daemon that cannot start
    let file: string | null = null;
    router.add('GET', url, ({ req, res }) => files.send(req, res, (file ??= files.resolve('vendor', spec))), { public: true });
  }
}

// GET /api/v1/consoles/{name}/log: a console's current log file, streamed as
// text/plain. The file is the one the console's configuration names (its
// `log=` pattern expanded as conchd expands it), never anything the request
// says: the console name only picks a console the user may monitor. Ranges
// (tail=BYTES, lines=N, since=/until= times) are found by seeking (see
// api-log-scan.ts); nothing is read into memory whole.

import * as fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { Console } from '../engine/console.js';
import { deviceSpecifier, expandSpecifiers } from '../config/specifiers.js';
import { HttpError } from './http-util.js';
import { LogScanner, NoTimesError } from './api-log-scan.js';
import { visibleConsole, who } from './api-consoles.js';
import type { Router } from './router.js';
import type { WebContext } from './web-context.js';

/** the most tail= may ask for */
export const MAX_TAIL = 64 * 1024 * 1024;
/** the most lines= may ask for */
export const MAX_LINES = 100_000;

const ISO_TIME = /^\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:\.\d{1,9})?)?(?:Z|[+-]\d\d(?::?\d\d)?)?)?$/i;

export interface LogQuery {
  tail: number | null;
  lines: number | null;
  since: number | null;
  until: number | null;
  download: boolean;
}

function count(q: URLSearchParams, key: string, max: number, unit: string): number | null {
  const v = q.get(key);
  if (v === null) return null;
  if (!/^\d{1,16}$/.test(v)) throw new HttpError(400, `${key}= must be a whole number of ${unit}`);
  const n = Number(v);
  if (n > max) throw new HttpError(400, `${key}= is at most ${max} ${unit}; leave it out to get the whole log`);
  return n;
}

function time(q: URLSearchParams, key: string): number | null {
  let v = q.get(key);
  if (v === null) return null;
  // a `+01:00` offset sent unencoded arrives as ` 01:00`
  if (v.includes('T')) v = v.replace(/ (\d\d(?::?\d\d)?)$/, '+$1');
  const t = ISO_TIME.test(v) ? Date.parse(v) : NaN;
  if (Number.isNaN(t)) throw new HttpError(400, `${key}= must be an ISO 8601 time such as 2025-01-02T03:04:05Z (got ${JSON.stringify(v.slice(0, 64))})`);
  return t;
}

export function parseLogQuery(q: URLSearchParams): LogQuery {
  const tail = count(q, 'tail', MAX_TAIL, 'bytes');
  const lines = count(q, 'lines', MAX_LINES, 'lines');
  if (tail !== null && lines !== null) throw new HttpError(400, 'give tail= (bytes) or lines=, not both');
  const since = time(q, 'since');
  const until = time(q, 'until');
  if (since !== null && until !== null && since > until) throw new HttpError(400, 'since= is after until=');
  const d = q.get('download');
  return { tail, lines, since, until, download: d === '1' || d === 'true' };
}

/** The file the console is logging to now, from its configuration (null: it has no log). */
export function logFileOf(c: Console): string | null {
  const pattern = c.cfg.log;
  if (pattern === null || c.log === null) return null;
  return expandSpecifiers(pattern, { name: c.name, dev: deviceSpecifier(c.cfg.spec), pid: process.pid, now: new Date() });
}

/** Open for reading: no symbolic link unless `server logsymlinks=on`, never blocking on a FIFO; a regular file only. */
async function openLog(c: Console, file: string, followSymlinks: boolean): Promise<FileHandle> {
  const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
  let fh: FileHandle;
  try {
    fh = await fs.promises.open(file, O_RDONLY | O_NONBLOCK | (followSymlinks ? 0 : O_NOFOLLOW));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new HttpError(404, `console [${c.name}] has no log file yet`);
    if (code === 'ELOOP') throw new HttpError(404, `the log of console [${c.name}] is a symbolic link, which conchd does not follow (server logsymlinks=off)`);
    throw new HttpError(500, `cannot read the log of console [${c.name}]: ${code ?? (e as Error).message}`);
  }
  const st = await fh.stat();
  if (!st.isFile()) {
    await fh.close();
    throw new HttpError(404, `the log of console [${c.name}] is not a regular file`);
  }
  return fh;
}

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
    const fh = await openLog(c, file, ctx.server().logSymlinks);
    try {
      const scan = new LogScanner(fh, (await fh.stat()).size);
      let { start, end } = { start: 0, end: scan.size };
      if (q.since !== null || q.until !== null) {
        try {
          ({ start, end } = await scan.timeRange(q.since, q.until));
        } catch (e) {
          if (!(e instanceof NoTimesError)) throw e;
          throw new HttpError(400, `the log of console [${c.name}] has no times to search: neither line stamps (logopts="timestamp") nor "log at" marks (server timestamp=); use tail= or lines=`);
        }
      }
      if (q.tail !== null) start = Math.max(start, end - q.tail);
      else if (q.lines !== null) start = await scan.tailLines(start, end, q.lines);
      const what = [q.tail !== null && `tail=${q.tail}`, q.lines !== null && `lines=${q.lines}`, q.since !== null && 'since', q.until !== null && 'until'].filter(Boolean).join(' ');
      ctx.access.record(id, 'monitor', 'ok', { console: c.name, detail: `log read over the web API${what ? ` (${what})` : ''}: ${end - start} bytes` });
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

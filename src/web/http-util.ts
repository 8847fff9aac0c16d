// Small pieces every web route uses: JSON replies, JSON errors with the right
// status, and request bodies read with a size bound (no request may grow
// memory without a limit).

import type * as http from 'node:http';

/** A request the server refuses: the status and a message for the client. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** bodies larger than this are refused (login forms and small JSON only) */
export const MAX_BODY = 64 * 1024;

export function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(text);
}

export function sendError(res: http.ServerResponse, e: HttpError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, e.status, { error: e.message, status: e.status }, e.headers);
}

/** The request's JSON body (an object), at most MAX_BODY bytes. */
export async function readJson(req: http.IncomingMessage, max = MAX_BODY): Promise<Record<string, unknown>> {
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\b/i.test(type)) throw new HttpError(415, 'expected a JSON body (content-type: application/json)');
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > max) throw new HttpError(413, `request body over ${max} bytes`, { connection: 'close' });
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > max) throw new HttpError(413, `request body over ${max} bytes`);
    chunks.push(c as Buffer);
  }
  let v: unknown;
  try {
    v = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (e) {
    throw new HttpError(400, `invalid JSON body: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new HttpError(400, 'the JSON body must be an object');
  return v as Record<string, unknown>;
}

/** A string field of a JSON body, or a 400 naming it. */
export function field(body: Record<string, unknown>, name: string, maxLen = 1024): string {
  const v = body[name];
  if (typeof v !== 'string' || v.length === 0) throw new HttpError(400, `"${name}" must be a non-empty string`);
  if (v.length > maxLen) throw new HttpError(400, `"${name}" is longer than ${maxLen} characters`);
  return v;
}

/** Cookies of a request, by name (the first of each). */
export function cookies(req: http.IncomingMessage): Map<string, string> {
  const out = new Map<string, string>();
  const h = req.headers.cookie;
  if (!h || h.length > 8192) return out;
  for (const part of h.split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    const k = part.slice(0, i).trim();
    if (!out.has(k)) out.set(k, part.slice(i + 1).trim());
  }
  return out;
}

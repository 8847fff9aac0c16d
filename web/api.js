// Talking to conchd's API: the login session (who, CSRF token), JSON
// requests with the CSRF header on every state-changing one, and errors as
// exceptions carrying the server's message and status.
/* global fetch */

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

/** What GET /api/v1/session said, kept current by login and logout. */
export const session = { user: null, auth: null, loginRequired: false, csrf: null };

/** Called when a request comes back 401 (the session expired): the app shows the login form. */
let onUnauthorized = () => {};
export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

/** A JSON request; resolves with the parsed body (or text for non-JSON answers). */
export async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && session.csrf) headers['x-csrf-token'] = session.csrf;
  let res;
  try {
    res = await fetch(path, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(`conchd cannot be reached (${e.message})`, 0);
  }
  const type = res.headers.get('content-type') ?? '';
  const data = type.includes('json') ? await res.json().catch(() => null) : await res.text();
  if (!res.ok) {
    const msg = data && typeof data === 'object' && data.error ? data.error : `${res.status} ${res.statusText}`;
    if (res.status === 401 && !path.endsWith('/login')) onUnauthorized();
    throw new ApiError(msg, res.status);
  }
  return data;
}

export async function loadSession() {
  Object.assign(session, await api('GET', '/api/v1/session'));
  return session;
}

export async function login(user, password) {
  const r = await api('POST', '/api/v1/login', { user, password });
  Object.assign(session, { user: r.user, csrf: r.csrf, auth: 'password', loginRequired: false });
  return session;
}

export async function logout() {
  try {
    await api('POST', '/api/v1/logout', {});
  } finally {
    Object.assign(session, { user: null, csrf: null, auth: null, loginRequired: true });
  }
}

// The webhook's URL: checked when the configuration is read, and shown in
// the daemon log without what may be a secret.

/** The URL as the log shows it: no user, password or query (they may hold secrets). */
export function shownUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(bad URL)';
  }
}

/** Why `url` cannot be a webhook (null: fine). */
export function webhookUrlProblem(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `"${url}" is not a URL`;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return `the webhook must be an http: or https: URL, got ${u.protocol}`;
  return null;
}

// The two ways the conman client fails, kept apart because scripts look at
// the exit status: a fatal local error (`ERROR:     msg`, exit 1, like
// conman's log_err) and a reported request error (`ERROR: msg.`, exit 2,
// like conman's display_error — this includes "Unable to connect").

import * as util from 'node:util';

/** conman's CONMAN_ERR_LOCAL: an error that never came from the daemon. */
export const ERR_LOCAL = 1;
/** conman's CONMAN_ERR_AUTHENTICATE; conchd's "Authentication required/failed". */
export const ERR_AUTHENTICATE = 4;
export const ERR_TOO_MANY_CONSOLES = 6;
export const ERR_BUSY_CONSOLES = 7;

/** Fatal local error: printed as `ERROR:     <msg>`, exit status 1. */
export class FatalError extends Error {}

/** A failed request: printed as `ERROR: <msg>.` plus daemon lines, exit status 2. */
export class RequestError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** strerror()-style text for a Node system error ("Connection refused"). */
export function sysText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  let text: string | undefined;
  if (typeof e?.errno === 'number') {
    text = util.getSystemErrorMap().get(e.errno)?.[1];
  }
  if (!text && e?.code) {
    for (const [name, msg] of util.getSystemErrorMap().values()) {
      if (name === e.code) text = msg;
    }
  }
  if (!text) return e?.message ?? String(err);
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** The line conman's log_err prints: `ERROR:` padded to ten columns. */
export function fatalLine(msg: string): string {
  return `ERROR:     ${msg}\n`;
}

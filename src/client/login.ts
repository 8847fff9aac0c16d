// Connecting and greeting the daemon, with conch's password round. The first
// greeting never carries a password, so a daemon that does not ask never
// learns it. When a TLS daemon answers "Authentication required", the client
// takes the password from CONCH_PASSWORD_FILE / CONCH_PASSWORD or the
// terminal, reconnects and greets once more with it; whatever the second
// answer, there is no third try. Over plain TCP a password is never sent.

import * as os from 'node:os';
import type * as tls from 'node:tls';
import type { ClientOptions } from './args.js';
import { connectToServer, LineReader } from './connection.js';
import { ERR_AUTHENTICATE, ERR_LOCAL, FatalError, RequestError } from './errors.js';
import { exchange, type Link } from './exchange.js';
import { askPassword, configuredPassword } from './password.js';
import { greetingLine } from './proto.js';
import { loadTlsContext } from './tls-setup.js';
import { ttyName } from './tty.js';

function userName(): string {
  try {
    return os.userInfo().username;
  } catch {
    throw new FatalError(`Unable to lookup user name for UID=${process.getuid?.() ?? -1}`);
  }
}

/** The daemon's answer to a greeting without a password when it wants one. */
export function isAuthRequired(e: unknown): e is RequestError {
  return e instanceof RequestError && e.code === ERR_AUTHENTICATE && e.message.startsWith('Authentication required');
}

async function greet(
  opts: ClientOptions,
  secure: tls.SecureContext | undefined,
  track: (link: Link) => void,
  password?: string,
): Promise<Link> {
  const { socket, ep } = await connectToServer(opts.host, opts.port, secure);
  const link: Link = { socket, reader: new LineReader(socket), ep };
  track(link);
  // The password goes nowhere but into a TLS connection.
  await exchange(link, greetingLine(opts.user ?? userName(), ttyName(), secure ? password : undefined));
  return link;
}

/**
 * A greeted connection. `track` sees every connection opened, so the caller
 * can report the daemon's trailing lines and close it whatever happens.
 */
export async function login(opts: ClientOptions, env: NodeJS.ProcessEnv, track: (link: Link) => void): Promise<Link> {
  const secure = opts.tls ? loadTlsContext(opts, env) : undefined;
  let first: Link | undefined;
  try {
    return await greet(opts, secure, (l) => track((first = l)));
  } catch (e) {
    // Plain TCP gets no second round (the caller adds the TLS hint).
    if (!isAuthRequired(e) || !secure) throw e;
    first?.socket.destroy();
    const password = configuredPassword(env) ?? (await askPassword(opts.user ?? userName(), opts.host));
    if (password === undefined) {
      throw new RequestError(
        ERR_LOCAL,
        `${e.message.replace(/\.$/, '')}, and there is no terminal to ask for the password on:\n  put it in a file and name that file in CONCH_PASSWORD_FILE`,
      );
    }
    return greet(opts, secure, track, password);
  }
}

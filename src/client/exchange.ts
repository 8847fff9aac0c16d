// One handshake step on an open daemon connection: send a line, read the
// OK or ERROR reply. ERROR becomes a RequestError carrying the daemon's code.

import type * as net from 'node:net';
import { hostPort } from './args.js';
import type { Endpoint, LineReader } from './connection.js';
import { ERR_LOCAL, RequestError, sysText } from './errors.js';
import { parseResponse } from './proto.js';
import { tlsErrorText } from './tls-setup.js';

/** An open connection to the daemon and its reply reader. */
export interface Link {
  socket: net.Socket;
  reader: LineReader;
  ep: Endpoint;
}

/** Send one line and read the reply; OK → consoles/reset, ERROR → RequestError. */
export async function exchange(link: Link, line: Buffer, shutWrite = false): Promise<{ consoles: string[]; reset: boolean }> {
  const { socket, reader, ep } = link;
  const where = hostPort(ep.host, ep.port);
  socket.write(line);
  if (shutWrite) socket.end();
  let rsp: Buffer | null;
  try {
    rsp = await reader.readLine();
  } catch (e) {
    // A TLS daemon refusing our certificate says so here, after the handshake.
    const why = ep.tls ? tlsErrorText(e, false) : `${sysText(e)} (blocked by TCP-Wrappers?)`;
    throw new RequestError(ERR_LOCAL, `Unable to read response from <${where}>:\n  ${why}`);
  }
  if (rsp === null) throw new RequestError(ERR_LOCAL, `Connection terminated by <${where}>`);
  const r = parseResponse(rsp);
  if (r.ok) return r;
  if (r.code === 0) throw new RequestError(ERR_LOCAL, `Received invalid response from <${where}>`);
  throw new RequestError(r.code, r.message ?? 'Unspecified');
}

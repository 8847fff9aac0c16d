// TCP connection to the daemon, named the way conman names it in messages:
// the host is resolved, its address reverse-resolved to a canonical name
// (`fqdn`) and shortened at the first dot (`host`); without a reverse name
// both stay as typed. IPv4 and IPv6 addresses are both tried, in resolver order.
// With --tls the first TCP connection that opens is upgraded; a failed TLS
// handshake is final (the next address would present the same certificate).

import * as dns from 'node:dns/promises';
import * as net from 'node:net';
import type * as tls from 'node:tls';
import { ERR_LOCAL, RequestError, sysText } from './errors.js';
import { hostPort } from './args.js';
import { startTls, tlsErrorText } from './tls-setup.js';

export interface Endpoint {
  fqdn: string;
  host: string; // short name used in later messages
  port: number;
  tls: boolean;
}

async function canonicalName(address: string, port: number): Promise<string | undefined> {
  try {
    const { hostname } = await dns.lookupService(address, port);
    return hostname && hostname !== address ? hostname : undefined;
  } catch {
    return undefined;
  }
}

function tryConnect(address: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: address, port, allowHalfOpen: true });
    s.once('connect', () => {
      s.removeListener('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** `secure` set: the connection is TLS with that context. */
export async function connectToServer(
  host: string,
  port: number,
  secure?: tls.SecureContext,
): Promise<{ socket: net.Socket; ep: Endpoint }> {
  let addrs: { address: string }[];
  try {
    addrs = await dns.lookup(host, { all: true });
  } catch {
    addrs = [];
  }
  if (addrs.length === 0) throw new RequestError(ERR_LOCAL, `Unable to resolve host <${host}>`);

  const cname = await canonicalName(addrs[0].address, port);
  const ep: Endpoint = cname
    ? { fqdn: cname, host: cname.includes(':') ? cname : cname.split('.')[0], port, tls: Boolean(secure) }
    : { fqdn: host, host, port, tls: Boolean(secure) };
  const unable = (why: string): RequestError => new RequestError(ERR_LOCAL, `Unable to connect to <${hostPort(ep.fqdn, port)}>: ${why}`);

  let lastErr: unknown;
  for (const { address } of addrs) {
    let socket: net.Socket;
    try {
      socket = await tryConnect(address, port);
    } catch (e) {
      lastErr = e;
      continue;
    }
    socket.setNoDelay(true);
    if (!secure) return { socket, ep };
    try {
      return { socket: await startTls(socket, host, secure), ep };
    } catch (e) {
      socket.destroy();
      throw unable(tlsErrorText(e, true));
    }
  }
  throw unable(sysText(lastErr));
}

/**
 * Reads the handshake lines from the socket. Bytes after a line stay
 * buffered and are handed to whoever takes the socket next (session data
 * may follow the OK line in the same packet).
 */
export class LineReader {
  private buf = Buffer.alloc(0);
  private isEnded = false;
  private error: Error | undefined;
  private wake: (() => void) | undefined;
  private readonly onData = (d: Buffer): void => {
    this.buf = Buffer.concat([this.buf, d]);
    this.kick();
  };
  private readonly onEnd = (): void => {
    this.isEnded = true;
    this.kick();
  };
  private readonly onError = (e: Error): void => {
    this.error = e;
    this.isEnded = true;
    this.kick();
  };

  constructor(private readonly socket: net.Socket) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('error', this.onError);
  }

  private kick(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private waitMore(): Promise<void> {
    return new Promise((resolve) => (this.wake = resolve));
  }

  /** One line including its `\n`; a partial line at EOF; null at EOF with nothing read. */
  async readLine(maxLen = 131072): Promise<Buffer | null> {
    for (;;) {
      const nl = this.buf.indexOf(0x0a);
      if (nl >= 0 || this.buf.length >= maxLen) {
        const end = nl >= 0 ? nl + 1 : maxLen;
        const line = this.buf.subarray(0, end);
        this.buf = this.buf.subarray(end);
        return line;
      }
      if (this.isEnded) {
        if (this.error && this.buf.length === 0) throw this.error;
        const line = this.buf;
        this.buf = Buffer.alloc(0);
        return line.length ? line : null;
      }
      await this.waitMore();
    }
  }

  /** Everything the daemon still sends, until it closes (ERROR trailing lines). */
  async readToEnd(sink: (d: Buffer) => void): Promise<void> {
    for (;;) {
      if (this.buf.length) {
        sink(this.buf);
        this.buf = Buffer.alloc(0);
      }
      if (this.isEnded) return;
      await this.waitMore();
    }
  }

  /** True once the daemon closed its side (or the socket failed) while lines were read. */
  get ended(): boolean {
    return this.isEnded;
  }

  /** Stop reading lines; returns the bytes already received past the last line. */
  release(): Buffer {
    this.socket.removeListener('data', this.onData);
    this.socket.removeListener('end', this.onEnd);
    this.socket.removeListener('error', this.onError);
    const rest = this.buf;
    this.buf = Buffer.alloc(0);
    return rest;
  }
}

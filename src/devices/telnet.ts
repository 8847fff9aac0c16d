// A telnet console: conch is the telnet client of a terminal server port
// (`dev="host:port"`). Negotiation is RFC 1143 (telnet-options.ts); the byte
// stream handling is in telnet-codec.ts.

import * as net from 'node:net';
import type { Backoff, Device } from './device.js';
import { SocketDevice } from './socket-device.js';
import { BREAK_BYTES, TelnetCodec } from './telnet-codec.js';
import { bareHost } from './socket-util.js';

export interface TelnetDeviceOptions {
  /** SO_KEEPALIVE on the connection (conman `server keepalive=on`) */
  keepalive: boolean;
  /** give up an attempt after this long (default 30 s) */
  connectTimeoutMs?: number;
}

export class TelnetDevice extends SocketDevice implements Device {
  readonly type = 'telnet' as const;
  // conman: 15 s doubling to 30 min; 15 s up counts as healthy
  readonly backoff: Backoff = { minMs: 15000, maxMs: 1800000, healthyMs: 15000 };
  private codec = new TelnetCodec();
  private readonly host: string;

  constructor(
    private readonly spec: { host: string; port: number },
    private readonly opts: TelnetDeviceOptions = { keepalive: true },
  ) {
    super(opts.connectTimeoutMs);
    // accept an IPv6 literal with or without its brackets
    this.host = bareHost(spec.host);
  }

  label(): string {
    const h = this.host.includes(':') ? `[${this.host}]` : this.host;
    return `<${h}:${this.spec.port}>`;
  }

  sendBreak(): void {
    this.sendRaw(BREAK_BYTES);
  }

  protected override open(onread: net.OnReadOpts): net.Socket {
    this.codec = new TelnetCodec(); // negotiation starts afresh on every connection
    // net.connect resolves names asynchronously (getaddrinfo off the main thread)
    return net.connect({ host: this.host, port: this.spec.port, onread });
  }

  protected override opened(sock: net.Socket): void {
    if (this.opts.keepalive) sock.setKeepAlive(true);
    sock.setNoDelay(true); // keystrokes go out at once
    sock.write(this.codec.start());
  }

  protected override received(chunk: Buffer, sock: net.Socket): Buffer {
    const { data, reply } = this.codec.decode(chunk);
    if (reply.length > 0) sock.write(reply);
    return data;
  }

  protected override encode(data: Buffer): Buffer {
    return TelnetCodec.encode(data);
  }
}

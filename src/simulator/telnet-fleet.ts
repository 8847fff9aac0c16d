// Terminal-server mode: many TCP ports, each speaking minimal telnet
// (RFC 854) to one SimHost. Every client of a port sees the host's output;
// IAC BRK is a serial BREAK. Option negotiation: we offer WILL ECHO and
// WILL SUPPRESS-GO-AHEAD and refuse everything else.

import * as net from 'node:net';
import { bmcName } from './bmc-fleet.js';
import { SimHost } from './host.js';

const IAC = 255, DONT = 254, DO = 253, WONT = 252, WILL = 251, SB = 250, SE = 240, BRK = 243, AYT = 246;
const ECHO = 1, SGA = 3;

export interface TelnetEntry {
  name: string;
  address: string;
  port: number;
}

/** Per-connection telnet input state. */
class TelnetReader {
  private state: 'data' | 'iac' | 'opt' | 'sb' | 'sbiac' = 'data';
  private verb = 0;
  private lastCR = false;

  constructor(
    private readonly sock: net.Socket,
    private readonly host: SimHost,
  ) {}

  feed(b: Buffer): void {
    const data: number[] = [];
    const flush = (): void => {
      if (data.length) this.host.input(Buffer.from(data));
      data.length = 0;
    };
    for (const c of b) {
      switch (this.state) {
        case 'data':
          if (c === IAC) this.state = 'iac';
          else if (this.lastCR && (c === 0 || c === 10)) this.lastCR = false; // CR NUL / CR LF = CR
          else {
            this.lastCR = c === 13;
            data.push(c);
          }
          break;
        case 'iac':
          this.state = 'data';
          if (c === IAC) data.push(IAC);
          else if (c === BRK) {
            flush();
            this.host.breakSignal();
          } else if (c === AYT) this.sock.write('\r\n[yes]\r\n');
          else if (c === SB) this.state = 'sb';
          else if (c >= WILL && c <= DONT) {
            this.verb = c;
            this.state = 'opt';
          }
          break;
        case 'opt':
          this.state = 'data';
          this.negotiate(this.verb, c);
          break;
        case 'sb':
          if (c === IAC) this.state = 'sbiac';
          break;
        case 'sbiac':
          this.state = c === SE ? 'data' : 'sb';
          break;
      }
    }
    flush();
  }

  private negotiate(verb: number, opt: number): void {
    if (verb === DO && (opt === ECHO || opt === SGA)) return; // we offered these already
    if (verb === DO) this.sock.write(Buffer.from([IAC, WONT, opt]));
    else if (verb === WILL && opt !== SGA) this.sock.write(Buffer.from([IAC, DONT, opt]));
  }
}

/** Double IAC in host output. */
function escapeIac(s: string): Buffer {
  const b = Buffer.from(s, 'latin1');
  if (!b.includes(IAC)) return b;
  const out: number[] = [];
  for (const c of b) {
    out.push(c);
    if (c === IAC) out.push(IAC);
  }
  return Buffer.from(out);
}

export class TelnetFleet {
  readonly hosts: SimHost[] = [];
  readonly entries: TelnetEntry[] = [];
  private readonly servers: net.Server[] = [];
  private readonly clients: Set<net.Socket>[] = [];

  constructor(
    private readonly count: number,
    private readonly basePort: number,
    private readonly address: string,
    private readonly prefix: string,
    private readonly boot: boolean,
  ) {}

  /** Listen on every port; `drive` puts each host on the fleet clock. */
  async start(drive: (host: SimHost, index: number) => void): Promise<void> {
    for (let i = 1; i <= this.count; i++) {
      const name = bmcName(this.prefix, i, this.count); // the same numbering as the BMCs'
      const clients = new Set<net.Socket>();
      const host = new SimHost({ name, interval: 0, boot: this.boot }, (s) => {
        if (clients.size === 0) return;
        const b = escapeIac(s);
        for (const c of clients) c.write(b);
      });
      const srv = net.createServer((sock) => {
        clients.add(sock);
        sock.setNoDelay(true);
        sock.write(Buffer.from([IAC, WILL, ECHO, IAC, WILL, SGA]));
        const reader = new TelnetReader(sock, host);
        sock.on('data', (d: Buffer) => reader.feed(d));
        sock.on('error', () => {});
        sock.on('close', () => clients.delete(sock));
      });
      const port = this.basePort + i - 1;
      await new Promise<void>((resolve, reject) => {
        srv.once('error', (e) => reject(new Error(`${name}: cannot listen on TCP ${this.address}:${port}: ${e.message}`)));
        srv.listen(port, this.address, () => resolve());
      });
      srv.on('error', () => {});
      this.servers.push(srv);
      this.clients.push(clients);
      this.hosts.push(host);
      this.entries.push({ name, address: this.address, port });
      host.start();
      drive(host, i - 1);
    }
  }

  stop(): void {
    for (const h of this.hosts) h.stop();
    for (const set of this.clients) for (const c of set) c.destroy();
    for (const s of this.servers) s.close();
  }
}

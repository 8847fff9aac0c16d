// A raw client of conchd's wire protocol (plain TCP or TLS): what it sends
// byte for byte, everything it receives, and waits on both.

import type * as net from 'node:net';
import { waitFor, type Cleanup } from './wait.js';

export class RawClient {
  chunks: Buffer[] = [];
  size = 0;
  closed = false;
  private flat: Buffer | null = null;
  constructor(
    cleanup: Cleanup,
    readonly sock: net.Socket,
  ) {
    sock.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.size += d.length;
      this.flat = null;
    });
    sock.on('error', () => {});
    sock.on('close', () => (this.closed = true));
    cleanup.add(() => sock.destroy());
  }
  get data(): Buffer {
    this.flat ??= Buffer.concat(this.chunks);
    return this.flat;
  }
  get text(): string {
    return this.data.toString('latin1');
  }
  send(s: string | Buffer): void {
    this.sock.write(typeof s === 'string' ? Buffer.from(s, 'latin1') : s);
  }
  async has(needle: string | RegExp, what = String(needle)): Promise<string> {
    return waitFor(
      () => ((typeof needle === 'string' ? this.text.includes(needle) : needle.test(this.text)) ? this.text : ''),
      `${what} (got ${JSON.stringify(this.text.slice(-300))})`,
    );
  }
  async closedByServer(timeoutMs?: number): Promise<void> {
    await waitFor(() => this.closed, 'the server to close the connection', timeoutMs);
  }
}

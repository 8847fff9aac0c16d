// A DeviceHandler that records everything a device reports, for device tests.

import type { DeviceHandler } from '../../src/devices/device.js';

export class Recorder implements DeviceHandler {
  chunks: Buffer[] = [];
  bytes = 0;
  ups = 0;
  downs: string[] = [];
  notices: string[] = [];
  readies = 0;
  readyAt = 0;
  onData(b: Buffer): void {
    this.chunks.push(Buffer.from(b));
    this.bytes += b.length;
  }
  onUp(): void {
    this.ups++;
  }
  onDown(r: string): void {
    this.downs.push(r);
  }
  onReady(): void {
    this.readies++;
    this.readyAt = performance.now();
  }
  onNotice(t: string): void {
    this.notices.push(t);
  }
  /** everything received, in order */
  get data(): Buffer {
    return Buffer.concat(this.chunks);
  }
  get text(): string {
    return this.data.toString('latin1');
  }
}

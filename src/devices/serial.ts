// A serial console: a local tty device (/dev/ttyS0, a USB adaptor, a pty),
// opened raw with the configured speed and framing, no flow control, and an
// exclusive lock so that a second program cannot open it behind our back.
//
// The `serialport` package opens, configures and locks the port and sends
// breaks. Reading is done here, not by its stream: its read loop retries a
// zero-byte read forever, so a hung-up tty (USB adaptor unplugged, pty master
// gone) spins the CPU instead of reporting end-of-file.

import * as fs from 'node:fs';
import type * as Serialport from 'serialport';
import { INPUT_HIGH_WATER, type Backoff, type Device, type DeviceHandler } from './device.js';
import type { SerOpts } from '../config/types.js';
import { lazyRequire } from '../util/lazy-require.js';

/** The part of serialport's per-port binding that this module uses. */
interface PortBinding {
  fd: number | null;
  readonly poller: {
    once(event: 'readable' | 'writable', cb: (err: Error | null) => void): unknown;
    poll(mask: number): void;
  };
  set(o: { brk: boolean; dtr: boolean; rts: boolean }): Promise<void>;
  close(): Promise<void>;
}

interface OpenOptions {
  path: string;
  baudRate: number;
  dataBits: 5 | 6 | 7 | 8;
  parity: 'none' | 'even' | 'odd';
  stopBits: 1 | 2;
  lock: boolean;
  rtscts: boolean;
  xon: boolean;
  xoff: boolean;
  xany: boolean;
  hupcl: boolean;
  vmin: number;
  vtime: number;
}

/** serialport's native binding, loaded at the first serial console's first open */
const serialport = lazyRequire<typeof Serialport>('serialport');
const binding = (): { open(o: OpenOptions): Promise<PortBinding> } => serialport().SerialPort.binding as unknown as { open(o: OpenOptions): Promise<PortBinding> };

/** How long a break holds the line low; tcsendbreak(fd, 0) uses 0.25–0.5 s. */
const BREAK_MS = 250;
/** Bytes per read() call. */
const READ_SIZE = 65536;
/** Seconds of line time queued before write() says the port is full (pasting at 9600 baud: ~2 KB). */
const HIGH_WATER_SECONDS = 2;

export const DEFAULT_SEROPTS: SerOpts = { bps: 9600, dataBits: 8, parity: 'none', stopBits: 1 };

/** One attempt: the open port and what this attempt owns. */
interface Attempt {
  h: DeviceHandler;
  port: PortBinding | null;
  up: boolean;
  done: boolean;
  queue: Buffer[];
  queued: number;
  /** bytes of the chunk being written that the port has not taken yet */
  inflight: number;
  writing: boolean;
  /** write() returned false: onDrain when the queue is back under the low-water mark */
  full: boolean;
  /** the read or write call in flight: the fd is closed only after it returns */
  busy: Set<Promise<unknown>>;
  /** the open in progress; close() waits for it so that the port is really free after */
  opening: Promise<void> | null;
  /** poll() waits under way */
  waitRead: boolean;
  waitWrite: boolean;
}

export class SerialDevice implements Device {
  readonly type = 'serial' as const;
  // conman never retries a failed open; conch does, starting fast
  readonly backoff: Backoff = { minMs: 1000, maxMs: 60000, healthyMs: 15000 };
  private readonly path: string;
  private readonly opts: SerOpts;
  private cur: Attempt | null = null;
  private closing: Promise<void> | null = null;
  /** input queue marks: a few seconds of the line's speed, so a paused writer resumes soon */
  private readonly highWater: number;
  private readonly lowWater: number;

  constructor(spec: { path: string; opts?: SerOpts }) {
    this.path = spec.path;
    this.opts = spec.opts ?? DEFAULT_SEROPTS;
    const perSecond = Math.ceil(this.opts.bps / 10); // 8N1: 10 bits a byte
    this.highWater = Math.max(256, Math.min(INPUT_HIGH_WATER, perSecond * HIGH_WATER_SECONDS));
    this.lowWater = this.highWater >> 2;
  }

  label(): string {
    return `"${this.path}"`;
  }

  connect(h: DeviceHandler): void {
    // an old attempt still around is released quietly: the engine asked for a fresh one
    if (this.cur) void this.release(this.cur);
    const a: Attempt = { h, port: null, up: false, done: false, queue: [], queued: 0, inflight: 0, writing: false, full: false, busy: new Set(), opening: null, waitRead: false, waitWrite: false };
    this.cur = a;
    a.opening = this.open(a).catch(() => undefined);
  }

  write(buf: Buffer): boolean {
    const a = this.cur;
    if (!a || !a.up || a.done || buf.length === 0) return true;
    a.queue.push(Buffer.from(buf));
    a.queued += buf.length;
    if (!a.writing) void this.flush(a);
    if (a.queued + a.inflight < this.highWater) return true;
    a.full = true;
    return false;
  }

  queued(): number {
    const a = this.cur;
    return a && !a.done ? a.queued + a.inflight : 0;
  }

  sendBreak(): void {
    const a = this.cur;
    if (!a || !a.up || a.done || !a.port) return;
    const port = a.port;
    // TIOCSBRK, hold, TIOCCBRK: what tcsendbreak(fd, 0) does. The binding
    // also sets DTR/RTS with each call; keep them asserted as after open.
    // Failures are ignored (a pty has no break and no modem lines).
    port.set({ brk: true, dtr: true, rts: true }).catch(() => undefined);
    const t = setTimeout(() => {
      if (port.fd !== null) port.set({ brk: false, dtr: true, rts: true }).catch(() => undefined);
    }, BREAK_MS);
    t.unref();
  }

  close(): Promise<void> {
    const a = this.cur;
    this.cur = null;
    if (!a) return this.closing ?? Promise.resolve();
    return this.release(a);
  }

  // ---- internals ---------------------------------------------------------

  private async open(a: Attempt): Promise<void> {
    let reason: string | null = null;
    try {
      const st = await fs.promises.stat(this.path);
      if (!st.isCharacterDevice()) reason = `${this.label()}: not a character device`;
    } catch (e) {
      reason = `${this.label()}: ${errnoText(e)}`;
    }
    if (reason === null) {
      try {
        const port = await binding().open({
          path: this.path,
          baudRate: this.opts.bps,
          dataBits: this.opts.dataBits,
          parity: this.opts.parity,
          stopBits: this.opts.stopBits,
          lock: true,
          rtscts: false,
          xon: false,
          xoff: false,
          xany: false,
          // keep DTR up when we let go, so that a daemon restart does not reset the target
          hupcl: false,
          vmin: 1,
          vtime: 0,
        });
        if (a.done) {
          await port.close().catch(() => undefined);
          return;
        }
        a.port = port;
      } catch (e) {
        reason = `${this.label()}: ${openErrorText(e)}`;
      }
    }
    if (a.done) return;
    if (reason !== null) {
      this.down(a, reason);
      return;
    }
    a.up = true;
    safe(() => a.h.onUp());
    if (!a.done) void this.readLoop(a);
  }

  private async readLoop(a: Attempt): Promise<void> {
    const port = a.port!;
    const buf = Buffer.allocUnsafe(READ_SIZE);
    for (;;) {
      if (a.done || port.fd === null) return;
      let n: number;
      try {
        n = await track(a, readOnce(port.fd, buf));
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN' || code === 'EWOULDBLOCK' || code === 'EINTR') {
          try {
            await pollFor(a, port, 'readable');
          } catch {
            // poll() reported POLLHUP/POLLERR (libuv calls it "bad file descriptor")
            if (!a.done) this.down(a, `${this.label()} hung up (device gone or unplugged)`);
            return;
          }
          continue;
        }
        if (!a.done) this.down(a, `read error on ${this.label()}: ${errnoText(e)}`);
        return;
      }
      if (a.done) return;
      if (n === 0) {
        this.down(a, `end of file on ${this.label()} (device hung up or unplugged)`);
        return;
      }
      // a copy of exactly what was read: the read buffer is reused
      const data = Buffer.from(buf.subarray(0, n));
      safe(() => a.h.onData(data));
    }
  }

  private async flush(a: Attempt): Promise<void> {
    const port = a.port;
    if (!port) return;
    a.writing = true;
    while (!a.done && a.queue.length > 0) {
      const chunk = a.queue.length === 1 ? a.queue[0] : Buffer.concat(a.queue);
      a.queue = [];
      a.queued = 0;
      a.inflight = chunk.length;
      let off = 0;
      while (off < chunk.length) {
        if (a.done || port.fd === null) break;
        try {
          off += await track(a, writeOnce(port.fd, chunk, off));
          if (a.done) break;
          a.inflight = chunk.length - off;
          this.drained(a);
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === 'EAGAIN' || code === 'EWOULDBLOCK' || code === 'EINTR') {
            try {
              await pollFor(a, port, 'writable');
            } catch {
              if (!a.done) this.down(a, `${this.label()} hung up (device gone or unplugged)`);
              break;
            }
            continue;
          }
          if (!a.done) this.down(a, `write error on ${this.label()}: ${errnoText(e)}`);
          break;
        }
      }
    }
    a.writing = false;
    a.inflight = 0;
    this.drained(a);
  }

  /** Tell the engine the port takes input again, once under the low-water mark. */
  private drained(a: Attempt): void {
    if (!a.full || a.done || a.queued + a.inflight > this.lowWater) return;
    a.full = false;
    safe(() => a.h.onDrain?.());
  }

  /** End an attempt with onDown (once), releasing the port first. */
  private down(a: Attempt, reason: string): void {
    if (a.done) return;
    void this.release(a);
    if (this.cur === a) this.cur = null;
    safe(() => a.h.onDown(reason));
  }

  /** Release an attempt's port without reporting anything. */
  private release(a: Attempt): Promise<void> {
    a.done = true;
    a.up = false;
    a.queue = [];
    a.queued = 0;
    a.inflight = 0;
    a.full = false;
    const port = a.port;
    a.port = null;
    // an open still under way closes what it opened itself (it sees `done`);
    // a read still in the thread pool must not see the fd number reused by another file
    const p = Promise.allSettled([a.opening, ...a.busy]).then(async () => {
      if (port && port.fd !== null) await port.close().catch(() => undefined);
    });
    this.closing = p;
    return p;
  }
}

/** Run a handler callback; whatever it throws stays here (the daemon must not crash). */
function safe(fn: () => void): void {
  try {
    fn();
  } catch {
    /* the engine's own bug; nothing sensible to do from a device */
  }
}

function track<T>(a: Attempt, p: Promise<T>): Promise<T> {
  a.busy.add(p);
  const done = () => a.busy.delete(p);
  p.then(done, done);
  return p;
}

function readOnce(fd: number, buf: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.read(fd, buf, 0, buf.length, null, (err, n) => (err ? reject(err) : resolve(n)));
  });
}

function writeOnce(fd: number, buf: Buffer, off: number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.write(fd, buf, off, buf.length - off, null, (err, n) => (err ? reject(err) : resolve(n)));
  });
}

const UV_READABLE = 1;
const UV_WRITABLE = 2;

/**
 * Wait until the port is readable or writable. serialport's poller arms only
 * the event last asked for, so ask again for every event still awaited: a
 * write waiting for room must not stop the reading.
 */
function pollFor(a: Attempt, port: PortBinding, ev: 'readable' | 'writable'): Promise<void> {
  return new Promise((resolve, reject) => {
    const read = ev === 'readable';
    if (read) a.waitRead = true;
    else a.waitWrite = true;
    port.poller.once(ev, (err) => {
      if (read) a.waitRead = false;
      else a.waitWrite = false;
      if (err) reject(err);
      else resolve();
    });
    port.poller.poll((a.waitRead ? UV_READABLE : 0) | (a.waitWrite ? UV_WRITABLE : 0));
  });
}

/** "no such file or directory" from an errno-style error. */
function errnoText(e: unknown): string {
  const err = e as NodeJS.ErrnoException | null;
  switch (err?.code) {
    case 'ENOENT':
      return 'no such file or directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EIO':
      return 'input/output error';
    case 'ENXIO':
      return 'no such device';
    case 'ENODEV':
      return 'no such device';
  }
  return (err?.message ?? String(e)).replace(/^Error:?\s*/i, '');
}

/** The native binding's open errors are free text ("Error: <strerror>, cannot open <path>"). */
function openErrorText(e: unknown): string {
  const msg = String((e as Error)?.message ?? e);
  if (/cannot lock port/i.test(msg)) return 'in use by another program (cannot lock it)';
  const m = /^Error:?\s*(.*?), cannot open /i.exec(msg);
  if (m) return m[1].toLowerCase();
  return msg.replace(/^Error:?\s*/i, '');
}

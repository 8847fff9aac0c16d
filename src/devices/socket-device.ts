// The part of a socket console device that telnet and unix share: one
// connection attempt per connect(), a connect timeout, exactly one onDown per
// attempt, no handler calls after close(), and no exception ever escaping a
// socket callback.

import type * as net from 'node:net';
import { INPUT_HIGH_WATER, type DeviceHandler } from './device.js';
import { guarded, socketErrorReason } from './socket-util.js';

/** How long a connect may take before the attempt is given up. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 30000;

/**
 * Every socket console reads into this one buffer (net's `onread`), and the
 * bytes are copied out at their size: through the stream's 'data' events,
 * each read cost a 64 KiB allocation trimmed to size and a queued tick that
 * outlived the young generation (at 2,000 consoles, 84 % of what the main
 * thread promoted to the old generation). Reads are handled one at a time,
 * synchronously, so one buffer serves them all.
 */
const READ_BUF = Buffer.allocUnsafe(64 * 1024);

interface Attempt {
  sock: net.Socket;
  h: DeviceHandler;
  up: boolean;
  done: boolean;
  timer: NodeJS.Timeout | null;
  closed: Promise<void>;
  /** write() said the peer is not keeping up: report onDrain at the socket's next 'drain' */
  full: boolean;
}

export abstract class SocketDevice {
  private cur: Attempt | null = null;

  constructor(protected readonly connectTimeoutMs = DEFAULT_CONNECT_TIMEOUT_MS) {}

  abstract label(): string;

  /** Start connecting (net.connect with `onread`, the device's reader); may throw on invalid parameters. */
  protected abstract open(onread: net.OnReadOpts): net.Socket;

  /** The socket is connected; runs before onUp (telnet sends its requests here). */
  protected opened(_sock: net.Socket): void {}

  /** Bytes from the peer → console data (telnet strips its commands). */
  protected received(chunk: Buffer, _sock: net.Socket): Buffer {
    return chunk;
  }

  /** Console data → bytes for the peer (telnet doubles 0xFF). */
  protected encode(data: Buffer): Buffer {
    return data;
  }

  /** True while an attempt is in flight or the connection is up. */
  protected get busy(): boolean {
    return this.cur !== null;
  }

  /** Send raw bytes if up; dropped otherwise. */
  protected sendRaw(buf: Buffer): void {
    const a = this.cur;
    if (a && a.up && !a.done && buf.length > 0) a.sock.write(buf);
  }

  connect(h: DeviceHandler): void {
    if (this.cur) return; // one attempt at a time; the live one will report
    const where = `${this.label()}`;
    const report = (t: string) => h.onNotice(t);
    // the reader is the attempt's once it exists
    let read: ((n: number) => void) | null = null;
    let sock: net.Socket;
    try {
      sock = this.open({ buffer: READ_BUF, callback: (n) => (read?.(n), true) });
    } catch (e) {
      // bad parameters (e.g. a port out of range): still report asynchronously
      const reason = (e as Error)?.message ?? String(e);
      setImmediate(guarded(where, report, () => h.onDown(reason)));
      return;
    }
    const a: Attempt = {
      sock,
      h,
      up: false,
      done: false,
      timer: null,
      closed: new Promise((resolve) => sock.once('close', () => resolve())),
      full: false,
    };
    this.cur = a;
    const end = guarded(where, report, (reason: string) => this.end(a, reason));

    a.timer = setTimeout(() => end('connect timed out'), this.connectTimeoutMs);
    sock.once(
      'connect',
      guarded(where, report, () => {
        if (a.done) return;
        if (a.timer) clearTimeout(a.timer);
        a.timer = null;
        a.up = true;
        this.opened(sock);
        h.onUp();
      }),
    );
    read = guarded(where, report, (n: number) => {
      if (a.done || !a.up || n <= 0) return;
      // a buffer of its own (small ones from Node's pool): devices never reuse what they deliver
      const chunk = Buffer.allocUnsafe(n);
      READ_BUF.copy(chunk, 0, 0, n);
      const data = this.received(chunk, sock);
      if (data.length > 0) h.onData(data);
    });
    // the user-space queue is empty again (low-water mark 0: the kernel's buffer still holds plenty)
    sock.on(
      'drain',
      guarded(where, report, () => {
        if (!a.full || a.done) return;
        a.full = false;
        h.onDrain?.();
      }),
    );
    sock.on('error', (err: Error) => end(socketErrorReason(err)));
    sock.on('end', () => end('connection closed by peer'));
    sock.on('close', () => end(a.up ? 'connection closed' : 'connection failed'));
  }

  write(buf: Buffer): boolean {
    const a = this.cur;
    if (!a || !a.up || a.done) return true;
    try {
      this.sendRaw(this.encode(buf));
    } catch (e) {
      this.end(a, `write failed: ${(e as Error)?.message ?? String(e)}`);
      return true;
    }
    // over the mark the stream's own write() has returned false too, so 'drain' will come
    if (a.sock.writableLength < INPUT_HIGH_WATER) return true;
    a.full = true;
    return false;
  }

  queued(): number {
    const a = this.cur;
    return a && !a.done ? a.sock.writableLength : 0;
  }

  async close(): Promise<void> {
    const a = this.cur;
    this.cur = null;
    if (!a) return;
    a.done = true; // close() is the engine's doing: no onDown for it
    if (a.timer) clearTimeout(a.timer);
    a.sock.destroy();
    await a.closed;
  }

  /** End an attempt: exactly once, resources first, then the handler. */
  private end(a: Attempt, reason: string): void {
    if (a.done) return;
    a.done = true;
    if (a.timer) clearTimeout(a.timer);
    a.timer = null;
    a.sock.destroy();
    if (this.cur === a) this.cur = null;
    a.h.onDown(reason);
  }
}

// The part of a socket console device that telnet and unix share: one
// connection attempt per connect(), a connect timeout, exactly one onDown per
// attempt, no handler calls after close(), and no exception ever escaping a
// socket callback.

import type * as net from 'node:net';
import { INPUT_HIGH_WATER, type DeviceHandler } from './device.js';
import { guarded, reportFault, socketErrorReason } from './socket-util.js';

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

/**
 * One connection attempt and, once up, the connection. Its listeners are
 * methods (a telnet console is one of thousands: at 2,000 consoles the
 * closures an attempt made — a guard around each listener, a promise for its
 * close — were about 15 functions and their contexts per console, the
 * largest share of a telnet console's heap). Every listener catches what it
 * throws and reports it as a notice: nothing escapes a socket callback.
 */
class Attempt {
  up = false;
  done = false;
  /** the socket has emitted 'close' */
  closed = false;
  timer: NodeJS.Timeout | null = null;
  /** write() said the peer is not keeping up: report onDrain at the socket's next 'drain' */
  full = false;
  /** close() waits for the socket's 'close' */
  private onClosed: (() => void) | null = null;

  constructor(
    private readonly dev: SocketDevice,
    readonly sock: net.Socket,
    readonly h: DeviceHandler,
  ) {}

  listen(timeoutMs: number): void {
    this.timer = setTimeout(() => this.end('connect timed out'), timeoutMs);
    this.sock.once('connect', () => this.connected());
    // the user-space queue is empty again (low-water mark 0: the kernel's buffer still holds plenty)
    this.sock.on('drain', () => this.drained());
    this.sock.on('error', (err: Error) => this.end(socketErrorReason(err)));
    this.sock.on('end', () => this.end('connection closed by peer'));
    this.sock.on('close', () => {
      this.closed = true;
      this.onClosed?.();
      this.end(this.up ? 'connection closed' : 'connection failed');
    });
  }

  /** `n` bytes read into READ_BUF */
  read(n: number): void {
    if (this.done || !this.up || n <= 0) return;
    try {
      // a buffer of its own (small ones from Node's pool): devices never reuse what they deliver
      const chunk = Buffer.allocUnsafe(n);
      READ_BUF.copy(chunk, 0, 0, n);
      const data = this.dev.receivedFrom(chunk, this.sock);
      if (data.length > 0) this.h.onData(data);
    } catch (e) {
      this.fault(e);
    }
  }

  private connected(): void {
    if (this.done) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.up = true;
    try {
      this.dev.openedOn(this.sock);
      this.h.onUp();
    } catch (e) {
      this.fault(e);
    }
  }

  private drained(): void {
    if (!this.full || this.done) return;
    this.full = false;
    try {
      this.h.onDrain?.();
    } catch (e) {
      this.fault(e);
    }
  }

  /** End the attempt: exactly once, resources first, then the handler. */
  end(reason: string): void {
    if (this.done) return;
    this.done = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    try {
      this.sock.destroy();
      this.dev.ended(this);
      this.h.onDown(reason);
    } catch (e) {
      this.fault(e);
    }
  }

  /** The engine's close: no onDown; resolves once the socket has closed. */
  close(): Promise<void> {
    this.done = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.sock.destroy();
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => (this.onClosed = resolve));
  }

  /** what a listener threw, as a notice: nothing escapes a socket callback */
  private fault(e: unknown): void {
    reportFault(this.dev.label(), (t) => this.h.onNotice(t), e);
  }
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
    // the reader is the attempt's once it exists
    let a: Attempt | null = null;
    let sock: net.Socket;
    try {
      sock = this.open({ buffer: READ_BUF, callback: (n) => (a?.read(n), true) });
    } catch (e) {
      // bad parameters (e.g. a port out of range): still report asynchronously
      const reason = (e as Error)?.message ?? String(e);
      setImmediate(
        guarded(
          this.label(),
          (t) => h.onNotice(t),
          () => h.onDown(reason),
        ),
      );
      return;
    }
    a = new Attempt(this, sock, h);
    this.cur = a;
    a.listen(this.connectTimeoutMs);
  }

  /** (for the attempt) bytes from the peer → console data */
  receivedFrom(chunk: Buffer, sock: net.Socket): Buffer {
    return this.received(chunk, sock);
  }

  /** (for the attempt) it connected */
  openedOn(sock: net.Socket): void {
    this.opened(sock);
  }

  /** (for the attempt) it ended */
  ended(a: Attempt): void {
    if (this.cur === a) this.cur = null;
  }

  write(buf: Buffer): boolean {
    const a = this.cur;
    if (!a || !a.up || a.done) return true;
    try {
      this.sendRaw(this.encode(buf));
    } catch (e) {
      a.end(`write failed: ${(e as Error)?.message ?? String(e)}`);
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
    await a.close(); // the engine's doing: no onDown for it
  }
}

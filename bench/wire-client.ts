// A minimal conman-protocol client for the benchmark: TCP connect, greeting,
// CONNECT request, then raw session bytes with the daemon's notices removed.
// Kept independent of src/client so conchd and conmand are measured with the
// same, very thin, client.

import * as net from 'node:net';

export const now = (): number => Number(process.hrtime.bigint()) / 1e6;

/**
 * Removes `\r\n<ConMan> ... .\r\n` notices and bare CR/LF from the session
 * stream. The benchmark only ever sends letters, never `<`, so a `<` outside a
 * notice can only be the start of one; the notice runs to its LF.
 */
export class NoticeFilter {
  private inNotice = false;
  feed(chunk: Buffer): string {
    let out = '';
    for (const b of chunk) {
      if (this.inNotice) {
        if (b === 0x0a) this.inNotice = false;
      } else if (b === 0x3c) {
        this.inNotice = true;
      } else if (b !== 0x0d && b !== 0x0a) {
        out += String.fromCharCode(b);
      }
    }
    return out;
  }
}

export interface AttachTimes {
  /** TCP connect start -> `OK CONSOLE=...` line received (ms). */
  ok: number;
}

/** One session on one console; data after the OK line arrives through `onData`. */
export class WireClient {
  readonly sock: net.Socket;
  private buf = Buffer.alloc(0);
  private lineWaiter: ((line: string) => void) | null = null;
  private failWaiter: ((e: Error) => void) | null = null;
  private inSession = false;
  private filter = new NoticeFilter();
  private echoWaiter: { ch: string; resolve: () => void } | null = null;
  closed = false;

  private constructor(sock: net.Socket) {
    this.sock = sock;
    sock.setNoDelay(true);
    sock.on('data', (d: Buffer) => this.onData(d));
    const fail = (why: string) => {
      this.closed = true;
      this.failWaiter?.(new Error(why));
    };
    sock.on('error', (e) => fail(`socket error: ${e.message}`));
    sock.on('close', () => fail('connection closed by the daemon'));
  }

  /** Connect, greet and CONNECT OPTION=JOIN to `console`; times are from connect start. */
  static async attach(port: number, console: string, timeoutMs: number): Promise<{ client: WireClient; t0: number; times: AttachTimes }> {
    const t0 = now();
    const sock = net.connect({ port, host: '127.0.0.1' });
    const client = new WireClient(sock);
    try {
      await client.withTimeout(
        new Promise<void>((resolve, reject) => {
          sock.once('connect', () => resolve());
          sock.once('error', reject);
        }),
        timeoutMs,
        'TCP connect',
      );
      sock.write("HELLO USER='bench'\n");
      const hello = await client.readLine(timeoutMs, 'greeting reply');
      if (hello !== 'OK') throw new Error(`greeting refused: ${hello}`);
      sock.write(`CONNECT OPTION=JOIN CONSOLE='${console}'\n`);
      const rsp = await client.readLine(timeoutMs, 'CONNECT reply');
      if (!rsp.startsWith('OK')) throw new Error(`CONNECT refused: ${rsp}`);
      const ok = now() - t0;
      client.inSession = true;
      const rest = client.buf;
      client.buf = Buffer.alloc(0);
      if (rest.length) client.onSession(rest);
      return { client, t0, times: { ok } };
    } catch (e) {
      client.close();
      throw e;
    }
  }

  /** Write one printable byte and resolve when that byte comes back from the console. */
  async echo(ch: string, timeoutMs: number): Promise<number> {
    const t0 = now();
    const got = new Promise<void>((resolve) => (this.echoWaiter = { ch, resolve }));
    this.sock.write(ch, 'latin1');
    await this.withTimeout(got, timeoutMs, `echo of '${ch}' (last bytes received: ${JSON.stringify(this.tail)})`);
    return now() - t0;
  }

  close(): void {
    this.closed = true;
    this.sock.destroy();
  }

  private onData(d: Buffer): void {
    if (this.inSession) return this.onSession(d);
    this.buf = Buffer.concat([this.buf, d]);
    this.deliverLine();
  }

  /** The last session bytes received, for error messages. */
  private tail = '';

  private onSession(d: Buffer): void {
    this.tail = (this.tail + d.toString('latin1')).slice(-160);
    const text = this.filter.feed(d);
    const w = this.echoWaiter;
    // Stale letters from an earlier keystroke are skipped; only the awaited one counts.
    if (w && text.includes(w.ch)) {
      this.echoWaiter = null;
      w.resolve();
    }
  }

  private deliverLine(): void {
    if (!this.lineWaiter) return;
    const nl = this.buf.indexOf(0x0a);
    if (nl < 0) return;
    const line = this.buf.subarray(0, nl).toString('latin1').replace(/\r$/, '');
    this.buf = this.buf.subarray(nl + 1);
    const w = this.lineWaiter;
    this.lineWaiter = null;
    w(line);
  }

  private readLine(timeoutMs: number, what: string): Promise<string> {
    const p = new Promise<string>((resolve) => (this.lineWaiter = resolve));
    this.deliverLine();
    return this.withTimeout(p, timeoutMs, what);
  }

  private withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const done = (e: Error | null, v?: T) => {
        if (settled) return;
        settled = true;
        clearTimeout(t);
        this.failWaiter = null;
        if (e) reject(new Error(`${what}: ${e.message}`));
        else resolve(v as T);
      };
      const t = setTimeout(() => done(new Error(`no answer within ${ms} ms`)), ms);
      this.failWaiter = (e) => done(e);
      if (this.closed) done(new Error('connection closed'));
      p.then(
        (v) => done(null, v),
        (e: unknown) => done(e instanceof Error ? e : new Error(String(e))),
      );
    });
  }
}

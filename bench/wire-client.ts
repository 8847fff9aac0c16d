// A minimal conman-protocol client for the benchmark: TCP connect, greeting,
// CONNECT request, then raw session bytes with the daemon's notices removed.
// Kept independent of src/client so conchd and conmand are measured with the
// same, very thin, client.

import * as net from 'node:net';
import * as tls from 'node:tls';

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
  private echoWaiter: { chars: string; resolve: (ch: string) => void } | null = null;
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

  /** A TCP (or, with `secure`, TLS) connection to 127.0.0.1:`port`, not yet in a session. */
  private static async connect(port: number, timeoutMs: number, secure?: tls.ConnectionOptions): Promise<WireClient> {
    const sock = secure ? tls.connect({ ...secure, port, host: '127.0.0.1' }) : net.connect({ port, host: '127.0.0.1' });
    const client = new WireClient(sock);
    try {
      await client.withTimeout(
        new Promise<void>((resolve, reject) => {
          sock.once(secure ? 'secureConnect' : 'connect', () => resolve());
          sock.once('error', reject);
        }),
        timeoutMs,
        'TCP connect',
      );
      return client;
    } catch (e) {
      client.close();
      throw e;
    }
  }

  /** A plain TCP peer that echoes (no conman greeting): bytes are session bytes from the start. */
  static async raw(port: number, timeoutMs: number): Promise<WireClient> {
    const client = await WireClient.connect(port, timeoutMs);
    client.inSession = true;
    return client;
  }

  /** Connect, greet and CONNECT OPTION=JOIN to `console`; times are from connect start. */
  static async attach(
    port: number,
    console: string,
    timeoutMs: number,
    secure?: tls.ConnectionOptions & { greeting?: string },
  ): Promise<{ client: WireClient; t0: number; times: AttachTimes }> {
    const t0 = now();
    const client = await WireClient.connect(port, timeoutMs, secure);
    const sock = client.sock;
    try {
      sock.write(secure?.greeting ?? "HELLO USER='bench'\n");
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

  /** Write one printable byte; resolves with the round trip (ms) once that byte came back. */
  async echo(ch: string, timeoutMs: number): Promise<number> {
    const t0 = now();
    this.sock.write(ch, 'latin1');
    await this.awaitAny(ch, timeoutMs);
    return now() - t0;
  }

  /**
   * Type `letters` one at a time, the next one only if none came back within
   * `retryMs` (conmand 0.2.7 sometimes drops a keystroke sent just after its
   * OK). Resolves with how many keystrokes were lost before the first echo.
   */
  async firstEcho(letters: string, retryMs: number, timeoutMs: number): Promise<number> {
    const deadline = now() + timeoutMs;
    for (let i = 0; ; i++) {
      this.sock.write(letters[i]!, 'latin1');
      try {
        const got = await this.awaitAny(letters.slice(0, i + 1), Math.max(1, Math.min(retryMs, deadline - now())));
        return letters.indexOf(got);
      } catch (e) {
        if (this.closed || i + 1 >= letters.length || now() >= deadline) throw e;
      }
    }
  }

  /** Resolves with the first of `chars` read back; the error names the last bytes seen. */
  private async awaitAny(chars: string, timeoutMs: number): Promise<string> {
    const got = new Promise<string>((resolve) => (this.echoWaiter = { chars, resolve }));
    try {
      return await this.withTimeout(got, timeoutMs, `echo of '${chars}'`);
    } catch (e) {
      this.echoWaiter = null;
      throw new Error(`${e instanceof Error ? e.message : String(e)} (last bytes received: ${JSON.stringify(this.tail)})`);
    }
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
    if (!w) return;
    // Letters other than the awaited ones are stale echoes and are skipped.
    for (const ch of text) {
      if (w.chars.includes(ch)) {
        this.echoWaiter = null;
        w.resolve(ch);
        return;
      }
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

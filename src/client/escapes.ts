// Keyboard input → wire bytes, as conman's client does it. The user's escape
// character (default `&`) starts a two-key sequence; forwarded escapes go to
// the daemon as 0xFF + letter, local ones act here, `&&` sends one `&`, and
// `&` + anything else sends both keys. Every 0xFF data byte is doubled.
// In monitor mode no data is sent, only the escapes allowed there.

import type { SessionView } from './messages.js';

export const ESC_BYTE = 0xff;

/** What the session does for the local escapes. */
export interface EscapeActions {
  send(bytes: Buffer): void;
  close(): void; // &.
  help(): void; // &?
  info(): void; // &I
  toggleEcho(): void; // &E
  suspend(): void; // &Z
}

/** `bytes` with every 0xFF doubled (conman's byte stuffing). */
export function stuff(bytes: number[]): Buffer {
  const out: number[] = [];
  for (const b of bytes) {
    out.push(b);
    if (b === ESC_BYTE) out.push(ESC_BYTE);
  }
  return Buffer.from(out);
}

export class EscapeReader {
  private pending = false; // saw the escape character, waiting for the key

  constructor(
    private readonly escape: number,
    private readonly view: SessionView,
    private readonly act: EscapeActions,
  ) {}

  /** Feed keyboard bytes; data goes out in runs, escapes in order with it. */
  feed(chunk: Buffer): void {
    let data: number[] = [];
    const flush = (): void => {
      if (data.length && this.view.command === 'connect') this.act.send(stuff(data));
      data = [];
    };
    for (const c of chunk) {
      if (!this.pending && c === this.escape) {
        this.pending = true;
        continue;
      }
      if (this.pending) {
        this.pending = false;
        if (this.isEscapeKey(c)) {
          flush();
          this.escapeKey(c);
          continue;
        }
        if (c !== this.escape) data.push(this.escape);
      }
      data.push(c);
    }
    flush();
  }

  private isEscapeKey(c: number): boolean {
    return '.?BDEFIJLMQRZ'.includes(String.fromCharCode(c));
  }

  private wire(letter: string): void {
    this.act.send(Buffer.from([ESC_BYTE, letter.charCodeAt(0)]));
  }

  private escapeKey(c: number): void {
    const v = this.view;
    const rw = v.command === 'connect';
    const key = String.fromCharCode(c);
    switch (key) {
      case '.': return this.act.close();
      case '?': return this.act.help();
      case 'I': return this.act.info();
      case 'E': if (rw) this.act.toggleEcho(); return;
      case 'Z': return this.act.suspend();
      case 'B':
      case 'D':
        if (rw) this.wire(key);
        return;
      case 'F':
      case 'J':
        // R/O → R/W by stealing (F) or sharing (J) the console.
        if (v.command !== 'monitor') return;
        v.command = 'connect';
        return this.wire(key);
      case 'L':
        if (!v.broadcast) this.wire(key);
        return;
      case 'M':
        if (!rw || v.broadcast) return;
        v.command = 'monitor';
        return this.wire(key);
      case 'Q':
        v.quiet = !v.quiet;
        return this.wire(key);
      case 'R':
        if (rw && v.reset) this.wire(key);
        return;
    }
  }
}

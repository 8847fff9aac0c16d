// The telnet byte stream toward a terminal server: splits what the peer sends
// into console data and commands (streaming: a command may be split across
// reads), answers option negotiation through TelnetOptions, and escapes what
// we send. Never throws on any input.

import { BRK, DO, DONT, IAC, OPT_BINARY, SB, SE, TelnetOptions, WILL, WONT } from './telnet-options.js';

/** A subnegotiation longer than this is abandoned (a peer that never sends IAC SE). */
const MAX_SB_BYTES = 4096;

type ParseState = 'data' | 'iac' | 'opt' | 'sb' | 'sbIac';

export interface Decoded {
  /** console data, commands removed */
  data: Buffer;
  /** negotiation replies to send to the peer (may be empty) */
  reply: Buffer;
}

export const BREAK_BYTES: Buffer = Buffer.from([IAC, BRK]);

export class TelnetCodec {
  readonly options: TelnetOptions;
  private state: ParseState = 'data';
  private cmd = 0;
  private sbBytes = 0;
  /** last data byte was CR (for CR NUL → CR when not in binary mode) */
  private afterCR = false;

  constructor(options = new TelnetOptions()) {
    this.options = options;
  }

  /** Our opening requests. */
  start(): Buffer {
    return Buffer.from(this.options.start());
  }

  /** Escape outgoing console data: every 0xFF is sent as IAC IAC. */
  static encode(data: Buffer): Buffer {
    const first = data.indexOf(IAC);
    if (first < 0) return data;
    let n = 0;
    for (let i = first; i < data.length; i++) if (data[i] === IAC) n++;
    const out = Buffer.allocUnsafe(data.length + n);
    let o = 0;
    for (let i = 0; i < data.length; i++) {
      const b = data[i];
      out[o++] = b;
      if (b === IAC) out[o++] = IAC;
    }
    return out;
  }

  decode(chunk: Buffer): Decoded {
    const binary = this.options.himState(OPT_BINARY) === 'YES';
    // fast path: plain data with nothing to interpret
    if (this.state === 'data' && chunk.indexOf(IAC) < 0 && (binary || chunk.indexOf(0) < 0)) {
      if (chunk.length > 0) this.afterCR = chunk[chunk.length - 1] === 0x0d;
      return { data: chunk, reply: EMPTY };
    }

    const data = Buffer.allocUnsafe(chunk.length + 1); // +1: a stray IAC may be kept as data
    let d = 0;
    const reply: number[] = [];
    const put = (b: number) => {
      // RFC 854: outside binary mode a bare CR is sent as CR NUL; drop the NUL
      if (b === 0 && this.afterCR && !binary) {
        this.afterCR = false;
        return;
      }
      this.afterCR = b === 0x0d;
      data[d++] = b;
    };

    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      switch (this.state) {
        case 'data':
          if (b === IAC) this.state = 'iac';
          else put(b);
          break;
        case 'iac':
          this.command(b, put);
          break;
        case 'opt':
          reply.push(...this.options.receive(this.cmd, b));
          this.state = 'data';
          break;
        case 'sb':
          if (b === IAC) this.state = 'sbIac';
          else if (++this.sbBytes > MAX_SB_BYTES) this.state = 'data';
          break;
        case 'sbIac':
          if (b === SE) this.state = 'data';
          else if (b === IAC) this.state = 'sb'; // an escaped 0xFF inside the subnegotiation
          else this.command(b, put); // a malformed SB: treat the byte as a command after IAC
          break;
      }
    }
    return { data: data.subarray(0, d), reply: reply.length ? Buffer.from(reply) : EMPTY };
  }

  /** The byte after an IAC. */
  private command(b: number, put: (b: number) => void): void {
    if (b === IAC) {
      put(IAC); // IAC IAC: a data 0xFF
      this.state = 'data';
    } else if (b === WILL || b === WONT || b === DO || b === DONT) {
      this.cmd = b;
      this.state = 'opt';
    } else if (b === SB) {
      this.sbBytes = 0;
      this.state = 'sb';
    } else if (b >= SE) {
      // NOP, DM, BRK, IP, AO, AYT, EC, EL, GA, stray SE: nothing for a console
      this.state = 'data';
    } else {
      // not a telnet command: a peer that does not double 0xFF; keep both bytes
      put(IAC);
      put(b);
      this.state = 'data';
    }
  }
}

const EMPTY = Buffer.alloc(0);

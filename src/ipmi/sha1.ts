// HMAC-SHA1 (RFC 2104 over FIPS 180-4 SHA-1) for the per-packet AuthCode of
// cipher suites 1-3, with no allocation per packet. node:crypto returns a new
// Buffer from every digest (two per HMAC); at thousands of SOL packets a
// second they were the largest share of an IPMI thread's garbage and so of
// its collection pauses, which a keystroke's echo waits behind. The key's
// padded blocks are hashed once per session: a packet costs its own blocks
// plus one. Checked against node:crypto in test/ipmi-crypto.test.ts.

const K0 = 0x5a827999;
const K1 = 0x6ed9eba1;
const K2 = 0x8f1bbcdc | 0;
const K3 = 0xca62c1d6 | 0;

/** SHA-1's state after some whole blocks, and the compression of one more */
class Sha1State {
  readonly h = new Int32Array(5);
  private readonly w = new Int32Array(80);

  reset(from?: Int32Array): void {
    if (from) this.h.set(from);
    else this.h.set([0x67452301, 0xefcdab89 | 0, 0x98badcfe | 0, 0x10325476, 0xc3d2e1f0 | 0]);
  }

  /** one 64-byte block of `b` from offset `o` */
  block(b: Uint8Array, o: number): void {
    const w = this.w;
    for (let i = 0; i < 16; i++, o += 4) w[i] = (b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!;
    for (let i = 16; i < 80; i++) {
      const x = w[i - 3]! ^ w[i - 8]! ^ w[i - 14]! ^ w[i - 16]!;
      w[i] = (x << 1) | (x >>> 31);
    }
    const h = this.h;
    let a = h[0]!;
    let bb = h[1]!;
    let c = h[2]!;
    let d = h[3]!;
    let e = h[4]!;
    for (let i = 0; i < 80; i++) {
      let f: number;
      let k: number;
      if (i < 20) {
        f = (bb & c) | (~bb & d);
        k = K0;
      } else if (i < 40) {
        f = bb ^ c ^ d;
        k = K1;
      } else if (i < 60) {
        f = (bb & c) | (bb & d) | (c & d);
        k = K2;
      } else {
        f = bb ^ c ^ d;
        k = K3;
      }
      const t = (((a << 5) | (a >>> 27)) + f + e + k + w[i]!) | 0;
      e = d;
      d = c;
      c = (bb << 30) | (bb >>> 2);
      bb = a;
      a = t;
    }
    h[0] = (h[0]! + a) | 0;
    h[1] = (h[1]! + bb) | 0;
    h[2] = (h[2]! + c) | 0;
    h[3] = (h[3]! + d) | 0;
    h[4] = (h[4]! + e) | 0;
  }
}

/** HMAC-SHA1 with one key: digest() writes the 20-byte MAC into a buffer of its own, valid until the next call */
export class HmacSha1 {
  private readonly inner0 = new Int32Array(5);
  private readonly outer0 = new Int32Array(5);
  private readonly s = new Sha1State();
  /** the last block(s) of a message: its tail, 0x80, zeros, the length in bits */
  private readonly tail = new Uint8Array(128);
  readonly out = Buffer.alloc(20);

  /** `key`: at most 64 bytes (IPMI's K1 and SIK are 20) */
  constructor(key: Uint8Array) {
    if (key.length > 64) throw new RangeError('HmacSha1: keys longer than one block are not supported');
    const pad = new Uint8Array(64);
    for (const [into, x] of [[this.inner0, 0x36], [this.outer0, 0x5c]] as const) {
      pad.fill(x);
      for (let i = 0; i < key.length; i++) pad[i] = key[i]! ^ x;
      this.s.reset();
      this.s.block(pad, 0);
      into.set(this.s.h);
    }
  }

  digest(data: Uint8Array): Buffer {
    // inner: H(K^ipad | data), the pad's block already hashed
    this.s.reset(this.inner0);
    this.finish(data, 64 + data.length);
    // outer: H(K^opad | inner), one block
    const t = this.tail;
    this.put(t, 0);
    this.s.reset(this.outer0);
    t[20] = 0x80;
    t.fill(0, 21, 62);
    t[62] = ((64 + 20) * 8) >>> 8;
    t[63] = ((64 + 20) * 8) & 0xff;
    this.s.block(t, 0);
    this.put(this.out, 0);
    return this.out;
  }

  /** hash `b` and the padding for a message of `total` bytes in all (what came before `b`: whole blocks, hashed) */
  private finish(b: Uint8Array, total: number): void {
    const len = b.length;
    let o = 0;
    for (; o + 64 <= len; o += 64) this.s.block(b, o);
    const rest = len - o;
    const t = this.tail;
    for (let i = 0; i < rest; i++) t[i] = b[o + i]!;
    t[rest] = 0x80;
    const end = rest + 1 + 8 <= 64 ? 64 : 128;
    t.fill(0, rest + 1, end - 8);
    // bit length, big-endian in 8 bytes (a packet is far below 2^32 bits)
    const bits = total * 8;
    t[end - 8] = 0;
    t[end - 7] = 0;
    t[end - 6] = 0;
    t[end - 5] = Math.floor(bits / 2 ** 32) & 0xff;
    t[end - 4] = (bits >>> 24) & 0xff;
    t[end - 3] = (bits >>> 16) & 0xff;
    t[end - 2] = (bits >>> 8) & 0xff;
    t[end - 1] = bits & 0xff;
    this.s.block(t, 0);
    if (end === 128) this.s.block(t, 64);
  }

  /** the state's five words, big-endian, at `at` */
  private put(into: Uint8Array, at: number): void {
    const h = this.s.h;
    for (let i = 0; i < 5; i++, at += 4) {
      const v = h[i]!;
      into[at] = v >>> 24;
      into[at + 1] = (v >>> 16) & 0xff;
      into[at + 2] = (v >>> 8) & 0xff;
      into[at + 3] = v & 0xff;
    }
  }
}

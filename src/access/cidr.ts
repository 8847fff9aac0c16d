// IPv4 and IPv6 addresses and CIDR blocks for the rules' `from=`. A client on
// a dual-stack socket shows up as `::ffff:10.0.0.1`; such IPv4-mapped
// addresses (in clients and in rules) are turned into plain IPv4 first, so
// `from=10.0.0.0/8` matches them.

import { isIPv4, isIPv6 } from 'node:net';

export interface Ip {
  v: 4 | 6;
  bytes: Uint8Array;
}

function v4bytes(s: string): Uint8Array | null {
  return isIPv4(s) ? Uint8Array.from(s.split('.').map(Number)) : null;
}

/** 16 bytes of an IPv6 address without a zone (`::`, embedded dotted quad). */
function v6bytes(text: string): Uint8Array | null {
  if (!isIPv6(text)) return null;
  let s = text;
  let tail: Uint8Array | null = null;
  const last = s.lastIndexOf(':');
  if (s.slice(last + 1).includes('.')) {
    tail = v4bytes(s.slice(last + 1));
    if (!tail) return null;
    s = `${s.slice(0, last + 1)}0:0`; // two 16-bit words, overwritten below
  }
  const halves = s.split('::');
  const words = (h: string): string[] => (h === '' ? [] : h.split(':'));
  const head = words(halves[0]!);
  const rest = halves.length > 1 ? words(halves[1]!) : [];
  const all = [...head, ...Array<string>(8 - head.length - rest.length).fill('0'), ...rest];
  if (all.length !== 8) return null;
  const out = new Uint8Array(16);
  all.forEach((w, i) => {
    const n = parseInt(w, 16);
    out[2 * i] = n >> 8;
    out[2 * i + 1] = n & 0xff;
  });
  if (tail) out.set(tail, 12);
  return out;
}

const isMapped = (b: Uint8Array): boolean => b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;

/** Parse without folding IPv4-mapped addresses. */
function parseRaw(s: string): Ip | null {
  const b4 = v4bytes(s);
  if (b4) return { v: 4, bytes: b4 };
  const b6 = v6bytes(s);
  return b6 ? { v: 6, bytes: b6 } : null;
}

/** A client address (a zone such as `%eth0` is ignored); IPv4-mapped becomes IPv4. null: not an address. */
export function parseIp(text: string): Ip | null {
  const ip = parseRaw(text.replace(/%.*$/, ''));
  if (ip && ip.v === 6 && isMapped(ip.bytes)) return { v: 4, bytes: ip.bytes.slice(12) };
  return ip;
}

/** `a.b.c.d/n`, `x::y/n` or a bare address (a block of one). */
export class Cidr {
  private constructor(
    readonly ip: Ip,
    readonly prefix: number,
  ) {}

  /** Throws an Error saying what is wrong with `text`. */
  static parse(text: string): Cidr {
    const slash = text.indexOf('/');
    const addr = slash < 0 ? text : text.slice(0, slash);
    const ip = addr.includes('%') ? null : parseRaw(addr);
    if (!ip) throw new Error(`bad address "${text}"; expected an IPv4 or IPv6 address or CIDR such as 10.0.0.0/8 or fd00::/8`);
    const max = ip.v === 4 ? 32 : 128;
    let prefix = max;
    if (slash >= 0) {
      const p = text.slice(slash + 1);
      if (!/^\d{1,3}$/.test(p) || Number(p) > max) throw new Error(`bad prefix length "/${p}" in "${text}"; expected 0 to ${max} for IPv${ip.v}`);
      prefix = Number(p);
    }
    // a rule written as ::ffff:10.0.0.0/104 means 10.0.0.0/8
    if (ip.v === 6 && prefix >= 96 && isMapped(ip.bytes)) return new Cidr({ v: 4, bytes: ip.bytes.slice(12) }, prefix - 96);
    return new Cidr(ip, prefix);
  }

  contains(ip: Ip): boolean {
    if (ip.v !== this.ip.v) return false;
    const full = this.prefix >> 3;
    for (let i = 0; i < full; i++) if (ip.bytes[i] !== this.ip.bytes[i]) return false;
    const bits = this.prefix & 7;
    if (bits === 0) return true;
    const mask = (0xff << (8 - bits)) & 0xff;
    return (ip.bytes[full]! & mask) === (this.ip.bytes[full]! & mask);
  }
}

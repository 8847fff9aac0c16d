// Cipher suites and the RMCP+ key material: RAKP auth codes, SIK, K1/K2,
// per-packet integrity codes and AES-CBC-128 with IPMI's padding
// (IPMI v2.0 §13.28–13.32 for the algorithms and key derivation, §22.15.2
// for the cipher suite IDs). Keys live only in Buffers inside a CipherState.

import * as crypto from 'node:crypto';
import { HmacSha1 } from './sha1.js';
import { IpmiDecodeError } from './errors.js';

// IVs come from a pooled random buffer: one getrandom() per 256 packets
// instead of one per packet.
const IV_POOL = 4096;
let ivPool = Buffer.alloc(0);
let ivAt = IV_POOL;
function randomIv(): Buffer {
  if (ivAt >= ivPool.length) {
    ivPool = crypto.randomBytes(IV_POOL);
    ivAt = 0;
  }
  ivAt += 16;
  return ivPool.subarray(ivAt - 16, ivAt);
}

export type AuthAlg = 'none' | 'hmac-sha1' | 'hmac-sha256';
export type IntegrityAlg = 'none' | 'hmac-sha1-96' | 'hmac-sha256-128';
export type ConfAlg = 'none' | 'aes-cbc-128';

export interface CipherSuite {
  id: number;
  auth: AuthAlg;
  integrity: IntegrityAlg;
  conf: ConfAlg;
}

/** Algorithm numbers as they appear in Open Session (spec Table 13-17..19). */
export const AUTH_ALG_NUM: Record<AuthAlg, number> = { none: 0, 'hmac-sha1': 1, 'hmac-sha256': 3 };
export const INTEGRITY_ALG_NUM: Record<IntegrityAlg, number> = { none: 0, 'hmac-sha1-96': 1, 'hmac-sha256-128': 4 };
export const CONF_ALG_NUM: Record<ConfAlg, number> = { none: 0, 'aes-cbc-128': 1 };

export const CIPHER_SUITES: Record<number, CipherSuite> = {
  0: { id: 0, auth: 'none', integrity: 'none', conf: 'none' },
  1: { id: 1, auth: 'hmac-sha1', integrity: 'none', conf: 'none' },
  2: { id: 2, auth: 'hmac-sha1', integrity: 'hmac-sha1-96', conf: 'none' },
  3: { id: 3, auth: 'hmac-sha1', integrity: 'hmac-sha1-96', conf: 'aes-cbc-128' },
  17: { id: 17, auth: 'hmac-sha256', integrity: 'hmac-sha256-128', conf: 'aes-cbc-128' },
};

export function cipherSuite(id: number): CipherSuite {
  const s = CIPHER_SUITES[id];
  if (!s) throw new Error(`IPMI cipher suite ${id} is not implemented (supported: ${Object.keys(CIPHER_SUITES).join(', ')})`);
  return s;
}

function hashOf(auth: AuthAlg): 'sha1' | 'sha256' {
  return auth === 'hmac-sha256' ? 'sha256' : 'sha1';
}

export function hmac(hash: 'sha1' | 'sha256', key: Buffer, ...parts: Buffer[]): Buffer {
  const h = crypto.createHmac(hash, key);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** Length of the RAKP2 key-exchange auth code for an auth algorithm. */
export function rakpCodeLength(auth: AuthAlg): number {
  return auth === 'none' ? 0 : auth === 'hmac-sha1' ? 20 : 32;
}

/** Length of the RAKP4 integrity check value. */
export function rakp4IcvLength(auth: AuthAlg): number {
  return auth === 'none' ? 0 : auth === 'hmac-sha1' ? 12 : 16;
}

/** Length of the per-packet AuthCode. */
export function authCodeLength(integ: IntegrityAlg): number {
  return integ === 'none' ? 0 : integ === 'hmac-sha1-96' ? 12 : 16;
}

/** The values both sides contribute during RAKP, all as on the wire. */
export interface RakpInputs {
  sidM: number;
  sidC: number;
  rM: Buffer;
  rC: Buffer;
  guidC: Buffer;
  /** the whole ROLEm byte sent in RAKP1, name-only bit included */
  role: number;
  user: Buffer;
}

const u32le = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};
const userPart = (i: RakpInputs): Buffer => Buffer.concat([Buffer.from([i.role, i.user.length]), i.user]);

/** HMAC(Kuid, SIDm | SIDc | Rm | Rc | GUIDc | ROLEm | ULENm | UNAMEm) */
export function rakp2Code(auth: AuthAlg, kuid: Buffer, i: RakpInputs): Buffer {
  if (auth === 'none') return Buffer.alloc(0);
  return hmac(hashOf(auth), kuid, u32le(i.sidM), u32le(i.sidC), i.rM, i.rC, i.guidC, userPart(i));
}

/** HMAC(Kuid, Rc | SIDm | ROLEm | ULENm | UNAMEm) */
export function rakp3Code(auth: AuthAlg, kuid: Buffer, i: RakpInputs): Buffer {
  if (auth === 'none') return Buffer.alloc(0);
  return hmac(hashOf(auth), kuid, i.rC, u32le(i.sidM), userPart(i));
}

/** HMAC(KG, Rm | Rc | ROLEm | ULENm | UNAMEm); KG defaults to Kuid. */
export function sessionIntegrityKey(auth: AuthAlg, kg: Buffer, i: RakpInputs): Buffer {
  if (auth === 'none') return Buffer.alloc(0);
  return hmac(hashOf(auth), kg, i.rM, i.rC, userPart(i));
}

/** first 12/16 bytes of HMAC(SIK, Rm | SIDc | GUIDc) */
export function rakp4Icv(auth: AuthAlg, sik: Buffer, i: RakpInputs): Buffer {
  if (auth === 'none') return Buffer.alloc(0);
  return hmac(hashOf(auth), sik, i.rM, u32le(i.sidC), i.guidC).subarray(0, rakp4IcvLength(auth));
}

/** K_n = HMAC(SIK, n × 20); the constant stays 20 bytes for SHA-256 too. */
export function deriveK(auth: AuthAlg, sik: Buffer, n: 1 | 2): Buffer {
  if (auth === 'none') return Buffer.alloc(0);
  return hmac(hashOf(auth), sik, Buffer.alloc(20, n));
}

/** Constant-time comparison that tolerates different lengths. */
export function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

/** Keys and algorithms of one established session. */
export class CipherState {
  readonly aesKey: Buffer;
  readonly authCodeLength: number;
  // One long-lived AES context per direction (see encrypt and decrypt):
  // creating a CBC cipher object per packet cost more than the AES itself.
  private cbcEnc: crypto.Cipher | null = null;
  /** the last ciphertext block cbcEnc produced: where its chain stands (it starts at the zero IV) */
  private readonly chain = Buffer.alloc(16);
  private ecbDec: crypto.Decipher | null = null;
  constructor(
    readonly suite: CipherSuite,
    readonly k1: Buffer,
    k2: Buffer,
  ) {
    this.aesKey = suite.conf === 'aes-cbc-128' ? Buffer.from(k2.subarray(0, 16)) : Buffer.alloc(0);
    this.authCodeLength = authCodeLength(suite.integrity);
  }

  get integrity(): boolean {
    return this.suite.integrity !== 'none';
  }
  get confidential(): boolean {
    return this.suite.conf !== 'none';
  }

  /** the truncated AuthCode over `data` (packet bytes from offset 4 through Next Header); valid until the next call */
  authCode(data: Buffer): Buffer {
    const integ = this.suite.integrity;
    if (integ === 'none') return Buffer.alloc(0);
    if (integ === 'hmac-sha1-96') {
      // suites 1-3: no allocation per packet (sha1.ts)
      this.sha1 ??= new HmacSha1(this.k1);
      this.sha1.digest(data);
      return (this.sha1Code ??= this.sha1.out.subarray(0, this.authCodeLength));
    }
    this.mac ??= new PacketMac(this.k1);
    return this.mac.digest(data).subarray(0, this.authCodeLength);
  }
  private mac: PacketMac | null = null;
  private sha1: HmacSha1 | null = null;
  private sha1Code: Buffer | null = null;

  /** Length of encrypt(payload) for a payload of n bytes: IV, then whole blocks. */
  encryptedLength(n: number): number {
    return this.confidential ? 16 + (Math.floor(n / 16) + 1) * 16 : n;
  }

  /** IV | AES-CBC(K2, IV, payload | 01 02 .. N | N), written into `out` at `at` when given */
  encrypt(payload: Buffer, iv: Buffer = randomIv(), out?: Buffer, at = 0): Buffer {
    if (!this.confidential) return payload;
    const total = this.encryptedLength(payload.length);
    const dst = out ?? Buffer.allocUnsafe(total);
    const field = dst.subarray(at, at + total);
    iv.copy(field, 0, 0, 16);
    payload.copy(field, 16);
    // confidentiality pad 01 02 .. N, then N
    const n = total - 16 - payload.length - 1;
    for (let i = 0; i < n; i++) field[16 + payload.length + i] = i + 1;
    field[total - 1] = n;
    // One long-lived CBC context serves every packet: it chains each call
    // from the last ciphertext block it produced (`chain`), so the first
    // block goes in as P1 ^ IV ^ chain and comes out as AES(P1 ^ IV), as a
    // fresh context started at IV would give; the rest chain as usual.
    // A cipher object per packet cost more than the AES itself.
    const cbc = (this.cbcEnc ??= cbcCipher(this.aesKey));
    const chain = this.chain;
    for (let i = 0; i < 16; i++) field[16 + i] ^= field[i]! ^ chain[i]!;
    const c = cbc.update(field.subarray(16));
    c.copy(field, 16);
    c.copy(chain, 0, c.length - 16);
    return field;
  }

  /** inverse of encrypt; accepts pad lengths up to 16 (OpenBMC) and does not insist on pad contents */
  decrypt(field: Buffer): Buffer {
    if (!this.confidential) return field;
    if (field.length < 32 || field.length % 16 !== 0) {
      throw new IpmiDecodeError('encrypted payload', `length ${field.length} is not IV plus whole AES blocks`);
    }
    const ecb = (this.ecbDec ??= ecbDecipher(this.aesKey));
    // ECB-decrypt all blocks at once, then undo the chaining
    const plain = ecb.update(field.subarray(16));
    for (let i = 0; i < plain.length; i++) plain[i] ^= field[i];
    const n = plain[plain.length - 1];
    if (n > 16 || n + 1 > plain.length) throw new IpmiDecodeError('encrypted payload', `bad confidentiality pad length ${n}`);
    return plain.subarray(0, plain.length - 1 - n);
  }
}

/**
 * HMAC-SHA256 (RFC 2104) for suite 17's per-packet AuthCode: H(K^opad |
 * H(K^ipad | data)) with the padded keys kept, on one-shot crypto.hash. A
 * createHmac object per packet cost more in allocation and garbage collection
 * than the hashing. (HMAC-SHA1, suites 1-3: sha1.ts, no allocation at all.)
 */
class PacketMac {
  private readonly alg = 'sha256';
  private inner: Buffer; // K^ipad | data
  private readonly outer: Buffer; // K^opad | inner digest
  constructor(key: Buffer) {
    const k = key.length > 64 ? crypto.createHash(this.alg).update(key).digest() : key;
    const len = 32;
    this.inner = Buffer.alloc(64 + 256, 0x36);
    this.outer = Buffer.alloc(64 + len, 0x5c);
    for (let i = 0; i < k.length; i++) {
      this.inner[i] = 0x36 ^ k[i]!;
      this.outer[i] = 0x5c ^ k[i]!;
    }
  }

  digest(data: Buffer): Buffer {
    if (!oneShotHash) return hmac(this.alg, this.outerKey(), data);
    if (64 + data.length > this.inner.length) {
      const bigger = Buffer.alloc(64 + data.length * 2);
      this.inner.copy(bigger, 0, 0, 64);
      this.inner = bigger;
    }
    data.copy(this.inner, 64);
    oneShotHash(this.alg, this.inner.subarray(0, 64 + data.length), 'buffer').copy(this.outer, 64);
    return oneShotHash(this.alg, this.outer, 'buffer');
  }

  /** the original key, for the fallback (Node < 20.12 has no crypto.hash) */
  private outerKey(): Buffer {
    const k = Buffer.alloc(64);
    for (let i = 0; i < 64; i++) k[i] = this.outer[i]! ^ 0x5c;
    return k;
  }
}
const oneShotHash = (crypto as { hash?: (alg: string, data: Buffer, enc: 'buffer') => Buffer }).hash;

// With padding off, update() returns every whole block at once; the CBC
// context keeps only its chain block between calls, the ECB one nothing.
function cbcCipher(key: Buffer): crypto.Cipher {
  const c = crypto.createCipheriv('aes-128-cbc', key, Buffer.alloc(16));
  c.setAutoPadding(false);
  return c;
}
function ecbDecipher(key: Buffer): crypto.Decipher {
  const d = crypto.createDecipheriv('aes-128-ecb', key, null);
  d.setAutoPadding(false);
  return d;
}

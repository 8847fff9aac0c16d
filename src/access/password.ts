// Password hashes for the users file: scrypt from node:crypto (async: it runs
// on libuv's thread pool, never on the event loop), encoded so that each hash
// carries its own parameters:
//   $scrypt$ln=15,r=8,p=1$<salt base64>$<key base64>
// Parameters are bounded so that a hand-edited hash cannot make one login
// take minutes or gigabytes.

import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

export interface ScryptParams {
  /** log2 of the cost N */
  ln: number;
  /** block size */
  r: number;
  /** parallelism */
  p: number;
}

export interface ScryptHash extends ScryptParams {
  salt: Buffer;
  key: Buffer;
}

export const DEFAULT_PARAMS: Readonly<ScryptParams> = Object.freeze({ ln: 15, r: 8, p: 1 });

const SALT_BYTES = 16;
const KEY_BYTES = 32;
const BOUNDS = { ln: [10, 20], r: [1, 32], p: [1, 16] } as const;
/** memory of one scrypt run (128·N·r bytes); the daemon runs several at once */
const MAX_MEM = 256 * 1024 * 1024;

export class PasswordHashError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PasswordHashError';
  }
}

/** Throws PasswordHashError when a parameter is out of bounds. */
export function checkParams(x: ScryptParams): void {
  for (const k of ['ln', 'r', 'p'] as const) {
    const [lo, hi] = BOUNDS[k];
    if (!Number.isInteger(x[k]) || x[k] < lo || x[k] > hi) throw new PasswordHashError(`scrypt parameter ${k}=${x[k]} out of bounds (${lo} to ${hi})`);
  }
  const mem = 128 * 2 ** x.ln * x.r;
  if (mem > MAX_MEM) throw new PasswordHashError(`scrypt parameters ln=${x.ln},r=${x.r} need ${mem / 2 ** 20} MiB per login (at most ${MAX_MEM / 2 ** 20})`);
}

const B64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Decode `$scrypt$…`; throws PasswordHashError saying what is wrong (never echoing the hash). */
export function parseHash(encoded: string): ScryptHash {
  const f = encoded.split('$');
  if (f.length !== 5 || f[0] !== '') throw new PasswordHashError('not a password hash; expected $scrypt$ln=N,r=N,p=N$SALT$KEY (made by conchd passwd)');
  if (f[1] !== 'scrypt') throw new PasswordHashError(`unknown hash scheme "${f[1]!.slice(0, 20)}"; only scrypt is supported`);
  const m = /^ln=(\d{1,3}),r=(\d{1,3}),p=(\d{1,3})$/.exec(f[2]!);
  if (!m) throw new PasswordHashError('bad scrypt parameters; expected ln=N,r=N,p=N');
  const params = { ln: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  checkParams(params);
  if (!B64.test(f[3]!) || !B64.test(f[4]!)) throw new PasswordHashError('bad salt or key: not base64');
  const salt = Buffer.from(f[3]!, 'base64');
  const key = Buffer.from(f[4]!, 'base64');
  if (salt.length < 8 || salt.length > 64) throw new PasswordHashError(`bad salt: ${salt.length} bytes (8 to 64)`);
  if (key.length < 16 || key.length > 64) throw new PasswordHashError(`bad key: ${key.length} bytes (16 to 64)`);
  return { ...params, salt, key };
}

export function encodeHash(h: ScryptHash): string {
  const b64 = (b: Buffer): string => b.toString('base64').replace(/=+$/, '');
  return `$scrypt$ln=${h.ln},r=${h.r},p=${h.p}$${b64(h.salt)}$${b64(h.key)}`;
}

/** scrypt of `pw` with the hash's parameters and salt, `len` bytes. */
export function derive(pw: Buffer, h: ScryptParams & { salt: Buffer }, len: number): Promise<Buffer> {
  const N = 2 ** h.ln;
  // OpenSSL needs 128·r·(N+p) bytes and some; maxmem must allow it
  const opts: ScryptOptions = { N, r: h.r, p: h.p, maxmem: 128 * h.r * (N + h.p + 2) + 2 ** 20 };
  return new Promise((resolve, reject) => scrypt(pw, h.salt, len, opts, (e, key) => (e ? reject(e) : resolve(key))));
}

export async function hashPassword(pw: Buffer, params: ScryptParams = DEFAULT_PARAMS): Promise<string> {
  checkParams(params);
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(pw, { ...params, salt }, KEY_BYTES);
  return encodeHash({ ln: params.ln, r: params.r, p: params.p, salt, key });
}

/** Whether `pw` is the password; a malformed hash rejects with PasswordHashError. */
export async function verifyPassword(pw: Buffer, encoded: string): Promise<boolean> {
  return verifyParsed(pw, parseHash(encoded));
}

export async function verifyParsed(pw: Buffer, h: ScryptHash): Promise<boolean> {
  const got = await derive(pw, h, h.key.length);
  return timingSafeEqual(got, h.key);
}

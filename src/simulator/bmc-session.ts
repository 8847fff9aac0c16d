// The BMC side of RMCP+ session setup (IPMI v2.0 §13.17–13.24): Open Session,
// RAKP 1→2 and RAKP 3→4, using the key derivations of src/ipmi/crypto.ts.

import * as crypto from 'node:crypto';
import {
  AUTH_ALG_NUM,
  CIPHER_SUITES,
  CONF_ALG_NUM,
  CipherState,
  INTEGRITY_ALG_NUM,
  type CipherSuite,
  type RakpInputs,
  deriveK,
  rakp2Code,
  rakp3Code,
  rakp4Icv,
  sameBytes,
  sessionIntegrityKey,
} from '../ipmi/crypto.js';

export const PRIV_USER = 2;
export const PRIV_ADMIN = 4;

export interface BmcUser {
  name: string;
  password: string;
}

export interface BmcSession {
  sidC: number;
  sidM: number;
  state: 'opened' | 'rakp2' | 'active';
  suite: CipherSuite;
  cs: CipherState | null;
  /** whole ROLEm byte from RAKP1 */
  role: number;
  maxPriv: number;
  priv: number;
  rM: Buffer;
  rC: Buffer;
  address: string;
  port: number;
  /** next outbound session sequence number */
  outSeq: number;
  /** last traffic that keeps the session alive (per profile) */
  lastActive: number;
  /** last datagram of any kind from the client (ms): how long a displaced owner had been silent */
  lastHeard?: number;
  created: number;
  /** a steal injected by the control channel, not a real client */
  phantom?: boolean;
}

/** Cipher suite records for Get Channel Cipher Suites (standard "C0h" form). */
export function cipherSuiteRecords(): Buffer {
  const out: number[] = [];
  for (const s of Object.values(CIPHER_SUITES)) {
    out.push(0xc0, s.id, AUTH_ALG_NUM[s.auth], INTEGRITY_ALG_NUM[s.integrity] | 0x40, CONF_ALG_NUM[s.conf] | 0x80);
  }
  return Buffer.from(out);
}

function pickSuite(auth: number, integ: number, conf: number): CipherSuite | number {
  if (!Object.values(AUTH_ALG_NUM).includes(auth)) return 0x04;
  if (!Object.values(INTEGRITY_ALG_NUM).includes(integ)) return 0x05;
  if (!Object.values(CONF_ALG_NUM).includes(conf)) return 0x10;
  for (const s of Object.values(CIPHER_SUITES)) {
    if (AUTH_ALG_NUM[s.auth] === auth && INTEGRITY_ALG_NUM[s.integrity] === integ && CONF_ALG_NUM[s.conf] === conf) return s;
  }
  return 0x11;
}

function newSid(taken: (sid: number) => boolean): number {
  for (;;) {
    const sid = crypto.randomBytes(4).readUInt32LE(0);
    if (sid !== 0 && !taken(sid)) return sid;
  }
}

/** Open Session Request → [response payload, new session or null]. */
export function openSession(
  req: Buffer,
  taken: (sid: number) => boolean,
  address: string,
  port: number,
  now: number,
): { rsp: Buffer; session: BmcSession | null } {
  const tag = req[0] ?? 0;
  const fail = (status: number, sidM = 0): { rsp: Buffer; session: null } => {
    const b = Buffer.alloc(8);
    b[0] = tag;
    b[1] = status;
    b.writeUInt32LE(sidM >>> 0, 4);
    return { rsp: b, session: null };
  };
  if (req.length === 0) return fail(0x12);
  if (req.length < 8) return fail(0x12);
  const sidM = req.readUInt32LE(4);
  if (sidM === 0) return fail(0x12);
  let suite: CipherSuite | number = CIPHER_SUITES[3];
  if (req.length >= 32) {
    // a record with length 0 means "BMC's choice": our choice is suite 3's algorithm
    const alg = (off: number, dflt: number): number => (req[off + 3] === 0 ? dflt : req[off + 4] & 0x3f);
    suite = pickSuite(alg(8, 1), alg(16, 1), alg(24, 1));
  }
  if (typeof suite === 'number') return fail(suite, sidM);
  const reqPriv = req[1] & 0x0f;
  if (reqPriv > PRIV_ADMIN) return fail(0x09, sidM);
  const session: BmcSession = {
    sidC: newSid(taken),
    sidM,
    state: 'opened',
    suite,
    cs: null,
    role: 0,
    maxPriv: reqPriv === 0 ? PRIV_ADMIN : reqPriv,
    priv: PRIV_USER,
    rM: Buffer.alloc(0),
    rC: Buffer.alloc(0),
    address,
    port,
    outSeq: 1,
    lastActive: now,
    created: now,
  };
  const b = Buffer.alloc(36);
  b[0] = tag;
  b[1] = 0;
  b[2] = session.maxPriv;
  b.writeUInt32LE(sidM >>> 0, 4);
  b.writeUInt32LE(session.sidC >>> 0, 8);
  b.set([0x00, 0, 0, 0x08, AUTH_ALG_NUM[suite.auth], 0, 0, 0], 12);
  b.set([0x01, 0, 0, 0x08, INTEGRITY_ALG_NUM[suite.integrity], 0, 0, 0], 20);
  b.set([0x02, 0, 0, 0x08, CONF_ALG_NUM[suite.conf], 0, 0, 0], 28);
  return { rsp: b, session };
}

function inputs(s: BmcSession, guid: Buffer, user: Buffer): RakpInputs {
  return { sidM: s.sidM, sidC: s.sidC, rM: s.rM, rC: s.rC, guidC: guid, role: s.role, user };
}

/** RAKP1 → RAKP2. On a bad user or role the status says why and the session stays unauthenticated. */
export function rakp1(s: BmcSession, req: Buffer, user: BmcUser, guid: Buffer): { rsp: Buffer; ok: boolean } {
  const tag = req[0];
  const fail = (status: number): { rsp: Buffer; ok: boolean } => {
    const b = Buffer.alloc(8);
    b[0] = tag;
    b[1] = status;
    b.writeUInt32LE(s.sidM >>> 0, 4);
    return { rsp: b, ok: false };
  };
  const ulen = req[27];
  if (ulen > 16 || req.length < 28 + ulen) return fail(0x0c);
  const role = req[24];
  const priv = role & 0x0f;
  if (priv === 0 || priv > 5) return fail(0x09);
  if (priv > PRIV_ADMIN) return fail(0x0a);
  const name = req.subarray(28, 28 + ulen);
  if (!name.equals(Buffer.from(user.name, 'utf8'))) return fail(0x0d);
  s.rM = Buffer.from(req.subarray(8, 24));
  s.rC = crypto.randomBytes(16);
  s.role = role;
  s.maxPriv = priv;
  s.priv = Math.min(PRIV_USER, priv);
  s.state = 'rakp2';
  const code = rakp2Code(s.suite.auth, kuid(user), inputs(s, guid, name));
  const b = Buffer.alloc(40 + code.length);
  b[0] = tag;
  b.writeUInt32LE(s.sidM >>> 0, 4);
  s.rC.copy(b, 8);
  guid.copy(b, 24);
  code.copy(b, 40);
  return { rsp: b, ok: true };
}

/** RAKP3 → RAKP4; on success the session gets its keys and becomes active. */
export function rakp3(s: BmcSession, req: Buffer, user: BmcUser, guid: Buffer): { rsp: Buffer | null; ok: boolean } {
  const tag = req[0];
  const reply = (status: number, icv: Buffer = Buffer.alloc(0)): Buffer => {
    const b = Buffer.alloc(8 + icv.length);
    b[0] = tag;
    b[1] = status;
    b.writeUInt32LE(s.sidM >>> 0, 4);
    icv.copy(b, 8);
    return b;
  };
  if (req[1] !== 0) return { rsp: null, ok: false }; // the console gave up on our RAKP2
  if (s.state === 'opened') return { rsp: reply(0x08), ok: false };
  const name = Buffer.from(user.name, 'utf8');
  const i = inputs(s, guid, name);
  const want = rakp3Code(s.suite.auth, kuid(user), i);
  if (!sameBytes(want, Buffer.from(req.subarray(8)))) return { rsp: reply(0x0f), ok: false };
  const sik = sessionIntegrityKey(s.suite.auth, kuid(user), i);
  s.cs = s.suite.auth === 'none' && s.suite.integrity === 'none' && s.suite.conf === 'none' ? null : new CipherState(s.suite, deriveK(s.suite.auth, sik, 1), deriveK(s.suite.auth, sik, 2));
  s.state = 'active';
  return { rsp: reply(0, rakp4Icv(s.suite.auth, sik, i)), ok: true };
}

/** Kuid: the password, at most 20 bytes (HMAC pads keys itself). */
function kuid(u: BmcUser): Buffer {
  return Buffer.from(u.password, 'utf8').subarray(0, 20);
}

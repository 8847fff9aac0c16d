// Open Session and RAKP 1–4 payloads (IPMI v2.0 §13.17–13.23; status codes
// §13.24).

import { IpmiDecodeError } from './errors.js';
import { AUTH_ALG_NUM, CONF_ALG_NUM, INTEGRITY_ALG_NUM, type CipherSuite } from './crypto.js';

export const RMCP_STATUS: Record<number, string> = {
  0x01: 'insufficient resources to create a session',
  0x02: 'invalid session ID',
  0x03: 'invalid payload type',
  0x04: 'invalid authentication algorithm',
  0x05: 'invalid integrity algorithm',
  0x06: 'no matching authentication payload',
  0x07: 'no matching integrity payload',
  0x08: 'inactive session ID',
  0x09: 'invalid role',
  0x0a: 'unauthorized role or privilege level requested',
  0x0b: 'insufficient resources to create a session at the requested role',
  0x0c: 'invalid name length',
  0x0d: 'unauthorized name',
  0x0e: 'unauthorized GUID',
  0x0f: 'invalid integrity check value',
  0x10: 'invalid confidentiality algorithm',
  0x11: 'no cipher suite match with proposed security algorithms',
  0x12: 'illegal or unrecognized parameter',
};

export function rmcpStatusText(code: number): string {
  return RMCP_STATUS[code] ?? `RMCP+ status 0x${code.toString(16).padStart(2, '0')}`;
}

export function encodeOpenSessionRequest(tag: number, maxPriv: number, sidM: number, s: CipherSuite): Buffer {
  const b = Buffer.alloc(32);
  b[0] = tag;
  b[1] = maxPriv & 0x0f;
  b.writeUInt32LE(sidM >>> 0, 4);
  b.set([0x00, 0, 0, 0x08, AUTH_ALG_NUM[s.auth], 0, 0, 0], 8);
  b.set([0x01, 0, 0, 0x08, INTEGRITY_ALG_NUM[s.integrity], 0, 0, 0], 16);
  b.set([0x02, 0, 0, 0x08, CONF_ALG_NUM[s.conf], 0, 0, 0], 24);
  return b;
}

export interface OpenSessionResponse {
  tag: number;
  status: number;
  maxPriv: number;
  sidM: number;
  sidC: number;
  auth: number;
  integrity: number;
  conf: number;
}

export function decodeOpenSessionResponse(b: Buffer): OpenSessionResponse {
  if (b.length < 8) throw new IpmiDecodeError('Open Session response', `only ${b.length} bytes`);
  const status = b[1];
  const r = { tag: b[0], status, maxPriv: b[2] & 0x0f, sidM: b.readUInt32LE(4), sidC: 0, auth: -1, integrity: -1, conf: -1 };
  if (status !== 0) return r;
  if (b.length < 36) throw new IpmiDecodeError('Open Session response', `only ${b.length} bytes`);
  return { ...r, sidC: b.readUInt32LE(8), auth: b[16] & 0x3f, integrity: b[24] & 0x3f, conf: b[32] & 0x3f };
}

export function encodeRakp1(tag: number, sidC: number, rM: Buffer, role: number, user: Buffer): Buffer {
  const b = Buffer.alloc(28 + user.length);
  b[0] = tag;
  b.writeUInt32LE(sidC >>> 0, 4);
  rM.copy(b, 8);
  b[24] = role;
  b[27] = user.length;
  user.copy(b, 28);
  return b;
}

export interface Rakp2 {
  tag: number;
  status: number;
  sidM: number;
  rC: Buffer;
  guidC: Buffer;
  code: Buffer;
}

export function decodeRakp2(b: Buffer): Rakp2 {
  if (b.length < 8) throw new IpmiDecodeError('RAKP2', `only ${b.length} bytes`);
  const r = { tag: b[0], status: b[1], sidM: b.readUInt32LE(4), rC: Buffer.alloc(0), guidC: Buffer.alloc(0), code: Buffer.alloc(0) };
  if (r.status !== 0) return r;
  if (b.length < 40) throw new IpmiDecodeError('RAKP2', `only ${b.length} bytes`);
  return { ...r, rC: Buffer.from(b.subarray(8, 24)), guidC: Buffer.from(b.subarray(24, 40)), code: Buffer.from(b.subarray(40)) };
}

export function encodeRakp3(tag: number, status: number, sidC: number, code: Buffer): Buffer {
  const b = Buffer.alloc(8 + code.length);
  b[0] = tag;
  b[1] = status;
  b.writeUInt32LE(sidC >>> 0, 4);
  code.copy(b, 8);
  return b;
}

export interface Rakp4 {
  tag: number;
  status: number;
  sidM: number;
  icv: Buffer;
}

export function decodeRakp4(b: Buffer): Rakp4 {
  if (b.length < 8) throw new IpmiDecodeError('RAKP4', `only ${b.length} bytes`);
  return { tag: b[0], status: b[1], sidM: b.readUInt32LE(4), icv: Buffer.from(b.subarray(8)) };
}

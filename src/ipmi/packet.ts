// RMCP, IPMI 1.5 and RMCP+ (IPMI 2.0) datagram framing (IPMI v2.0 §13, "IPMI
// LAN Interface"; RMCP and its presence ping are DMTF ASF 2.0, DSP0136).
// Decoding never throws anything but IpmiDecodeError.

import { IpmiDecodeError } from './errors.js';
import { sameBytes, type CipherState } from './crypto.js';

export const RMCP_HEADER = Buffer.from([0x06, 0x00, 0xff, 0x07]);

export const PT_IPMI = 0x00;
export const PT_SOL = 0x01;
export const PT_OPEN_REQ = 0x10;
export const PT_OPEN_RSP = 0x11;
export const PT_RAKP1 = 0x12;
export const PT_RAKP2 = 0x13;
export const PT_RAKP3 = 0x14;
export const PT_RAKP4 = 0x15;

const FLAG_ENCRYPTED = 0x80;
const FLAG_AUTHENTICATED = 0x40;

/** An IPMI 1.5 sessionless packet (authtype none), used for Get Channel Auth Caps. */
export function encodeV15(msg: Buffer): Buffer {
  const b = Buffer.alloc(4 + 10 + msg.length);
  RMCP_HEADER.copy(b, 0);
  b[4] = 0x00; // authtype none; seq and session id stay 0
  b[13] = msg.length;
  msg.copy(b, 14);
  return b;
}

/** What any datagram from a BMC looks like after the outer header is read. */
export type Datagram =
  | { kind: 'v15'; sessionId: number; msg: Buffer }
  | { kind: 'v20'; payloadType: number; encrypted: boolean; authenticated: boolean; sessionId: number; seq: number; raw: Buffer; payload: Buffer; payloadOffset: number }
  | { kind: 'pong' };

/** Read the header of one datagram; integrity and decryption happen later (they need the session). */
export function decodeDatagram(b: Buffer): Datagram {
  if (b.length < 4) throw new IpmiDecodeError('RMCP header', `datagram of ${b.length} bytes`);
  if (b[0] !== 0x06) throw new IpmiDecodeError('RMCP header', `version 0x${hex1(b[0])}`);
  const cls = b[3] & 0x1f;
  if (cls === 0x06) return { kind: 'pong' };
  if (cls !== 0x07) throw new IpmiDecodeError('RMCP header', `class 0x${hex1(b[3])}`);
  if (b.length < 5) throw new IpmiDecodeError('IPMI session header', 'truncated');
  const authType = b[4];
  if (authType === 0x06) {
    if (b.length < 16) throw new IpmiDecodeError('RMCP+ header', `truncated at ${b.length} bytes`);
    const pt = b[5];
    const type = pt & 0x3f;
    if (type === 0x02) throw new IpmiDecodeError('RMCP+ header', 'OEM explicit payloads are not supported');
    const len = b.readUInt16LE(14);
    if (16 + len > b.length) throw new IpmiDecodeError('RMCP+ header', `payload length ${len} exceeds datagram (${b.length} bytes)`);
    return {
      kind: 'v20',
      payloadType: type,
      encrypted: (pt & FLAG_ENCRYPTED) !== 0,
      authenticated: (pt & FLAG_AUTHENTICATED) !== 0,
      sessionId: b.readUInt32LE(6),
      seq: b.readUInt32LE(10),
      raw: b,
      payload: b.subarray(16, 16 + len),
      payloadOffset: 16,
    };
  }
  // IPMI 1.5: authtype, seq(4), session id(4), [authcode 16], length, message
  if (b.length < 14) throw new IpmiDecodeError('IPMI 1.5 header', `truncated at ${b.length} bytes`);
  const off = authType === 0x00 ? 13 : 29;
  if (b.length < off + 1) throw new IpmiDecodeError('IPMI 1.5 header', 'truncated auth code');
  const len = b[off];
  if (off + 1 + len > b.length) throw new IpmiDecodeError('IPMI 1.5 header', `message length ${len} exceeds datagram`);
  return { kind: 'v15', sessionId: b.readUInt32LE(9), msg: b.subarray(off + 1, off + 1 + len) };
}

/** Build an RMCP+ packet; with a CipherState the payload is encrypted and authenticated as negotiated. */
export function encodeV20(payloadType: number, sessionId: number, seq: number, payload: Buffer, cs: CipherState | null, iv?: Buffer): Buffer {
  const enc = cs?.confidential ?? false;
  const auth = cs?.integrity ?? false;
  const bodyLen = enc && cs ? cs.encryptedLength(payload.length) : payload.length;
  // integrity pad so that AuthType..NextHeader is a multiple of 4
  const padN = auth ? (4 - ((12 + bodyLen + 2) % 4)) % 4 : 0;
  const signedLen = 16 + bodyLen + (auth ? padN + 2 : 0);
  // one buffer for the whole datagram: header, body, trailer, AuthCode
  const b = Buffer.allocUnsafe(signedLen + (auth && cs ? cs.authCodeLength : 0));
  RMCP_HEADER.copy(b, 0);
  b[4] = 0x06;
  b[5] = payloadType | (enc ? FLAG_ENCRYPTED : 0) | (auth ? FLAG_AUTHENTICATED : 0);
  b.writeUInt32LE(sessionId >>> 0, 6);
  b.writeUInt32LE(seq >>> 0, 10);
  b.writeUInt16LE(bodyLen, 14);
  if (enc && cs) cs.encrypt(payload, iv, b, 16);
  else payload.copy(b, 16);
  if (!auth || !cs) return b;
  b.fill(0xff, 16 + bodyLen, 16 + bodyLen + padN);
  b[signedLen - 2] = padN;
  b[signedLen - 1] = 0x07;
  cs.authCode(b.subarray(4, signedLen)).copy(b, signedLen);
  return b;
}

/** Check flags and AuthCode, then decrypt. Returns the plain payload. */
export function openV20(d: Extract<Datagram, { kind: 'v20' }>, cs: CipherState | null): Buffer {
  const wantEnc = cs?.confidential ?? false;
  const wantAuth = cs?.integrity ?? false;
  if (d.encrypted !== wantEnc) throw new IpmiDecodeError('RMCP+ packet', `encryption flag ${d.encrypted} does not match the session`);
  if (d.authenticated !== wantAuth) throw new IpmiDecodeError('RMCP+ packet', `authentication flag ${d.authenticated} does not match the session`);
  if (wantAuth && cs) {
    const end = d.payloadOffset + d.payload.length;
    const codeLen = cs.authCodeLength;
    // trailer: pad (0..3), pad length, next header, auth code
    const total = d.raw.length;
    if (total < end + 2 + codeLen) throw new IpmiDecodeError('RMCP+ trailer', 'truncated');
    const nhAt = total - codeLen - 1;
    const padLen = d.raw[nhAt - 1];
    if (d.raw[nhAt] !== 0x07) throw new IpmiDecodeError('RMCP+ trailer', `next header 0x${hex1(d.raw[nhAt])}`);
    if (padLen > 3 || end + padLen + 2 + codeLen !== total) throw new IpmiDecodeError('RMCP+ trailer', `integrity pad length ${padLen} does not fit`);
    const want = cs.authCode(d.raw.subarray(4, nhAt + 1));
    const got = d.raw.subarray(nhAt + 1);
    // constant time: a forger learns nothing from how long the check took
    if (!sameBytes(want, got)) throw new IpmiDecodeError('RMCP+ packet', 'integrity check failed');
  }
  return wantEnc && cs ? cs.decrypt(d.payload) : d.payload;
}

// ------------------------------------------------------------ IPMI messages

export const BMC_ADDR = 0x20;
export const SWID = 0x81;

function checksum(b: Buffer, from: number, to: number): number {
  let s = 0;
  for (let i = from; i < to; i++) s = (s + b[i]) & 0xff;
  return (0x100 - s) & 0xff;
}

/** A LAN-format IPMI request from us (rqAddr 0x81) to the BMC (rsAddr 0x20). */
export function encodeRequest(netFn: number, cmd: number, rqSeq: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(7 + data.length);
  b[0] = BMC_ADDR;
  b[1] = netFn << 2;
  b[2] = checksum(b, 0, 2);
  b[3] = SWID;
  b[4] = (rqSeq & 0x3f) << 2;
  b[5] = cmd;
  data.copy(b, 6);
  b[b.length - 1] = checksum(b, 3, b.length - 1);
  return b;
}

export interface IpmiMessage {
  netFn: number;
  cmd: number;
  rqSeq: number;
  /** response: completion code; request: null */
  cc: number | null;
  data: Buffer;
}

/** Parse a LAN-format message from the BMC: a response to us, or an unsolicited request. */
export function decodeMessage(b: Buffer, checkSums = true): IpmiMessage {
  if (b.length < 7) throw new IpmiDecodeError('IPMI message', `only ${b.length} bytes`);
  if (checkSums && checksum(b, 0, 2) !== b[2]) throw new IpmiDecodeError('IPMI message', 'header checksum mismatch');
  if (checkSums && checksum(b, 3, b.length - 1) !== b[b.length - 1]) throw new IpmiDecodeError('IPMI message', 'data checksum mismatch');
  const netFn = b[1] >> 2;
  const isResponse = (netFn & 1) === 1;
  if (isResponse && b.length < 8) throw new IpmiDecodeError('IPMI response', 'no completion code');
  return {
    netFn,
    cmd: b[5],
    rqSeq: b[4] >> 2,
    cc: isResponse ? b[6] : null,
    data: Buffer.from(b.subarray(isResponse ? 7 : 6, b.length - 1)),
  };
}

function hex1(n: number): string {
  return n.toString(16).padStart(2, '0');
}

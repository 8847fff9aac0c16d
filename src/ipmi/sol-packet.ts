// The SOL payload (payload type 1; IPMI v2.0 §15, Table 15-2): a 4-byte
// header and character data.

import { IpmiDecodeError } from './errors.js';

/** console → BMC operation bits */
export const OP_NACK = 0x40;
export const OP_BREAK = 0x10;
export const OP_CTS_PAUSE = 0x08;
/** BMC → console status bits */
export const ST_NACK = 0x40;
export const ST_UNAVAILABLE = 0x20;
export const ST_DEACTIVATING = 0x10;
export const ST_OVERRUN = 0x08;

export interface SolPacket {
  /** 1..15, 0 = ACK only */
  seq: number;
  /** seq being acknowledged, 0 = none */
  ackSeq: number;
  accepted: number;
  /** operation (to BMC) or status (from BMC) */
  flags: number;
  data: Buffer;
}

/** the data of ACK-only packets (never written to) */
export const NO_DATA = Buffer.alloc(0);

export function encodeSol(p: SolPacket): Buffer {
  const b = Buffer.allocUnsafe(4 + p.data.length); // every byte is written below
  b[0] = p.seq & 0x0f;
  b[1] = p.ackSeq & 0x0f;
  b[2] = p.accepted & 0xff;
  b[3] = p.flags;
  p.data.copy(b, 4);
  return b;
}

/** `data` is a view of `b`: the caller passes a buffer of this packet's own (a decrypted or received payload) */
export function decodeSol(b: Buffer): SolPacket {
  if (b.length < 4) throw new IpmiDecodeError('SOL packet', `only ${b.length} bytes`);
  return { seq: b[0] & 0x0f, ackSeq: b[1] & 0x0f, accepted: b[2], flags: b[3], data: b.subarray(4) };
}

// The BMC's view of LAN-format IPMI messages (IPMI v2.0 §13, the message
// inside the session: rsAddr, netFn/LUN, checksums, rqSeq): parse a request
// from a remote console, build the response, and build the unsolicited
// requests a BMC may send (OpenBMC's SOL Activating). The client side in
// src/ipmi/packet.ts goes the other way.

import { BMC_ADDR, SWID } from '../ipmi/packet.js';

export { NETFN_APP, NETFN_TRANSPORT } from '../ipmi/commands.js';

// generic completion codes (IPMI v2.0 §5.2, Table 5-2)
export const CC_OK = 0x00;
export const CC_INVALID_COMMAND = 0xc1;
export const CC_REQ_TRUNCATED = 0xc7;
export const CC_PARAM_OUT_OF_RANGE = 0xc9;
export const CC_INVALID_DATA = 0xcc;
export const CC_INSUFFICIENT_PRIV = 0xd4;

export interface IpmiRequest {
  rsAddr: number;
  netFn: number;
  rsLun: number;
  rqAddr: number;
  rqSeq: number;
  rqLun: number;
  cmd: number;
  data: Buffer;
}

function checksum(b: Buffer, from: number, to: number): number {
  let s = 0;
  for (let i = from; i < to; i++) s = (s + b[i]) & 0xff;
  return (0x100 - s) & 0xff;
}

/** A request, or null when it is too short or its checksums are wrong (the BMC drops it). */
export function parseRequest(b: Buffer): IpmiRequest | null {
  if (b.length < 7) return null;
  if (checksum(b, 0, 2) !== b[2] || checksum(b, 3, b.length - 1) !== b[b.length - 1]) return null;
  return {
    rsAddr: b[0],
    netFn: b[1] >> 2,
    rsLun: b[1] & 3,
    rqAddr: b[3],
    rqSeq: b[4] >> 2,
    rqLun: b[4] & 3,
    cmd: b[5],
    data: b.subarray(6, b.length - 1),
  };
}

export function encodeResponse(rq: IpmiRequest, cc: number, data: Buffer | number[] = []): Buffer {
  const d = Buffer.isBuffer(data) ? data : Buffer.from(data);
  const b = Buffer.alloc(8 + d.length);
  b[0] = rq.rqAddr;
  b[1] = ((rq.netFn | 1) << 2) | rq.rqLun;
  b[2] = checksum(b, 0, 2);
  b[3] = rq.rsAddr;
  b[4] = (rq.rqSeq << 2) | rq.rsLun;
  b[5] = rq.cmd;
  b[6] = cc;
  d.copy(b, 7);
  b[b.length - 1] = checksum(b, 3, b.length - 1);
  return b;
}

/** A request from the BMC (BMC_ADDR, 0x20) to the remote console (SWID, 0x81), e.g. SOL Activating. */
export function encodeBmcRequest(netFn: number, cmd: number, rqSeq: number, data: number[]): Buffer {
  const b = Buffer.alloc(7 + data.length);
  b[0] = SWID;
  b[1] = netFn << 2;
  b[2] = checksum(b, 0, 2);
  b[3] = BMC_ADDR;
  b[4] = (rqSeq & 0x3f) << 2;
  b[5] = cmd;
  Buffer.from(data).copy(b, 6);
  b[b.length - 1] = checksum(b, 3, b.length - 1);
  return b;
}

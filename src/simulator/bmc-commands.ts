// The IPMI commands a simulated BMC answers (IPMI v2.0 §20.1, §22.13–22.19,
// §24.1–24.9 and §26.1–26.3; their numbers, with the section of each, are in
// src/ipmi/commands.ts). Each handler returns the response; unknown commands
// get CC 0xC1 ("invalid command", §5.2) like real BMCs.

import {
  CC_INSUFFICIENT_PRIV,
  CC_INVALID_COMMAND,
  CC_OK,
  CC_PARAM_OUT_OF_RANGE,
  CC_REQ_TRUNCATED,
  NETFN_APP,
  NETFN_TRANSPORT,
  encodeResponse,
  type IpmiRequest,
} from './bmc-ipmi.js';
import {
  CMD_ACTIVATE_PAYLOAD,
  CMD_CLOSE_SESSION,
  CMD_DEACTIVATE_PAYLOAD,
  CMD_GET_CHANNEL_AUTH_CAPS,
  CMD_GET_CHANNEL_CIPHER_SUITES,
  CMD_GET_CHANNEL_PAYLOAD_SUPPORT,
  CMD_GET_CHANNEL_PAYLOAD_VERSION,
  CMD_GET_DEVICE_ID,
  CMD_GET_PAYLOAD_ACTIVATION_STATUS,
  CMD_GET_PAYLOAD_INSTANCE_INFO,
  CMD_GET_SOL_CONFIG,
  CMD_GET_SYSTEM_GUID,
  CMD_SET_SESSION_PRIVILEGE,
  CMD_SET_SOL_CONFIG,
} from '../ipmi/commands.js';
import { cipherSuiteRecords, PRIV_ADMIN, type BmcSession } from './bmc-session.js';
import { SOL_PAYLOAD_SIZE } from './bmc-sol.js';
import type { BmcProfile } from './bmc-profiles.js';

/** What the command handlers need from their BMC. */
export interface CommandContext {
  readonly port: number;
  readonly guid: Buffer;
  profile: BmcProfile;
  solOwner(): BmcSession | null;
  activateSol(s: BmcSession): void;
  /** deactivate on behalf of `by` (notifies a displaced owner per profile) */
  deactivateSol(by: BmcSession): void;
  findSession(sid: number): BmcSession | undefined;
  /** run after the response has been sent (e.g. closing the session that asked) */
  afterReply(fn: () => void): void;
  closeSession(s: BmcSession): void;
}

const u32 = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
const u16 = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff];

/** Commands allowed without a session (IPMI 1.5 framing or RMCP+ session ID 0). */
export function sessionlessCommand(ctx: CommandContext, rq: IpmiRequest): Buffer {
  if (rq.netFn === NETFN_APP) {
    switch (rq.cmd) {
      case CMD_GET_CHANNEL_AUTH_CAPS:
        return getChannelAuthCaps(rq);
      case CMD_GET_CHANNEL_CIPHER_SUITES:
        return getChannelCipherSuites(rq);
      case CMD_GET_SYSTEM_GUID:
        return encodeResponse(rq, CC_OK, ctx.guid);
    }
  }
  return encodeResponse(rq, CC_INVALID_COMMAND);
}

function getChannelAuthCaps(rq: IpmiRequest): Buffer {
  if (rq.data.length < 2) return encodeResponse(rq, CC_REQ_TRUNCATED);
  const v2 = (rq.data[0] & 0x80) !== 0;
  // auth types none/md2/md5/straight as ipmi_sim lists them; non-null user names; IPMI 1.5 and 2.0
  return encodeResponse(rq, CC_OK, [0x01, (v2 ? 0x80 : 0) | 0x17, 0x04, v2 ? 0x03 : 0x00, 0, 0, 0, 0]);
}

function getChannelCipherSuites(rq: IpmiRequest): Buffer {
  if (rq.data.length < 3) return encodeResponse(rq, CC_REQ_TRUNCATED);
  const all = cipherSuiteRecords();
  const index = rq.data[2] & 0x3f;
  return encodeResponse(rq, CC_OK, Buffer.concat([Buffer.from([0x01]), all.subarray(index * 16, index * 16 + 16)]));
}

/** A command inside an active session. */
export function sessionCommand(ctx: CommandContext, s: BmcSession, rq: IpmiRequest): Buffer {
  const d = rq.data;
  if (rq.netFn === NETFN_TRANSPORT) {
    if (rq.cmd === CMD_GET_SOL_CONFIG) return getSolConfig(ctx, rq);
    if (rq.cmd === CMD_SET_SOL_CONFIG) return encodeResponse(rq, s.priv >= PRIV_ADMIN ? CC_OK : CC_INSUFFICIENT_PRIV);
    return encodeResponse(rq, CC_INVALID_COMMAND);
  }
  if (rq.netFn !== NETFN_APP) return encodeResponse(rq, CC_INVALID_COMMAND);
  switch (rq.cmd) {
    case CMD_GET_DEVICE_ID:
      return encodeResponse(rq, CC_OK, [0x20, 0x01, 0x01, 0x00, 0x02, 0xbf, 0x00, 0x00, 0x00, 0x01, 0x00, 0, 0, 0, 0]);
    case CMD_GET_SYSTEM_GUID:
    case CMD_GET_CHANNEL_AUTH_CAPS:
    case CMD_GET_CHANNEL_CIPHER_SUITES:
      return sessionlessCommand(ctx, rq);
    case CMD_SET_SESSION_PRIVILEGE: {
      if (d.length < 1) return encodeResponse(rq, CC_REQ_TRUNCATED);
      const want = d[0] & 0x0f;
      if (want === 0) return encodeResponse(rq, CC_OK, [s.priv]);
      if (want < 2 || want > 5) return encodeResponse(rq, CC_PARAM_OUT_OF_RANGE);
      if (want > s.maxPriv) return encodeResponse(rq, 0x81);
      s.priv = want;
      return encodeResponse(rq, CC_OK, [s.priv]);
    }
    case CMD_CLOSE_SESSION: {
      if (d.length < 4) return encodeResponse(rq, CC_REQ_TRUNCATED);
      const sid = d.readUInt32LE(0);
      const target = sid === 0 ? s : ctx.findSession(sid);
      if (!target) return encodeResponse(rq, 0x87);
      if (target !== s && s.priv < PRIV_ADMIN) return encodeResponse(rq, CC_INSUFFICIENT_PRIV);
      ctx.afterReply(() => ctx.closeSession(target));
      return encodeResponse(rq, CC_OK);
    }
    case CMD_ACTIVATE_PAYLOAD:
      return activatePayload(ctx, s, rq);
    case CMD_DEACTIVATE_PAYLOAD: {
      if (d.length < 2) return encodeResponse(rq, CC_REQ_TRUNCATED);
      if (d[0] !== 0x01) return encodeResponse(rq, 0x81);
      if (d[1] !== 0x01) return encodeResponse(rq, 0x80);
      const owner = ctx.solOwner();
      if (!owner) return encodeResponse(rq, 0x80);
      if (ctx.profile.deactivateBy === 'owner-or-admin' && owner !== s && s.priv < PRIV_ADMIN) return encodeResponse(rq, CC_INSUFFICIENT_PRIV);
      ctx.deactivateSol(s);
      return encodeResponse(rq, CC_OK);
    }
    case CMD_GET_PAYLOAD_ACTIVATION_STATUS: {
      // capacity 1, instance bitmap
      if (d.length < 1) return encodeResponse(rq, CC_REQ_TRUNCATED);
      if (d[0] !== 0x01) return encodeResponse(rq, CC_OK, [0, 0, 0]);
      return encodeResponse(rq, CC_OK, [0x01, ctx.solOwner() ? 0x01 : 0x00, 0x00]);
    }
    case CMD_GET_PAYLOAD_INSTANCE_INFO: {
      // the owner's session ID, then the serial port number
      if (d.length < 2) return encodeResponse(rq, CC_REQ_TRUNCATED);
      if (d[0] !== 0x01 || d[1] !== 0x01) return encodeResponse(rq, CC_PARAM_OUT_OF_RANGE);
      const owner = ctx.solOwner();
      return encodeResponse(rq, CC_OK, [...u32(owner ? owner.sidC : 0), 0x01, 0, 0, 0, 0, 0, 0, 0]);
    }
    case CMD_GET_CHANNEL_PAYLOAD_SUPPORT: // IPMI + SOL, session-setup payloads 0x10..0x15
      return encodeResponse(rq, CC_OK, [0x03, 0x00, 0x3f, 0x00, 0, 0, 0, 0]);
    case CMD_GET_CHANNEL_PAYLOAD_VERSION: // 1.0
      return encodeResponse(rq, CC_OK, [0x10]);
  }
  return encodeResponse(rq, CC_INVALID_COMMAND);
}

function activatePayload(ctx: CommandContext, s: BmcSession, rq: IpmiRequest): Buffer {
  const d = rq.data;
  if (d.length < 2) return encodeResponse(rq, CC_REQ_TRUNCATED);
  if (d[0] !== 0x01) return encodeResponse(rq, 0x81);
  if (d[1] !== 0x01) return encodeResponse(rq, 0x82);
  // a second Activate, even from the owner itself, gets "already active" (ipmi_sim, OpenBMC)
  if (ctx.solOwner()) return encodeResponse(rq, 0x80);
  const aux = d[2] ?? 0;
  if (ctx.profile.requireEncryptBit && s.cs?.confidential && !(aux & 0x80)) return encodeResponse(rq, 0x84);
  ctx.activateSol(s);
  return encodeResponse(rq, CC_OK, [0, 0, 0, 0, ...u16(SOL_PAYLOAD_SIZE), ...u16(SOL_PAYLOAD_SIZE), ...u16(ctx.port), 0xff, 0xff]);
}

function getSolConfig(ctx: CommandContext, rq: IpmiRequest): Buffer {
  const d = rq.data;
  if (d.length < 2) return encodeResponse(rq, CC_REQ_TRUNCATED);
  if (d[0] & 0x80) return encodeResponse(rq, CC_OK, [0x11]);
  const p = ctx.profile;
  const param = d[1];
  if (p.minimalSolConfig && ![0, 1, 5, 6].includes(param)) return encodeResponse(rq, 0x80);
  const values: Record<number, number[]> = {
    0: [0x00],
    1: [0x01],
    2: [0x02],
    3: [12, 1],
    4: [p.solRetries & 7, Math.min(255, Math.round(p.solRetryMs / 10))],
    5: [0x0a],
    6: [0x0a],
    7: [0x01],
    8: u16(ctx.port),
  };
  const v = values[param];
  if (!v) return encodeResponse(rq, 0x80);
  return encodeResponse(rq, CC_OK, [0x11, ...v]);
}

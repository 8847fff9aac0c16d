// The round trip to simulated BMCs while a benchmark runs: the floor under
// any IPMI session setup the daemon does meanwhile (7 exchanges: Get Channel
// Authentication Capabilities, Open Session, RAKP 1 and 3, Set Session
// Privilege, the SOL check, Activate Payload). A sessionless Get Channel
// Authentication Capabilities, as every IPMI client's first request, timed
// from this process; the simulator answers it on the same event loop that
// serves the fleet, so it waits behind whatever the fleet's traffic left.

import * as dgram from 'node:dgram';
import { decodeDatagram, decodeMessage, encodeRequest, encodeV15 } from '../src/ipmi/packet.js';
import { CMD_GET_CHANNEL_AUTH_CAPS, NETFN_APP } from '../src/ipmi/commands.js';

/** an answer later than this counts as this (lost) */
export const PING_TIMEOUT_MS = 3000;

/** `ipmi:ADDRESS:PORT` of a conman.conf console line */
export function bmcOf(consoleLine: string): { address: string; port: number } | null {
  const m = /dev="ipmi:([^":]+):(\d+)"/.exec(consoleLine);
  return m ? { address: m[1]!, port: Number(m[2]) } : null;
}

/** Pings the BMCs of `targets` in turn, one every `everyMs`, until stop(): the round trips in ms. */
export function startPinger(targets: { address: string; port: number }[], everyMs = 200): { stop(): number[] } {
  const sock = dgram.createSocket('udp4');
  const rtts: number[] = [];
  const waiting = new Map<number, { t0: number; timer: NodeJS.Timeout }>();
  let seq = 0;
  let i = 0;
  sock.on('message', (b) => {
    let s: number;
    try {
      const d = decodeDatagram(b);
      if (d.kind !== 'v15') return;
      s = decodeMessage(d.msg).rqSeq;
    } catch {
      return;
    }
    const w = waiting.get(s);
    if (!w) return;
    clearTimeout(w.timer);
    waiting.delete(s);
    rtts.push(performance.now() - w.t0);
  });
  const timer = setInterval(() => {
    if (targets.length === 0) return;
    const t = targets[i++ % targets.length]!;
    const s = seq++ % 64;
    const old = waiting.get(s);
    if (old) clearTimeout(old.timer);
    const lost = (): void => {
      waiting.delete(s);
      rtts.push(PING_TIMEOUT_MS);
    };
    const w = { t0: performance.now(), timer: setTimeout(lost, PING_TIMEOUT_MS) };
    waiting.set(s, w);
    sock.send(encodeV15(encodeRequest(NETFN_APP, CMD_GET_CHANNEL_AUTH_CAPS, s, Buffer.from([0x8e, 0x04]))), t.port, t.address);
  }, everyMs);
  return {
    stop(): number[] {
      clearInterval(timer);
      for (const w of waiting.values()) clearTimeout(w.timer);
      sock.close();
      return rtts;
    },
  };
}

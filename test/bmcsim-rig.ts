// Starting conch-bmcsim for tests: a run of free UDP ports on 127.0.0.1,
// the simulator as a child process (own process group), its manifest and
// its control channel.

import * as dgram from 'node:dgram';
import * as http from 'node:http';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor, type Child, type Cleanup } from './helpers/wait.js';
import type { Seeded } from './helpers/seeded.js';
import { CipherState, cipherSuite, deriveK, rakp3Code, sessionIntegrityKey, type RakpInputs } from '../src/ipmi/crypto.js';
import { decodeDatagram, encodeRequest, encodeV20, openV20, PT_IPMI, PT_OPEN_REQ, PT_RAKP1, PT_RAKP3, PT_SOL } from '../src/ipmi/packet.js';
import { decodeOpenSessionResponse, decodeRakp2, encodeOpenSessionRequest, encodeRakp1, encodeRakp3 } from '../src/ipmi/rakp.js';
import { decodeSol, encodeSol, type SolPacket } from '../src/ipmi/sol-packet.js';

const here = path.dirname(fileURLToPath(import.meta.url)); // dist/test
export const BMCSIM = path.resolve(here, '../src/bin/conch-bmcsim.js');

/** `n` consecutive UDP ports on 127.0.0.1 that were all free a moment ago; below 32768, since FreeIPMI
 * (ipmiconsole, conmand) calls a higher port in `host:port` "hostname invalid". */
export async function freeUdpRange(n: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    // not seeded: a port is not test input, and test files running side by
    // side must not all try the same ports first
    const base = 20000 + Math.floor(Math.random() * (32767 - 20000 - n));
    const socks: dgram.Socket[] = [];
    let ok = true;
    for (let i = 0; i < n && ok; i++) {
      const s = dgram.createSocket('udp4');
      ok = await new Promise<boolean>((resolve) => {
        s.once('error', () => resolve(false));
        s.bind(base + i, '127.0.0.1', () => resolve(true));
      });
      socks.push(s);
    }
    await Promise.all(socks.map((s) => new Promise<void>((r) => { try { s.close(() => r()); } catch { r(); } })));
    if (ok) return base;
  }
  throw new Error(`no run of ${n} free UDP ports found`);
}

export interface SimFleet {
  child: Child;
  basePort: number;
  /** control channel base URL, when --control-port was given */
  control: string | null;
}

/** Start conch-bmcsim with `--count n` on free ports; extra args are passed through. */
export async function startBmcsim(c: Cleanup, n: number, extra: string[] = []): Promise<SimFleet> {
  const basePort = await freeUdpRange(n);
  const child = c.child(process.execPath, [BMCSIM, '--count', String(n), '--base-port', String(basePort), '--control-port', '0', ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = await child.waitOutput('# ready');
  const m = /# control (http:\/\/\S+)/.exec(out);
  return { child, basePort, control: m ? m[1] : null };
}

/** A JSON request to the control channel. */
export async function control(sim: SimFleet, method: 'GET' | 'POST', urlPath: string, body?: unknown): Promise<{ status: number; json: any }> {
  if (!sim.control) throw new Error('simulator has no control channel');
  const url = new URL(urlPath, sim.control);
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: { 'content-type': 'application/json' } }, (res) => {
      let s = '';
      res.on('data', (d) => (s += d));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, json: JSON.parse(s) });
        } catch (e) {
          reject(e);
        }
      });
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

// ------------------------------------------------------------ a raw RMCP+ client
// Just enough of a remote console (suite 3) to see what real clients ignore:
// unsolicited requests, ACKs and their absence. Built from the codecs in src/ipmi.
// Its session ID and RAKP nonce come from the test's seeded stream, so that
// a failure replays with the same ones.


export interface RawIpmi {
  netFn: number;
  cmd: number;
  rqSeq: number;
  /** completion code for responses, null for requests from the BMC */
  cc: number | null;
  data: Buffer;
}

export class RawClient {
  readonly sock = dgram.createSocket('udp4');
  /** everything received after the session is up, in order */
  readonly ipmi: RawIpmi[] = [];
  readonly sol: SolPacket[] = [];
  sidC = 0;
  private readonly sidM: number;
  private cs: CipherState | null = null;
  private seq = 1;
  private rqSeq = 0;
  private setup: Buffer[] = [];

  constructor(
    private readonly port: number,
    private readonly rnd: Seeded,
  ) {
    this.sidM = rnd.bytes(4).readUInt32LE(0) | 1;
    this.sock.on('message', (m) => this.onMessage(m));
  }

  private onMessage(m: Buffer): void {
    const d = decodeDatagram(m);
    if (d.kind !== 'v20') return;
    if (d.sessionId === 0) {
      this.setup.push(Buffer.from(d.payload));
      return;
    }
    const p = openV20(d, this.cs);
    if (d.payloadType === PT_SOL) this.sol.push(decodeSol(p));
    else if (d.payloadType === PT_IPMI) {
      const isRsp = ((p[1] >> 2) & 1) === 1;
      this.ipmi.push({ netFn: p[1] >> 2, cmd: p[5], rqSeq: p[4] >> 2, cc: isRsp ? p[6] : null, data: Buffer.from(p.subarray(isRsp ? 7 : 6, p.length - 1)) });
    }
  }

  private async setupStep(type: number, payload: Buffer): Promise<Buffer> {
    this.setup = [];
    this.sock.send(encodeV20(type, 0, 0, payload, null), this.port, '127.0.0.1');
    return waitFor(() => this.setup[0], `setup reply to payload 0x${type.toString(16)}`);
  }

  /** Open Session, RAKP 1–4 (suite 3), Set Session Privilege admin. */
  async open(user = 'admin', password = 'password'): Promise<void> {
    await new Promise<void>((r) => this.sock.bind(0, '127.0.0.1', r));
    const suite = cipherSuite(3);
    const os = decodeOpenSessionResponse(await this.setupStep(PT_OPEN_REQ, encodeOpenSessionRequest(1, 4, this.sidM, suite)));
    if (os.status !== 0) throw new Error(`Open Session status ${os.status}`);
    this.sidC = os.sidC;
    const rM = this.rnd.bytes(16);
    const u = Buffer.from(user);
    const r2 = decodeRakp2(await this.setupStep(PT_RAKP1, encodeRakp1(2, this.sidC, rM, 0x14, u)));
    if (r2.status !== 0) throw new Error(`RAKP2 status ${r2.status}`);
    const i: RakpInputs = { sidM: this.sidM, sidC: this.sidC, rM, rC: r2.rC, guidC: r2.guidC, role: 0x14, user: u };
    const kuid = Buffer.from(password);
    const r4 = await this.setupStep(PT_RAKP3, encodeRakp3(3, 0, this.sidC, rakp3Code('hmac-sha1', kuid, i)));
    if (r4[1] !== 0) throw new Error(`RAKP4 status ${r4[1]}`);
    const sik = sessionIntegrityKey('hmac-sha1', kuid, i);
    this.cs = new CipherState(suite, deriveK('hmac-sha1', sik, 1), deriveK('hmac-sha1', sik, 2));
    const priv = await this.cmd(0x06, 0x3b, [4]);
    if (priv.cc !== 0) throw new Error(`Set Session Privilege cc ${priv.cc}`);
  }

  private send(type: number, payload: Buffer): void {
    this.sock.send(encodeV20(type, this.sidC, this.seq++, payload, this.cs), this.port, '127.0.0.1');
  }

  /** An IPMI request; resolves with its response. */
  async cmd(netFn: number, cmd: number, data: number[] = []): Promise<RawIpmi> {
    const rqSeq = (this.rqSeq = (this.rqSeq + 1) & 0x3f);
    this.send(PT_IPMI, encodeRequest(netFn, cmd, rqSeq, Buffer.from(data)));
    return waitFor(() => this.ipmi.find((m) => m.cc !== null && m.cmd === cmd && m.rqSeq === rqSeq), `response to netFn 0x${netFn.toString(16)} cmd 0x${cmd.toString(16)}`);
  }

  sendSol(p: Partial<SolPacket> & { seq: number }): void {
    this.send(PT_SOL, encodeSol({ ackSeq: 0, accepted: 0, flags: 0, data: Buffer.alloc(0), ...p }));
  }

  close(): void {
    try {
      this.sock.close();
    } catch {
      /* closed */
    }
  }
}

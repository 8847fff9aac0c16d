// Cipher suite choice with no `C:` in ipmiopts: suite 3 where the BMC has it
// (asked for at once, as ipmitool does: the BMC's list of suites only after it
// refused 3), else 17, then 2, 1, 0, and the console log says which. conch-bmcsim offers
// every suite, so each console here talks to it through a small UDP relay
// that plays a BMC offering fewer: it answers Get Channel Cipher Suites with
// its own list (or "invalid command") and refuses Open Session for the suites
// it hides (RMCP+ status 0x11), passing everything else through.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cleanup, waitFor, waitForFile } from './helpers/wait.js';
import { startConchd } from './helpers/conchd.js';
import { startBmcsim } from './bmcsim-rig.js';
import { AUTH_ALG_NUM, CIPHER_SUITES, CONF_ALG_NUM, INTEGRITY_ALG_NUM } from '../src/ipmi/crypto.js';
import { decodeDatagram, encodeV15, encodeV20, PT_OPEN_REQ, PT_OPEN_RSP } from '../src/ipmi/packet.js';
import { encodeResponse, parseRequest } from '../src/simulator/bmc-ipmi.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

interface Offer {
  /** suites listed by Get Channel Cipher Suites; null = command not supported (CC 0xC1) */
  list: number[] | null;
  /** suites whose Open Session is refused */
  refuse: number[];
}

class SuiteRelay {
  readonly sock = dgram.createSocket('udp4');
  /** suites asked for in Open Session, in order */
  readonly asked: number[] = [];
  /** Get Channel Cipher Suites requests */
  listed = 0;
  private client: dgram.RemoteInfo | null = null;

  constructor(
    private readonly bmcPort: number,
    private readonly offer: Offer,
  ) {
    this.sock.on('message', (m, r) => {
      try {
        this.onMessage(m, r);
      } catch {
        /* not for us to judge: pass on what does not parse */
      }
    });
  }

  async start(): Promise<number> {
    await new Promise<void>((r) => this.sock.bind(0, '127.0.0.1', r));
    cleanup.add(() => this.sock.close());
    return this.sock.address().port;
  }

  private onMessage(m: Buffer, r: dgram.RemoteInfo): void {
    if (r.port === this.bmcPort) {
      if (this.client) this.sock.send(m, this.client.port, this.client.address);
      return;
    }
    this.client = r;
    const reply = (b: Buffer): void => void this.sock.send(b, r.port, r.address);
    const d = decodeDatagram(m);
    if (d.kind === 'v15') {
      const rq = parseRequest(d.msg);
      if (rq && rq.netFn === 0x06 && rq.cmd === 0x54) return reply(encodeV15(this.cipherSuites(rq)));
    } else if (d.kind === 'v20' && d.sessionId === 0 && d.payloadType === PT_OPEN_REQ && d.payload.length >= 32) {
      const p = d.payload;
      const suite = Object.values(CIPHER_SUITES).find(
        (s) => AUTH_ALG_NUM[s.auth] === p[12] && INTEGRITY_ALG_NUM[s.integrity] === p[20] && CONF_ALG_NUM[s.conf] === p[28],
      );
      this.asked.push(suite?.id ?? -1);
      if (suite && this.offer.refuse.includes(suite.id)) {
        return reply(encodeV20(PT_OPEN_RSP, 0, 0, Buffer.from([p[0], 0x11, 0, 0, ...p.subarray(4, 8)]), null));
      }
    }
    this.sock.send(m, this.bmcPort, '127.0.0.1');
  }

  private cipherSuites(rq: NonNullable<ReturnType<typeof parseRequest>>): Buffer {
    this.listed++;
    if (this.offer.list === null) return encodeResponse(rq, 0xc1);
    const records = Buffer.from(
      this.offer.list.flatMap((id) => {
        const s = CIPHER_SUITES[id]!;
        return [0xc0, id, AUTH_ALG_NUM[s.auth], INTEGRITY_ALG_NUM[s.integrity] | 0x40, CONF_ALG_NUM[s.conf] | 0x80];
      }),
    );
    const index = (rq.data[2] ?? 0) & 0x3f;
    return encodeResponse(rq, 0, Buffer.concat([Buffer.from([0x01]), records.subarray(index * 16, index * 16 + 16)]));
  }
}

const seqLines = (text: string, name: string): number => [...text.matchAll(new RegExp(`\\[seq \\d+\\] ${name} heartbeat`, 'g'))].length;

// every suite runs with the IPMI sessions on the main thread and on IPMI threads
for (const threads of [0, 2])
  test(`no C: given: suite 3 if offered, else 17, 2, 1, 0 in that order; the log names the suite (ipmithreads=${threads})`, { timeout: 180000 }, async () => {
  const sim = await startBmcsim(cleanup, 4, ['--heartbeat', '1']);
  const cases: { name: string; offer: Offer; want: number; why: RegExp; asked: number[]; listed: boolean }[] = [
    // a BMC that lists its suites: 3 is not among them, 17 is
    { name: 'node01', offer: { list: [17, 2, 1, 0], refuse: [3] }, want: 17, why: /the BMC does not offer suite 3; it offers 17 2 1 0\)/, asked: [3, 17], listed: true },
    // no Get Channel Cipher Suites: Open Session refusals decide
    { name: 'node02', offer: { list: null, refuse: [3, 17] }, want: 2, why: /the BMC refused suite 3\)/, asked: [3, 17, 2], listed: true },
    // suite 0 (no authentication) only where nothing better is offered
    { name: 'node03', offer: { list: [0, 1], refuse: [3, 17, 2] }, want: 1, why: /it offers 0 1\)/, asked: [3, 1], listed: true },
    // suite 3 offered: taken at once, the list never asked for
    { name: 'node04', offer: { list: [3, 17, 2, 1, 0], refuse: [] }, want: 3, why: /IPMI session uses cipher suite 3\.\r\n/, asked: [3], listed: false },
  ];
  const relays: SuiteRelay[] = [];
  let conf = '';
  for (const [i, c] of cases.entries()) {
    const relay = new SuiteRelay(sim.basePort + i, c.offer);
    relays.push(relay);
    const port = await relay.start();
    conf += `console name="${c.name}" dev="ipmi:127.0.0.1:${port}" ipmiopts="U:admin,P:password" log="%N.log"\n`;
  }
  const d = await startConchd(cleanup, conf, { extraHeader: `server ipmithreads=${threads}\n` });
  for (const [i, c] of cases.entries()) {
    const log = path.join(d.logdir, `${c.name}.log`);
    const text = await waitForFile(log, `IPMI session uses cipher suite ${c.want}`, 40000);
    assert.match(text, c.why);
    await waitFor(() => seqLines(fs.readFileSync(log, 'latin1'), c.name) >= 3, `${c.name}: heartbeats over suite ${c.want}`, 30000);
    assert.deepEqual(relays[i]!.asked, c.asked, `${c.name}: suites asked for in Open Session`);
    assert.equal(relays[i]!.listed > 0, c.listed, `${c.name}: Get Channel Cipher Suites asked ${relays[i]!.listed} times`);
  }
  await d.child.stop();
});

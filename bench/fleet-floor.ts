// The machine's floor for keystroke echo: the same paced typing as the
// typist (fleet-typist.ts), at the same moment, against processes that do
// no work instead of a console daemon. What is left of their latency is the
// machine's (scheduling, the other processes on its cores, a hypervisor's
// steal), and sets the scale for the daemon's figure beside it.
//   bare   one TCP echo process: a key wakes two processes (echo, typist)
//   relay  a relay process that sends each key as a datagram to a UDP echo
//          process and writes the answer back: a console daemon that does
//          nothing, in front of a BMC that does nothing. A key wakes four
//          processes in turn (relay, echo, relay, typist), as it wakes the
//          daemon, the BMC, the daemon and the typist on a console.
//   sol    a relay process that does an IPMI console daemon's least: SOL
//          with conch's own IPMI code, on its one thread, to a BMC of the
//          typed-at console's simulator process (echo-server.js `sol`): the
//          relay floor with the BMC's own work in it (its integrity checks,
//          decryption, ACK, echo, encryption).
// With ATTACHES, first that many connections, each timed from the connect
// to the echo of one key (the floor under the typist's attach: connect, a
// request, its answer). Prints `latency {json}`. The pauses come from SEED,
// as the typist's do.
//
//   node dist/bench/fleet-floor.js KEYSTROKES GAP_MS [bare|relay|sol [SEED [ATTACHES [MANIFEST NAME]]]]   (echo-server.js is every echo process)

import * as path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { now, WireClient } from './wire-client.js';
import { KEYS, pauseStream, typeKey, typingPause, type Latency } from './fleet-typist.js';
import { ReclaimMeter } from './kernel-reclaim.js';

export type FloorMode = 'bare' | 'relay' | 'sol';

/** keys typed at the SOL relay before the measured ones */
const SOL_WARMUP_KEYS = 200;

/** start echo-server.js with `args`; resolves with the process and the port it listens on */
function echoProcess(args: string[], children: ChildProcess[]): Promise<number> {
  const child = spawn(process.execPath, [path.join(path.dirname(process.argv[1]!), 'echo-server.js'), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  return new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening port (\d+)\n/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`echo process (${args.join(' ')}) exited (${code}) before listening`)));
  });
}

async function measure(keys: number, gapMs: number, mode: FloorMode, random: () => number, attaches: number, bmc: string[]): Promise<Latency> {
  const l: Latency = { attach: [], echo: [], reclaim: [], lostFirstKeys: 0 };
  const children: ChildProcess[] = [];
  const meter = ReclaimMeter.open();
  try {
    const port =
      mode === 'bare'
        ? await echoProcess(['tcp'], children)
        : mode === 'sol'
          ? await echoProcess(['sol', ...bmc], children)
          : await echoProcess(['relay', String(await echoProcess(['udp'], children))], children);
    // the typist's keys: a host's own lines never hold them (the SOL floor's host prints beside the echo)
    const key = (i: number): string => KEYS[i % KEYS.length]!;
    for (let i = 0; i < attaches; i++) {
      const t0 = now();
      const c = await WireClient.raw(port, 10000);
      try {
        await c.echo(key(i), 10000);
        l.attach.push(now() - t0);
      } finally {
        c.close();
      }
    }
    const client = await WireClient.raw(port, 10000);
    try {
      // the SOL relay's code (IPMI, crypto) runs compiled by now, as a daemon's long since does: keys not counted
      if (mode === 'sol') for (let i = 0; i < SOL_WARMUP_KEYS; i++) await client.echo(key(i), 10000);
      for (let i = 0; i < keys; i++) {
        await typingPause(gapMs, random);
        await typeKey(l, meter, () => client.echo(key(i), 10000));
      }
    } finally {
      client.close();
    }
  } catch (e) {
    l.error = (e as Error).message;
  } finally {
    meter.close();
    for (const c of children) c.kill();
  }
  return l;
}

const isMain = process.argv[1]?.endsWith('fleet-floor.js');
if (isMain) {
  const [k, gap, mode = 'bare', seed, attaches = '0', ...bmc] = process.argv.slice(2);
  if (![k, gap, seed ?? '0', attaches].every((x) => Number.isInteger(Number(x))) || (mode !== 'bare' && mode !== 'relay' && mode !== 'sol') || (mode === 'sol') !== (bmc.length === 2)) {
    process.stderr.write('usage: fleet-floor.js KEYSTROKES GAP_MS [bare|relay|sol [SEED [ATTACHES [MANIFEST NAME]]]] (MANIFEST NAME with sol only)\n');
    process.exit(1);
  }
  const l = await measure(Number(k), Number(gap), mode, pauseStream(seed), Number(attaches), bmc);
  process.stdout.write(`latency ${JSON.stringify(l)}\n`);
  process.exit(0);
}

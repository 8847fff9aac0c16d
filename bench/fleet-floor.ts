// The machine's floor for keystroke echo: the same paced typing as the
// typist (fleet-typist.ts), at the same moment, against a bare TCP echo
// process instead of a console daemon. Two processes and one round trip that
// do no work: what is left of their latency is the machine's (scheduling,
// the other processes on its cores, a hypervisor's steal), and sets the
// scale for the daemon's figure beside it. Prints `latency {json}`.
//
//   node dist/bench/fleet-floor.js KEYSTROKES GAP_MS     (echo-server.js tcp is the echo process)

import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { WireClient } from './wire-client.js';
import { typingPause, type Latency } from './fleet-typist.js';

async function measure(keys: number, gapMs: number): Promise<Latency> {
  const l: Latency = { attach: [], echo: [], lostFirstKeys: 0 };
  const child = spawn(process.execPath, [path.join(path.dirname(process.argv[1]!), 'echo-server.js'), 'tcp'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /listening port (\d+)\n/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (code) => reject(new Error(`echo process exited (${code}) before listening`)));
    });
    const client = await WireClient.raw(port, 10000);
    try {
      for (let i = 0; i < keys; i++) {
        await typingPause(gapMs);
        l.echo.push(await client.echo('x', 10000));
      }
    } finally {
      client.close();
    }
  } catch (e) {
    l.error = (e as Error).message;
  } finally {
    child.kill();
  }
  return l;
}

const isMain = process.argv[1]?.endsWith('fleet-floor.js');
if (isMain) {
  const [k, gap] = process.argv.slice(2);
  if (![k, gap].every((x) => Number.isInteger(Number(x)))) {
    process.stderr.write('usage: fleet-floor.js KEYSTROKES GAP_MS\n');
    process.exit(1);
  }
  const l = await measure(Number(k), Number(gap));
  process.stdout.write(`latency ${JSON.stringify(l)}\n`);
  process.exit(0);
}

// The machine's floor for keystroke echo: the same paced typing as the
// typist (fleet-typist.ts), at the same moment, against a bare TCP echo
// process instead of a console daemon. Two processes and one round trip that
// do no work: what is left of their latency is the machine's (scheduling,
// the other processes on its cores, a hypervisor's steal), and sets the
// scale for the daemon's figure beside it. Prints `latency {json}`.
//
//   node dist/bench/fleet-floor.js KEYSTROKES GAP_MS
//   node dist/bench/fleet-floor.js --server      (the echo process)

import * as net from 'node:net';
import { spawn } from 'node:child_process';
import { now } from './wire-client.js';
import { typingPause, type Latency } from './fleet-typist.js';

function serve(): void {
  const server = net.createServer((sock) => {
    sock.setNoDelay(true);
    sock.on('data', (d) => sock.write(d));
    sock.on('error', () => sock.destroy());
  });
  server.listen(0, '127.0.0.1', () => process.stdout.write(`port ${(server.address() as net.AddressInfo).port}\n`));
  // the measuring process closes our stdin when it is done (or dies)
  process.stdin.on('end', () => process.exit(0)).resume();
}

async function measure(keys: number, gapMs: number): Promise<Latency> {
  const l: Latency = { attach: [], echo: [], lostFirstKeys: 0 };
  const child = spawn(process.execPath, [process.argv[1]!, '--server'], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /port (\d+)\n/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (code) => reject(new Error(`echo process exited (${code}) before listening`)));
    });
    const sock = net.connect(port, '127.0.0.1');
    sock.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    try {
      for (let i = 0; i < keys; i++) {
        await typingPause(gapMs);
        const t0 = now();
        const back = new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('no echo within 10 s')), 10000);
          sock.once('data', () => {
            clearTimeout(timer);
            resolve();
          });
        });
        sock.write('x');
        await back;
        l.echo.push(now() - t0);
      }
    } finally {
      sock.destroy();
    }
  } catch (e) {
    l.error = (e as Error).message;
  } finally {
    child.stdin!.end();
    child.kill();
  }
  return l;
}

const isMain = process.argv[1]?.endsWith('fleet-floor.js');
if (isMain && process.argv[2] === '--server') serve();
else if (isMain) {
  const [k, gap] = process.argv.slice(2);
  if (![k, gap].every((x) => Number.isInteger(Number(x)))) {
    process.stderr.write('usage: fleet-floor.js KEYSTROKES GAP_MS\n');
    process.exit(1);
  }
  const l = await measure(Number(k), Number(gap));
  process.stdout.write(`latency ${JSON.stringify(l)}\n`);
  process.exit(0);
}

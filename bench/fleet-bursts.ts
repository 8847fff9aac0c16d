// The boot-log bursts of the fleet benchmark, in their own process so that
// firing thousands of them does not delay the measuring client: every listed
// host prints about BYTES of `[seq N]` lines once, spread evenly over the
// window. IPMI and SSH hosts are told through the simulator's control channel; telnet
// hosts are typed at through their terminal-server port (`seq N`).
//
//   node dist/bench/fleet-bursts.js SPEC.json
//   SPEC = { target: BurstTarget, names: string[], windowMs, bytes }
// Prints `done SENT FAILED` when the window is over.

import * as fs from 'node:fs';
import * as net from 'node:net';
import { burstKeys, request, type BurstTarget } from './fleet-sims.js';

interface Spec {
  target: BurstTarget;
  names: string[];
  windowMs: number;
  bytes: number;
}

const spec = JSON.parse(fs.readFileSync(process.argv[2]!, 'utf8')) as Spec;
/** `seq` lines are about 30 bytes (`[seq 123] tel0001 burst 12/330`) */
const lines = Math.max(1, Math.round(spec.bytes / 31));

function typeAt(address: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, address);
    const t = setTimeout(() => s.destroy(new Error('no connect in 10 s')), 10000);
    s.on('connect', () => {
      clearTimeout(t);
      s.end(burstKeys(lines));
    });
    s.on('data', () => {}); // the host's output to us
    s.on('close', () => resolve());
    s.on('error', (e) => reject(e));
  });
}

function burst(name: string): Promise<void> {
  const t = spec.target;
  if (t.mode === 'http') return request(t.control, 'POST', `/${t.path ?? 'bmcs'}/${name}/burst`, { bytes: spec.bytes }).then(() => undefined);
  const [address, port] = t.ports[name]!;
  return typeAt(address, port);
}

let sent = 0;
let failed = 0;
let lastError = '';
const t0 = Date.now();
const gap = spec.windowMs / Math.max(1, spec.names.length);
const inflight = new Set<Promise<void>>();
for (let i = 0; i < spec.names.length; i++) {
  const due = t0 + i * gap;
  const wait = due - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  while (inflight.size >= 64) await Promise.race(inflight);
  const p: Promise<void> = burst(spec.names[i]!).then(
    () => void sent++,
    (e: unknown) => {
      failed++;
      lastError = String((e as Error)?.message ?? e);
    },
  );
  const tracked = p.finally(() => inflight.delete(tracked));
  inflight.add(tracked);
}
await Promise.all(inflight);
const rest = t0 + spec.windowMs - Date.now();
if (rest > 0) await new Promise((r) => setTimeout(r, rest));
process.stdout.write(`done ${sent} ${failed}${failed ? ` ${lastError}` : ''}\n`);
process.exit(0);

// The web benchmark's browsers: N WebSocket clients, each monitoring one
// console (`c00001`…), reading everything and counting bytes. A process of
// its own, so that its work is not charged to the one measuring latency.
// Prints `ready N` once all are attached, then `bytes B` every second.
//
//   node dist/bench/web-watchers.js HTTP_PORT N

import { WebSocket } from 'ws';

const port = Number(process.argv[2]);
const n = Number(process.argv[3]);
let bytes = 0;
let open = 0;

function watch(name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/api/v1/consoles/${name}/stream?mode=monitor`);
    ws.on('open', () => {
      open++;
      resolve();
    });
    ws.on('message', (d: Buffer) => (bytes += d.length));
    ws.on('error', reject);
    ws.on('close', () => open--);
  });
}

const names = Array.from({ length: n }, (_, i) => `c${String(i + 1).padStart(5, '0')}`);
for (let i = 0; i < names.length; i += 50) await Promise.all(names.slice(i, i + 50).map(watch));
process.stdout.write(`ready ${open}\n`);
setInterval(() => process.stdout.write(`bytes ${bytes} open ${open}\n`), 1000);

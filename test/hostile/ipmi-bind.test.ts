// A daemon whose BMCs are on loopback opens no UDP port to the network: its
// IPMI sockets are bound to 127.0.0.1 (or ::1), not the wildcard, on the
// main thread and on IPMI threads alike. Read from the kernel's own tables.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cleanup, waitFor, waitForFile } from '../helpers/wait.js';
import { startConchd } from '../helpers/conchd.js';
import { startBmcsim } from '../bmcsim-rig.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

/** local addresses (hex, as /proc/net/udp{,6} print them) of the UDP sockets process `pid` holds */
function udpSockets(pid: number): string[] {
  const inodes = new Set<string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      /* closed meanwhile */
    }
  }
  const out: string[] = [];
  for (const table of ['/proc/net/udp', '/proc/net/udp6']) {
    if (!fs.existsSync(table)) continue;
    for (const line of fs.readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && inodes.has(f[9]!)) out.push(f[1]!);
    }
  }
  return out;
}

for (const threads of [0, 1]) {
  test(`IPMI sockets for loopback BMCs are bound to loopback (ipmithreads=${threads})`, { timeout: 120000 }, async () => {
    const c = new Cleanup();
    try {
      const sim = await startBmcsim(c, 1, ['--heartbeat', '1']);
      const d = await startConchd(c, `console name="node01" dev="ipmi:127.0.0.1:${sim.basePort}" ipmiopts="U:admin,P:password,C:3" log="%N.log"\n`, {
        extraHeader: `server ipmithreads=${threads}\n`,
      });
      await waitForFile(path.join(d.logdir, 'node01.log'), /heartbeat/, 30000);
      const socks = await waitFor(() => {
        const s = udpSockets(d.child.proc.pid!);
        return s.length > 0 ? s : null;
      }, 'the daemon\'s UDP socket');
      for (const local of socks) {
        const addr = local.split(':')[0]!;
        // 0100007F = 127.0.0.1 (little-endian hex); ::1 = 00000000000000000000000001000000
        assert.ok(addr === '0100007F' || addr === '00000000000000000000000001000000', `UDP socket bound to ${local}, not loopback`);
      }
    } finally {
      await c.run();
    }
  });
}

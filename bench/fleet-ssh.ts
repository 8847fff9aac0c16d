// The SSH fleets of the fleet benchmark: conch-bmcsim's SSH mode (OpenBMC
// front: the host's console at once), each host on a TCP port of its own,
// the typed-at host in a simulator process of its own (typedAndRest).
//   ssh       conchd's ssh:// consoles (the SSH client inside the daemon),
//             password logins from a pswdfile
//   ssh-proc  the old way, as conman and conserver do it: a process console
//             per host running OpenSSH's `ssh -tt`, logging in with a key

import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import type { Cleanup } from './harness.js';
import { bmcName } from '../src/simulator/bmc-fleet.js';
import { request, spawnOnFreeNet, typedAndRest, type Fleet, type SimOptions } from './fleet-sims.js';

const USER = 'admin';
const PASSWORD = 'password';
export const OPENSSH = '/usr/bin/ssh';

interface SshSim {
  control: string;
  pid: number;
  address: string;
  /** name → port */
  ports: Map<string, number>;
}

/** One conch-bmcsim process with `n` SSH hosts named `<prefix>NN` on consecutive ports. */
async function spawnSshSim(c: Cleanup, n: number, prefix: string, o: SimOptions, dir: string): Promise<SshSim> {
  const { sim, net0 } = await spawnOnFreeNet(
    c,
    (net0) => [
      ...['--count', '0', '--ssh-count', String(n), '--ssh-prefix', prefix, '--ssh-base-port', String(net0.port), '--address', net0.address],
      ...['--ssh-host-key', path.join(dir, 'ssh_host_key'), '--ssh-authorized-keys', `${path.join(dir, 'client_key')}.pub`, '--user', USER, '--password', PASSWORD],
      ...['--heartbeat', '0', '--rate', String(o.rate), '--no-boot'],
    ],
    o,
  );
  const ports = new Map<string, number>();
  for (let i = 0; i < n; i++) ports.set(bmcName(prefix, i + 1, n), net0.port + i);
  return { control: sim.control, pid: sim.child.proc.pid!, address: net0.address, ports };
}

/** `ssh -tt` as a process console, as conman's and conserver's guides have it for SSH-only BMCs */
function processDev(address: string, port: number, key: string): string {
  const o = ['BatchMode=yes', 'StrictHostKeyChecking=no', 'UserKnownHostsFile=/dev/null', 'LogLevel=ERROR', 'ServerAliveInterval=10'];
  return `${OPENSSH} -tt -e none ${o.map((x) => `-o ${x}`).join(' ')} -i ${key} -p ${port} ${USER}@${address}`;
}

/** N SSH hosts; `proc`: the consoles are `ssh` process consoles instead of ssh:// ones. */
export async function startBmcsimSsh(c: Cleanup, n: number, o: SimOptions, dir: string, proc: boolean): Promise<Fleet> {
  const key = path.join(dir, 'client_key');
  const kg = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'conch-bench', '-f', key], { encoding: 'utf8' });
  if (kg.status !== 0) throw new Error(`ssh-keygen: ${kg.stderr}`);
  const { sims } = await typedAndRest(n, 'ssh', o, (count, prefix, so) => spawnSshSim(c, count, prefix, so, dir));
  const where = new Map<string, { sim: SshSim; port: number }>();
  for (const s of sims) for (const [name, port] of s.ports) where.set(name, { sim: s, port });
  const names = [...where.keys()];
  const pswd = path.join(dir, 'conman.pswd');
  fs.writeFileSync(pswd, sims.map((s) => `${s.address.replace(/\./g, '\\.')} : ${USER} : ${PASSWORD}\n`).join(''), { mode: 0o600 });
  const line = (name: string): string => {
    const { sim, port } = where.get(name)!;
    return proc ? `console name="${name}" dev="${processDev(sim.address, port, key)}"` : `console name="${name}" dev="ssh://${USER}@${sim.address}:${port}"`;
  };
  const shared = sims[sims.length - 1]!.control;
  const ctl = (name: string): string => where.get(name)!.sim.control;
  return {
    kind: proc ? 'ssh-proc' : 'ssh',
    names,
    consoleLines: names.map(line),
    serverLines: proc ? [] : [`server pswdfile="${pswd}"`],
    pids: sims.map((s) => s.pid),
    controls: sims.map((s) => s.control),
    // bursts go to the shared process only: the typed-at console is never bursted
    burstTarget: { mode: 'http', control: shared, path: 'ssh' },
    lastSeqOf: async (name) => ((await request(ctl(name), 'GET', `/ssh/${name}`)) as { host: { lastSeq: number } }).host.lastSeq,
    setRate: async (name, bytesPerSec) => void (await request(ctl(name), 'POST', `/ssh/${name}/rate`, { bytesPerSec })),
    finish: async () => {
      await Promise.all(sims.map((s) => request(s.control, 'POST', '/fleet/rate', { bytesPerSec: 0 })));
      await new Promise((r) => setTimeout(r, 1000)); // the last clock tick has run
      const lastSeq = new Map<string, number>();
      const acked = new Map<string, number>();
      for (const s of sims) {
        const all = (await request(s.control, 'GET', '/ssh')) as { name: string; host: { lastSeq: number }; counters: { bytesToConsole: number } }[];
        for (const b of all) {
          lastSeq.set(b.name, b.host.lastSeq);
          // written to the SSH session, not acknowledged: TCP and SSH do not lose them
          acked.set(b.name, b.counters.bytesToConsole);
        }
      }
      return { lastSeq, acked };
    },
  };
}

// Starts what one benchmark configuration needs, each in its own process
// group registered with a Cleanup: an echo console on a unix socket, a daemon
// (conchd or Debian's conmand) with one console on it, and the extra readers.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as net from 'node:net';
import { Cleanup, Child, FatalWait, freePort, waitFor } from './harness.js';

/** Repository root (this file runs from dist/bench/). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** the compiled benchmarks, where their helper processes (echo, typist, readers) are */
export const DIST_BENCH = path.join(ROOT, 'dist/bench');
export const CONCHD = path.join(ROOT, 'dist/src/bin/conchd.js');
export const BMCSIM = path.join(ROOT, 'dist/src/bin/conch-bmcsim.js');

export type DaemonKind = 'conchd' | 'conmand';
export const CONSOLE = 'echo1';

export interface Rig {
  port: number;
  daemon: Child;
  echo: Child;
}

/** Echo server, then the daemon (conmand 0.2.7 retries a missing unix socket only every 60 s). */
export async function startRig(cleanup: Cleanup, kind: DaemonKind): Promise<Rig> {
  const dir = cleanup.dir(`conch-bench-${kind}-`);
  const sock = path.join(dir, 'echo1.sock');
  const echo = cleanup.child(process.execPath, [path.join(DIST_BENCH, 'echo-server.js'), sock]);
  await echo.waitOutput('listening');

  const port = await freePort();
  const conf = path.join(dir, 'bench.conf');
  fs.writeFileSync(
    conf,
    [
      `server port=${port}`,
      'server loopback=on',
      `server logdir="${dir}"`,
      `server pidfile="${path.join(dir, `${kind}.pid`)}"`,
      `console name="${CONSOLE}" dev="unix:${sock}" log="echo1.log"`,
      '',
    ].join('\n'),
  );
  const daemon =
    kind === 'conchd'
      ? cleanup.child(process.execPath, [CONCHD, '-F', '-c', conf], { cwd: dir })
      : cleanup.child(onPath('conmand'), ['-F', '-c', conf], { cwd: dir });
  if (kind === 'conchd') await daemon.waitOutput(/Listening on TCP port \d+/, 30000);
  else await waitListening(daemon, port);
  // The daemon has opened the console once the echo server saw it connect.
  await echo.waitOutput('connected 1', 30000);
  return { port, daemon, echo };
}

/** Full path of `prog` on PATH (or /usr/sbin); a Child that never spawned could not be stopped. */
export function onPath(prog: string): string {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin'];
  for (const d of dirs) {
    const f = path.join(d || '.', prog);
    try {
      fs.accessSync(f, fs.constants.X_OK);
      return f;
    } catch {
      /* not here */
    }
  }
  throw new Error(`${prog} not found on PATH (Debian package conman)`);
}

/** Wait until `port` accepts connections, failing at once if the daemon died or never started. */
async function waitListening(daemon: Child, port: number): Promise<void> {
  await waitFor(
    () => {
      const p = daemon.proc;
      if (p.pid === undefined || p.exitCode !== null || p.signalCode !== null) {
        throw new FatalWait(`${p.spawnfile} is not running: ${daemon.output.slice(-300) || 'could not start it'}`);
      }
      return new Promise<boolean>((resolve) => {
        const s = net.connect(port, '127.0.0.1');
        s.once('connect', () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(false));
      });
    },
    `${daemon.proc.spawnfile} listening on port ${port}`,
    30000,
  );
}

/** `n` extra sessions joined to the console in a separate process, all reading. */
export async function startReaders(cleanup: Cleanup, port: number, n: number): Promise<Child | null> {
  if (n <= 0) return null;
  const readers = cleanup.child(process.execPath, [path.join(DIST_BENCH, 'join-readers.js'), String(port), CONSOLE, String(n)]);
  await readers.waitOutput(`ready ${n}`, 60000);
  return readers;
}

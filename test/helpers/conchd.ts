// Start a real conchd process on a config written for the test, on a free
// port, and wait until it listens.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { Cleanup, Child, freePort } from './wait.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const CONCHD = path.join(ROOT, 'dist/src/bin/conchd.js');
export const CONCH = path.join(ROOT, 'dist/src/bin/conch.js');

export interface RunningConchd {
  child: Child;
  port: number;
  dir: string;
  conf: string;
  logdir: string;
  pidfile: string;
}

/**
 * Write `body` (console lines etc.) after a server header that sets a free
 * port, loopback, a logdir and a pidfile in a fresh temp dir, then start
 * `conchd -F -c conf` and wait for its "Listening on TCP port" line.
 */
export async function startConchd(
  cleanup: Cleanup,
  body: string,
  opts: { args?: string[]; dir?: string; header?: string; extraHeader?: string } = {},
): Promise<RunningConchd> {
  const dir = opts.dir ?? cleanup.dir('conchd-');
  const port = await freePort();
  const logdir = path.join(dir, 'log');
  const pidfile = path.join(dir, 'conchd.pid');
  const conf = path.join(dir, 'conman.conf');
  const header =
    opts.header ??
    `server port=${port}\nserver loopback=on\nserver logdir="${logdir}"\nserver pidfile="${pidfile}"\nserver statedir="${path.join(dir, 'state')}"\n${opts.extraHeader ?? ''}`;
  fs.writeFileSync(conf, header + body);
  const child = cleanup.child(process.execPath, [CONCHD, '-F', '-c', conf, ...(opts.args ?? [])], { cwd: dir });
  await child.waitOutput(/Listening on TCP port \d+/, 30000);
  return { child, port, dir, conf, logdir, pidfile };
}

/** Run `conchd ARGS` to completion (-t, -k, -q, -r …): exit code and all it printed. */
export function runConchd(args: string[], opts: { cwd?: string } = {}): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [CONCHD, ...args], { encoding: 'utf8', timeout: 30000, cwd: opts.cwd });
  return { code: r.status, out: r.stdout + r.stderr };
}

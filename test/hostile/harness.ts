// The hostile suite's common ground: a live conchd with bystander consoles
// that log all the time, and the checks every attack must pass while it
// runs — another client's `conch -q` answers promptly and the bystanders'
// logs keep growing — and after it: memory back near its level.
//
// To add an attack: start a daemon with startFortress(), run the attack
// inside underAttack(), which probes the daemon until the attack ends and
// fails if any probe does; bound the attack's own time and size.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { CONCH, startConchd, type RunningConchd } from '../helpers/conchd.js';
import { waitFor, type Cleanup } from '../helpers/wait.js';

/** Consoles that print all the time, so a daemon that stalls shows it in their logs. */
export const BYSTANDERS = ['bystander1', 'bystander2'];
const BYSTANDER_LINES = BYSTANDERS.map((n) => `console name="${n}" dev="test:" testopts="b:64,m:50,n:20,p:100" log="%N.log"\n`).join('');

/** How long a probe may take on a loaded 2-core machine before the daemon counts as stalled. */
export const PROBE_DEADLINE_MS = 5000;

export interface Fortress extends RunningConchd {
  /** the daemon's pid (startConchd runs it in the foreground) */
  pid: number;
  log(name: string): string;
}

/**
 * A conchd with the bystander consoles plus `body` (more console lines).
 * `header` lines (e.g. `server maxclients=10`) follow the server header startConchd writes.
 */
export async function startFortress(
  cleanup: Cleanup,
  body = '',
  opts: { header?: string; args?: string[]; dir?: string } = {},
): Promise<Fortress> {
  const dir = opts.dir ?? cleanup.dir('hostile-');
  const d = await startConchd(cleanup, BYSTANDER_LINES + body, { dir, args: opts.args, extraHeader: opts.header });
  const f: Fortress = { ...d, pid: d.child.proc.pid!, log: (n) => path.join(d.logdir, `${n}.log`) };
  for (const n of BYSTANDERS) await waitFor(() => fileSize(f.log(n)) > 0, `${n} logging`, 30000);
  return f;
}

export function fileSize(f: string): number {
  try {
    return fs.statSync(f).size;
  } catch {
    return 0;
  }
}

/** `conch -q` against the daemon; resolves with its stdout, rejects past the deadline or on failure. */
export function conchQuery(port: number, deadlineMs = PROBE_DEADLINE_MS): Promise<string> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    execFile(process.execPath, [CONCH, '-d', `127.0.0.1:${port}`, '-q'], { timeout: deadlineMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`conch -q failed after ${Date.now() - started} ms: ${err.message} ${stderr}`));
      resolve(stdout);
    });
  });
}

/** One probe: `conch -q` lists the bystanders in time, and every bystander's log grew meanwhile. */
export async function probe(f: Fortress): Promise<void> {
  const before = BYSTANDERS.map((n) => fileSize(f.log(n)));
  const out = await conchQuery(f.port);
  for (const n of BYSTANDERS) if (!out.includes(n)) throw new Error(`conch -q did not list ${n}: ${JSON.stringify(out)}`);
  // logs are flushed every 200 ms: growth within the deadline proves the loop turns
  await waitFor(
    () => BYSTANDERS.every((n, i) => fileSize(f.log(n)) > before[i]!),
    'bystander logs to grow',
    PROBE_DEADLINE_MS,
  );
}

/**
 * Run `attack` and probe the daemon until it settles; at least `minProbes`
 * probes run while the attack is under way (the attack is given that long).
 * Rejects with the first failed probe or the attack's own error.
 */
export async function underAttack<T>(f: Fortress, attack: () => Promise<T>, minProbes = 1): Promise<T> {
  let done = false;
  let probes = 0;
  let failure: Error | null = null;
  const prober = (async () => {
    while (!done || probes < minProbes) {
      try {
        await probe(f);
      } catch (e) {
        failure = e as Error;
        return;
      }
      probes++;
    }
  })();
  let result: T;
  try {
    result = await attack();
  } finally {
    done = true;
    await prober;
  }
  if (failure) throw new Error(`the daemon stalled under attack: ${(failure as Error).message}`);
  return result;
}

/** Resident set size of a process, in KiB. */
export function rssKiB(pid: number): number {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(s);
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]);
}

/**
 * Wait until the daemon's RSS is back within `slackMiB` of `baseKiB`
 * (V8 returns memory lazily: wait, do not sample once).
 */
export async function memoryReturns(pid: number, baseKiB: number, slackMiB = 48, timeoutMs = 60000): Promise<void> {
  let last = 0;
  try {
    await waitFor(() => (last = rssKiB(pid)) <= baseKiB + slackMiB * 1024, 'memory to return', timeoutMs, 250);
  } catch {
    throw new Error(`RSS stayed at ${Math.round(last / 1024)} MiB, base ${Math.round(baseKiB / 1024)} MiB (+${slackMiB} MiB allowed)`);
  }
}

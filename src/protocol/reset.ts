// The &R escape: run `server resetcmd` once per console, like conman HEAD —
// `/bin/sh -c`, its own process group, a clean environment, stdio on
// /dev/null, and the whole group SIGKILLed if it is still running after 60 s.

import { spawn } from 'node:child_process';
import type { Console } from '../engine/console.js';
import type { DaemonLog } from '../logging/daemon-log.js';
import { expandSpecifiers, deviceSpecifier } from '../config/specifiers.js';
import { NOTE, type Who } from './messages.js';

export const RESET_TIMEOUT_MS = 60_000;

/** conman's get_sane_env(): what a reset command may see of ours. */
function saneEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { IFS: ' \t\n', PATH: '/usr/bin:/bin:/usr/sbin:/sbin', TERM: 'dumb' };
  for (const k of ['DEBUG', 'TZ']) if (process.env[k] !== undefined) env[k] = process.env[k];
  return env;
}

export class ResetRunner {
  /** console name → pid of its running reset */
  private readonly running = new Map<string, number>();

  constructor(
    private readonly cmd: string | null,
    private readonly dlog: DaemonLog,
    private readonly timeoutMs = RESET_TIMEOUT_MS,
  ) {}

  get enabled(): boolean {
    return !!this.cmd;
  }

  reset(c: Console, by: Who): void {
    if (!this.cmd) return;
    const busy = this.running.get(c.name);
    if (busy !== undefined) {
      c.notify(NOTE.resetBusy(c.name, busy));
      return;
    }
    const line = expandSpecifiers(this.cmd, { name: c.name, dev: deviceSpecifier(c.cfg.spec), now: new Date() });
    let child;
    try {
      child = spawn('/bin/sh', ['-c', line], { detached: true, stdio: 'ignore', env: saneEnv() });
    } catch (e) {
      c.notify(NOTE.resetFailed(c.name, (e as Error).message));
      return;
    }
    const pid = child.pid;
    if (pid === undefined) {
      child.once('error', (e) => c.notify(NOTE.resetFailed(c.name, e.message)));
      return;
    }
    child.unref();
    this.running.set(c.name, pid);
    this.dlog.notice(`Console [${c.name}] reset by <${by.user}@${by.host}> (pid ${pid}): ${line}`);
    c.notify(NOTE.reset(c.name, by, pid));
    const timer = setTimeout(() => {
      try {
        process.kill(-pid, 'SIGKILL');
        this.dlog.notice(`Console [${c.name}] reset terminated after ${this.timeoutMs / 1000}s (pid ${pid})`);
      } catch {
        /* already gone */
      }
    }, this.timeoutMs);
    timer.unref();
    child.once('error', () => {});
    child.once('exit', (code, sig) => {
      clearTimeout(timer);
      this.running.delete(c.name);
      if (code !== 0) this.dlog.info(`Console [${c.name}] reset (pid ${pid}) exited with ${sig ?? `status ${code}`}`);
    });
  }
}

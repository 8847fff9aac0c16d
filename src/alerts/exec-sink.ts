// The exec sink (`server alertexec="cmd"`): each alert, once complete and
// again if its hold-down window ends with more matches, runs `/bin/sh -c cmd`
// with the alert as one line of JSON on its stdin and CONCH_ALERT_* in its
// environment (otherwise clean, like resetcmd's). At most `concurrency` run
// at once, each in its own process group, killed with the group after
// `timeoutMs`; the rest wait in a bounded queue (past it the oldest go,
// counted). A command that fails is logged with the start of its stderr.

import { spawn } from 'node:child_process';
import type { DaemonLog } from '../logging/daemon-log.js';
import type { Alert, AlertPhase, AlertRecord } from './alert.js';
import { alertPayload, type AlertSink } from './sinks.js';

export interface ExecOptions {
  /** commands running at once (default 4) */
  concurrency?: number;
  /** alerts waiting for a free slot (default 100) */
  queueMax?: number;
  /** a command still running after this long is killed with its process group (default 30 s) */
  timeoutMs?: number;
}

export interface ExecCounters {
  /** commands started */
  started: number;
  /** exited non-zero, killed by a signal, or could not start */
  failed: number;
  /** killed at the timeout */
  timedOut: number;
  /** dropped from a full queue */
  dropped: number;
  running: number;
  queued: number;
}

interface Job {
  body: string;
  env: NodeJS.ProcessEnv;
}

const STDERR_KEPT = 512;

function baseEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: '/usr/bin:/bin:/usr/sbin:/sbin', IFS: ' \t\n' };
  for (const k of ['TZ', 'LANG', 'HOME']) if (process.env[k] !== undefined) env[k] = process.env[k];
  return env;
}

export class ExecSink implements AlertSink {
  readonly kind = 'exec';
  private queue: Job[] = [];
  private readonly running = new Map<number, NodeJS.Timeout>();
  private stopped = false;
  private droppedToldAt = 0;
  readonly stats = { started: 0, failed: 0, timedOut: 0, dropped: 0 };
  private readonly o: Required<ExecOptions>;

  constructor(
    readonly cmd: string,
    private readonly dlog: DaemonLog,
    opts: ExecOptions = {},
  ) {
    this.o = { concurrency: 4, queueMax: 100, timeoutMs: 30_000, ...opts };
  }

  get counters(): ExecCounters {
    return { ...this.stats, running: this.running.size, queued: this.queue.length };
  }

  deliver(phase: AlertPhase, _a: Alert, s: AlertRecord): void {
    if (phase === 'fired' || this.stopped) return;
    const env = {
      ...baseEnv(),
      CONCH_ALERT_PHASE: phase,
      CONCH_ALERT_ID: String(s.id),
      CONCH_ALERT_CONSOLE: s.console,
      CONCH_ALERT_RULE: s.rule,
      CONCH_ALERT_SEVERITY: s.severity,
      CONCH_ALERT_COUNT: String(s.count),
    };
    this.queue.push({ body: alertPayload(phase, s) + '\n', env });
    if (this.queue.length > this.o.queueMax) {
      this.queue.shift();
      this.stats.dropped++;
      const now = Date.now();
      if (now - this.droppedToldAt >= 60_000) {
        this.droppedToldAt = now;
        this.dlog.warn(`Alert exec: queue full (${this.o.queueMax} waiting, ${this.running.size} running): alerts dropped (${this.stats.dropped} in all)`);
      }
    }
    this.pump();
  }

  /** No new commands; those running get `graceMs` more, then are killed. */
  async stop(graceMs = 2000): Promise<void> {
    this.stopped = true;
    this.queue = [];
    if (this.running.size === 0) return;
    const deadline = Date.now() + graceMs;
    while (this.running.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const pid of this.running.keys()) this.kill(pid);
  }

  private kill(pid: number): void {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }

  private pump(): void {
    while (!this.stopped && this.running.size < this.o.concurrency && this.queue.length > 0) this.run(this.queue.shift()!);
  }

  private run(job: Job): void {
    this.stats.started++;
    let child;
    try {
      child = spawn('/bin/sh', ['-c', this.cmd], { detached: true, stdio: ['pipe', 'ignore', 'pipe'], env: job.env });
    } catch (e) {
      this.stats.failed++;
      this.dlog.warn(`Alert exec: cannot start /bin/sh: ${(e as Error).message}`);
      return;
    }
    const pid = child.pid;
    if (pid === undefined) {
      this.stats.failed++;
      child.once('error', (e) => this.dlog.warn(`Alert exec: cannot start /bin/sh: ${e.message}`));
      return;
    }
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      if (stderr.length < STDERR_KEPT) stderr += d.toString('utf8');
    });
    child.stdin!.on('error', () => {}); // a command that does not read its stdin
    child.stdin!.end(job.body);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.stats.timedOut++;
      this.kill(pid);
    }, this.o.timeoutMs);
    timer.unref();
    this.running.set(pid, timer);
    child.once('error', () => {});
    child.once('close', (code, sig) => {
      clearTimeout(timer);
      this.running.delete(pid);
      if (code !== 0) {
        this.stats.failed++;
        const how = timedOut ? `killed after ${this.o.timeoutMs / 1000} s` : sig ? `killed by ${sig}` : `exit status ${code}`;
        const err = stderr.trim().split('\n')[0]?.slice(0, 200) ?? '';
        this.dlog.warn(`Alert exec (pid ${pid}): ${how}${err ? `: ${err}` : ''}`);
      }
      this.pump();
    });
  }
}

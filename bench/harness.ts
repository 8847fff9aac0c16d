// Driving processes from outside, for the benchmarks and the tests alike:
// free ports, waiting on conditions (never fixed sleeps), temporary
// directories and child processes (each in its own process group) that are
// always cleaned up. It lives here, beside the benchmarks, so that bench/
// needs nothing from test/; test/helpers/wait.ts re-exports it for the tests.

import * as net from 'node:net';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Thrown from a waitFor condition to stop waiting at once. */
/** `n` consecutive free TCP ports on 127.0.0.1. */
export async function freeTcpRange(n: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    // not seeded: a port is not test input, and test files running side by
    // side must not all try the same ports first
    const base = 20000 + Math.floor(Math.random() * 30000);
    const srvs: net.Server[] = [];
    let ok = true;
    for (let i = 0; i < n && ok; i++) {
      const srv = net.createServer();
      ok = await new Promise<boolean>((resolve) => {
        srv.once('error', () => resolve(false));
        srv.listen(base + i, '127.0.0.1', () => resolve(true));
      });
      if (ok) srvs.push(srv);
    }
    await Promise.all(srvs.map((s) => new Promise((r) => s.close(r))));
    if (ok) return base;
  }
  throw new Error(`no run of ${n} free TCP ports`);
}

export class FatalWait extends Error {}

/** Poll `cond` until it returns a truthy value, or throw after `timeoutMs`. */
export async function waitFor<T>(
  cond: () => T | Promise<T>,
  what: string,
  timeoutMs = 20000,
  intervalMs = 25,
): Promise<NonNullable<T>> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v as NonNullable<T>;
    } catch (e) {
      if (e instanceof FatalWait) throw e;
      last = e;
    }
    if (performance.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Wait until something accepts TCP connections on host:port. */
export async function waitForPort(port: number, host = '127.0.0.1', timeoutMs = 20000): Promise<void> {
  await waitFor(
    () =>
      new Promise<boolean>((resolve) => {
        const s = net.connect(port, host);
        s.once('connect', () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(false));
      }),
    `port ${host}:${port}`,
    timeoutMs,
  );
}

/** A fresh temporary directory, removed by `cleanup()`. */
export function tmpDir(prefix = 'conch-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A child process whose output is collected, killed (with its group) by `cleanup()`. */
export class Child {
  readonly proc: ChildProcess;
  stdout = '';
  stderr = '';
  exited: Promise<number | null>;
  constructor(cmd: string, args: string[], opts: SpawnOptions = {}) {
    this.proc = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true, ...opts });
    this.proc.stdout?.on('data', (d: Buffer) => (this.stdout += d.toString('latin1')));
    this.proc.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString('latin1')));
    // a failed spawn (ENOENT) emits 'error' and no 'exit'
    this.exited = new Promise((resolve) => {
      this.proc.once('exit', (code) => resolve(code));
      this.proc.once('error', (e) => {
        this.stderr += `spawn failed: ${e.message}\n`;
        resolve(null);
      });
    });
  }
  get output(): string {
    return this.stdout + this.stderr;
  }
  async waitOutput(needle: string | RegExp, timeoutMs = 20000): Promise<string> {
    return waitFor(
      () => {
        const s = this.output;
        if (typeof needle === 'string' ? s.includes(needle) : needle.test(s)) return s;
        if (this.proc.exitCode !== null || this.proc.signalCode !== null) {
          throw new FatalWait(`process exited (${this.proc.exitCode ?? this.proc.signalCode}) before printing ${String(needle)}: ${s.slice(-800)}`);
        }
        return '';
      },
      `${this.proc.spawnfile} output to contain ${String(needle)} (got: ${JSON.stringify(this.output.slice(-400))})`,
      timeoutMs,
    );
  }
  /** SIGTERM the process group, SIGKILL after `graceMs`; resolves with the exit code. */
  async stop(graceMs = 5000): Promise<number | null> {
    const pid = this.proc.pid;
    if (pid === undefined) return null;
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return this.exited;
    try {
      process.kill(-pid, 'SIGTERM');
    } catch {
      /* already gone */
    }
    const t = setTimeout(() => {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, graceMs);
    const code = await this.exited;
    clearTimeout(t);
    return code;
  }
}

/** Collects cleanups and runs them in reverse order; use with `after()`/`t.after()`. */
export class Cleanup {
  private fns: (() => unknown)[] = [];
  add(fn: () => unknown): void {
    this.fns.push(fn);
  }
  child(cmd: string, args: string[], opts?: SpawnOptions): Child {
    const c = new Child(cmd, args, opts);
    this.add(() => c.stop());
    return c;
  }
  dir(prefix?: string): string {
    const d = tmpDir(prefix);
    this.add(() => fs.rmSync(d, { recursive: true, force: true }));
    return d;
  }
  async run(): Promise<void> {
    for (const fn of this.fns.reverse()) {
      try {
        await fn();
      } catch {
        /* best effort */
      }
    }
    this.fns = [];
  }
}

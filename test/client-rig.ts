// Test rig for the conch client: a real Debian conmand 0.2.7 in the
// foreground with process consoles (a select()-based echo helper, since
// conmand hands children a non-blocking socketpair), and ways to run conch
// plainly or under a pseudo-terminal (node-pty).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as pty from 'node-pty';
import { Cleanup, freePort, waitFor, waitForPort, type Child } from './helpers/wait.js';

const here = path.dirname(fileURLToPath(import.meta.url)); // dist/test
export const CONCH = path.resolve(here, '../src/bin/conch.js');
export const REPO = path.resolve(here, '../..');

/** Echoes console input back; reports the `&B` conmand writes to a process console on break. */
const ECHO_HELPER = `#!/usr/bin/python3
import os, select
os.write(1, b"helper up\\r\\n")
while True:
    select.select([0], [], [])
    try:
        d = os.read(0, 4096)
    except BlockingIOError:
        continue
    if not d:
        break
    if b"&B" in d:
        os.write(1, b"[BREAK-RECEIVED]\\r\\n")
    os.write(1, d)
`;

/** Environment for clients: no inherited CONMAN_/CONCH_ settings. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/^(CONMAN|CONCH)_/.test(k)) env[k] = v;
  }
  return { ...env, TERM: 'xterm', ...extra };
}

export class Conmand {
  constructor(
    readonly port: number,
    readonly dir: string,
    readonly child: Child,
  ) {}

  get dest(): string {
    return `127.0.0.1:${this.port}`;
  }

  /**
   * Start conmand -F in its own process group; the cleanup kills the group
   * (daemon and helpers). `server` adds lines such as `server resetcmd=…`;
   * `%DIR%` in them becomes the daemon's temporary directory.
   */
  static async start(cleanup: Cleanup, consoles = ['n1', 'n2', 'n10'], server: string[] = []): Promise<Conmand> {
    const dir = cleanup.dir('conch-client-');
    const helper = path.join(dir, 'echo.py');
    fs.writeFileSync(helper, ECHO_HELPER, { mode: 0o755 });
    const port = await freePort();
    const conf = [
      `server port=${port}`,
      'server loopback=on',
      `server logdir="${dir}"`,
      ...server.map((l) => l.replaceAll('%DIR%', dir)),
      ...consoles.map((n) => `console name="${n}" dev="${helper}" log="${n}.log"`),
      '',
    ].join('\n');
    fs.writeFileSync(path.join(dir, 'conman.conf'), conf);
    const child = cleanup.child('/usr/sbin/conmand', ['-F', '-c', path.join(dir, 'conman.conf')], { cwd: dir });
    await waitForPort(port);
    const d = new Conmand(port, dir, child);
    // Every console helper is up (its greeting reached the console log).
    await waitFor(
      () => consoles.every((n) => fs.existsSync(d.log(n)) && fs.readFileSync(d.log(n), 'latin1').includes('helper up')),
      'conmand console helpers to start',
    );
    return d;
  }

  log(name: string): string {
    return path.join(this.dir, `${name}.log`);
  }

  /** SIGKILL the daemon and its helper children (the whole process group). */
  kill(): void {
    const pid = this.child.proc.pid;
    if (pid !== undefined) process.kill(-pid, 'SIGKILL');
  }
}

/** A program running on a pseudo-terminal; output kept as latin1 bytes. */
export class PtyProc {
  readonly term: pty.IPty;
  output = '';
  exitCode: number | undefined;
  readonly exited: Promise<number>;

  constructor(file: string, args: string[], env: Record<string, string>, cwd?: string) {
    this.term = pty.spawn(file, args, { name: 'xterm', cols: 200, rows: 50, env, cwd, encoding: null });
    this.term.onData((d: string | Buffer) => {
      this.output += typeof d === 'string' ? d : Buffer.from(d).toString('latin1');
    });
    this.exited = new Promise((resolve) =>
      this.term.onExit(({ exitCode }) => {
        this.exitCode = exitCode;
        resolve(exitCode);
      }),
    );
  }

  get pid(): number {
    return this.term.pid;
  }

  write(data: string | Buffer): void {
    this.term.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  async waitOutput(needle: string | RegExp, timeoutMs = 20000): Promise<string> {
    return waitFor(
      () => {
        const s = this.output;
        return (typeof needle === 'string' ? s.includes(needle) : needle.test(s)) ? s : '';
      },
      `pty output to contain ${String(needle)} (got: ${JSON.stringify(this.output.slice(-400))})`,
      timeoutMs,
    );
  }

  /** Wait for exit, failing the test with the output if it takes too long. */
  async waitExit(timeoutMs = 20000): Promise<number> {
    await waitFor(() => this.exitCode !== undefined, `exit (output: ${JSON.stringify(this.output.slice(-400))})`, timeoutMs);
    return this.exitCode!;
  }

  kill(): void {
    if (this.exitCode !== undefined) return;
    try {
      process.kill(-this.term.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/** Run conch on a pty; killed by the cleanup if still running. */
export function conchPty(cleanup: Cleanup, args: string[], env = cleanEnv()): PtyProc {
  const p = new PtyProc(process.execPath, [CONCH, ...args], env);
  cleanup.add(() => p.kill());
  return p;
}

/** Run conch without a terminal; resolves with exit status and output. */
export async function conchPlain(
  cleanup: Cleanup,
  args: string[],
  env = cleanEnv(),
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const c = cleanup.child(process.execPath, [CONCH, ...args], { env });
  c.proc.stdin?.end();
  const code = await c.exited;
  // Let the pipes deliver their last bytes.
  await waitFor(() => c.proc.stdout?.readableEnded !== false && c.proc.stderr?.readableEnded !== false, 'output pipes to close');
  return { code, stdout: c.stdout, stderr: c.stderr };
}

/** Pids of the direct children of `pid` (read from /proc). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const ent of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(ent)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${ent}/stat`, 'latin1');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(ent));
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

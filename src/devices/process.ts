// A process console: a program (ssh, ipmitool sol activate, an expect
// script, ...) run on a pseudo-terminal; its terminal is the console.
//
// conman gives the child a socketpair, which is why interactive tools only
// work there through expect. Here the child gets a real pty (its own session
// and process group, the pty as controlling terminal), switched to raw mode
// before the program starts: the console then sees exactly the bytes the
// program wrote (no \n -> \r\n, no echo of client input), as with conman.
// Programs that want their own terminal modes (ssh, ipmitool) still set them.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn as ptySpawn, type IPty } from 'node-pty';
import { INPUT_HIGH_WATER, type Backoff, type Device, type DeviceHandler } from './device.js';

/** The PATH conman gives its children (src/server.c:get_sane_env). */
export const CHILD_PATH = '/usr/bin:/bin:/usr/sbin:/sbin';

/**
 * Started through sh: make the pty raw, say so with a marker (consumed here,
 * never shown), then become the program. `$0 "$@"` keeps argv exact.
 */
const MARK_BODY = '[conch-pty-raw]';
const READY_MARK = Buffer.from(`\x1b${MARK_BODY}`, 'latin1');
const wrapper = (mode: PtyMode): string =>
  `stty ${mode === 'raw' ? 'raw -echo -iexten' : 'sane'} 2>/dev/null; printf '\\033${MARK_BODY}'; exec "$0" "$@"`;
/** If the marker never comes (no stty? odd sh?), stop holding client input after this. */
const READY_TIMEOUT_MS = 10000;
/** Queued input at or under this after write() said full: the writers may go on. */
const LOW_WATER = INPUT_HIGH_WATER >> 2;
/** A pty that refused input is tried again after this, doubling up to RETRY_MAX_MS. */
const RETRY_MIN_MS = 5;
const RETRY_MAX_MS = 200;

/**
 * raw (the default, as conman): the console sees exactly what the program
 * writes — right for ssh and `ipmitool sol activate`, which set their own
 * modes. cooked (conch extension `ptymode=cooked`): a terminal's usual line
 * discipline — echo, \n → \r\n, Ctrl-C as a signal — for interactive
 * programs such as `bash -i` that expect one.
 */
export type PtyMode = 'raw' | 'cooked';

export interface ProcessOptions {
  consoleName: string;
  /** the pty's line discipline (default raw) */
  ptyMode?: PtyMode;
  /** SIGTERM → SIGKILL grace on close(), ms */
  killGraceMs?: number;
}

interface Child {
  h: DeviceHandler;
  pty: IPty;
  pid: number;
  exited: Promise<void>;
  /** node-pty reported the exit: the pid is reaped and may be reused */
  reaped: boolean;
  /** the wrapper's marker not yet seen: output is held back until it arrives, input is queued */
  head: Buffer | null;
  /** the pty master (non-blocking), written here; null: node-pty's own write (unbounded) */
  fd: number | null;
  /** client input the pty has not taken yet */
  queue: Buffer[];
  queued: number;
  /** write() returned false: onDrain once the queue is at LOW_WATER */
  full: boolean;
  retry: NodeJS.Timeout | null;
  retryMs: number;
  readyTimer: NodeJS.Timeout | null;
  /** close() took over: the exit is no longer reported */
  closing: boolean;
  /** our own handle on the pty's slave side, see holdSlave() */
  slaveFd: number | null;
}

export class ProcessDevice implements Device {
  readonly type = 'process' as const;
  readonly backoff: Backoff = { minMs: 60000, maxMs: 1800000, healthyMs: 60000 };
  private readonly argv: string[];
  private readonly name: string;
  private readonly graceMs: number;
  private child: Child | null = null;
  /** pid shown in the label: still set while onDown is being reported */
  private labelPid: number | null = null;

  private readonly ptyMode: PtyMode;

  constructor(spec: { argv: string[] }, opts: ProcessOptions) {
    this.argv = [...spec.argv];
    this.name = path.basename(this.argv[0] ?? '');
    this.graceMs = opts.killGraceMs ?? 3000;
    this.ptyMode = opts.ptyMode ?? 'raw';
  }

  label(): string {
    return this.labelPid === null ? `"${this.name}"` : `"${this.name}" (pid ${this.labelPid})`;
  }

  connect(h: DeviceHandler): void {
    if (this.child) void this.stop(this.child); // a fresh attempt replaces a leftover child
    const fail = (reason: string) => setImmediate(() => safe(() => h.onDown(reason)));
    const file = resolveProgram(this.argv[0]);
    if ('error' in file) {
      fail(file.error);
      return;
    }
    let pty: IPty;
    try {
      pty = ptySpawn('/bin/sh', ['-c', wrapper(this.ptyMode), file.path, ...this.argv.slice(1)], {
        name: 'dumb',
        cols: 80,
        rows: 24,
        cwd: '/',
        env: childEnv(),
        encoding: null, // Buffers both ways: binary-clean
      });
    } catch (e) {
      fail(`cannot start "${this.name}": ${(e as Error)?.message ?? String(e)}`);
      return;
    }
    // node-pty rethrows unexpected read errors unless someone else listens
    (pty as unknown as { on(ev: 'error', fn: (e: Error) => void): void }).on('error', () => undefined);
    let onExit!: () => void;
    const c: Child = {
      h,
      pty,
      pid: pty.pid,
      exited: new Promise<void>((r) => (onExit = r)),
      reaped: false,
      head: Buffer.alloc(0),
      fd: masterFd(pty),
      queue: [],
      queued: 0,
      full: false,
      retry: null,
      retryMs: RETRY_MIN_MS,
      readyTimer: null,
      closing: false,
      slaveFd: holdSlave(pty),
    };
    c.readyTimer = setTimeout(() => this.readyTimedOut(c), READY_TIMEOUT_MS);
    c.readyTimer.unref();
    this.child = c;
    this.labelPid = c.pid;
    pty.onData((d) => this.fromChild(c, d as unknown as Buffer));
    pty.onExit(({ exitCode, signal }) => {
      c.reaped = true;
      onExit();
      this.exited(c, exitCode, signal ?? 0);
    });
    safe(() => h.onUp());
  }

  /**
   * node-pty's own write() queues without limit and, while the pty is full,
   * retries on every turn of the event loop (a busy loop for as long as the
   * program does not read). Instead: one non-blocking write(2) to the master
   * at once — a keystroke goes out without a trip through the thread pool —
   * and what the pty refuses is queued here and retried on a timer that
   * backs off while the program does not read.
   */
  write(buf: Buffer): boolean {
    const c = this.child;
    if (!c || c.closing || buf.length === 0) return true;
    if (c.fd === null) {
      try {
        c.pty.write(buf);
      } catch {
        /* the child is going away; its exit is reported separately */
      }
      return true;
    }
    if (c.queued === 0 && c.head === null) {
      const n = this.writeNow(c, buf);
      if (n >= buf.length) return true;
      buf = buf.subarray(n);
    }
    c.queue.push(Buffer.from(buf)); // a copy: not the client's whole read buffer
    c.queued += buf.length;
    // before the marker the pty is not raw yet: input now would be echoed and translated
    if (c.head === null) this.armRetry(c);
    if (c.queued < INPUT_HIGH_WATER) return true;
    c.full = true;
    return false;
  }

  queued(): number {
    const c = this.child;
    return c && !c.closing ? c.queued : 0;
  }

  /** conman's convention: a process console gets the two bytes "&B"; expect scripts map them. */
  sendBreak(): void {
    this.write(Buffer.from('&B', 'latin1'));
  }

  close(): Promise<void> {
    const c = this.child;
    if (!c) return Promise.resolve();
    return this.stop(c);
  }

  // ---- internals ---------------------------------------------------------

  private fromChild(c: Child, data: Buffer): void {
    if (c !== this.child || c.closing) return;
    if (c.head !== null) {
      const acc = Buffer.concat([c.head, data]);
      const mark = READY_MARK;
      const n = Math.min(acc.length, mark.length);
      if (acc.subarray(0, n).equals(mark.subarray(0, n))) {
        if (acc.length < mark.length) {
          c.head = acc;
          return;
        }
        data = acc.subarray(mark.length);
      } else {
        data = acc; // something came before the marker (an error from sh?): show it all
      }
      this.ready(c);
      if (data.length === 0) return;
    }
    safe(() => c.h.onData(data));
  }

  /** The pty is raw (or we gave up waiting): release the input held so far. */
  private ready(c: Child): void {
    if (c.readyTimer) clearTimeout(c.readyTimer);
    c.readyTimer = null;
    if (c.head === null) return;
    c.head = null;
    this.flush(c);
  }

  /** Bytes the pty took (0 if it is full); a write error drops the input (the exit is reported apart). */
  private writeNow(c: Child, buf: Buffer): number {
    // once node-pty has closed the master its fd number may belong to another file
    if (c.fd === null || c.reaped || c.closing || ptyClosed(c.pty)) return buf.length;
    try {
      return fs.writeSync(c.fd, buf, 0, buf.length);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      return code === 'EAGAIN' || code === 'EWOULDBLOCK' || code === 'EINTR' ? 0 : buf.length;
    }
  }

  /** Write the queue's head as far as the pty takes it; retry later if it is full. */
  private flush(c: Child): void {
    if (c.retry) clearTimeout(c.retry);
    c.retry = null;
    if (c !== this.child || c.closing) return;
    let progress = false;
    while (c.queue.length > 0) {
      const b = c.queue[0]!;
      const n = this.writeNow(c, b);
      if (n > 0) progress = true;
      c.queued -= n;
      if (n < b.length) {
        c.queue[0] = b.subarray(n);
        break;
      }
      c.queue.shift();
    }
    if (progress) c.retryMs = RETRY_MIN_MS;
    if (c.queue.length > 0) this.armRetry(c);
    if (c.full && c.queued <= LOW_WATER) {
      c.full = false;
      safe(() => c.h.onDrain?.());
    }
  }

  private armRetry(c: Child): void {
    if (c.retry || c.head !== null) return;
    c.retry = setTimeout(() => this.flush(c), c.retryMs);
    c.retry.unref();
    c.retryMs = Math.min(c.retryMs * 2, RETRY_MAX_MS);
  }

  /** The child is gone or going: its queued input goes with it. */
  private dropInput(c: Child): void {
    if (c.retry) clearTimeout(c.retry);
    c.retry = null;
    c.queue = [];
    c.queued = 0;
    c.full = false;
  }

  /** No marker in time: what looked like its start was real output. */
  private readyTimedOut(c: Child): void {
    const partial = c.head;
    this.ready(c);
    if (partial && partial.length > 0 && c === this.child && !c.closing) safe(() => c.h.onData(partial));
  }

  private exited(c: Child, code: number, signal: number): void {
    if (c.readyTimer) clearTimeout(c.readyTimer);
    c.readyTimer = null;
    this.dropInput(c);
    releaseSlave(c);
    // whatever the program left running in its group goes with it (conman SIGKILLs it too)
    killGroup(c.pid, 'SIGKILL');
    if (c.closing || c !== this.child) return;
    this.child = null;
    const reason = signal ? `killed by signal ${signalName(signal)}` : `exited with status ${code}`;
    safe(() => c.h.onDown(reason));
    this.labelPid = null;
  }

  /** SIGTERM the child's process group, SIGKILL after the grace; resolve when it is gone. */
  private async stop(c: Child): Promise<void> {
    if (this.child === c) {
      this.child = null;
      this.labelPid = null;
    }
    if (c.closing) return c.exited;
    c.closing = true;
    if (c.readyTimer) clearTimeout(c.readyTimer);
    c.readyTimer = null;
    this.dropInput(c);
    killGroup(c.pid, 'SIGTERM');
    const gone = async (ms: number) => {
      const deadline = performance.now() + ms;
      const leader = await Promise.race([c.exited.then(() => true), sleep(ms).then(() => false)]);
      if (!leader) return false;
      while (groupAlive(c.pid)) {
        if (performance.now() > deadline) return false;
        await sleep(50);
      }
      return true;
    };
    if (await gone(this.graceMs)) return releaseSlave(c);
    killGroup(c.pid, 'SIGKILL');
    // after SIGKILL only a process stuck in the kernel can remain; do not wait forever
    if (!(await gone(5000)) && !c.reaped) {
      // give up on it, but release our end of the pty
      try {
        (c.pty as unknown as { destroy?: () => void }).destroy?.();
      } catch {
        /* already released */
      }
    }
    releaseSlave(c);
  }
}

/**
 * Keep the pty's slave side open ourselves while the child runs. When the
 * last slave fd closes, the master polls POLLHUP, and libuv then ends the
 * stream after the next short read, dropping output the kernel has not yet
 * handed over (the tail of what a program printed just before exiting).
 * Holding the slave, the master never hangs up, and node-pty ends the
 * stream itself 200 ms after the child has been reaped: by then the output
 * has been read unless the event loop was stalled that long.
 */
function holdSlave(pty: IPty): number | null {
  const name = (pty as unknown as { ptsName?: string }).ptsName;
  if (!name) return null;
  try {
    return fs.openSync(name, fs.constants.O_RDWR | fs.constants.O_NOCTTY | fs.constants.O_NONBLOCK);
  } catch {
    return null; // the child is already gone: nothing left to protect
  }
}

/**
 * node-pty's master fd and its read stream, whose `destroyed` says when the
 * fd is closed (neither is in its typings); null if this version does not
 * show both: then its own write() is used.
 */
function masterFd(pty: IPty): number | null {
  const p = pty as unknown as { fd?: unknown; _socket?: { destroyed?: unknown } };
  if (typeof p.fd !== 'number' || p.fd < 0 || typeof p._socket?.destroyed !== 'boolean') return null;
  return p.fd;
}

/** Has node-pty closed the master? */
function ptyClosed(pty: IPty): boolean {
  return (pty as unknown as { _socket?: { destroyed?: boolean } })._socket?.destroyed !== false;
}

function releaseSlave(c: Child): void {
  if (c.slaveFd === null) return;
  try {
    fs.closeSync(c.slaveFd);
  } catch {
    /* already closed */
  }
  c.slaveFd = null;
}

/** Find the program as exec would, with the children's PATH; say clearly why not. */
export function resolveProgram(prog: string | undefined): { path: string } | { error: string } {
  if (!prog) return { error: 'empty command' };
  const candidates = prog.includes('/') ? [prog] : CHILD_PATH.split(':').map((d) => path.join(d, prog));
  let last = `"${prog}": not found in ${CHILD_PATH}`;
  for (const p of candidates) {
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch (e) {
      if (prog.includes('/')) {
        const code = (e as NodeJS.ErrnoException).code;
        last = `"${prog}" stat error: ${code === 'ENOENT' ? 'no such file or directory' : code === 'EACCES' ? 'permission denied' : ((e as Error).message ?? String(e))}`;
      }
      continue;
    }
    if (!st.isFile()) {
      last = `"${p}": not a regular file`;
      continue;
    }
    try {
      fs.accessSync(p, fs.constants.X_OK);
    } catch {
      last = `"${p}": not executable`;
      continue;
    }
    return { path: p };
  }
  return { error: last };
}

/** conman's cleaned environment: PATH, TERM=dumb, IFS, plus TZ and DEBUG if the daemon has them. */
export function childEnv(): Record<string, string> {
  const env: Record<string, string> = { PATH: CHILD_PATH, TERM: 'dumb', IFS: ' \t\n' };
  for (const k of ['TZ', 'DEBUG']) {
    const v = process.env[k];
    if (v !== undefined) env[k] = v;
  }
  return env;
}

function killGroup(pgid: number, sig: NodeJS.Signals): void {
  if (!(pgid > 1)) return;
  try {
    process.kill(-pgid, sig);
  } catch {
    /* the group is gone */
  }
}

/** Is any process of the group still running? Zombies do not count: a slow init may leave them. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return true; // no /proc: trust kill()
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${e}/stat`, 'latin1');
    } catch {
      continue; // exited meanwhile
    }
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(f[2]) === pgid && f[0] !== 'Z') return true;
  }
  return false;
}

function signalName(n: number): string {
  for (const [name, num] of Object.entries(os.constants.signals)) if (num === n) return name;
  return String(n);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function safe(fn: () => void): void {
  try {
    fn();
  } catch {
    /* an exception from the engine's handler must not escape into node-pty's event loop */
  }
}

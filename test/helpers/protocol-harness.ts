// Test harness for the conman protocol: a ConmanServer in this process, built
// from conman.conf text like conchd builds it, on a free port; and the real
// Debian `conman` client driven through a pseudo-terminal (it insists on a tty).
//
// startProtocolServer() returns what a test needs from a running daemon — the
// port, and stop() — so tests can move to a real conchd process (see
// startConchd in conchd.ts) by swapping this one call. The extras (breaks(),
// console()) are in-process peeks for things a client cannot see.

import * as os from 'node:os';
import * as path from 'node:path';
import * as pty from 'node-pty';
import { keepPtyTail } from './pty-tail.js';
import { parseConfig } from '../../src/config/parse.js';
import type { ConsoleConfig, ServerConfig } from '../../src/config/types.js';
import { Console } from '../../src/engine/console.js';
import { ConsoleRegistry } from '../../src/engine/registry.js';
import { TestDevice } from '../../src/devices/test-device.js';
import { TelnetDevice } from '../../src/devices/telnet.js';
import type { Device } from '../../src/devices/device.js';
import { ConsoleLog } from '../../src/logging/console-log.js';
import { DaemonLog } from '../../src/logging/daemon-log.js';
import { ConmanServer } from '../../src/protocol/server.js';
import { freePort, waitFor, type Cleanup } from './wait.js';

/** conman's test: console, echoing what it is sent, and counting breaks. */
class EchoTestDevice extends TestDevice {
  breaks = 0;
  override sendBreak(): void {
    this.breaks++;
    super.sendBreak();
  }
}

export interface RunningServer {
  port: number;
  /** the daemon log so far */
  log(): string;
  stop(): Promise<void>;
  /** in-process only: serial breaks a test: console received */
  breaks(name: string): number;
  /** in-process only: the engine object */
  console(name: string): Console;
}

/**
 * Start a ConmanServer for `conf` (conman.conf lines; a `server port=` line is
 * added). test: consoles echo their input; telnet consoles are real.
 */
export async function startProtocolServer(
  cleanup: Cleanup,
  conf: string,
  overrides: Partial<ServerConfig> = {},
): Promise<RunningServer> {
  const port = await freePort();
  const cfg = parseConfig(`server port=${port}\nserver loopback=on\n${conf}`, 'test.conf', { cwd: os.tmpdir() });
  const server: ServerConfig = { ...cfg.server, ...overrides, port };
  let logText = '';
  const dlog = new DaemonLog({ priority: 'debug', echo: false });
  const write = dlog.write.bind(dlog);
  dlog.write = (p, msg) => {
    logText += `${p.toUpperCase()}: ${msg}\n`;
    write(p, msg);
  };
  const registry = new ConsoleRegistry();
  const devices = new Map<string, Device>();
  for (const c of cfg.consoles) {
    const device = makeDevice(c);
    devices.set(c.name, device);
    const log = c.log ? new ConsoleLog(path.resolve(c.log), c.logOpts, { name: c.name, dev: c.dev }, dlog) : null;
    registry.add(new Console(c, device, log, dlog, server.replayBytes));
  }
  const srv = new ConmanServer({ registry, server, dlog });
  const bound = await srv.listen();
  for (const c of registry.list()) c.start();
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await srv.close();
    await Promise.all(registry.list().map((c) => c.stop()));
  };
  cleanup.add(stop);
  // wait until the test: consoles are up, as a daemon's would be long before a user attaches
  await waitFor(
    () => registry.list().every((c) => c.device.type !== 'test' || c.state === 'up'),
    'test consoles to come up',
  );
  return {
    port: bound,
    log: () => logText,
    stop,
    breaks: (name) => (devices.get(name) as EchoTestDevice).breaks,
    console: (name) => registry.get(name)!,
  };
}

function makeDevice(c: ConsoleConfig): Device {
  const spec = c.spec;
  switch (spec.type) {
    case 'test':
      return new EchoTestDevice(spec, { echo: true });
    case 'telnet':
      return new TelnetDevice(spec, { keepalive: true });
    default:
      throw new Error(`protocol harness: no ${spec.type} consoles`);
  }
}

// ---- the real conman client on a pty ------------------------------------------

export const CONMAN = '/usr/bin/conman';

export class ConmanClient {
  readonly proc: pty.IPty;
  output = '';
  exitCode: number | null = null;
  readonly exited: Promise<number>;

  constructor(port: number, args: string[]) {
    this.proc = pty.spawn(CONMAN, ['-d', `127.0.0.1:${port}`, ...args], {
      name: 'xterm',
      cols: 200,
      rows: 50,
      cwd: os.tmpdir(),
      env: { ...process.env, CONMAN_ESCAPE: '&' } as Record<string, string>,
    });
    this.proc.onData((d) => (this.output += d));
    keepPtyTail(this.proc, (d) => (this.output += d));
    this.exited = new Promise((resolve) =>
      this.proc.onExit(({ exitCode }) => {
        this.exitCode = exitCode;
        resolve(exitCode);
      }),
    );
  }

  async waitOutput(needle: string | RegExp, timeoutMs = 20000): Promise<string> {
    return waitFor(
      () => {
        const s = this.output;
        return (typeof needle === 'string' ? s.includes(needle) : needle.test(s)) ? s : '';
      },
      `conman output to contain ${String(needle)} (got: ${JSON.stringify(this.output.slice(-600))})`,
      timeoutMs,
    );
  }

  /** Wait for the session to open (the client's own local line). */
  opened(console: string): Promise<string> {
    return this.waitOutput(`<ConMan> Connection to console [${console}] opened.`);
  }

  /** Keystrokes, as typed (conman reads its tty one byte at a time). */
  type(s: string): void {
    this.proc.write(s);
  }

  /** Output after `marker` first appeared. */
  after(marker: string): string {
    const i = this.output.indexOf(marker);
    return i < 0 ? '' : this.output.slice(i + marker.length);
  }

  async stop(): Promise<void> {
    if (this.exitCode !== null) return;
    try {
      this.proc.kill('SIGKILL');
    } catch {
      /* gone */
    }
    await this.exited;
  }
}

/** Start `conman` on a pty; it is killed at cleanup. */
export function conman(cleanup: Cleanup, port: number, ...args: string[]): ConmanClient {
  const c = new ConmanClient(port, args);
  cleanup.add(() => c.stop());
  return c;
}

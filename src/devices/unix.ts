// A unix-socket console (`dev="unix:/path"`), typically a VM's serial port
// (`qemu -serial unix:/path,server`). While down, the socket's directory is
// watched so that a new socket is tried at once instead of after the backoff.
//
// Watching: the parent directory if it exists; otherwise the nearest existing
// ancestor, re-armed one level deeper each time a directory appears, until the
// parent exists. If watching fails (no permission, inotify limits, the
// directory is removed) the watch just stops: the engine's backoff (1 s..60 s)
// still retries. A socket that already exists when watch() starts is NOT
// reported (it is the one that just failed; reporting it would spin).

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { Backoff, Device, DeviceHandler } from './device.js';
import { SocketDevice } from './socket-device.js';
import { guarded } from './socket-util.js';

export interface UnixDeviceOptions {
  /** give up an attempt after this long (default 30 s) */
  connectTimeoutMs?: number;
}

export class UnixDevice extends SocketDevice implements Device {
  readonly type = 'unix' as const;
  // conman: 1 s doubling to 60 s; 60 s up counts as healthy
  readonly backoff: Backoff = { minMs: 1000, maxMs: 60000, healthyMs: 60000 };
  private watcher: fs.FSWatcher | null = null;
  /** bumped by every watch start/stop: late callbacks of an old watcher are ignored */
  private watchGen = 0;

  constructor(
    private readonly spec: { path: string },
    opts: UnixDeviceOptions = {},
  ) {
    super(opts.connectTimeoutMs);
  }

  label(): string {
    return `"${this.spec.path}"`;
  }

  /** conman sends nothing for a break on a unix socket. */
  sendBreak(): void {}

  override connect(h: DeviceHandler): void {
    this.unwatch();
    super.connect(h);
  }

  override async close(): Promise<void> {
    this.unwatch();
    await super.close();
  }

  watch(h: DeviceHandler): void {
    this.unwatch();
    if (this.busy) return; // only while down
    const target = path.resolve(this.spec.path);
    const gen = this.watchGen;
    const report = (t: string) => h.onNotice(t);
    let fired = false;
    const ready = () => {
      if (fired || gen !== this.watchGen) return;
      fired = true; // once per watch(): the engine's connect() stops the watch anyway
      this.unwatch();
      h.onReady();
    };
    const arm = (initial: boolean): void => {
      if (gen !== this.watchGen) return;
      this.closeWatcher();
      const dir = path.dirname(target);
      const at = nearestExisting(dir);
      if (at === null) return;
      let w: fs.FSWatcher;
      try {
        w = fs.watch(at, { persistent: true });
      } catch {
        return; // cannot watch: rely on backoff
      }
      this.watcher = w;
      w.on('error', () => {
        if (this.watcher === w) this.closeWatcher();
      });
      if (at === dir) {
        w.on(
          'change',
          guarded(`watch ${this.label()}`, report, (_ev: string, name: string | Buffer | null) => {
            if (name !== null && String(name) !== path.basename(target)) return;
            if (isSocket(target)) ready();
          }),
        );
        // the directory was just created under our eyes: its socket is new
        if (!initial && isSocket(target)) ready();
      } else {
        // an ancestor: any change may have created the next directory down
        w.on(
          'change',
          guarded(`watch ${this.label()}`, report, () => {
            if (nearestExisting(dir) !== at) arm(false);
          }),
        );
        if (nearestExisting(dir) !== at) arm(false);
      }
    };
    arm(true);
  }

  protected override open(onread: net.OnReadOpts): net.Socket {
    return net.connect({ path: this.spec.path, onread });
  }

  private unwatch(): void {
    this.watchGen++;
    this.closeWatcher();
  }

  private closeWatcher(): void {
    const w = this.watcher;
    this.watcher = null;
    try {
      w?.close();
    } catch {
      /* already closed */
    }
  }
}

function nearestExisting(dir: string): string | null {
  let d = dir;
  for (;;) {
    try {
      if (fs.statSync(d).isDirectory()) return d;
    } catch {
      /* missing: go up */
    }
    const up = path.dirname(d);
    if (up === d) return null;
    d = up;
  }
}

function isSocket(p: string): boolean {
  try {
    return fs.statSync(p).isSocket();
  } catch {
    return false;
  }
}

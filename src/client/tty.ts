// The controlling terminal: raw mode for the session and restoring it on
// every way out (normal end, daemon gone, signals, exceptions — the caller
// hooks restore() into process 'exit' too). Node's setRawMode(false) puts
// back the settings saved when raw mode was first entered.

import * as fs from 'node:fs';
import * as tty from 'node:tty';
import { spawnSync } from 'node:child_process';

/** The terminal on stdin without `/dev/` (`pts/3`), or undefined when stdin is not a tty. */
export function ttyName(): string | undefined {
  if (!tty.isatty(0)) return undefined;
  try {
    const p = fs.readlinkSync('/proc/self/fd/0');
    return p.startsWith('/dev/') ? p.slice(5) : p;
  } catch {
    return undefined;
  }
}

export class Terminal {
  private raw = false;
  private readonly stdin = process.stdin as tty.ReadStream;

  enterRaw(): void {
    if (this.stdin.isTTY) {
      this.stdin.setRawMode(true);
      this.raw = true;
      // libuv's raw mode keeps output processing (ONLCR); conman's does not,
      // and console bytes must reach the screen untouched.
      this.stty('-opost', '-echoctl', '-parenb', 'clocal');
    }
  }

  /** Back to the settings the session started with; safe to call repeatedly. */
  restore(): void {
    if (!this.raw) return;
    this.raw = false;
    try {
      this.stdin.setRawMode(false);
    } catch {
      /* terminal gone (hangup); nothing left to restore */
    }
  }

  /** `&E`: flip the terminal's ECHO flag, as conman does, leaving raw mode otherwise alone. */
  setEcho(on: boolean): void {
    this.stty(on ? 'echo' : '-echo');
  }

  /** Change settings of the terminal on stdin (stty acts on its own stdin). */
  private stty(...settings: string[]): void {
    spawnSync('stty', settings, { stdio: [0, 'ignore', 'ignore'] });
  }

  /**
   * `&Z`: stop this process like ^Z would. A stop signal sent to ourselves
   * takes effect before kill() returns, so this returns after SIGCONT (or at
   * once when the process group is orphaned and the kernel drops the stop).
   */
  suspend(): void {
    const wasRaw = this.raw;
    this.restore();
    process.kill(process.pid, 'SIGTSTP');
    if (wasRaw) this.enterRaw();
  }
}

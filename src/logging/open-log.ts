// Opening a log file for appending without following a symbolic link at its
// path (unless `server logsymlinks=on`): root conchd must not append console
// output to whatever file a link planted in the log directory points at, nor
// create a file outside it through a dangling link.
//
// One open, O_CREAT|O_NOFOLLOW: an existing file is opened, a missing one
// created, and a link at the path fails with ELOOP whether it dangles or not,
// in one system call, so nothing can be planted between a look and an open.
// (Two opens, one for an existing file and one to create it, cost a first
// start of 10,000 consoles 10,000 failed opens and their error objects on
// the main thread.) O_NOFOLLOW covers the last component only: symbolic
// links among the directories of the path are followed, and the `mkdir -p`
// of a missing log directory follows them too. The log directory is the
// operator's choice; what is checked is the file an attacker with write
// access to that directory could plant.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { Limiter } from '../util/limiter.js';

const { O_WRONLY, O_APPEND, O_CREAT, O_NOFOLLOW, O_TRUNC, O_NONBLOCK } = fs.constants;

/** The log path is a symbolic link and links are not followed. */
export class SymlinkError extends Error {
  readonly code = 'ESYMLINK';
  constructor() {
    super('it is a symbolic link (refused; server logsymlinks=on follows it)');
  }
}

export interface OpenLogOptions {
  /** O_TRUNC (conchd -z) */
  truncate?: boolean;
  /** follow a symbolic link at the path (server logsymlinks=on) */
  followSymlinks?: boolean;
  /**
   * O_NONBLOCK: a FIFO planted at the path fails (ENXIO) instead of hanging
   * the opening thread until a reader comes; no effect on a regular file
   */
  nonblock?: boolean;
  mode?: number;
}

function flags(o: OpenLogOptions): number {
  return O_WRONLY | O_APPEND | O_CREAT | (o.nonblock ? O_NONBLOCK : 0) | (o.followSymlinks ? 0 : O_NOFOLLOW) | (o.truncate ? O_TRUNC : 0);
}

/** ELOOP from an O_NOFOLLOW open: a link at the path, or a loop among its directories */
function isLink(file: string): boolean {
  try {
    return fs.lstatSync(file).isSymbolicLink();
  } catch {
    return false;
  }
}

/**
 * Opens under way at once in one directory. Files created in one directory
 * by several threads at once make the kernel spin on the directory's lock:
 * 10,000 log files created by libuv's 4 threads cost 5-13 s of system CPU
 * on the benchmark machine (ext4, `rwsem_spin_on_owner` 43% of it), 0.5-8 s
 * one at a time. A daemon's start of 10,000 consoles spent that CPU while
 * its BMCs waited for their share. The others wait their turn in order;
 * different directories (a `%N/` in the log name) open side by side.
 */
export const OPENS_PER_DIRECTORY = 1;

/** each directory's opens, while any is under way or waiting (every console's log may wait: no overflow) */
const directories = new Map<string, Limiter>();

/** Open `file` for appending in the background (creating it and its directory if missing). */
export function openLog(file: string, o: OpenLogOptions, cb: (e: NodeJS.ErrnoException | null, fd: number) => void): void {
  const dir = path.dirname(file);
  let turns = directories.get(dir);
  if (!turns) directories.set(dir, (turns = new Limiter(OPENS_PER_DIRECTORY, Infinity)));
  const limiter = turns;
  void limiter
    .run(() => new Promise<[NodeJS.ErrnoException | null, number]>((done) => openLogNow(file, o, (e, fd) => done([e, fd]))), [null, -1])
    .then(([e, fd]) => {
      if (limiter.active === 0 && limiter.waiting === 0 && directories.get(dir) === limiter) directories.delete(dir);
      cb(e, fd);
    });
}

function openLogNow(file: string, o: OpenLogOptions, cb: (e: NodeJS.ErrnoException | null, fd: number) => void): void {
  const mode = o.mode ?? 0o600;
  // the directory is made only when missing (one mkdir per console cost a start-up of thousands)
  let madeDir = false;
  const attempt = (): void => {
    fs.open(file, flags(o), mode, (e, fd) => {
      if (!e) return cb(null, fd);
      if (e.code === 'ELOOP' && !o.followSymlinks) {
        fs.lstat(file, (e2, st) => cb(!e2 && st.isSymbolicLink() ? new SymlinkError() : e, -1));
        return;
      }
      if (e.code !== 'ENOENT' || madeDir) return cb(e, -1);
      madeDir = true;
      fs.mkdir(path.dirname(file), { recursive: true }, (e2) => (e2 ? cb(e2, -1) : attempt()));
    });
  };
  attempt();
}

/** The same, synchronously (the daemon's own log, opened at start and on SIGHUP). */
export function openLogSync(file: string, o: OpenLogOptions): number {
  const mode = o.mode ?? 0o600;
  for (let madeDir = false; ; madeDir = true) {
    try {
      return fs.openSync(file, flags(o), mode);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'ELOOP' && !o.followSymlinks && isLink(file)) throw new SymlinkError();
      if (err.code !== 'ENOENT' || madeDir) throw err;
      fs.mkdirSync(path.dirname(file), { recursive: true });
    }
  }
}

// Opening a log file for appending without following a symbolic link at its
// path (unless `server logsymlinks=on`): root conchd must not append console
// output to whatever file a link planted in the log directory points at, nor
// create a file outside it through a dangling link.
//
// An existing file is opened with O_NOFOLLOW (a link fails with ELOOP); a
// missing one is created with O_CREAT|O_EXCL|O_NOFOLLOW, so a link planted
// between the two opens makes the create fail (EEXIST) instead of being
// followed, and the loop starts over. O_NOFOLLOW covers the last component
// only: symbolic links among the directories of the path are followed, and
// the `mkdir -p` of a missing log directory follows them too. The log
// directory is the operator's choice; what is checked is the file an
// attacker with write access to that directory could plant.

import * as fs from 'node:fs';
import * as path from 'node:path';

const { O_WRONLY, O_APPEND, O_CREAT, O_EXCL, O_NOFOLLOW, O_TRUNC, O_NONBLOCK } = fs.constants;

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

/** a file created and removed between our two opens, over and over, is an attack: give up after this many rounds */
const MAX_ROUNDS = 8;

function flags(o: OpenLogOptions): { existing: number; create: number } {
  const base = O_WRONLY | O_APPEND | (o.nonblock ? O_NONBLOCK : 0);
  if (o.followSymlinks) {
    const f = base | O_CREAT | (o.truncate ? O_TRUNC : 0);
    return { existing: f, create: f };
  }
  return { existing: base | O_NOFOLLOW | (o.truncate ? O_TRUNC : 0), create: base | O_CREAT | O_EXCL | O_NOFOLLOW };
}

/** ELOOP from an O_NOFOLLOW open: a link at the path, or a loop among its directories */
function isLink(file: string): boolean {
  try {
    return fs.lstatSync(file).isSymbolicLink();
  } catch {
    return false;
  }
}

/** Open `file` for appending in the background (creating it and its directory if missing). */
export function openLog(file: string, o: OpenLogOptions, cb: (e: NodeJS.ErrnoException | null, fd: number) => void): void {
  const { existing, create } = flags(o);
  const mode = o.mode ?? 0o600;
  // the directory is made only when missing (one mkdir per console cost a start-up of thousands)
  let madeDir = false;
  let rounds = 0;
  const fail = (e: NodeJS.ErrnoException): void => cb(e, -1);
  const mkdirThen = (e: NodeJS.ErrnoException, next: () => void): void => {
    if (madeDir) return fail(e);
    madeDir = true;
    fs.mkdir(path.dirname(file), { recursive: true }, (e2) => (e2 ? fail(e2) : next()));
  };
  const linkError = (e: NodeJS.ErrnoException): void => {
    fs.lstat(file, (e2, st) => fail(!e2 && st.isSymbolicLink() ? new SymlinkError() : e));
  };
  const openExisting = (): void => {
    fs.open(file, existing, mode, (e, fd) => {
      if (!e) return cb(null, fd);
      if (e.code === 'ELOOP' && !o.followSymlinks) return linkError(e);
      if (e.code !== 'ENOENT') return fail(e);
      if (o.followSymlinks) return mkdirThen(e, openExisting);
      createNew();
    });
  };
  const createNew = (): void => {
    fs.open(file, create, mode, (e, fd) => {
      if (!e) return cb(null, fd);
      // something appeared at the path since the first open: look again (it may be a link)
      if (e.code === 'EEXIST' && ++rounds < MAX_ROUNDS) return openExisting();
      if (e.code === 'ENOENT') return mkdirThen(e, createNew);
      fail(e);
    });
  };
  openExisting();
}

/** The same, synchronously (the daemon's own log, opened at start and on SIGHUP). */
export function openLogSync(file: string, o: OpenLogOptions): number {
  const { existing, create } = flags(o);
  const mode = o.mode ?? 0o600;
  let madeDir = false;
  for (let rounds = 0; ; rounds++) {
    try {
      return fs.openSync(file, existing, mode);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'ELOOP' && !o.followSymlinks && isLink(file)) throw new SymlinkError();
      if (err.code !== 'ENOENT') throw err;
      if (o.followSymlinks) {
        if (madeDir) throw err;
        madeDir = true;
        fs.mkdirSync(path.dirname(file), { recursive: true });
        continue;
      }
    }
    try {
      return fs.openSync(file, create, mode);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'EEXIST' && rounds + 1 < MAX_ROUNDS) continue;
      if (err.code !== 'ENOENT' || madeDir) throw err;
      madeDir = true;
      fs.mkdirSync(path.dirname(file), { recursive: true });
      rounds--; // the directory was missing: not a race round
    }
  }
}

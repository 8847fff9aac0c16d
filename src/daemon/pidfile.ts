// The pidfile: how -k/-r/-q find the running daemon, and how a second
// daemon on the same config is refused. Without `server pidfile=` (or -P),
// conchd keeps one in /run (root), $XDG_RUNTIME_DIR, or its private state
// directory — never under a predictable name in /tmp, where anyone could
// plant a pid or a symlink.
//
// A pid read back is trusted only if that process is alive (not a zombie
// that kill -9 left for a moment) and is a conchd for this configuration:
// its process title says `conchd <config file>` (set by the daemon at
// start). So a planted or stale pidfile never makes -k signal an unrelated
// process, nor refuses a restart.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { defaultStateDir } from './state-dir.js';

export function defaultPidfile(configFile: string): string {
  const dir = process.getuid?.() === 0 ? '/run' : process.env.XDG_RUNTIME_DIR || defaultStateDir();
  const key = createHash('sha1').update(path.resolve(configFile)).digest('hex').slice(0, 12);
  return path.join(dir, `conchd-${key}.pid`);
}

/** The title a daemon for `configFile` runs under (ps shows it; -k checks it). */
export function daemonTitle(configFile: string): string {
  return `conchd ${path.resolve(configFile)}`;
}

/** Is `pid` a live conchd running `configFile`? (Linux /proc; elsewhere: alive is enough.) */
export function isOurDaemon(pid: number, configFile: string): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  let stat: string;
  let cmdline: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return !fs.existsSync('/proc/self/stat'); // no /proc: the liveness check is all there is
  }
  // state is the field after the parenthesised command name; Z/X: exiting, already gone
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  if (state === 'Z' || state === 'X') return false;
  const title = cmdline.split('\0')[0] ?? '';
  const want = daemonTitle(configFile);
  // the kernel keeps the title within the original argument space: a long path may be cut short
  return title === want || (title.length > 'conchd /'.length && want.startsWith(title));
}

/**
 * A live conchd for `configFile` found by its process title, when its
 * pidfile cannot be named: the file now has errors, or its `server
 * pidfile=` changed since the daemon started (a reload keeps the old one).
 */
export function findDaemon(configFile: string): number | null {
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return null;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    let title: string;
    try {
      title = fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0')[0] ?? '';
    } catch {
      continue;
    }
    if (title.startsWith('conchd /') && isOurDaemon(Number(e), configFile)) return Number(e);
  }
  return null;
}

/** The pid recorded in `file` if it is a live conchd for `configFile`, else null. */
export function runningPid(file: string, configFile: string): number | null {
  const pid = readPid(file);
  return pid !== null && isOurDaemon(pid, configFile) ? pid : null;
}

function readPid(file: string): number | null {
  let text: string;
  try {
    const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try {
      const buf = Buffer.alloc(64);
      text = buf.subarray(0, fs.readSync(fd, buf, 0, buf.length, 0)).toString('latin1');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return null;
  }
  const pid = Number.parseInt(text.trim(), 10);
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

export class PidfileError extends Error {}

/**
 * Create the pidfile with O_EXCL|O_NOFOLLOW: a symlink planted at its name
 * is refused, never written through. A leftover file (a crash) is replaced
 * unless it names a live conchd for this configuration.
 */
export function writePidfile(file: string, configFile: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const flags = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = fs.openSync(file, flags, 0o644);
      try {
        fs.writeSync(fd, `${process.pid}\n`);
      } finally {
        fs.closeSync(fd);
      }
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 2) throw new PidfileError(`cannot create pidfile ${file}: ${(e as Error).message}`);
    }
    const st = fs.lstatSync(file, { throwIfNoEntry: false });
    if (st?.isSymbolicLink()) throw new PidfileError(`pidfile ${file} is a symbolic link; refusing to write through it (remove it)`);
    if (st && !st.isFile()) throw new PidfileError(`pidfile ${file} is not a regular file`);
    const other = readPid(file);
    if (other !== null && other !== process.pid && isOurDaemon(other, configFile)) {
      throw new PidfileError(`a daemon (pid ${other}) is already running for ${configFile}`);
    }
    fs.rmSync(file, { force: true }); // stale: a crashed daemon's, or planted
  }
}

/** Remove the pidfile if it is still ours. */
export function removePidfile(file: string): void {
  if (readPid(file) === process.pid) fs.rmSync(file, { force: true });
}

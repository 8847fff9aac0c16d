// The pidfile: how -k/-r/-q find the running daemon, and how a second
// daemon on the same config is refused. Without `server pidfile=` (or -P),
// conchd keeps one in the runtime directory, keyed by the config path.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';

export function defaultPidfile(configFile: string): string {
  const dir = process.env.XDG_RUNTIME_DIR || (process.getuid?.() === 0 ? '/run' : os.tmpdir());
  const key = createHash('sha1').update(path.resolve(configFile)).digest('hex').slice(0, 12);
  return path.join(dir, `conchd-${key}.pid`);
}

/** The pid recorded in `file` if that process is alive, else null. */
export function runningPid(file: string): number | null {
  let pid: number;
  try {
    pid = Number.parseInt(fs.readFileSync(file, 'utf8').trim(), 10);
  } catch {
    return null;
  }
  if (!Number.isInteger(pid) || pid <= 0) return null;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM' ? pid : null;
  }
}

export function writePidfile(file: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${process.pid}\n`, { mode: 0o644 });
}

/** Remove the pidfile if it is still ours. */
export function removePidfile(file: string): void {
  try {
    if (fs.readFileSync(file, 'utf8').trim() === String(process.pid)) fs.unlinkSync(file);
  } catch {
    /* already gone */
  }
}

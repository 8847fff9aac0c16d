// Where conchd keeps what must outlive the process (today: its IPMI
// sessions, so that a restart after a crash takes back its own SOL
// sessions). `server statedir=` wins; otherwise the usual place for a
// system daemon, or the user's XDG state directory.

import * as os from 'node:os';
import * as path from 'node:path';

export function defaultStateDir(): string {
  if (process.getuid?.() === 0) return '/var/lib/conch';
  const base = process.env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state');
  return path.join(base, 'conch');
}

// This daemon's IPMI sessions at one BMC, kept on disk in the state
// directory so that they outlive the process. After a crash (kill -9, OOM,
// power), the BMC keeps the dead daemon's session — and the SOL payload it
// activated — until its own session timeout; the new daemon must recognise
// that session as its own and take SOL back, not wait for it as if a person
// held it (with `solsteal=never`, for ever).
//
// One small file per console, named by a hash of the console and BMC (a
// console name may hold any character), written by rename so a crash never
// leaves half a file; read with a size bound and validated, since anything
// in a directory is hostile until checked.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';

/** a record file larger than this is not ours */
const MAX_BYTES = 4096;
const MAX_IDS = 16;

export interface SessionRecordEntry {
  /** the BMC's session ID (SIDc) */
  sid: number;
  /** when it was last known to be ours (ms since the epoch) */
  at: number;
  /** open when recorded: it lived as long as the daemon that wrote it */
  live?: boolean;
}

/** How often a running daemon marks itself alive in the state directory. */
export const ALIVE_EVERY_MS = 60_000;
const aliveFile = (stateDir: string): string => path.join(stateDir, 'ipmi', 'alive');

/**
 * The daemon's mark that it is alive, renewed every minute: after a crash
 * its last renewal says until when the sessions it recorded as open were
 * still ours (a session open for days was ours until the crash, not only
 * on the day it opened). The first mark is made a minute after start, so
 * the consoles read the previous run's mark first.
 */
export function keepAliveMark(stateDir: string): () => void {
  const file = aliveFile(stateDir);
  const t = setInterval(() => {
    const now = new Date();
    fs.promises
      .mkdir(path.dirname(file), { recursive: true, mode: 0o700 })
      .then(() => fs.promises.utimes(file, now, now).catch(() => fs.promises.writeFile(file, '', { flag: 'wx', mode: 0o600 })))
      .catch(() => {});
  }, ALIVE_EVERY_MS);
  t.unref();
  return () => clearInterval(t);
}

/** when the previous daemon last marked itself alive (ms), or 0 */
function lastAlive(stateDir: string): number {
  try {
    const st = fs.lstatSync(aliveFile(stateDir));
    return st.isFile() ? st.mtimeMs : 0;
  } catch {
    return 0;
  }
}

export class SessionRecord {
  readonly file: string;
  private writing = false;
  private next: SessionRecordEntry[] | null = null;

  constructor(
    private readonly stateDir: string,
    private readonly consoleName: string,
    private readonly bmc: string,
  ) {
    const key = createHash('sha256').update(`${consoleName}\0${bmc}`).digest('hex').slice(0, 24);
    this.file = path.join(stateDir, 'ipmi', `${key}.json`);
  }

  /** The sessions recorded by an earlier run (empty when none, or when the file is not a valid record). */
  load(): SessionRecordEntry[] {
    let text: string;
    try {
      const fd = fs.openSync(this.file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
      try {
        const buf = Buffer.alloc(MAX_BYTES + 1);
        const n = fs.readSync(fd, buf, 0, buf.length, 0);
        if (n > MAX_BYTES) return [];
        text = buf.subarray(0, n).toString('utf8');
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      return [];
    }
    try {
      const j = JSON.parse(text) as { console?: unknown; bmc?: unknown; sessions?: unknown };
      if (j.console !== this.consoleName || j.bmc !== this.bmc || !Array.isArray(j.sessions)) return [];
      const alive = lastAlive(this.stateDir);
      return j.sessions
        .filter(
          (e: unknown): e is SessionRecordEntry =>
            typeof e === 'object' &&
            e !== null &&
            Number.isInteger((e as SessionRecordEntry).sid) &&
            (e as SessionRecordEntry).sid > 0 &&
            (e as SessionRecordEntry).sid <= 0xffffffff &&
            Number.isFinite((e as SessionRecordEntry).at),
        )
        .slice(-MAX_IDS)
        .map((e) => ({ sid: e.sid, at: e.live === true ? Math.max(e.at, alive) : e.at }));
    } catch {
      return [];
    }
  }

  /** Record `entries` (the latest call wins; writes never overlap). */
  save(entries: SessionRecordEntry[]): void {
    this.next = entries.slice(-MAX_IDS);
    if (!this.writing) void this.flush();
  }

  private async flush(): Promise<void> {
    this.writing = true;
    try {
      while (this.next) {
        const entries = this.next;
        this.next = null;
        await this.write(entries);
      }
    } finally {
      this.writing = false;
    }
  }

  private async write(entries: SessionRecordEntry[]): Promise<void> {
    const dir = path.dirname(this.file);
    const tmp = `${this.file}.${process.pid}.tmp`;
    try {
      if (entries.length === 0) {
        await fs.promises.rm(this.file, { force: true });
        return;
      }
      await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 });
      const body = JSON.stringify({ console: this.consoleName, bmc: this.bmc, sessions: entries });
      // O_EXCL|O_NOFOLLOW: a link planted at the temporary name is never followed
      await fs.promises.rm(tmp, { force: true });
      const fh = await fs.promises.open(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
      try {
        await fh.writeFile(body);
      } finally {
        await fh.close();
      }
      await fs.promises.rename(tmp, this.file);
    } catch {
      // best effort: without the record a restart waits for the BMC's session timeout, as before
      await fs.promises.rm(tmp, { force: true }).catch(() => {});
    }
  }
}

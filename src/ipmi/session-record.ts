// This daemon's IPMI sessions at one BMC, kept on disk in the state
// directory so that they outlive the process. After a crash (kill -9, OOM,
// power), the BMC keeps the dead daemon's session — and the SOL payload it
// activated — until its own session timeout; the new daemon must recognise
// that session as its own and take SOL back, not wait for it as if a person
// held it (with `solsteal=never`, for ever).
//
// One file for every console (SessionStore), written by rename so a crash
// never leaves half a file; read with a size bound and validated, since
// anything in a directory is hostile until checked.

import * as fs from 'node:fs';
import * as path from 'node:path';

/** a record file larger than this is not ours (a few sessions of each of 100,000 consoles fit) */
const MAX_FILE = 64 * 1024 * 1024;
const MAX_IDS = 16;
/** how often the file is written while sessions change */
const WRITE_EVERY_MS = 250;

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

/**
 * Every IPMI console's sessions, in one file of the state directory
 * (`ipmi/sessions.json`), kept by the main thread: read once at start,
 * written by rename at most every WRITE_EVERY_MS while anything changed,
 * and at stop. One small file per console, as before, cost a start of
 * 10,000 consoles 60,000 file-system calls on the IPMI threads.
 */
export class SessionStore {
  readonly file: string;
  /** each console's record, and its JSON made when it changed (a start of 10,000 consoles writes the file some 60 times: stringifying all of it each time cost the main thread 0.4 s) */
  private readonly byKey = new Map<string, { sessions: SessionRecordEntry[]; json: string }>();
  private readonly alive: number;
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> | null = null;
  private dirty = false;

  constructor(stateDir: string) {
    this.file = path.join(stateDir, 'ipmi', 'sessions.json');
    this.alive = lastAlive(stateDir);
    this.load();
  }

  /** what the previous run recorded for this console at this BMC (empty when nothing valid) */
  recorded(consoleName: string, bmc: string): SessionRecordEntry[] {
    const r = this.byKey.get(keyOf(consoleName, bmc));
    return r ? r.sessions.map((e) => ({ sid: e.sid, at: e.live === true ? Math.max(e.at, this.alive) : e.at })) : [];
  }

  /** this console's sessions now (the latest call wins; an empty list removes it) */
  save(consoleName: string, bmc: string, entries: SessionRecordEntry[]): void {
    const k = keyOf(consoleName, bmc);
    if (entries.length === 0) this.byKey.delete(k);
    else this.byKey.set(k, record(consoleName, bmc, entries.slice(-MAX_IDS)));
    this.dirty = true;
    this.timer ??= setTimeout(() => {
      this.timer = null;
      void this.flush();
    }, WRITE_EVERY_MS);
  }

  /** write now if anything changed (the daemon stopping); resolves once it is on disk */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    while (this.writing) await this.writing;
    if (!this.dirty) return;
    this.dirty = false;
    const parts: string[] = [];
    for (const r of this.byKey.values()) parts.push(r.json);
    this.writing = this.write(`{"consoles":[${parts.join(',')}]}`).finally(() => (this.writing = null));
    await this.writing;
  }

  private load(): void {
    let text: string;
    try {
      const fd = fs.openSync(this.file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
      try {
        const st = fs.fstatSync(fd);
        if (!st.isFile() || st.size > MAX_FILE) return;
        text = fs.readFileSync(fd, 'utf8');
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      return;
    }
    let j: unknown;
    try {
      j = JSON.parse(text);
    } catch {
      return;
    }
    const list = (j as { consoles?: unknown }).consoles;
    if (!Array.isArray(list)) return;
    for (const r of list as { console?: unknown; bmc?: unknown; sessions?: unknown }[]) {
      if (typeof r?.console !== 'string' || typeof r.bmc !== 'string' || !Array.isArray(r.sessions)) continue;
      const sessions = (r.sessions as unknown[]).filter(validEntry).slice(-MAX_IDS).map((e) => ({ sid: e.sid, at: e.at, ...(e.live === true ? { live: true } : {}) }));
      if (sessions.length) this.byKey.set(keyOf(r.console, r.bmc), record(r.console, r.bmc, sessions));
    }
  }

  private async write(json: string): Promise<void> {
    const tmp = `${this.file}.${process.pid}.tmp`;
    try {
      await fs.promises.mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
      // O_EXCL|O_NOFOLLOW: a link planted at the temporary name is never followed
      await fs.promises.rm(tmp, { force: true });
      const fh = await fs.promises.open(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
      try {
        await fh.writeFile(json);
      } finally {
        await fh.close();
      }
      await fs.promises.rename(tmp, this.file);
    } catch {
      // best effort: without the record a restart waits for the BMC's session timeout, as before
      this.dirty = true;
      await fs.promises.rm(tmp, { force: true }).catch(() => {});
    }
  }
}

const keyOf = (consoleName: string, bmc: string): string => `${consoleName}\0${bmc}`;

/** one console's entry of the file, with its JSON (`{"console":…,"bmc":…,"sessions":[…]}`) */
function record(consoleName: string, bmc: string, sessions: SessionRecordEntry[]): { sessions: SessionRecordEntry[]; json: string } {
  return { sessions, json: JSON.stringify({ console: consoleName, bmc, sessions }) };
}

function validEntry(e: unknown): e is SessionRecordEntry {
  const x = e as SessionRecordEntry;
  return typeof e === 'object' && e !== null && Number.isInteger(x.sid) && x.sid > 0 && x.sid <= 0xffffffff && Number.isFinite(x.at);
}

// A console's current log file: which file (from its configuration, never
// from a request) and how it is opened for reading. The log API and the
// cluster's HISTORY request (src/cluster/history.ts) read it the same way.

import * as fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { Console } from '../engine/console.js';
import { deviceSpecifier, expandSpecifiers } from '../config/specifiers.js';
import { HttpError } from './http-util.js';

/** The console's log file does not exist (yet): a 404. */
export class NoLogFile extends HttpError {
  constructor(name: string) {
    super(404, `console [${name}] has no log file yet`);
  }
}

/** The file the console is logging to now, from its configuration (null: it has no log). */
export function logFileOf(c: Console): string | null {
  const pattern = c.cfg.log;
  if (pattern === null || c.log === null) return null;
  return expandSpecifiers(pattern, { name: c.name, dev: deviceSpecifier(c.cfg.spec), pid: process.pid, now: new Date() });
}

/**
 * Open for reading: no symbolic link unless `server logsymlinks=on`, never
 * blocking on a FIFO; a regular file only. An HttpError says why not (404:
 * there is none to read).
 */
export async function openLog(c: Console, file: string, followSymlinks: boolean): Promise<FileHandle> {
  const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
  let fh: FileHandle;
  try {
    fh = await fs.promises.open(file, O_RDONLY | O_NONBLOCK | (followSymlinks ? 0 : O_NOFOLLOW));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new NoLogFile(c.name);
    if (code === 'ELOOP') throw new HttpError(404, `the log of console [${c.name}] is a symbolic link, which conchd does not follow (server logsymlinks=off)`);
    throw new HttpError(500, `cannot read the log of console [${c.name}]: ${code ?? (e as Error).message}`);
  }
  const st = await fh.stat();
  if (!st.isFile()) {
    await fh.close();
    throw new HttpError(404, `the log of console [${c.name}] is not a regular file`);
  }
  return fh;
}

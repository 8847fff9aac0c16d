// Changing one user's line of a users file (for `conchd passwd`), leaving
// every other line and comment exactly as it was, and replacing the file
// atomically: a crash leaves either the old file or the new one, never half.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';

/** The record's name, or null for a comment or blank line. */
function nameOf(line: string): string | null {
  const t = line.trim();
  if (t === '' || t.startsWith('#')) return null;
  return t.split(':')[0]!.trim();
}

/** The groups field of `user`'s first line as written (null: no such user). */
export function groupsField(text: string, user: string): string | null {
  for (const line of text.split('\n')) {
    if (nameOf(line) === user) return line.trim().split(':')[2]?.trim() ?? '';
  }
  return null;
}

/**
 * `text` with `user`'s line replaced by `record` (appended when missing),
 * or removed when `record` is null; later duplicate lines of the user go too.
 */
export function setUserLine(text: string, user: string, record: string | null): { text: string; found: boolean } {
  const lines = text === '' ? [] : text.split('\n');
  // a final newline leaves an empty last element: keep it out of the edit
  const trailing = lines.length > 0 && lines[lines.length - 1] === '';
  if (trailing) lines.pop();
  const out: string[] = [];
  let found = false;
  for (const line of lines) {
    if (nameOf(line) !== user) {
      out.push(line);
      continue;
    }
    if (!found && record !== null) out.push(record);
    found = true;
  }
  if (!found && record !== null) out.push(record);
  return { text: out.length === 0 ? '' : `${out.join('\n')}\n`, found };
}

/** The file's text, '' when it does not exist yet. */
export function readUsersText(file: string): { text: string; stat: fs.Stats | null } {
  try {
    return { text: fs.readFileSync(file, 'utf8'), stat: fs.statSync(file) };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { text: '', stat: null };
    throw e;
  }
}

/**
 * Write `text` to a new mode-600 file beside `file`, fsync it, rename it over
 * `file`. `owner`: keep the old file's owner and group (when we may: root).
 */
export function writeAtomic(file: string, text: string, owner: fs.Stats | null): void {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
  const fd = fs.openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  try {
    fs.writeFileSync(fd, text);
    fs.fchmodSync(fd, 0o600); // whatever the umask
    if (owner) {
      try {
        fs.fchownSync(fd, owner.uid, owner.gid);
      } catch {
        // not root: the file is ours, which is what a non-root daemon reading it needs
      }
    }
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  // make the rename itself durable
  try {
    const d = fs.openSync(dir, 'r');
    fs.fsyncSync(d);
    fs.closeSync(d);
  } catch {
    // some file systems refuse fsync on a directory: the data is safe anyway
  }
}

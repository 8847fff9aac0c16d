// conman.pswd-style credentials for IPMI and SSH consoles (conch extension
// `server pswdfile=`), so passwords need not sit in conman.conf:
//   host-regex : user : password [: K_g]
// one record a line, `#` comments, fields trimmed, host matched as ^regex$
// (empty = any host), first match wins. Values are never echoed in errors.
// The password is ASCII or 0x + hex digits; IPMI's limit (20 bytes) is
// checked when a record is given to an IPMI console, so that a record for
// an SSH login may hold a longer one.

import * as fs from 'node:fs';
import { ConfigError, type ConsoleConfig, type Loc } from './types.js';
import { OptError, parseKey } from './opts.js';

interface PswdRecord {
  host: RegExp;
  user: string;
  /** the password field as written (never shown) */
  text: string;
  kg: Buffer | null;
  where: Loc;
}

export function readPswdFile(file: string, at: Loc, warn: (msg: string) => void): PswdRecord[] {
  let text: string;
  try {
    const st = fs.statSync(file);
    if (st.mode & 0o077) warn(`${file} holds passwords and can be read by other users (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`);
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(at, `cannot read pswdfile "${file}": ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  const out: PswdRecord[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const where = { file, line: i + 1, col: 1 };
    const f = line.split(':').map((x) => x.trim());
    if (f.length < 3 || f.length > 4) throw new ConfigError(where, 'expected "host-regex : user : password [: K_g]"');
    let host: RegExp;
    try {
      host = new RegExp(`^(?:${f[0] === '' ? '.*' : f[0]})$`, 'i');
    } catch {
      throw new ConfigError(where, `invalid host regex "${f[0]}"`);
    }
    try {
      out.push({ host, user: f[1]!, text: f[2]!, kg: f[3] ? parseKey('K_g', f[3], 0) : null, where });
    } catch (e) {
      throw new ConfigError(where, e instanceof OptError ? e.message : 'invalid record');
    }
  });
  return out;
}

/** an IPMI password from a record (IPMI's rules: ASCII or hex, at most 20 bytes) */
function ipmiPassword(r: PswdRecord): Buffer {
  try {
    return parseKey('password', r.text, 0);
  } catch (e) {
    throw new ConfigError(r.where, e instanceof OptError ? e.message : 'invalid record');
  }
}

/** an SSH password from a record: 0x + hex digits as bytes, else the text as UTF-8 (no length limit) */
function sshPassword(r: PswdRecord): Buffer {
  return /^0[xX]([0-9a-fA-F]{2})+$/.test(r.text) ? Buffer.from(r.text.slice(2), 'hex') : Buffer.from(r.text, 'utf8');
}

/**
 * Fill user/password (and K_g) of every IPMI or SSH console that lacks a
 * password from the first record whose host regex matches its host (and
 * whose user matches, when the console names one).
 */
export function applyPswd(consoles: ConsoleConfig[], records: PswdRecord[]): void {
  for (const c of consoles) {
    const spec = c.spec;
    if ((spec.type !== 'ipmi' && spec.type !== 'ssh') || spec.opts.password.length > 0) continue;
    const o = spec.opts;
    const r = records.find((r) => r.host.test(spec.host) && (o.user === '' || o.user === r.user));
    if (!r) continue;
    o.user = r.user;
    if (spec.type === 'ssh') {
      spec.opts.password = sshPassword(r);
      continue;
    }
    spec.opts.password = ipmiPassword(r);
    if (r.kg && !spec.opts.kg) spec.opts.kg = Buffer.from(r.kg);
  }
}

// conman.pswd-style credentials for IPMI consoles (conch extension
// `server pswdfile=`), so passwords need not sit in conman.conf:
//   host-regex : user : password [: K_g]
// one record a line, `#` comments, fields trimmed, host matched as ^regex$
// (empty = any host), first match wins. Values are never echoed in errors.

import * as fs from 'node:fs';
import { ConfigError, type ConsoleConfig, type Loc } from './types.js';
import { OptError, parseKey } from './opts.js';

interface PswdRecord {
  host: RegExp;
  user: string;
  password: Buffer;
  kg: Buffer | null;
  line: number;
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
      out.push({ host, user: f[1]!, password: parseKey('password', f[2]!, 0), kg: f[3] ? parseKey('K_g', f[3], 0) : null, line: i + 1 });
    } catch (e) {
      throw new ConfigError(where, e instanceof OptError ? e.message : 'invalid record');
    }
  });
  return out;
}

/**
 * Fill user/password/K_g of every IPMI console that lacks a password from
 * the first record whose host regex matches its host (and whose user
 * matches, when the console names one).
 */
export function applyPswd(consoles: ConsoleConfig[], records: PswdRecord[]): void {
  for (const c of consoles) {
    if (c.spec.type !== 'ipmi' || c.spec.opts.password.length > 0) continue;
    const o = c.spec.opts;
    const r = records.find((r) => r.host.test(c.spec.type === 'ipmi' ? c.spec.host : '') && (o.user === '' || o.user === r.user));
    if (!r) continue;
    o.user = r.user;
    o.password = Buffer.from(r.password);
    if (r.kg && !o.kg) o.kg = Buffer.from(r.kg);
  }
}

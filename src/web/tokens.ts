// API bearer tokens (`conchd token create|list|revoke`): a script sends
// `Authorization: Bearer <token>` and acts as the token's user. Only a
// SHA-256 of each token is stored (a token is 32 random bytes: a slow hash
// adds nothing), one a line: `name:user:sha256-hex:created-ISO`. The daemon
// reads the file at start and on every reload, and when it changes on disk.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';

export interface TokenRecord {
  name: string;
  user: string;
  hash: string;
  created: string;
}

export const TOKEN_PREFIX = 'conch_';

export const hashToken = (token: string): string => crypto.createHash('sha256').update(token, 'utf8').digest('hex');

/** A new token's secret text (shown once, never stored). */
export const newToken = (): string => TOKEN_PREFIX + crypto.randomBytes(32).toString('base64url');

export function parseTokens(text: string, file: string): TokenRecord[] {
  const out: TokenRecord[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const [name, user, hash, created] = line.split(':');
    if (!name || !user || !hash || !/^[0-9a-f]{64}$/.test(hash)) throw new Error(`${file}:${i + 1}: expected name:user:sha256-hex:created`);
    out.push({ name, user, hash, created: created ?? '' });
  });
  return out;
}

export const formatTokens = (ts: TokenRecord[]): string => ts.map((t) => `${t.name}:${t.user}:${t.hash}:${t.created}\n`).join('');

/** The tokens file as the daemon sees it: looked up by hash; re-read when its mtime changes. */
export class TokenStore {
  private byHash = new Map<string, TokenRecord>();
  private mtimeMs = -1;

  constructor(
    private file: string,
    private readonly warn: (m: string) => void,
  ) {
    this.refresh();
  }

  retarget(file: string): void {
    this.file = file;
    this.mtimeMs = -1;
    this.refresh();
  }

  /** The record of a presented token, or null. */
  verify(token: string): TokenRecord | null {
    if (!token.startsWith(TOKEN_PREFIX) || token.length > 200) return null;
    this.refresh();
    return this.byHash.get(hashToken(token)) ?? null;
  }

  /** Read the file again if it changed (a revoked token stops working at once). */
  refresh(): void {
    let st: fs.Stats;
    try {
      st = fs.statSync(this.file);
    } catch {
      if (this.byHash.size > 0 || this.mtimeMs !== 0) this.byHash = new Map();
      this.mtimeMs = 0;
      return;
    }
    if (st.mtimeMs === this.mtimeMs) return;
    this.mtimeMs = st.mtimeMs;
    if (st.mode & 0o077) this.warn(`${this.file} can be read by others: chmod 600 it`);
    try {
      const recs = parseTokens(fs.readFileSync(this.file, 'utf8'), this.file);
      this.byHash = new Map(recs.map((r) => [r.hash, r]));
    } catch (e) {
      this.warn(`tokens not reloaded: ${(e as Error).message}`);
    }
  }
}

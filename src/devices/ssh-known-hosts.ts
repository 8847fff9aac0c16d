// OpenSSH known_hosts files for SSH consoles (server sshknownhosts=), read
// as sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT" describes them: one key a line,
// `[marker] patterns keytype base64-key [comment]`; patterns are host names
// or addresses, `[host]:port` for a port other than 22, `*`/`?` wildcards,
// `!` negations, or one hashed name `|1|base64-salt|base64-HMAC-SHA1`.
// One reader per file, shared by every console, read again when the file
// changes (checked at each look-up), so an operator's fix takes effect at the
// console's next attempt. Keys conch pins are appended in plain form.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bareHost } from './socket-util.js';

export interface KnownKey {
  /** key type as written (`ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa` …) */
  type: string;
  blob: Buffer;
  /** 1-based line in the file */
  line: number;
  revoked: boolean;
}

export type HostKeyVerdict =
  /** the key is pinned for this host and port */
  | { status: 'known' }
  /** nothing is pinned for this host and port */
  | { status: 'new' }
  /** other keys are pinned: this one is refused */
  | { status: 'changed'; pinned: KnownKey[] }
  /** the key is marked @revoked */
  | { status: 'revoked'; line: number };

interface Entry {
  key: KnownKey;
  matches(name: string): boolean;
}

/** `SHA256:…` as ssh-keygen -l shows a key's fingerprint */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${crypto.createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** the key type named inside a public key blob (its first string), or '' */
export function blobType(blob: Buffer): string {
  if (blob.length < 4) return '';
  const n = blob.readUInt32BE(0);
  return n > 0 && n <= 64 && blob.length >= 4 + n ? blob.toString('latin1', 4, 4 + n) : '';
}

/** how known_hosts names a host at a port: `host` for 22, else `[host]:port` (IPv6 without brackets first) */
export function knownHostsName(host: string, port: number): string {
  const h = bareHost(host).toLowerCase();
  return port === 22 ? h : `[${h}]:${port}`;
}

/** the host key algorithms (ssh2 names) that can show a key of this type */
const ALGORITHMS: Record<string, string[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};

/** a shell-style pattern (`*`, `?`) as a whole-string, case-insensitive RegExp */
function wildcard(p: string): RegExp {
  const re = p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`, 'i');
}

/** a `|1|salt|hash` pattern: the host name whose HMAC-SHA1 under salt is hash */
function hashedMatcher(p: string): ((name: string) => boolean) | null {
  const m = /^\|1\|([A-Za-z0-9+/=]+)\|([A-Za-z0-9+/=]+)$/.exec(p);
  if (!m) return null;
  const salt = Buffer.from(m[1]!, 'base64');
  const hash = Buffer.from(m[2]!, 'base64');
  if (salt.length !== 20 || hash.length !== 20) return null;
  return (name) => crypto.timingSafeEqual(crypto.createHmac('sha1', salt).update(name).digest(), hash);
}

/** `a,b,!c,[d]:2200`: matches when some positive pattern does and no negated one does */
function patternMatcher(field: string): ((name: string) => boolean) | null {
  if (field.startsWith('|')) return hashedMatcher(field);
  const pos: RegExp[] = [];
  const neg: RegExp[] = [];
  for (const p of field.split(',')) {
    if (p === '') continue;
    if (p.startsWith('!')) neg.push(wildcard(p.slice(1)));
    else pos.push(wildcard(p));
  }
  if (pos.length === 0) return null;
  return (name) => pos.some((r) => r.test(name)) && !neg.some((r) => r.test(name));
}

/** Parses known_hosts text; lines it cannot read (other markers, bad base64) are skipped, as ssh does. */
export function parseKnownHosts(text: string): Entry[] {
  const out: Entry[] = [];
  text.split('\n').forEach((raw, i) => {
    const f = raw.trim().split(/\s+/);
    if (f[0] === '' || f[0]!.startsWith('#')) return;
    let revoked = false;
    if (f[0]!.startsWith('@')) {
      // @cert-authority lines sign host certificates, which conch does not use
      if (f[0] !== '@revoked') return;
      revoked = true;
      f.shift();
    }
    if (f.length < 3) return;
    const matches = patternMatcher(f[0]!);
    const blob = Buffer.from(f[2]!, 'base64');
    if (!matches || blob.length === 0 || blobType(blob) !== f[1]) return;
    out.push({ key: { type: f[1]!, blob, line: i + 1, revoked }, matches });
  });
  return out;
}

/** One known_hosts file, shared by the SSH consoles that use it. */
export class KnownHosts {
  private entries: Entry[] = [];
  /** the file as last read: `mtime:size:ino`, or 'none' */
  private version = '';
  private readError: string | null = null;
  /** lines in the file as read (and appended since), and whether its last one lacks its newline */
  private lines = 0;
  private unterminated = false;
  private watchers = new Set<() => void>();
  /** while consoles wait for a change: the timer, and the file's version when last looked at */
  private poll: NodeJS.Timeout | null = null;
  private polled = '';

  constructor(readonly file: string) {}

  /** Read the file again if it changed since last time. */
  refresh(): void {
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(this.file, { throwIfNoEntry: false });
    } catch (e) {
      this.readError = (e as NodeJS.ErrnoException).code ?? String(e);
      return;
    }
    const version = st ? `${st.mtimeMs}:${st.size}:${st.ino}` : 'none';
    if (version === this.version) return;
    this.version = version;
    this.readError = null;
    this.entries = [];
    this.lines = 0;
    this.unterminated = false;
    if (!st) return;
    try {
      const text = fs.readFileSync(this.file, 'utf8');
      this.entries = parseKnownHosts(text);
      this.unterminated = text !== '' && !text.endsWith('\n');
      this.lines = text === '' ? 0 : text.split('\n').length - (this.unterminated ? 0 : 1);
    } catch (e) {
      this.readError = (e as NodeJS.ErrnoException).code ?? String(e);
    }
  }

  /** why the file could not be read, or null (a missing file is an empty one) */
  get error(): string | null {
    return this.readError;
  }

  /** the keys pinned for a host and port, in file order */
  keysFor(host: string, port: number): KnownKey[] {
    const name = knownHostsName(host, port);
    return this.entries.filter((e) => e.matches(name)).map((e) => e.key);
  }

  /**
   * The host key algorithms to offer a server whose keys are pinned (so
   * that it shows a key of the pinned type, not another it also has);
   * null: nothing pinned, take what it offers.
   */
  algorithmsFor(host: string, port: number): string[] | null {
    const algs = new Set<string>();
    for (const k of this.keysFor(host, port)) if (!k.revoked) for (const a of ALGORITHMS[k.type] ?? []) algs.add(a);
    return algs.size > 0 ? [...algs] : null;
  }

  /** What the file says of `blob` for this host and port. */
  verdict(host: string, port: number, blob: Buffer): HostKeyVerdict {
    const keys = this.keysFor(host, port);
    const revoked = keys.find((k) => k.revoked && k.blob.equals(blob));
    if (revoked) return { status: 'revoked', line: revoked.line };
    const pinned = keys.filter((k) => !k.revoked);
    if (pinned.some((k) => k.blob.equals(blob))) return { status: 'known' };
    return pinned.length > 0 ? { status: 'changed', pinned } : { status: 'new' };
  }

  /** Pin `blob` for this host and port: one line appended (the file and its folder made if need be, mode 600). */
  append(host: string, port: number, blob: Buffer): void {
    fs.mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
    const type = blobType(blob);
    const name = knownHostsName(host, port);
    fs.appendFileSync(this.file, `${this.unterminated ? '\n' : ''}${name} ${type} ${blob.toString('base64')}\n`, { mode: 0o600 });
    this.unterminated = false;
    // counted as read: the next refresh() reads the whole file again anyway if someone else wrote too
    this.entries.push({ key: { type, blob: Buffer.from(blob), line: ++this.lines, revoked: false }, matches: (n) => n === name });
    this.version = statVersion(this.file);
  }

  /**
   * Call `fn` once when the file next changes (a console whose key was
   * refused waits for an operator's fix). Returns the cancel function.
   */
  onChange(fn: () => void): () => void {
    const once = (): void => {
      this.watchers.delete(once);
      this.unwatchIfIdle();
      fn();
    };
    this.watchers.add(once);
    if (!this.poll) {
      // one timer for every console that waits; a file that does not exist yet is watched too
      this.polled = statVersion(this.file);
      this.poll = setInterval(() => {
        const v = statVersion(this.file);
        if (v === this.polled) return;
        this.polled = v;
        for (const w of [...this.watchers]) w();
      }, WATCH_INTERVAL_MS);
      this.poll.unref();
    }
    return () => {
      this.watchers.delete(once);
      this.unwatchIfIdle();
    };
  }

  private unwatchIfIdle(): void {
    if (this.watchers.size > 0 || !this.poll) return;
    clearInterval(this.poll);
    this.poll = null;
  }
}

/** `mtime:size:ino` of a file, 'none' if it does not exist, '' if it cannot be looked at */
function statVersion(file: string): string {
  try {
    const st = fs.statSync(file, { throwIfNoEntry: false });
    return st ? `${st.mtimeMs}:${st.size}:${st.ino}` : 'none';
  } catch {
    return '';
  }
}

/** how often a watched known_hosts file is looked at */
const WATCH_INTERVAL_MS = 2000;

const files = new Map<string, KnownHosts>();

/** the shared reader of one known_hosts file */
export function knownHostsFile(file: string): KnownHosts {
  const abs = path.resolve(file);
  let k = files.get(abs);
  if (!k) files.set(abs, (k = new KnownHosts(abs)));
  return k;
}

// The users file (`server users=FILE`): one user a line,
//   name:$scrypt$ln=15,r=8,p=1$SALT$KEY:group1,group2
// groups may be empty; `#` comment lines and blank lines are skipped. Written
// by `conchd passwd`; it holds password hashes, so it should be mode 600.

import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { ConfigError } from '../config/types.js';
import { Limiter } from '../util/limiter.js';
import { GROUP_NAME_RULE, isGroupName, isUserName, USER_NAME_RULE } from './names.js';
import { DEFAULT_PARAMS, parseHash, PasswordHashError, verifyParsed, type ScryptHash } from './password.js';
import { FileErrors, readText } from './read-file.js';

/** Every bad line of a users file, each as `file:line:col: what is wrong`. */
export class UsersFileError extends FileErrors {
  constructor(file: string, errors: ConfigError[]) {
    super(file, errors);
    this.name = 'UsersFileError';
  }
}

interface UserRecord {
  hash: ScryptHash;
  groups: string[];
}

/**
 * Shared by every UsersFile, so that a reload does not double the scrypt runs
 * allowed at once. scrypt runs on libuv's thread pool (4 threads unless
 * UV_THREADPOOL_SIZE says otherwise), which file system calls share.
 */
export const verifyLimiter = new Limiter(8, 256);

export const USERS_SYNTAX = 'expected name:HASH:group,group (groups may be empty)';

function parseLine(raw: string, line: number, file: string, seen: Map<string, number>): [string, UserRecord] {
  const fail = (col: number, msg: string): never => {
    throw new ConfigError({ file, line, col }, msg);
  };
  const lead = raw.length - raw.trimStart().length;
  const f = raw.trim().split(':');
  if (f.length < 2 || f.length > 3) fail(lead + 1, USERS_SYNTAX);
  const [name, encoded, groupText = ''] = f as [string, string, string?];
  const hashCol = lead + name.length + 2;
  const groupCol = hashCol + encoded.length + 1;
  if (!isUserName(name)) fail(lead + 1, `bad user name "${name.slice(0, 64)}"; expected ${USER_NAME_RULE}`);
  const before = seen.get(name);
  if (before !== undefined) fail(lead + 1, `user "${name}" is already defined on line ${before}`);
  let hash: ScryptHash | null = null;
  try {
    hash = parseHash(encoded);
  } catch (e) {
    if (!(e instanceof PasswordHashError)) throw e;
    fail(hashCol, e.message);
  }
  const groups = groupText === '' ? [] : groupText.split(',');
  let col = groupCol;
  for (const g of groups) {
    if (!isGroupName(g)) fail(col, `bad group name "${g.slice(0, 64)}"; expected ${GROUP_NAME_RULE}`);
    col += g.length + 1;
  }
  seen.set(name, line);
  return [name, { hash: hash!, groups }];
}

export class UsersFile {
  private constructor(
    private readonly users: ReadonlyMap<string, UserRecord>,
    /** verified against for unknown names, so that they cost what a known one does */
    private readonly dummy: ScryptHash,
    private readonly limiter: Limiter,
  ) {}

  /** Throws UsersFileError listing every bad line. */
  static parse(text: string, file: string, opts: { limiter?: Limiter } = {}): UsersFile {
    const users = new Map<string, UserRecord>();
    const seen = new Map<string, number>();
    const errors: ConfigError[] = [];
    text.split('\n').forEach((raw, i) => {
      const t = raw.trim();
      if (t === '' || t.startsWith('#')) return;
      try {
        const [name, rec] = parseLine(raw.replace(/\r$/, ''), i + 1, file, seen);
        users.set(name, rec);
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
        errors.push(e);
      }
    });
    if (errors.length > 0) throw new UsersFileError(file, errors);
    // the dummy costs what a typical user costs: the parameters of the first one
    const first = users.values().next().value as UserRecord | undefined;
    const params = first ? first.hash : DEFAULT_PARAMS;
    const dummy: ScryptHash = { ln: params.ln, r: params.r, p: params.p, salt: randomBytes(16), key: randomBytes(32) };
    return new UsersFile(users, dummy, opts.limiter ?? verifyLimiter);
  }

  /** Read and parse; warns when others may read or change the file. Throws UsersFileError. */
  static load(file: string, warn: (msg: string) => void, opts: { limiter?: Limiter } = {}): UsersFile {
    let text: string;
    try {
      text = readText(file, 'users file');
      const mode = fs.statSync(file).mode;
      if (mode & 0o077) warn(`${file} holds password hashes and can be read or changed by other users (mode ${(mode & 0o777).toString(8)}); chmod 600 it`);
    } catch (e) {
      throw new UsersFileError(file, [new ConfigError({ file, line: 0, col: 0 }, (e as Error).message)]);
    }
    return UsersFile.parse(text, file, opts);
  }

  get size(): number {
    return this.users.size;
  }

  has(name: string): boolean {
    return this.users.has(name);
  }

  /** The user's groups (a copy); none for an unknown user. */
  groupsOf(name: string): string[] {
    return [...(this.users.get(name)?.groups ?? [])];
  }

  /**
   * Whether `pw` is `name`'s password. An unknown name costs the same and
   * is false. Past the limiter's queue it is false at once, without work.
   * Never rejects: a failing scrypt (out of memory) is a refused login.
   */
  verify(name: string, pw: Buffer): Promise<boolean> {
    const rec = this.users.get(name);
    const hash = rec?.hash ?? this.dummy;
    const check = async (): Promise<boolean> => (await verifyParsed(pw, hash).catch(() => false)) && rec !== undefined;
    return this.limiter.run(check, false);
  }
}

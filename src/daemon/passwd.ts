// `conchd passwd`: add a user to the users file (`server users=`), change a
// password, set groups, or delete a user. The password never comes from the
// command line (other users can read it in ps): it is read from a file, typed
// twice at a terminal without echo, or read from a pipe.

import * as fs from 'node:fs';
import { loadConfig } from '../config/parse.js';
import { ConfigError } from '../config/types.js';
import { GROUP_NAME_RULE, isGroupName, isUserName, USER_NAME_RULE } from '../access/names.js';
import { hashPassword } from '../access/password.js';
import { askHidden, PromptError } from '../access/tty-password.js';
import { groupsField, readUsersText, setUserLine, writeAtomic } from '../access/users-edit.js';
import { DEFAULT_CONFIG } from './cli.js';

export const PASSWD_USAGE = `Usage: conchd passwd [-c CONFIG] [-g GROUP,GROUP] [--password-file FILE] [-d] USER

  Add USER to the users file named by "server users=" in CONFIG, or change
  USER's password (keeping its groups unless -g is given).

  -c FILE   Configuration (default: ${DEFAULT_CONFIG}).
  -d        Delete USER instead.
  -g LIST   Set USER's groups (comma-separated; "" for none).
  --password-file FILE
            Read the password from FILE's first line. Otherwise it is asked
            twice at a terminal, or read from the first line of stdin.
  -h        Display this help.
`;

/** most bytes of a password: scrypt takes any length, but nobody types more */
const MAX_PASSWORD = 1024;

class PasswdError extends Error {}

interface PasswdArgs {
  config: string;
  groups: string[] | null;
  passwordFile: string | null;
  del: boolean;
  help: boolean;
  user: string;
}

function parseArgs(argv: string[]): PasswdArgs {
  const a: PasswdArgs = { config: process.env.CONCHD_CONF || DEFAULT_CONFIG, groups: null, passwordFile: null, del: false, help: false, user: '' };
  const users: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (name: string, inline?: string): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new PasswdError(`option ${name} requires an argument`);
      return v;
    };
    if (arg === '-h' || arg === '--help') a.help = true;
    else if (arg === '-d') a.del = true;
    else if (arg.startsWith('-c')) a.config = value('-c', arg.length > 2 ? arg.slice(2) : undefined);
    else if (arg.startsWith('-g')) a.groups = parseGroups(value('-g', arg.length > 2 ? arg.slice(2) : undefined));
    else if (arg === '--password-file') a.passwordFile = value(arg);
    else if (arg.startsWith('--password-file=')) a.passwordFile = arg.slice('--password-file='.length);
    else if (arg.startsWith('-') && arg !== '-') throw new PasswdError(`unknown option "${arg}"`);
    else users.push(arg);
  }
  if (a.help) return a;
  if (users.length !== 1) throw new PasswdError(users.length === 0 ? 'no USER given' : `one USER at a time (got ${users.join(' ')})`);
  a.user = users[0]!;
  if (!isUserName(a.user)) throw new PasswdError(`bad user name "${a.user.slice(0, 64)}"; expected ${USER_NAME_RULE}`);
  if (a.del && (a.groups || a.passwordFile)) throw new PasswdError('-d takes no -g or --password-file');
  return a;
}

function parseGroups(text: string): string[] {
  if (text.trim() === '') return [];
  const groups = text.split(',').map((g) => g.trim());
  for (const g of groups) if (!isGroupName(g)) throw new PasswdError(`bad group name "${g.slice(0, 64)}"; expected ${GROUP_NAME_RULE}`);
  return [...new Set(groups)];
}

/** Up to the first newline (a CR before it too). */
function firstLine(b: Buffer): Buffer {
  const nl = b.indexOf(0x0a);
  let line = nl < 0 ? b : b.subarray(0, nl);
  if (line.at(-1) === 0x0d) line = line.subarray(0, -1);
  return Buffer.from(line);
}

/** stdin's first line, reading no more than needed. */
function readStdinLine(): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (): void => {
      process.stdin.off('data', onData).off('end', finish).off('error', reject);
      process.stdin.pause();
      resolve(firstLine(Buffer.concat(chunks)));
    };
    const onData = (c: Buffer): void => {
      chunks.push(c);
      size += c.length;
      if (c.includes(0x0a) || size > MAX_PASSWORD) finish();
    };
    process.stdin.on('data', onData).on('end', finish).on('error', reject);
  });
}

async function readPassword(a: PasswdArgs): Promise<Buffer> {
  let pw: Buffer;
  if (a.passwordFile !== null) {
    try {
      pw = firstLine(fs.readFileSync(a.passwordFile));
    } catch (e) {
      throw new PasswdError(`cannot read the password file ${a.passwordFile}: ${(e as Error).message}`);
    }
  } else if (process.stdin.isTTY) {
    let again: Buffer;
    try {
      [pw, again] = (await askHidden([`New password for ${a.user}: `, 'Again: '], MAX_PASSWORD)) as [Buffer, Buffer];
    } catch (e) {
      throw e instanceof PromptError ? new PasswdError(e.message) : e;
    }
    const same = pw.equals(again);
    again.fill(0);
    if (!same) throw new PasswdError('the passwords do not match; nothing changed');
  } else {
    pw = await readStdinLine();
  }
  if (pw.length === 0) throw new PasswdError('empty password refused');
  if (pw.length > MAX_PASSWORD) throw new PasswdError(`password longer than ${MAX_PASSWORD} bytes`);
  return pw;
}

function usersFileOf(config: string): string {
  let file: string | null;
  try {
    file = loadConfig(config, { execpathCheck: false, warn: (m) => process.stderr.write(`conchd passwd: warning: ${m}\n`) }).server.usersFile;
  } catch (e) {
    if (e instanceof ConfigError) throw new PasswdError(e.all.map((x) => x.message).join('\nconchd passwd: '));
    throw e;
  }
  if (!file) throw new PasswdError(`${config} has no "server users=FILE": set it to say where the users file is`);
  return file;
}

async function run(a: PasswdArgs): Promise<string> {
  const file = usersFileOf(a.config);
  // the password first, then the file: read as late as possible, so that an edit made meanwhile is kept
  const pw = a.del ? null : await readPassword(a);
  let old: ReturnType<typeof readUsersText>;
  try {
    old = readUsersText(file);
  } catch (e) {
    throw new PasswdError(`cannot read the users file ${file}: ${(e as Error).message}`);
  }
  const before = groupsField(old.text, a.user);
  let record: string | null = null;
  if (pw === null) {
    if (before === null) throw new PasswdError(`no user "${a.user}" in ${file}`);
  } else {
    const hash = await hashPassword(pw);
    pw.fill(0);
    record = `${a.user}:${hash}:${a.groups ? a.groups.join(',') : (before ?? '')}`;
  }
  try {
    writeAtomic(file, setUserLine(old.text, a.user, record).text, old.stat);
  } catch (e) {
    throw new PasswdError(`cannot write the users file ${file}: ${(e as Error).message}`);
  }
  if (a.del) return `deleted user "${a.user}" from ${file}\n`;
  const groups = a.groups ? ` (groups: ${a.groups.join(',') || 'none'})` : '';
  return `${before === null ? 'added user' : 'changed the password of'} "${a.user}" in ${file}${groups}\n`;
}

export async function passwdMain(argv: string[]): Promise<number> {
  try {
    const a = parseArgs(argv);
    if (a.help) {
      process.stdout.write(PASSWD_USAGE);
      return 0;
    }
    process.stdout.write(await run(a));
    return 0;
  } catch (e) {
    process.stderr.write(`conchd passwd: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

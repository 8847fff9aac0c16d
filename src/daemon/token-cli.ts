// `conchd token create|list|revoke`: the API's bearer tokens. A new token is
// printed once and only its SHA-256 is kept, in the tokens file (`server
// tokens=`, else `tokens` in the state directory), one `name:user:hash:
// created` a line, rewritten atomically and mode 600. The running daemon
// reads the file again when it changes: a revoked token stops working at once.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadConfig } from '../config/parse.js';
import { ConfigError } from '../config/types.js';
import { isUserName, USER_NAME_RULE } from '../access/names.js';
import { readUsersText, writeAtomic } from '../access/users-edit.js';
import { formatTokens, hashToken, newToken, parseTokens, type TokenRecord } from '../web/tokens.js';
import { DEFAULT_CONFIG } from './cli.js';
import { defaultStateDir } from './state-dir.js';

export const TOKEN_USAGE = `Usage: conchd token create NAME -u USER [-c CONFIG]
       conchd token list [-c CONFIG]
       conchd token revoke NAME [-c CONFIG]

  Bearer tokens for conchd's HTTP API: a script sends
  "Authorization: Bearer TOKEN" and acts as USER (the access rules apply).

  create    Make a token named NAME for USER and print it, once: only a
            hash of it is stored.
  list      Show each token's name, user and creation time.
  revoke    Delete the token named NAME; the daemon refuses it at once.

  -c FILE   Configuration (default: ${DEFAULT_CONFIG}); its "server tokens="
            names the tokens file, else it is "tokens" in the state directory.
  -u USER   The user the token acts as.
  -h        Display this help.
`;

const TOKEN_NAME = /^[A-Za-z0-9._-]{1,64}$/;
const TOKEN_NAME_RULE = 'letters, digits, ".", "_" and "-", 1 to 64 of them';

class TokenError extends Error {}
/** a mistake on the command line: the usage follows the message */
class UsageError extends TokenError {}

interface TokenArgs {
  command: 'create' | 'list' | 'revoke' | null;
  config: string;
  user: string | null;
  name: string | null;
  help: boolean;
}

function parseArgs(argv: string[]): TokenArgs {
  const a: TokenArgs = { command: null, config: process.env.CONCHD_CONF || DEFAULT_CONFIG, user: null, name: null, help: false };
  const words: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (flag: string): string => {
      const v = arg.length > 2 ? arg.slice(2) : argv[++i];
      if (v === undefined) throw new UsageError(`option ${flag} requires an argument`);
      return v;
    };
    if (arg === '-h' || arg === '--help') a.help = true;
    else if (arg.startsWith('-c')) a.config = value('-c');
    else if (arg.startsWith('-u')) a.user = value('-u');
    else if (arg.startsWith('-') && arg !== '-') throw new UsageError(`unknown option "${arg}"`);
    else words.push(arg);
  }
  if (a.help) return a;
  const [command, ...rest] = words;
  if (command !== 'create' && command !== 'list' && command !== 'revoke') {
    throw new UsageError(command === undefined ? 'no command given: create, list or revoke' : `unknown command "${command.slice(0, 64)}": create, list or revoke`);
  }
  a.command = command;
  if (command === 'list') {
    if (rest.length > 0) throw new UsageError('list takes no NAME');
    if (a.user !== null) throw new UsageError('list takes no -u');
    return a;
  }
  if (rest.length !== 1) throw new UsageError(rest.length === 0 ? `${command} needs a token NAME` : `one NAME at a time (got ${rest.join(' ')})`);
  a.name = rest[0]!;
  if (!TOKEN_NAME.test(a.name)) throw new UsageError(`bad token name "${a.name.slice(0, 64)}"; expected ${TOKEN_NAME_RULE}`);
  if (command === 'revoke' && a.user !== null) throw new UsageError('revoke takes no -u');
  if (command === 'create') {
    if (a.user === null) throw new UsageError('create needs -u USER: the user the token acts as');
    if (!isUserName(a.user)) throw new UsageError(`bad user name "${a.user.slice(0, 64)}"; expected ${USER_NAME_RULE}`);
  }
  return a;
}

interface Setup {
  file: string;
  usersFile: string | null;
}

/** The tokens file the daemon of `config` reads (as it chooses its state directory). */
function setupOf(config: string): Setup {
  try {
    const s = loadConfig(config, { execpathCheck: false, warn: (m) => process.stderr.write(`conchd token: warning: ${m}\n`) }).server;
    return { file: s.tokensFile ?? path.join(s.stateDir ?? defaultStateDir(), 'tokens'), usersFile: s.usersFile };
  } catch (e) {
    if (e instanceof ConfigError) throw new TokenError(e.all.map((x) => x.message).join('\nconchd token: '));
    throw e;
  }
}

function readTokens(file: string): { tokens: TokenRecord[]; stat: fs.Stats | null } {
  try {
    const { text, stat } = readUsersText(file);
    return { tokens: parseTokens(text, file), stat };
  } catch (e) {
    throw new TokenError(`cannot read the tokens file ${file}: ${(e as Error).message}`);
  }
}

function writeTokens(file: string, tokens: TokenRecord[], stat: fs.Stats | null): void {
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    writeAtomic(file, formatTokens(tokens), stat);
  } catch (e) {
    throw new TokenError(`cannot write the tokens file ${file}: ${(e as Error).message}`);
  }
}

/** ISO 8601 in its basic form (no colons: the file's fields are colon-separated). */
const compactTime = (d: Date): string => d.toISOString().replace(/\.\d+Z$/, 'Z').replace(/[-:]/g, '');

/** `20250102T030405Z` → `2025-01-02T03:04:05Z`; anything else as written. */
const isoTime = (s: string): string => s.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, '$1-$2-$3T$4:$5:$6Z') || '-';

function create(a: TokenArgs, s: Setup): void {
  const name = a.name!;
  const user = a.user!;
  const { tokens, stat } = readTokens(s.file);
  if (tokens.some((t) => t.name === name)) throw new TokenError(`a token named "${name}" exists already in ${s.file}: revoke it first, or choose another name`);
  if (s.usersFile) {
    let known = true;
    try {
      known = fs.readFileSync(s.usersFile, 'utf8').split('\n').some((l) => l.trim().split(':')[0] === user);
    } catch {
      // the daemon says what is wrong with its users file
    }
    if (!known) process.stderr.write(`conchd token: warning: "${user}" is not in the users file ${s.usersFile}\n`);
  }
  const token = newToken();
  writeTokens(s.file, [...tokens, { name, user, hash: hashToken(token), created: compactTime(new Date()) }], stat);
  process.stdout.write(`${token}\n`);
  process.stderr.write(`conchd token: token "${name}" for ${user} stored in ${s.file}; it is shown only this once\n`);
}

function list(s: Setup): void {
  const { tokens } = readTokens(s.file);
  const rows = [['NAME', 'USER', 'CREATED'], ...tokens.map((t) => [t.name, t.user, isoTime(t.created)])];
  const w = [0, 1].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
  process.stdout.write(rows.map((r) => `${r[0]!.padEnd(w[0]!)}  ${r[1]!.padEnd(w[1]!)}  ${r[2]}\n`).join(''));
}

function revoke(a: TokenArgs, s: Setup): void {
  const { tokens, stat } = readTokens(s.file);
  const keep = tokens.filter((t) => t.name !== a.name);
  if (keep.length === tokens.length) throw new TokenError(`no token named "${a.name}" in ${s.file}`);
  writeTokens(s.file, keep, stat);
  process.stderr.write(`conchd token: token "${a.name}" revoked\n`);
}

export function tokenMain(argv: string[]): number {
  try {
    const a = parseArgs(argv);
    if (a.help) {
      process.stdout.write(TOKEN_USAGE);
      return 0;
    }
    const s = setupOf(a.config);
    if (a.command === 'create') create(a, s);
    else if (a.command === 'list') list(s);
    else revoke(a, s);
    return 0;
  } catch (e) {
    if (!(e instanceof TokenError)) throw e;
    process.stderr.write(`conchd token: ${e.message}\n${e instanceof UsageError ? TOKEN_USAGE : ''}`);
    return 1;
  }
}

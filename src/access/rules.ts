// The access rules file (`server access=FILE`): one rule a line,
//   WHO  CONSOLES  RIGHTS  [from=CIDR[,CIDR…]]
// WHO is a user, @group or *; CONSOLES a POSIX ERE that must match the whole
// console name (conman's -r dialect: case-insensitive, linear-time engine);
// RIGHTS as in rights.ts. The first rule that matches decides; none = no rights.

import { ConfigError } from '../config/types.js';
import { compileEre, EreError } from '../protocol/ere.js';
import { Run } from '../protocol/nfa.js';
import { Cidr, parseIp, type Ip } from './cidr.js';
import { GROUP_NAME_RULE, isGroupName, isUserName, USER_NAME_RULE } from './names.js';
import { FileErrors, readText } from './read-file.js';
import { parseRights, RightsError, type Right } from './rights.js';

export interface Principal {
  user: string;
  groups: readonly string[];
  /** the client's address as the socket gives it (IPv4-mapped IPv6 is fine) */
  address: string;
}

/** Every bad line of a rules file, each as `file:line:col: what is wrong`. */
export class AccessFileError extends FileErrors {
  constructor(file: string, errors: ConfigError[]) {
    super(file, errors);
    this.name = 'AccessFileError';
  }
}

type Who = { kind: 'any' } | { kind: 'user'; name: string } | { kind: 'group'; name: string };

interface Rule {
  who: Who;
  run: Run;
  rights: ReadonlySet<Right>;
  from: Cidr[] | null;
  line: number;
}

/** console names whose per-rule results are kept; past it the cache starts over */
const CACHE_MAX = 100_000;
const NOTHING: ReadonlySet<Right> = new Set();
const SYNTAX = 'expected WHO CONSOLES RIGHTS [from=CIDR,…]';

interface Token {
  text: string;
  col: number;
}

/** The line's words with their 1-based columns, a `#` comment (at the start or after a blank) removed. */
function tokens(line: string): Token[] {
  const hash = line.search(/(^|[ \t])#/);
  const body = hash < 0 ? line : line.slice(0, hash);
  return [...body.matchAll(/[^ \t]+/g)].map((m) => ({ text: m[0], col: m.index! + 1 }));
}

function parseWho(t: Token, fail: (col: number, msg: string) => never): Who {
  if (t.text === '*') return { kind: 'any' };
  if (t.text.startsWith('@')) {
    const name = t.text.slice(1);
    if (!isGroupName(name)) fail(t.col, `bad group name "${t.text}"; a group is @ and ${GROUP_NAME_RULE}`);
    return { kind: 'group', name };
  }
  if (!isUserName(t.text)) fail(t.col, `bad user name "${t.text}"; expected a user (${USER_NAME_RULE}), @group or *`);
  return { kind: 'user', name: t.text };
}

function parseConsoles(t: Token, fail: (col: number, msg: string) => never): Run {
  try {
    // compileEre's programs match the whole name only (no implicit .* either side). Wrapping
    // the text in ^(…)$ would be wrong: glibc reads a stray `)` as a literal, the wrapper would close on it
    return new Run(compileEre(t.text));
  } catch (e) {
    if (e instanceof EreError) fail(t.col, `bad console regex "${t.text}": ${e.message}`);
    throw e;
  }
}

function parseFrom(t: Token, value: string, fail: (col: number, msg: string) => never): Cidr[] {
  const out: Cidr[] = [];
  let offset = t.col + 'from='.length;
  for (const item of value.split(',')) {
    if (item === '') fail(offset, 'empty address in from=; expected CIDR[,CIDR…] such as 10.0.0.0/8,fd00::/8');
    try {
      out.push(Cidr.parse(item));
    } catch (e) {
      fail(offset, (e as Error).message);
    }
    offset += item.length + 1;
  }
  return out;
}

function parseRule(toks: Token[], line: number, file: string, endCol: number): Rule {
  const fail = (col: number, msg: string): never => {
    throw new ConfigError({ file, line, col }, msg);
  };
  if (toks.length < 3) {
    const missing = ['WHO', 'CONSOLES', 'RIGHTS'].slice(toks.length).join(' and ');
    fail(endCol, `missing ${missing}; ${SYNTAX}`);
  }
  const [whoT, consT, rightsT, ...opts] = toks as [Token, Token, Token, ...Token[]];
  const who = parseWho(whoT, fail);
  const run = parseConsoles(consT, fail);
  let rights: ReadonlySet<Right> = NOTHING;
  try {
    rights = parseRights(rightsT.text);
  } catch (e) {
    if (e instanceof RightsError) fail(rightsT.col + e.offset, e.message);
    throw e;
  }
  let from: Cidr[] | null = null;
  for (const t of opts) {
    const eq = t.text.indexOf('=');
    if (eq < 0) fail(t.col, `unexpected "${t.text}" after the rights; ${SYNTAX}`);
    const key = t.text.slice(0, eq).toLowerCase();
    if (key !== 'from') fail(t.col, `unknown key "${t.text.slice(0, eq)}="; the only key is from=`);
    if (from) fail(t.col, 'from= given twice; list every address in one from=, separated by commas');
    from = parseFrom(t, t.text.slice(eq + 1), fail);
  }
  return { who, run, rights, from, line };
}

export class AccessRules {
  /** console name → per-rule match: 0 not yet run, 1 matches, 2 does not */
  private readonly cache = new Map<string, Uint8Array>();

  private constructor(private readonly rules: readonly Rule[]) {}

  get count(): number {
    return this.rules.length;
  }

  /** console names whose matches are cached (at most 100,000) */
  get cached(): number {
    return this.cache.size;
  }

  /** Throws AccessFileError listing every bad line. */
  static parse(text: string, file: string): AccessRules {
    const rules: Rule[] = [];
    const errors: ConfigError[] = [];
    text.split('\n').forEach((raw, i) => {
      const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
      const toks = tokens(line);
      if (toks.length === 0) return;
      try {
        rules.push(parseRule(toks, i + 1, file, line.trimEnd().length + 1));
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
        errors.push(e);
      }
    });
    if (errors.length > 0) throw new AccessFileError(file, errors);
    return new AccessRules(rules);
  }

  /** Read and parse; an unreadable file is an AccessFileError too (line 0: just the file name). */
  static load(file: string): AccessRules {
    let text: string;
    try {
      text = readText(file, 'access rules');
    } catch (e) {
      throw new AccessFileError(file, [new ConfigError({ file, line: 0, col: 0 }, (e as Error).message)]);
    }
    return AccessRules.parse(text, file);
  }

  /** The rights of the first rule matching who, where from and which console; none matching: none. */
  rightsFor(p: Principal, console: string): ReadonlySet<Right> {
    let ip: Ip | null | undefined;
    let hits = this.cache.get(console);
    for (let k = 0; k < this.rules.length; k++) {
      const r = this.rules[k]!;
      if (!whoMatches(r.who, p)) continue;
      if (r.from) {
        if (ip === undefined) ip = parseIp(p.address);
        if (!ip || !r.from.some((c) => c.contains(ip!))) continue;
      }
      if (!hits) hits = this.remember(console);
      if (hits[k] === 0) hits[k] = this.test(r.run, console) ? 1 : 2;
      if (hits[k] === 1) return r.rights;
    }
    return NOTHING;
  }

  allows(p: Principal, console: string, right: Right): boolean {
    return this.rightsFor(p, console).has(right);
  }

  private remember(console: string): Uint8Array {
    if (this.cache.size >= CACHE_MAX) this.cache.clear();
    const hits = new Uint8Array(this.rules.length);
    this.cache.set(console, hits);
    return hits;
  }

  private test(run: Run, name: string): boolean {
    run.reset(name);
    while (!run.advance(Number.MAX_SAFE_INTEGER));
    return run.result;
  }
}

function whoMatches(w: Who, p: Principal): boolean {
  if (w.kind === 'any') return true;
  if (w.kind === 'user') return p.user === w.name;
  return p.groups.includes(w.name);
}

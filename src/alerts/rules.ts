// Alert rules: the rules file (`server alerts=FILE`) and the built-in set
// (`server alertdefaults=on`, the default). One rule a line:
//
//   rule NAME SEVERITY [console=ERE] [before=N] [after=N] [holddown=T] [timeout=T] [armed=N] /REGEX/
//   disable NAME
//
// REGEX is a POSIX ERE (conch's linear-time engine, case-insensitive, like
// `conch -r`) searched for within each line of a console's output; it runs
// from the first word that starts with `/` to the last `/` of the line, so
// it may hold blanks and slashes. console= is an ERE matching whole console
// names (as in the access rules). T is seconds, or a number with s, m or h.
// `disable` turns a built-in rule off; a rule of the file with a built-in's
// name replaces it. Lines starting with `#` are comments.
//
// Order matters: a line fires the first rule that matches it — the file's
// rules in file order, then the built-in ones in the order below.

import { ConfigError, type Loc, type Priority } from '../config/types.js';
import { syslogPriority } from '../config/values.js';
import { FileErrors, readText } from '../access/read-file.js';
import { compileEre, EreError } from '../protocol/ere.js';
import { Run } from '../protocol/nfa.js';
import { Pattern, PatternError } from './matcher.js';

export type Severity = Priority;

export interface AlertRule {
  name: string;
  severity: Severity;
  /** the regex as written */
  regex: string;
  pattern: Pattern;
  /** console names it applies to (an ERE over whole names), null = every console */
  console: string | null;
  /** lines of context kept from before the matched line, and collected after it */
  before: number;
  after: number;
  /** matches within this long of the alert's first line count into it instead of firing again */
  holddownMs: number;
  /** the alert is complete this long after it fired if its after-lines have not all come */
  timeoutMs: number;
  /** the rule fires only once the console has printed this many lines since conchd began watching it */
  armed: number;
  builtin: boolean;
  loc: Loc;
}

export const RULE_DEFAULTS = { before: 5, after: 10, holddownMs: 60_000, timeoutMs: 5_000, armed: 0 };
const LIMITS = { before: 100, after: 500, holddownS: 86_400, timeoutS: 600, armed: 1_000_000 };
/** rules a file may hold */
export const MAX_RULES = 1000;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const SYNTAX = 'expected: rule NAME SEVERITY [console=ERE] [before=N] [after=N] [holddown=T] [timeout=T] [armed=N] /REGEX/, or: disable NAME';

/** Every bad line of a rules file, each as `file:line:col: what is wrong`. */
export class AlertRulesError extends FileErrors {
  constructor(file: string, errors: ConfigError[]) {
    super(file, errors);
    this.name = 'AlertRulesError';
  }
}

// ------------------------------------------------------------ the built-in set

// Where a kernel message may start: the line's start, after the printk time
// stamp (`[  123.456789] `, also `[  5.1][  T1] ` with the caller id), or
// after syslog's `kernel: ` (a journal forwarded to the console, dmesg -T's
// neighbours). Anchoring there is what keeps a sentence quoting the message,
// a grep on the command line or a shell echo from firing.
const K = String.raw`(^|\] |kernel: )`;

/**
 * The built-in rules, in the rules file's own format (so the two cannot
 * drift). Each anchors to the exact text the kernel prints; docs/alerts.md
 * has an example line for each. Corrected hardware errors rank below
 * uncorrected ones: an MCE's MCi_STATUS (16 hex digits after `Bank N:`)
 * has bit 63 (VAL) set and bit 61 (UC) set for an uncorrected error, so its
 * first digit is a, b, e or f when uncorrected and 8, 9, c or d when
 * corrected.
 */
export const BUILTIN_RULES_TEXT = String.raw`
rule kernel-panic crit before=20 after=30 holddown=5m /${K}Kernel panic - not syncing:/
rule mce-uncorrected crit before=10 after=20 holddown=5m /${K}((mce: |\{[0-9]+\})?\[Hardware Error\]: (CPU [0-9]+: Machine Check( Exception: |: [0-9a-f]+ Bank [0-9]+: [abef][0-9a-f]{15})|Machine check: |event severity: (fatal|recoverable))|mce: Uncorrected hardware memory error|Memory failure: 0x[0-9a-f]+: )/
rule mce-corrected warning before=0 after=5 holddown=10m /${K}((mce: |\{[0-9]+\})?\[Hardware Error\]: (Machine check events logged|CPU [0-9]+: Machine Check: [0-9a-f]+ Bank [0-9]+: [89cd][0-9a-f]{15}|event severity: corrected)|(mce: )?CMCI storm detected)/
rule edac-uncorrected crit before=5 after=5 holddown=5m /${K}EDAC ([a-z0-9_]+ )?MC[0-9]+: ([0-9]+ )?UE /
rule edac-corrected warning before=0 after=2 holddown=10m /${K}EDAC ([a-z0-9_]+ )?MC[0-9]+: ([0-9]+ )?CE /
rule hard-lockup crit before=10 after=30 holddown=5m /${K}((NMI )?watchdog: )?Watchdog detected hard LOCKUP on cpu [0-9]+/
rule soft-lockup err before=5 after=30 holddown=2m /${K}(watchdog: )?BUG: soft lockup - CPU#[0-9]+ stuck for [0-9]+s! \[/
rule hung-task warning before=0 after=20 holddown=2m /${K}INFO: task .+:[0-9]+ blocked for more than [0-9]+ seconds\./
rule rcu-stall err before=5 after=20 holddown=2m /${K}(rcu: )?INFO: rcu_[a-z_]+ (self-)?detected stalls? on CPU/
rule oom-kill err before=5 after=3 holddown=1m /${K}(Memory cgroup )?Out of memory: Kill(ed)? process [0-9]+ \(/
rule general-protection-fault crit before=5 after=30 holddown=5m /${K}(Oops: )?general protection fault(, [^:]*)?: [0-9a-f]{4} \[#[0-9]+\]/
rule kernel-oops crit before=10 after=30 holddown=5m /${K}(Internal error: )?Oops( -|:) .*\[#[0-9]+\]/
rule kernel-bug err before=5 after=30 holddown=5m /${K}(kernel BUG at [^ ]+:[0-9]+!|BUG: (unable to handle (page fault|kernel (NULL pointer dereference|paging request))|kernel NULL pointer dereference, address: |(KASAN|KFENCE|KCSAN|KMSAN): |scheduling while atomic: |sleeping function called from invalid context at |Bad page (state|map) in process |Bad rss-counter state |workqueue lockup - pool |spinlock (bad magic|already unlocked|lockup suspected|recursion|wrong owner|wrong CPU)|stack guard page was hit at |using smp_processor_id\(\) in preemptible |using __this_cpu_[a-z_]+\(\) in preemptible |held lock freed!|looking up invalid subclass|non-zero pgtables_bytes on freeing mm))/
rule call-trace warning before=5 after=15 holddown=1m /${K} *Call Trace: *$/
rule reboot notice before=20 after=0 holddown=5m armed=1 /${K}(reboot: Restarting system|Linux version [0-9]+\.[0-9]+[^ ]* \(.*\) #[0-9]+)/
`;

const BUILTIN_FILE = '(built-in alert rules)';
let builtins: AlertRule[] | null = null;

/** The built-in rules (parsed once). */
export function builtinRules(): AlertRule[] {
  builtins ??= parseRules(BUILTIN_RULES_TEXT, BUILTIN_FILE, true).rules;
  return builtins;
}

// ------------------------------------------------------------ parsing

interface Token {
  text: string;
  col: number;
}

export interface RulesFile {
  rules: AlertRule[];
  /** built-in rules turned off (`disable NAME`) */
  disabled: Map<string, Loc>;
}

/** seconds, or a number with s, m or h */
function duration(text: string, maxS: number): number | null {
  const m = /^(\d+)([smh]?)$/i.exec(text);
  if (!m) return null;
  const s = Number(m[1]) * ({ '': 1, s: 1, m: 60, h: 3600 } as Record<string, number>)[m[2].toLowerCase()];
  return s <= maxS ? s * 1000 : null;
}

function count(text: string, max: number): number | null {
  if (!/^\d+$/.test(text)) return null;
  const n = Number(text);
  return n <= max ? n : null;
}

type Fail = (col: number, msg: string) => never;

function parseRule(line: string, words: Token[], slash: number, loc: Loc, builtin: boolean, fail: Fail): AlertRule {
  const end = line.trimEnd().length;
  if (slash < 0) fail(end + 1, `no /REGEX/ at the end of the rule; ${SYNTAX}`);
  const close = line.lastIndexOf('/', end - 1);
  if (close !== end - 1 || close === slash) fail(slash + 1, 'the regex must end with "/" as the last character of the line');
  const regex = line.slice(slash + 1, close);
  if (words.length < 3) fail(words.length < 2 ? end + 1 : words[1].col + words[1].text.length, `missing ${words.length < 2 ? 'NAME and SEVERITY' : 'SEVERITY'}; ${SYNTAX}`);
  const [, nameT, sevT, ...opts] = words as [Token, Token, Token, ...Token[]];
  if (!NAME_RE.test(nameT.text)) fail(nameT.col, `bad rule name "${nameT.text}"; a name is 1 to 64 letters, digits, "_", "." or "-", starting with a letter or digit`);
  let severity: Severity = 'warning';
  try {
    severity = syslogPriority('rule severity', sevT.text);
  } catch (e) {
    fail(sevT.col, (e as Error).message.replace('invalid rule severity priority', 'invalid severity'));
  }
  const rule: AlertRule = {
    name: nameT.text,
    severity,
    regex,
    pattern: null as unknown as Pattern,
    console: null,
    ...RULE_DEFAULTS,
    builtin,
    loc,
  };
  const seen = new Set<string>();
  for (const t of opts) {
    const eq = t.text.indexOf('=');
    if (eq <= 0) fail(t.col, `unexpected "${t.text}" before the regex; ${SYNTAX}`);
    const key = t.text.slice(0, eq).toLowerCase();
    const v = t.text.slice(eq + 1);
    const vcol = t.col + eq + 1;
    if (seen.has(key)) fail(t.col, `${key}= given twice`);
    seen.add(key);
    switch (key) {
      case 'console':
        if (v === '') fail(vcol, 'console= needs an ERE over console names');
        try {
          compileEre(v);
        } catch (e) {
          if (e instanceof EreError) fail(vcol, `bad console regex "${v}": ${e.message}`);
          throw e;
        }
        rule.console = v;
        break;
      case 'before':
      case 'after':
      case 'armed': {
        const n = count(v, LIMITS[key]);
        if (n === null) fail(vcol, `${key}= must be a whole number from 0 to ${LIMITS[key]}, got "${v}"`);
        rule[key] = n;
        break;
      }
      case 'holddown':
      case 'timeout': {
        const max = key === 'holddown' ? LIMITS.holddownS : LIMITS.timeoutS;
        const ms = duration(v, max);
        if (ms === null) fail(vcol, `${key}= must be seconds (or a number with s, m or h) up to ${max} s, got "${v}"`);
        rule[key === 'holddown' ? 'holddownMs' : 'timeoutMs'] = ms;
        break;
      }
      default:
        fail(t.col, `unknown option "${key}="; the options are console=, before=, after=, holddown=, timeout= and armed=`);
    }
  }
  try {
    rule.pattern = Pattern.compile(regex);
  } catch (e) {
    if (e instanceof PatternError) fail(slash + 2, `bad regex /${regex.length > 60 ? `${regex.slice(0, 60)}…` : regex}/: ${e.message}`);
    throw e;
  }
  return rule;
}

/** Parse a rules file's text. Throws AlertRulesError listing every bad line. */
export function parseRules(text: string, file: string, builtin = false): RulesFile {
  const rules: AlertRule[] = [];
  const disabled = new Map<string, Loc>();
  const errors: ConfigError[] = [];
  const names = new Map<string, number>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    const trimmed = line.trimStart();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const loc = (col: number): Loc => ({ file, line: i + 1, col });
    const fail: Fail = (col, msg) => {
      throw new ConfigError(loc(col), msg);
    };
    try {
      // words up to the regex (the first word starting with "/")
      const words: Token[] = [];
      let slash = -1;
      for (const m of line.matchAll(/[^ \t]+/g)) {
        if (m[0].startsWith('/')) {
          slash = m.index!;
          break;
        }
        words.push({ text: m[0], col: m.index! + 1 });
      }
      const kw = words[0]?.text.toLowerCase();
      if (kw === 'disable') {
        if (slash >= 0 || words.length !== 2) fail(words[0].col, 'expected: disable NAME (a built-in rule)');
        const name = words[1].text;
        if (!builtin && !builtinRules().some((r) => r.name === name)) {
          fail(words[1].col, `no built-in rule "${name}" to disable; the built-in rules are ${builtinRules().map((r) => r.name).join(', ')}`);
        }
        disabled.set(name, loc(words[0].col));
        return;
      }
      if (kw !== 'rule') fail(words[0]?.col ?? slash + 1, `expected "rule" or "disable" at the start of the line; ${SYNTAX}`);
      const rule = parseRule(line, words, slash, loc(words[0].col), builtin, fail);
      const dup = names.get(rule.name);
      if (dup !== undefined) fail(words[1].col, `rule "${rule.name}" is defined twice (first at line ${dup})`);
      names.set(rule.name, i + 1);
      if (rules.length >= MAX_RULES) fail(words[0].col, `more than ${MAX_RULES} rules`);
      rules.push(rule);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      errors.push(e);
    }
  });
  if (errors.length > 0) throw new AlertRulesError(file, errors);
  return { rules, disabled };
}

/** Read and parse a rules file; an unreadable file is an AlertRulesError too (line 0: just the file name). */
export function loadRules(file: string): RulesFile {
  let text: string;
  try {
    text = readText(file, 'alert rules');
  } catch (e) {
    throw new AlertRulesError(file, [new ConfigError({ file, line: 0, col: 0 }, (e as Error).message)]);
  }
  return parseRules(text, file);
}

/**
 * The rules in force: the file's rules in file order, then the built-in
 * ones (when `defaults`) that the file neither replaced nor disabled.
 * Throws AlertRulesError.
 */
export function effectiveRules(opts: { defaults: boolean; file: string | null }): AlertRule[] {
  const user = opts.file ? loadRules(opts.file) : { rules: [], disabled: new Map<string, Loc>() };
  if (!opts.defaults) return user.rules;
  const mine = new Set(user.rules.map((r) => r.name));
  return [...user.rules, ...builtinRules().filter((r) => !mine.has(r.name) && !user.disabled.has(r.name))];
}

/** A rule's console= as a whole-name matcher (null: every console). */
export function consoleMatcher(rule: AlertRule): ((name: string) => boolean) | null {
  if (rule.console === null) return null;
  const run = new Run(compileEre(rule.console));
  return (name) => {
    run.reset(name);
    while (!run.advance(Number.MAX_SAFE_INTEGER));
    return run.result;
  };
}

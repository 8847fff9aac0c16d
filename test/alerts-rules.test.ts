// Pattern alerts, in process: the built-in rules against kernel-style
// fixtures (each fires what it should, once) and against near misses
// (ordinary text that must not fire), the rules file's format and errors,
// the literal screen (never hides a match: a seeded differential test, set
// ALERTS_SCREEN_SEED to replay), pathological regexes refused or bounded,
// the line assembler (pieces, escapes, CRs, long lines), the alert's life
// (context, hold-down counts, repeats, timeouts, armed=), and docs/alerts.md
// (every built-in rule's example line fires that rule).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AlertTracker, ConsoleTrack, type Alert, type AlertPhase } from '../src/alerts/alert.js';
import { LineAssembler, MAX_LINE, MAX_LINE_BYTES } from '../src/alerts/line-assembler.js';
import { MAX_RULE_PROGRAM, Pattern, PatternError, RuleScreen, trieRegex } from '../src/alerts/matcher.js';
import { AlertRulesError, builtinRules, effectiveRules, parseRules, type AlertRule } from '../src/alerts/rules.js';
import { parseConfig } from '../src/config/parse.js';
import type { ServerConfig } from '../src/config/types.js';
import { SERVER_KEYS as SERVER_KEY_APPLY, serverChanges } from '../src/daemon/config-diff.js';
import { parseEre } from '../src/protocol/ere.js';
import { lineText, requiredLiterals } from '../src/search/line-text.js';
import { ROOT } from './helpers/conchd.js';
import { mdTables, column } from './helpers/markdown.js';
import { rng, seedFrom, Seeded } from './helpers/seeded.js';
import { Cleanup } from './helpers/wait.js';

const FIXTURES = path.join(ROOT, 'test/fixtures/alerts');
const fixture = (name: string): string => fs.readFileSync(path.join(FIXTURES, name), 'utf8');

interface Fired {
  phase: AlertPhase;
  rule: string;
  line: string;
  count: number;
  before: string[];
  after: string[];
}

/** Feed `text` (LF lines become CRLF, as a serial console has them) through the whole line pipeline, in `pieces`. */
function run(text: string, opts: { rules?: AlertRule[]; pieces?: (b: Buffer) => Buffer[]; now?: () => number } = {}): { fired: Fired[]; tracker: AlertTracker; track: ConsoleTrack } {
  const rules = opts.rules ?? builtinRules();
  const screen = new RuleScreen(rules);
  const fired: Fired[] = [];
  const tracker = new AlertTracker((phase: AlertPhase, a: Alert) => {
    const r = a.record;
    fired.push({ phase, rule: r.rule, line: r.line, count: r.count, before: [...r.before], after: [...r.after] });
  });
  const track = new ConsoleTrack('node01', Math.max(0, ...rules.map((r) => r.before)));
  const asm = new LineAssembler();
  const now = opts.now ?? (() => 1_000_000);
  const data = Buffer.from(text.replace(/\r?\n/g, '\r\n'), 'utf8');
  for (const b of opts.pieces ? opts.pieces(data) : [data]) asm.feed(b, (line) => tracker.line(track, line, screen.match(line), now()));
  return { fired, tracker, track };
}

const firedRules = (f: Fired[]): string[] => f.filter((x) => x.phase === 'fired').map((x) => x.rule);

/** `data` cut into random pieces of 1 to `max` bytes */
function randomPieces(seed: number, max: number): (b: Buffer) => Buffer[] {
  const r = new Seeded(seed);
  return (b) => {
    const out: Buffer[] = [];
    for (let i = 0; i < b.length; ) {
      const n = 1 + r.int(max);
      out.push(b.subarray(i, i + n));
      i += n;
    }
    return out;
  };
}

// ---------------------------------------------------------------- the built-in rules

const EXPECTED: Record<string, string[]> = {
  'panic-null-deref.txt': ['kernel-bug', 'kernel-oops', 'call-trace', 'kernel-panic'],
  'mce-uncorrected.txt': ['mce-uncorrected', 'kernel-panic'],
  'mce-corrected.txt': ['mce-corrected'],
  'edac.txt': ['edac-corrected', 'edac-uncorrected', 'mce-uncorrected'],
  'soft-lockup.txt': ['soft-lockup', 'call-trace'],
  'hard-lockup.txt': ['hard-lockup', 'kernel-panic'],
  'hung-task.txt': ['hung-task', 'call-trace'],
  'oom.txt': ['call-trace', 'oom-kill'],
  'gpf.txt': ['general-protection-fault', 'call-trace'],
  'rcu-stall.txt': ['rcu-stall'],
  'reboot.txt': ['reboot'],
  'boot-normal.txt': [],
  'near-miss.txt': [],
};

test('each kernel fixture fires exactly its rules, once each, whatever pieces it arrives in', () => {
  const seed = seedFrom('ALERTS_PIECES_SEED');
  process.stdout.write(`# ALERTS_PIECES_SEED=${seed}\n`);
  for (const [file, want] of Object.entries(EXPECTED)) {
    const whole = firedRules(run(fixture(file)).fired);
    assert.deepEqual(whole, want, file);
    for (const max of [1, 7, 64]) assert.deepEqual(firedRules(run(fixture(file), { pieces: randomPieces(seed + max, max) }).fired), want, `${file} in pieces of up to ${max} bytes`);
  }
  // every built-in rule is proven by some fixture
  const covered = new Set(Object.values(EXPECTED).flat());
  for (const r of builtinRules()) assert.ok(covered.has(r.name), `no fixture fires ${r.name}`);
});

test('the panic alert has its context: the lines before it, and after it once they come', () => {
  const { fired } = run(fixture('panic-null-deref.txt'));
  const fire = fired.find((f) => f.rule === 'kernel-panic' && f.phase === 'fired')!;
  assert.match(fire.line, /^\[ 1834\.492311\] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000009$/);
  assert.equal(fire.before.length, 20);
  assert.match(fire.before.at(-1)!, /note: systemd\[1\] exited with irqs disabled/);
  assert.match(fire.before.at(-3)!, /---\[ end trace 0000000000000000 \]---/);
  // after=30 but only two lines follow: not complete yet (the timeout completes it)
  assert.equal(fired.some((f) => f.rule === 'kernel-panic' && f.phase === 'complete'), false);
  // the Oops has its 30 after-lines in the fixture: complete, with them
  const oops = fired.find((f) => f.rule === 'kernel-oops' && f.phase === 'complete')!;
  assert.equal(oops.after.length, 30);
  assert.match(oops.after[0]!, /CPU: 12 PID: 1 Comm: systemd/);
  // the MCE: two lines of the rule in a row count into one alert
  const mce = run(fixture('mce-uncorrected.txt')).fired.filter((f) => f.rule === 'mce-uncorrected');
  assert.deepEqual(mce.map((f) => f.phase), ['fired']);
  assert.match(mce[0]!.line, /Machine Check Exception: 5 Bank 7: be00000000800400$/);
});

test('corrected hardware errors rank below uncorrected ones', () => {
  const sev = new Map(builtinRules().map((r) => [r.name, r.severity]));
  const rank = (n: string): number => ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug'].indexOf(sev.get(n)!);
  assert.ok(rank('mce-corrected') > rank('mce-uncorrected'));
  assert.ok(rank('edac-corrected') > rank('edac-uncorrected'));
  // the MCi_STATUS UC bit (61) decides: first hex digit a/b/e/f uncorrected, 8/9/c/d corrected
  const one = (line: string): string | null => new RuleScreen(builtinRules()).match(line)?.name ?? null;
  assert.equal(one('[ 1.0] mce: [Hardware Error]: CPU 3: Machine Check: 0 Bank 12: 8c00004000010091'), 'mce-corrected');
  assert.equal(one('[ 1.0] mce: [Hardware Error]: CPU 3: Machine Check: 0 Bank 12: bc00004000010091'), 'mce-uncorrected');
  assert.equal(one('[ 1.0] {1}[Hardware Error]: event severity: corrected'), 'mce-corrected');
  assert.equal(one('[ 1.0] {1}[Hardware Error]: event severity: fatal'), 'mce-uncorrected');
});

test('near misses do not fire, one line at a time either', () => {
  const screen = new RuleScreen(builtinRules());
  const lines = [...fixture('near-miss.txt').split('\n'), ...fixture('boot-normal.txt').split('\n').slice(1)];
  for (const l of lines) assert.equal(screen.match(l)?.name ?? null, null, l);
});

test('docs/alerts.md: every built-in rule has an example line, and that line fires it', () => {
  const md = fs.readFileSync(path.join(ROOT, 'docs/alerts.md'), 'utf8');
  const t = mdTables(md).find((x) => x.columns.some((c) => c.includes('example')));
  assert.ok(t, 'a table with an example column');
  const [cr, ce, cs] = [column(t, 'rule'), column(t, 'example'), column(t, 'severity')];
  const screen = new RuleScreen(builtinRules());
  const seen = new Set<string>();
  for (const row of t.rows) {
    const rule = row[cr]!.replace(/`/g, '');
    const example = row[ce]!.replace(/^`|`$/g, '');
    seen.add(rule);
    assert.equal(screen.match(example)?.name, rule, `${rule}: ${example}`);
    assert.equal(row[cs], builtinRules().find((r) => r.name === rule)!.severity, `${rule}'s severity in the docs`);
  }
  assert.deepEqual([...seen].sort(), builtinRules().map((r) => r.name).sort());
});

// ---------------------------------------------------------------- the rules file

test('rules file: rules, options, overrides of built-ins, disable, comments, order', () => {
  const cleanup = new Cleanup();
  const dir = cleanup.dir('conch-alert-rules-');
  try {
    const file = path.join(dir, 'alerts.rules');
    fs.writeFileSync(
      file,
      [
        '# site rules',
        'rule raid-fault crit console=db[0-9]+ before=3 after=2 holddown=90s timeout=2m armed=4 /megaraid_sas [0-9a-f:.]+: FW in FAULT state/',
        '  rule disk-io err /I\\/O error, dev sd[a-z]+, sector [0-9]+/  ',
        'rule call-trace notice holddown=0 /^Call Trace:$/',
        'disable reboot',
        '',
      ].join('\n'),
    );
    const rules = effectiveRules({ defaults: true, file });
    const names = rules.map((r) => r.name);
    assert.deepEqual(names.slice(0, 3), ['raid-fault', 'disk-io', 'call-trace']);
    assert.equal(names.includes('reboot'), false);
    assert.equal(names.filter((n) => n === 'call-trace').length, 1, 'the file replaces a built-in of the same name');
    assert.equal(names.length, builtinRules().length + 2 - 1);
    const raid = rules[0]!;
    assert.deepEqual(
      { sev: raid.severity, console: raid.console, before: raid.before, after: raid.after, hold: raid.holddownMs, timeout: raid.timeoutMs, armed: raid.armed, builtin: raid.builtin },
      { sev: 'crit', console: 'db[0-9]+', before: 3, after: 2, hold: 90_000, timeout: 120_000, armed: 4, builtin: false },
    );
    assert.equal(rules[1]!.regex, 'I\\/O error, dev sd[a-z]+, sector [0-9]+');
    assert.ok(rules[1]!.pattern.matches('[ 12.3] blk_update_request: I/O error, dev sdc, sector 123456 op 0x0:(READ)'));
    assert.equal(rules[2]!.builtin, false);
    assert.deepEqual(effectiveRules({ defaults: false, file }).map((r) => r.name), ['raid-fault', 'disk-io', 'call-trace']);
    assert.deepEqual(effectiveRules({ defaults: false, file: null }), []);
  } finally {
    void cleanup.run();
  }
});

test('rules file errors: every bad line named with its column, nothing half-loaded', () => {
  const text = [
    'rule ok warning /fine/', // 1
    'rule bad-sev loud /x/', // 2
    'rule no-regex crit', // 3
    'rule opt crit colour=red /x/', // 4
    'rule ok warning /again/', // 5: twice
    'rule unclosed crit /abc', // 6
    'rule backref crit /(a)\\1/', // 7
    'rule huge crit /(a{1000}){1000}/', // 8
    'rule big crit /(abcdefgh|ijklmnop){300}/', // 9
    'rule empty crit //', // 10
    'disable no-such-rule', // 11
    'frobnicate x', // 12
    'rule con crit console=( /x/', // 13
    'rule hold crit holddown=2d /x/', // 14
    'rule bef crit before=101 /x/', // 15
  ].join('\n');
  let err: unknown;
  try {
    parseRules(text, 'site.rules');
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof AlertRulesError);
  const lines = err.message.split('\n');
  const at = (n: number): string => lines.find((l) => l.startsWith(`site.rules:${n}:`)) ?? `(no error for line ${n})`;
  assert.match(at(2), /^site\.rules:2:14: invalid severity "loud"/);
  assert.match(at(3), /^site\.rules:3:\d+: no \/REGEX\//);
  assert.match(at(4), /^site\.rules:4:15: unknown option "colour="/);
  assert.match(at(5), /^site\.rules:5:6: rule "ok" is defined twice \(first at line 1\)/);
  assert.match(at(6), /^site\.rules:6:\d+: the regex must end with "\/"/);
  assert.match(at(7), /^site\.rules:7:\d+: bad regex .*Back references/);
  assert.match(at(8), /^site\.rules:8:\d+: bad regex .*Regular expression too big/);
  assert.match(at(9), new RegExp(`^site\\.rules:9:\\d+: bad regex .*at most ${MAX_RULE_PROGRAM}`));
  assert.match(at(10), /^site\.rules:10:\d+: bad regex \/\/: the regex is empty/);
  assert.match(at(11), /^site\.rules:11:9: no built-in rule "no-such-rule" to disable; the built-in rules are kernel-panic, /);
  assert.match(at(12), /^site\.rules:12:1: expected "rule" or "disable"/);
  assert.match(at(13), /^site\.rules:13:\d+: bad console regex "\(": Unmatched \( or \\\(/);
  assert.match(at(14), /^site\.rules:14:\d+: holddown= must be seconds/);
  assert.match(at(15), /^site\.rules:15:\d+: before= must be a whole number from 0 to 100/);
  assert.equal(lines.length, 14);
  // an unreadable file is an error of its own
  assert.throws(() => effectiveRules({ defaults: true, file: '/nonexistent/alerts.rules' }), /\/nonexistent\/alerts\.rules: cannot read the alert rules: no such file/);
});

// ---------------------------------------------------------------- matching

test('literal screens: what every match must contain', () => {
  const lits = (re: string): string[] | null => requiredLiterals(parseEre(re));
  assert.deepEqual(lits('Kernel panic - not syncing:'), ['kernel panic - not syncing:']);
  assert.deepEqual(lits('(^|\\] )Oops: [0-9]+'), ['oops: ']);
  assert.deepEqual(lits('(foo|barbaz)x'), ['foo', 'barbaz']);
  assert.deepEqual(lits('a\\bbc'), ['abc']);
  assert.deepEqual(lits('(abc)?d'), ['d']);
  assert.equal(lits('[0-9]+'), null);
  assert.equal(lits('(foo|[0-9])'), null);
  assert.deepEqual(lits('x(yz)+'), ['yz']);
  // the search is unanchored but ^ and $ still mean the line's ends
  assert.equal(Pattern.compile('^abc$').matches('abc'), true);
  assert.equal(Pattern.compile('^abc$').matches('xabc'), false);
  assert.equal(Pattern.compile('abc').matches('xxABCxx'), true, 'case-insensitive, within the line');
});

test('the screen never hides a match (seeded differential test against the NFA alone)', () => {
  const seed = seedFrom('ALERTS_SCREEN_SEED');
  process.stdout.write(`# ALERTS_SCREEN_SEED=${seed}\n`);
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const atoms = ['a', 'b', 'ab', 'Ba', '[ab]', '.', 'x', '(a|bb)', '(ab)?', 'b*', 'a+', '\\b', '^', '$', ' ', '[^a]'];
  const mk = (): string => Array.from({ length: 1 + Math.floor(r() * 5) }, () => pick(atoms)).join('');
  for (let round = 0; round < 200; round++) {
    const rules: AlertRule[] = [];
    for (let k = 0; k < 3; k++) {
      const re = r() < 0.3 ? `${mk()}|${mk()}` : mk();
      let pattern: Pattern;
      try {
        pattern = Pattern.compile(re);
      } catch {
        continue;
      }
      rules.push({ name: `r${k}`, regex: re, pattern } as AlertRule);
    }
    if (rules.length === 0) continue;
    const screen = new RuleScreen(rules);
    for (let n = 0; n < 40; n++) {
      const line = Array.from({ length: Math.floor(r() * 12) }, () => pick(['a', 'b', 'A', 'B', 'x', ' ', 'é'])).join('');
      const want = rules.find((x) => x.pattern.test(line))?.name ?? null;
      assert.equal(screen.match(line)?.name ?? null, want, `${rules.map((x) => x.regex).join(' ; ')} on ${JSON.stringify(line)}`);
    }
  }
});

test('the literal scanner: raw output it passes as quiet never holds a match, in one piece or many (seeded differential test)', () => {
  const seed = seedFrom('ALERTS_QUIET_SEED');
  process.stdout.write(`# ALERTS_QUIET_SEED=${seed}\n`);
  const r = rng(seed);
  const screen = new RuleScreen(builtinRules());
  const sc = screen.scanner!;
  assert.ok(sc, 'the built-in rules all have literals: a scanner');
  const bits = ['Kernel ', 'panic', ' - not syncing:', 'Call Trace:', '\r\n', '\n', '\r', '\x1b[0m', '\x1b]0;t\x07', '[ 1.0] ', 'oo', 'ps', ': ', '[#1]', 'é', 'x', ' ', '\x07', 'CALL', ' trace:'];
  let quiet = 0;
  for (let round = 0; round < 3000; round++) {
    const text = Array.from({ length: 1 + Math.floor(r() * 12) }, () => bits[Math.floor(r() * bits.length)]!).join('');
    const buf = Buffer.from(text, 'utf8');
    // in pieces, the state carried from one to the next
    let state = 0;
    for (let i = 0; i < buf.length && state >= 0; ) {
      const n = 1 + Math.floor(r() * 6);
      state = sc.scan(buf.subarray(i, i + n), state);
      i += n;
    }
    if (state < 0) continue;
    assert.equal(sc.scan(buf, 0), state, 'whole or in pieces, the same');
    quiet++;
    const asm = new LineAssembler();
    asm.feed(Buffer.concat([buf, Buffer.from('\n')]), (line) => assert.equal(screen.match(line), null, `quiet, yet ${JSON.stringify(line)} matches (from ${JSON.stringify(text)})`));
  }
  assert.ok(quiet > 100, `${quiet} quiet texts tried`);
  for (const [file, want] of Object.entries(EXPECTED)) if (want.length > 0) assert.equal(sc.scan(Buffer.from(fixture(file)), 0), -1, file);
  assert.equal(sc.scan(Buffer.from('plain text\r\nmore\n'), 0), 0);
  assert.equal(sc.lines, 2);
  assert.equal(sc.scan(Buffer.from('Kernel pa'), 0) > 0, true, 'a literal begun');
  assert.equal(sc.scan(Buffer.from('NIC - not syncing: x'), sc.scan(Buffer.from('Kernel pa'), 0)), -1, 'and completed in the next piece');
  assert.equal(sc.scan(Buffer.from('ok\x1b[0m\n'), 0), -1, 'an escape: not quiet (cleaning joins text)');
  assert.equal(sc.scan(Buffer.from('ok\r'), 0), -1, 'a CR whose LF is not here yet');
  // passOver() keeps the line state as feed() does
  const a = new LineAssembler();
  assert.equal(a.passOver(Buffer.from('one\r\ntwo\r\nKernel pa')), 2);
  const got: string[] = [];
  a.feed(Buffer.from('nic - not syncing: x\r\n'), (l) => got.push(l));
  assert.deepEqual(got, ['Kernel panic - not syncing: x']);
});

test('the literal trie finds what a plain alternation finds (seeded differential test)', () => {
  const seed = seedFrom('ALERTS_TRIE_SEED');
  process.stdout.write(`# ALERTS_TRIE_SEED=${seed}\n`);
  const r = rng(seed);
  const word = (max: number): string => Array.from({ length: 1 + Math.floor(r() * max) }, () => 'ab:[( .'[Math.floor(r() * 7)]!).join('');
  for (let round = 0; round < 300; round++) {
    const words = Array.from({ length: 1 + Math.floor(r() * 6) }, () => word(4));
    const trie = new RegExp(trieRegex(words));
    for (let k = 0; k < 30; k++) {
      const text = word(12);
      assert.equal(trie.test(text), words.some((w) => text.includes(w)), `${JSON.stringify(words)} in ${JSON.stringify(text)}`);
    }
  }
  assert.equal(trieRegex(['kernel panic', 'kernel bug at ', 'oops', 'oo']), '(?:kernel (?:panic|bug at )|oo)');
});

test('pathological rule regexes: refused when too big, linear when not', () => {
  assert.throws(() => Pattern.compile('(a{1000}){1000}'), PatternError);
  assert.throws(() => Pattern.compile('((a|b){64}){64}'), (e: unknown) => e instanceof PatternError && /at most/.test(e.message));
  const line = 'a'.repeat(MAX_LINE);
  for (const re of ['(a|aa)*c', '(a*)*b', '((a+)+)+b', '(x+x+)+y', '(.*)*(.*)*b', '(a|a?)+b', '(a{1,30}){1,30}b']) {
    const p = Pattern.compile(re);
    const t0 = performance.now();
    assert.equal(p.test(line), false, re);
    assert.ok(performance.now() - t0 < 500, `${re} took ${(performance.now() - t0).toFixed(0)} ms on a ${MAX_LINE}-character line`);
  }
});

// ---------------------------------------------------------------- lines

test('line assembler: pieces, CRs, ANSI escapes (split too), control characters, long lines, gaps', () => {
  const lines: string[] = [];
  const a = new LineAssembler();
  const feed = (s: string | Buffer): void => a.feed(typeof s === 'string' ? Buffer.from(s, 'latin1') : s, (l) => lines.push(l));
  feed('Kernel pa');
  feed('nic - not');
  assert.deepEqual([...lines], []);
  feed(' syncing: x\r\n');
  feed('\x1b[1;31mred\x1b[0m and \x1b]0;title\x07plain\r\n');
  feed('split \x1b[');
  feed('32mgreen\x1b');
  feed('[0m done\x1b(B\x1b=\r\r\n');
  feed('bell\x07 back\x08space\ttab\n');
  feed('progress 50%\rprogress 100%\n');
  assert.deepEqual([...lines], ['Kernel panic - not syncing: x', 'red and plain', 'split green done', 'bell backspace\ttab', 'progress 50%progress 100%']);
  lines.length = 0;
  // UTF-8 split across pieces stays one character
  const u = Buffer.from('température 42°C\n', 'utf8');
  feed(u.subarray(0, 5));
  feed(u.subarray(5));
  assert.deepEqual([...lines], ['température 42°C']);
  lines.length = 0;
  // a line longer than kept is cut (and counted); the next line is whole
  feed('x'.repeat(MAX_LINE_BYTES + 500));
  feed('y'.repeat(100) + '\nnext\n');
  assert.equal(lines[0]!.length, MAX_LINE);
  assert.equal(lines[1], 'next');
  assert.equal(a.cut, 1);
  // a gap: the unfinished line is dropped, not joined to what follows
  lines.length = 0;
  feed('Kernel panic - no');
  a.reset();
  feed('t syncing: half\n');
  assert.deepEqual([...lines], ['t syncing: half']);
  assert.equal(lineText(Buffer.from('\x1b[?25l\x1b[2J\x1b[Hclear')), 'clear');
  assert.equal(lineText(Buffer.from('osc \x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\ end')), 'osc link end');
});

// ---------------------------------------------------------------- an alert's life

function rule(over: Partial<AlertRule> & { regex: string }): AlertRule {
  return {
    name: 'r',
    severity: 'warning',
    console: null,
    before: 2,
    after: 2,
    holddownMs: 60_000,
    timeoutMs: 5_000,
    armed: 0,
    builtin: false,
    loc: { file: 't', line: 1, col: 1 },
    ...over,
    pattern: Pattern.compile(over.regex),
  };
}

test('hold-down: a storm is one alert with a count, then one repeat; after the window the rule fires again', () => {
  let t = 0;
  const r = rule({ name: 'trace', regex: '^Call Trace:$', before: 1, after: 3, holddownMs: 10_000 });
  const fired: { phase: AlertPhase; count: number; after: number }[] = [];
  const tracker = new AlertTracker((phase, a) => fired.push({ phase, count: a.record.count, after: a.record.after.length }));
  const track = new ConsoleTrack('n1', 1);
  const screen = new RuleScreen([r]);
  const line = (s: string): void => tracker.line(track, s, screen.match(s), t);
  line('before');
  for (let i = 0; i < 1000; i++) line('Call Trace:');
  assert.deepEqual(fired, [
    { phase: 'fired', count: 1, after: 0 },
    { phase: 'complete', count: 4, after: 3 },
  ]);
  t = 9_999;
  tracker.sweep(t);
  assert.equal(fired.length, 2);
  t = 10_000;
  tracker.sweep(t);
  assert.deepEqual(fired[2], { phase: 'repeat', count: 1000, after: 3 });
  assert.equal(tracker.active, 0);
  line('Call Trace:');
  assert.equal(fired[3]!.phase, 'fired');
  assert.equal(tracker.fired.get('trace'), 2);
  assert.equal(tracker.matches.get('trace'), 1001);
});

test('completion: by after-lines, or by the timeout with what came; armed= waits for earlier lines', () => {
  let t = 0;
  const r = rule({ name: 'p', regex: 'PANIC', after: 3, timeoutMs: 5_000, holddownMs: 0 });
  const seen: { phase: AlertPhase; after: string[]; complete: boolean }[] = [];
  const tracker = new AlertTracker((phase, a) => seen.push({ phase, after: [...a.record.after], complete: a.record.complete }));
  const track = new ConsoleTrack('n1', 2);
  const screen = new RuleScreen([r]);
  const line = (s: string): void => tracker.line(track, s, screen.match(s), t);
  line('PANIC one');
  line('a1');
  t = 4_000;
  tracker.sweep(t);
  assert.deepEqual(seen.map((s) => s.phase), ['fired']);
  t = 5_000;
  tracker.sweep(t);
  assert.deepEqual(seen[1], { phase: 'complete', after: ['a1'], complete: true });
  // hold-down 0: each match is an alert, and the second is in the first's after-lines
  line('PANIC two');
  line('PANIC three');
  line('x');
  line('y');
  assert.deepEqual(seen.slice(2).map((s) => s.phase), ['fired', 'fired', 'complete']);
  assert.deepEqual(seen.at(-1)!.after, ['PANIC three', 'x', 'y']);

  const armed = rule({ name: 'boot', regex: 'Linux version', armed: 2, after: 0 });
  const tr2 = new AlertTracker((phase) => seen.push({ phase, after: [], complete: true }));
  const t2 = new ConsoleTrack('n2', 0);
  const s2 = new RuleScreen([armed]);
  const n0 = seen.length;
  for (const l of ['Linux version 1', 'bios', 'Linux version 2']) tr2.line(t2, l, s2.match(l), 0);
  assert.deepEqual(seen.slice(n0).map((s) => s.phase), ['fired', 'complete'], 'only the banner after two lines fires');
});

// ---------------------------------------------------------------- conman.conf keys

test('conman.conf: the alert keys, their defaults and checks; a reload takes them live', () => {
  const parse = (text: string): ServerConfig => parseConfig(text, '/etc/conman.conf', { cwd: '/etc/conch' }).server;
  const d = parse('');
  assert.deepEqual(
    { f: d.alertsFile, def: d.alertDefaults, log: d.alertLog, notice: d.alertNotice, hook: d.alertWebhook, exec: d.alertExec },
    { f: null, def: true, log: true, notice: true, hook: null, exec: null },
  );
  const s = parse('server alerts="site.rules" alertdefaults=off alertlog=off alertnotice=OFF alertwebhook="https://hooks.example/a?t=1" alertexec="logger -t conch"\n');
  assert.deepEqual(
    { f: s.alertsFile, def: s.alertDefaults, log: s.alertLog, notice: s.alertNotice, hook: s.alertWebhook, exec: s.alertExec },
    { f: '/etc/conch/site.rules', def: false, log: false, notice: false, hook: 'https://hooks.example/a?t=1', exec: 'logger -t conch' },
  );
  assert.equal(parse('server alerts="a" alerts=""\n').alertsFile, null, 'an empty value unsets');
  assert.throws(() => parse('server alertwebhook="ftp://x/y"\n'), /1:\d+: alertwebhook: the webhook must be an http: or https: URL, got ftp:/);
  assert.throws(() => parse('server alertwebhook="not a url"\n'), /alertwebhook: "not a url" is not a URL/);
  assert.throws(() => parse('server alertdefaults=maybe\n'), /alertdefaults must be on or off/);
  for (const f of ['alertsFile', 'alertDefaults', 'alertLog', 'alertNotice', 'alertWebhook', 'alertExec'] as const) assert.equal(SERVER_KEY_APPLY[f].apply, 'live', f);
  assert.deepEqual(
    serverChanges(d, s).map((c) => c.key).filter((k) => k.startsWith('alert')),
    ['alerts', 'alertdefaults', 'alertlog', 'alertnotice', 'alertwebhook', 'alertexec'],
  );
});

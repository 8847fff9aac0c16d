// The access rules file: first match decides, whole-name regexes, from=,
// and every mistake named as file:line:col.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AccessFileError, AccessRules, type Principal } from '../src/access/rules.js';
import { parseRights, RIGHTS } from '../src/access/rights.js';
import { ConfigError } from '../src/config/types.js';
import { tmpDir } from './helpers/wait.js';

const ISSUE_EXAMPLE = `# who      consoles        rights
@oncall    .*              all
alice      node0[0-9]+     monitor,attach,break
*          .*              monitor
`;

const who = (user: string, groups: string[] = [], address = '127.0.0.1'): Principal => ({ user, groups, address });
const rights = (r: AccessRules, p: Principal, c: string): string => [...r.rightsFor(p, c)].sort().join(',');

/** The error lines a bad file gives. */
function errorsOf(text: string): string[] {
  try {
    AccessRules.parse(text, 'acc.rules');
  } catch (e) {
    assert.ok(e instanceof AccessFileError, `expected AccessFileError, got ${String(e)}`);
    assert.ok(e instanceof ConfigError, 'reload code that handles ConfigError handles it too');
    assert.equal(e.message, e.all.map((x) => x.message).join('\n'));
    return e.all.map((x) => x.message);
  }
  assert.fail('no error');
}

test('the issue example: oncall gets all, alice her nodes, everyone else monitor', () => {
  const r = AccessRules.parse(ISSUE_EXAMPLE, 'acc.rules');
  assert.equal(r.count, 3);
  assert.equal(rights(r, who('alice'), 'node01'), 'attach,break,monitor');
  assert.equal(rights(r, who('alice', ['oncall']), 'node01'), [...RIGHTS].sort().join(','));
  assert.equal(rights(r, who('bob'), 'node01'), 'monitor');
  assert.equal(rights(r, who('alice'), 'login1'), 'monitor');
  assert.ok(r.allows(who('alice'), 'node01', 'break'));
  assert.ok(!r.allows(who('alice'), 'node01', 'reset'));
  assert.ok(!r.allows(who('bob'), 'node01', 'attach'));
});

test('the console regex must match the whole name', () => {
  const r = AccessRules.parse('alice node0[0-9]+ attach\n', 'acc.rules');
  assert.ok(r.allows(who('alice'), 'node01', 'attach'));
  assert.ok(r.allows(who('alice'), 'node0123', 'attach'));
  for (const name of ['xnode01', 'node01x', 'node0', 'node', 'a node01']) assert.equal(rights(r, who('alice'), name), '', name);
  const alt = AccessRules.parse('alice a|b monitor\nbob x)y monitor\n', 'acc.rules');
  assert.ok(alt.allows(who('alice'), 'a', 'monitor'));
  assert.ok(!alt.allows(who('alice'), 'ab', 'monitor'));
  // glibc reads a stray ) as itself
  assert.ok(alt.allows(who('bob'), 'x)y', 'monitor'));
  assert.ok(!alt.allows(who('bob'), 'xy', 'monitor'));
});

test('no matching rule means no rights; an empty file allows nothing', () => {
  const r = AccessRules.parse('alice node.* monitor\n', 'acc.rules');
  assert.equal(rights(r, who('bob'), 'node1'), '');
  const empty = AccessRules.parse('# nothing yet\n\n', 'acc.rules');
  assert.equal(empty.count, 0);
  assert.ok(!empty.allows(who('root'), 'node1', 'monitor'));
});

test('the first matching rule decides, even when a later one gives more', () => {
  const r = AccessRules.parse('alice node1 monitor\nalice .* all\n', 'acc.rules');
  assert.equal(rights(r, who('alice'), 'node1'), 'monitor');
  assert.equal(rights(r, who('alice'), 'node2'), [...RIGHTS].sort().join(','));
});

test('comments after a blank, CRLF line ends, tabs and case in rights are fine', () => {
  const r = AccessRules.parse('alice\tn#1\tMonitor,ATTACH   # her console\r\n  # indented comment\r\n', 'acc.rules');
  assert.equal(r.count, 1);
  assert.equal(rights(r, who('alice'), 'n#1'), 'attach,monitor');
});

test('from= restricts a rule to IPv4, IPv6 and IPv4-mapped client addresses', () => {
  const r = AccessRules.parse(
    [
      'alice .* all from=10.0.0.0/8,192.168.1.7',
      'alice .* monitor,attach from=fd00::/8,2001:db8::1',
      'alice .* monitor',
      'bob .* attach from=::ffff:172.16.0.0/108',
      '',
    ].join('\n'),
    'acc.rules',
  );
  const all = [...RIGHTS].sort().join(',');
  assert.equal(rights(r, who('alice', [], '10.1.2.3'), 'n'), all);
  assert.equal(rights(r, who('alice', [], '::ffff:10.1.2.3'), 'n'), all);
  assert.equal(rights(r, who('alice', [], '192.168.1.7'), 'n'), all);
  assert.equal(rights(r, who('alice', [], '192.168.1.8'), 'n'), 'monitor');
  assert.equal(rights(r, who('alice', [], 'fd12:3456::1'), 'n'), 'attach,monitor');
  assert.equal(rights(r, who('alice', [], '2001:db8:0:0::1'), 'n'), 'attach,monitor');
  assert.equal(rights(r, who('alice', [], '2001:db8::2'), 'n'), 'monitor');
  assert.equal(rights(r, who('alice', [], '11.0.0.1'), 'n'), 'monitor');
  assert.equal(rights(r, who('alice', [], 'not an address'), 'n'), 'monitor');
  // a rule written as a mapped block is the IPv4 block
  assert.equal(rights(r, who('bob', [], '172.16.5.5'), 'n'), 'attach');
  assert.equal(rights(r, who('bob', [], '::ffff:172.16.5.5'), 'n'), 'attach');
  assert.equal(rights(r, who('bob', [], '172.32.0.1'), 'n'), '');
  const v6only = AccessRules.parse('carol .* monitor from=::/0\n', 'acc.rules');
  assert.ok(v6only.allows(who('carol', [], '2001:db8::9'), 'n', 'monitor'));
  assert.ok(!v6only.allows(who('carol', [], '::ffff:10.0.0.1'), 'n', 'monitor'), 'an IPv4 client is not an IPv6 one');
});

test('every bad line is reported with file:line:col', () => {
  const errs = errorsOf(
    [
      'alice node[ monitor', // 1: bad regex (glibc's words for a [ at the end)
      'alice .* monitor,fly', // 2: bad right
      'alice .* monitor from=10.0.0.0/33', // 3: bad prefix
      'alice .* monitor from=10.0.0.0/8,bogus', // 4: bad address
      'alice .*', // 5: missing rights
      'alice .* monitor until=5', // 6: unknown key
      '@ .* monitor', // 7: bad group
      'al:ice .* monitor', // 8: bad user
      'alice .* monitor extra', // 9: stray word
      'alice (a monitor', // 10: unmatched (
      'alice .* monitor from=fd00::/129', // 11: IPv6 prefix
      'alice .* monitor from=10.0.0.0/8 from=::1', // 12: twice
      'alice .* monitor from=', // 13: empty from
      'alice', // 14: missing two fields
      'alice .* monitor,,attach', // 15: empty right
      'alice a\\1 monitor', // 16: back reference
      'alice .* all', // fine
    ].join('\n'),
  );
  assert.deepEqual(errs, [
    'acc.rules:1:7: bad console regex "node[": Invalid regular expression',
    'acc.rules:2:18: unknown right "fly"; expected monitor, attach, force, break, reset, broadcast or all',
    'acc.rules:3:23: bad prefix length "/33" in "10.0.0.0/33"; expected 0 to 32 for IPv4',
    'acc.rules:4:34: bad address "bogus"; expected an IPv4 or IPv6 address or CIDR such as 10.0.0.0/8 or fd00::/8',
    'acc.rules:5:9: missing RIGHTS; expected WHO CONSOLES RIGHTS [from=CIDR,…]',
    'acc.rules:6:18: unknown key "until="; the only key is from=',
    'acc.rules:7:1: bad group name "@"; a group is @ and letters, digits, ".", "_" and "-", 1 to 64 of them',
    'acc.rules:8:1: bad user name "al:ice"; expected a user (letters, digits, ".", "_", "@" and "-", 1 to 64 of them, not starting with "@"), @group or *',
    'acc.rules:9:18: unexpected "extra" after the rights; expected WHO CONSOLES RIGHTS [from=CIDR,…]',
    'acc.rules:10:7: bad console regex "(a": Unmatched ( or \\(',
    'acc.rules:11:23: bad prefix length "/129" in "fd00::/129"; expected 0 to 128 for IPv6',
    'acc.rules:12:34: from= given twice; list every address in one from=, separated by commas',
    'acc.rules:13:23: empty address in from=; expected CIDR[,CIDR…] such as 10.0.0.0/8,fd00::/8',
    'acc.rules:14:6: missing CONSOLES and RIGHTS; expected WHO CONSOLES RIGHTS [from=CIDR,…]',
    'acc.rules:15:18: empty right in "monitor,,attach"; expected a comma-separated list of monitor, attach, force, break, reset, broadcast or all',
    'acc.rules:16:7: bad console regex "a\\1": Invalid back reference',
  ]);
});

test('load names the file it cannot read, and reads one it can', () => {
  const dir = tmpDir();
  try {
    const missing = path.join(dir, 'none.rules');
    assert.throws(() => AccessRules.load(missing), (e: unknown) => e instanceof AccessFileError && e.message === `${missing}: cannot read the access rules: no such file`);
    assert.throws(() => AccessRules.load(dir), (e: unknown) => e instanceof AccessFileError && e.message === `${dir}: cannot read the access rules: it is a directory`);
    const file = path.join(dir, 'access.rules');
    fs.writeFileSync(file, ISSUE_EXAMPLE);
    assert.equal(AccessRules.load(file).count, 3);
    fs.writeFileSync(file, 'alice .* fly\n');
    assert.throws(() => AccessRules.load(file), { message: `${file}:1:10: unknown right "fly"; expected monitor, attach, force, break, reset, broadcast or all` });
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

test('parseRights takes lists and all, and names the bad word', () => {
  assert.deepEqual([...parseRights('monitor,attach')], ['monitor', 'attach']);
  assert.deepEqual([...parseRights('all')].sort(), [...RIGHTS].sort());
  assert.throws(() => parseRights('monitor,attack'), { message: 'unknown right "attack"; expected monitor, attach, force, break, reset, broadcast or all' });
});

test('10,000 consoles × 20 rules evaluate quickly, and again from the cache', () => {
  const lines: string[] = [];
  for (let i = 0; i < 19; i++) lines.push(`user${i} (rack${i}|row[0-9]+)-node[0-9]{3,4} monitor,attach from=10.${i}.0.0/16`);
  lines.push('* .* monitor');
  const r = AccessRules.parse(lines.join('\n'), 'big.rules');
  assert.equal(r.count, 20);
  const consoles = Array.from({ length: 10_000 }, (_, i) => `rack${i % 50}-node${String(i).padStart(4, '0')}`);
  const p = who('user7', ['ops'], '10.7.1.1');
  const t0 = performance.now();
  let granted = 0;
  for (const c of consoles) if (r.allows(p, c, 'attach')) granted++;
  const first = performance.now() - t0;
  const t1 = performance.now();
  for (const c of consoles) r.allows(who('nobody', [], '10.3.0.1'), c, 'monitor');
  const again = performance.now() - t1;
  // user7 matches rack7-* only
  assert.equal(granted, 200);
  assert.ok(first < 5000, `first pass took ${first.toFixed(0)} ms`);
  assert.ok(again < 5000, `cached pass took ${again.toFixed(0)} ms`);
});

test('the match cache stays bounded however many names are asked about', () => {
  const r = AccessRules.parse('alice node[0-9]+ monitor\n', 'acc.rules');
  for (let i = 0; i < 150_000; i++) r.allows(who('alice'), `node${i}`, 'monitor');
  assert.ok(r.cached > 0 && r.cached <= 100_000, `cached ${r.cached}`);
  // a name whose cached entry was dropped is matched afresh, with the same answer
  assert.ok(r.allows(who('alice'), 'node1', 'monitor'));
  assert.ok(!r.allows(who('alice'), 'node1x', 'monitor'));
});

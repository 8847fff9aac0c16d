// `conchd -t` checks the alert rules file (`server alerts=`) with the
// daemon's own parser: every bad line as file:line:col, a non-zero exit; a
// good file passes; a missing one is named.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AlertRulesError, loadRules } from '../src/alerts/rules.js';
import { runConchd } from './helpers/conchd.js';
import { Cleanup } from './helpers/wait.js';

const cleanup = new Cleanup();
after(() => cleanup.run());
const dir = cleanup.dir('conch-alerts-check-');

function conf(rules: string, extra = ''): string {
  const file = path.join(dir, `conman-${Math.random().toString(36).slice(2)}.conf`);
  fs.writeFileSync(file, `server alerts="${rules}"\n${extra}console name="x" dev="test:"\n`);
  return file;
}

test('conchd -t names every bad line of the alert rules file as file:line:col and fails', () => {
  const rules = path.join(dir, 'bad.rules');
  // line 2 is good; 3: a bad severity; 4: a bad regex; 5: no such built-in rule; 6: no directive
  fs.writeFileSync(rules, String.raw`# a site rule file
rule disk-io err /blk_update_request: I\/O error/
rule foo bogus /x/
rule bar crit /unclosed(/
disable no-such-builtin
frobnicate
`);
  const r = runConchd(['-t', '-c', conf(rules)]);
  assert.equal(r.code, 1, r.out);
  // the very lines the daemon's parser gives
  let expected: string[] = [];
  try {
    loadRules(rules);
  } catch (e) {
    assert.ok(e instanceof AlertRulesError);
    expected = e.all.map((x) => x.message);
  }
  assert.ok(expected.length >= 3, expected.join('\n'));
  for (const m of expected) assert.ok(r.out.includes(`conchd: ${m}\n`), `${m}\nnot in:\n${r.out}`);
  assert.ok(r.out.includes(`${rules}:3:10: `), r.out); // the severity's column
  assert.match(r.out, new RegExp(`${rules.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:4:\\d+: bad regex`));
  assert.ok(r.out.includes(`${rules}:6:1: `), r.out);
  assert.ok(!r.out.includes(`${rules}:2:`), r.out);
  assert.match(r.out, /configuration .* is invalid/);
});

test('conchd -t passes a good rules file and fails a missing one', () => {
  const good = path.join(dir, 'good.rules');
  fs.writeFileSync(good, 'rule raid-fault crit console=db[0-9]+ before=3 after=20 /megaraid_sas [0-9a-f:.]+: FW in FAULT state/\ndisable reboot\n');
  const ok = runConchd(['-t', '-c', conf(good)]);
  assert.equal(ok.code, 0, ok.out);
  assert.match(ok.out, /configuration .* is valid \(1 console\)/);
  // with the built-in rules off too: the file alone is checked
  assert.equal(runConchd(['-t', '-c', conf(good, 'server alertdefaults=off\n')]).code, 0);

  const missing = path.join(dir, 'missing.rules');
  const r = runConchd(['-t', '-c', conf(missing)]);
  assert.equal(r.code, 1, r.out);
  assert.ok(r.out.includes(`conchd: ${missing}: `), r.out);
  assert.match(r.out, /configuration .* is invalid/);
});

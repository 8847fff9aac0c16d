#!/usr/bin/env node
// Makes the compiled entry points executable (tsc writes 0644), so that
// symlinks to dist/src/bin/*.js, npm's bin links and the .deb all run.
// Usage: node scripts/chmod-bins.mjs [DIST_DIR]   (default: dist)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.resolve(root, process.argv[2] ?? 'dist');
const bin = path.join(dist, 'src', 'bin');
let n = 0;
for (const f of fs.existsSync(bin) ? fs.readdirSync(bin) : []) {
  if (!f.endsWith('.js')) continue;
  const p = path.join(bin, f);
  fs.chmodSync(p, fs.statSync(p).mode | 0o111);
  n++;
}
if (n === 0) {
  process.stderr.write(`chmod-bins: no compiled entry points in ${bin}\n`);
  process.exit(1);
}

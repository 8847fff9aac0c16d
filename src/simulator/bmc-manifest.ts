// What the fleet runs, in forms other tools read: TSV, JSON, a conman.conf
// for Debian conmand (one `ipmi:` console per BMC, its credentials in
// ipmiopts; bench/README.md runs conmand on it), and per-BMC credential files.

import * as fs from 'node:fs';
import type { BmcUser } from './bmc-session.js';
import type { ManifestEntry } from './bmc-fleet.js';

export function manifestTsv(m: ManifestEntry[]): string {
  return ['name\taddress\tport\tuser\tpassword', ...m.map((e) => `${e.name}\t${e.address}\t${e.port}\t${e.user}\t${e.password}`)].join('\n') + '\n';
}

export function manifestJson(m: ManifestEntry[]): string {
  return JSON.stringify(m, null, 1) + '\n';
}

/** `--manifest FILE`: JSON when the name ends in .json, else TSV. */
export function writeManifest(file: string, m: ManifestEntry[]): void {
  fs.writeFileSync(file, file.endsWith('.json') ? manifestJson(m) : manifestTsv(m));
}

function q(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** A conman.conf with one `ipmi:` console per BMC; server settings come from `server` lines given by the caller. */
export function conmanConf(m: ManifestEntry[], serverLines: string[] = []): string {
  const out = ['# written by conch-bmcsim', ...serverLines];
  // ipmiopts per console: credentials may differ per BMC. Our BMCs need no FreeIPMI workarounds.
  for (const e of m) {
    // an IPv6 address is bracketed, or its last group would read as the port
    const host = e.address.includes(':') ? `[${e.address}]` : e.address;
    const dev = e.port === 623 ? `ipmi:${host}` : `ipmi:${host}:${e.port}`;
    out.push(`console name=${q(e.name)} dev=${q(dev)} ipmiopts=${q(`U:${e.user},P:${e.password}`)}`);
  }
  return out.join('\n') + '\n';
}

/**
 * Per-BMC credentials: one BMC per line, `name user password` separated by
 * blanks or tabs; `#` starts a comment. Errors name the file and line.
 */
export function readCredentials(file: string): Map<string, BmcUser> {
  const map = new Map<string, BmcUser>();
  const text = fs.readFileSync(file, 'utf8');
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) return;
    const f = line.split(/\s+/);
    if (f.length !== 3) throw new Error(`${file}:${i + 1}: expected "name user password", got ${f.length} fields`);
    if (Buffer.byteLength(f[1]) > 16) throw new Error(`${file}:${i + 1}: user name longer than 16 bytes`);
    if (Buffer.byteLength(f[2]) > 20) throw new Error(`${file}:${i + 1}: password longer than 20 bytes`);
    map.set(f[0], { name: f[1], password: f[2] });
  });
  return map;
}

// Texts the client prints itself, byte-for-byte like conman's client:
// usage, license, local status lines, `&I` and the `&?` escape list.

import * as fs from 'node:fs';
import { NOTICE_PREFIX, NOTICE_SUFFIX } from '../util/notice.js';
import { hostPort, type ClientOptions } from './args.js';
import type { Command } from './proto.js';

/** How conman shows a key: control characters as ^X, DEL as ^?, high bit dropped. */
export function escName(byte: number): string {
  const c = byte & 0x7f;
  if (c < 0x20) return '^' + String.fromCharCode(c + 0x40);
  if (c === 0x7f) return '^?';
  return String.fromCharCode(c);
}

export function usage(prog: string, o: ClientOptions): string {
  const esc = escName(o.escape);
  return [
    `Usage: ${prog} [OPTIONS] [CONSOLES]`,
    '',
    '  -b        Broadcast to multiple consoles (write-only).',
    `  -d HOST   Specify server destination. [${hostPort(o.host, o.port)}]`,
    `  -e CHAR   Specify escape character. [${esc}]`,
    '  -f        Force connection (console-stealing).',
    '  -F FILE   Read console names from file.',
    '  -h        Display this help.',
    '  -j        Join connection (console-sharing).',
    '  -l FILE   Log connection output to file.',
    '  -L        Display license information.',
    '  -m        Monitor connection (read-only).',
    '  -q        Query server about specified console(s).',
    '  -Q        Be quiet and suppress informational messages.',
    '  -r        Match console names via regex instead of globbing.',
    "  -v        Be verbose (with -q: each console's state).",
    '  -V        Display version information.',
    '  --tls     Connect with TLS (default port 7891).',
    '  --ca FILE Trust only the CA certificates in FILE.',
    '  --cert FILE --key FILE',
    '            Present this client certificate and key.',
    '  --user NAME',
    '            Log in as NAME (default: your login name).',
    '  --grep RE [--since T] [--until T] [--tail N] [--limit N] [--follow]',
    "            Search the consoles' logs (all consoles when none is named).",
    '  --log [--lines N | --tail BYTES] [--since T] [--until T] CONSOLE',
    "            Print a console's log (in a cluster: from every node that ran it).",
    '',
    `  Once a connection is established, enter "${esc}." to close the session,`,
    `    or "${esc}?" to see a list of currently available escape sequences.`,
    '',
    '',
  ].join('\n');
}

function packageJson(): { name?: string; version?: string; license?: string } {
  try {
    const url = new URL('../../../package.json', import.meta.url); // dist/src/client -> repo root
    return JSON.parse(fs.readFileSync(url, 'utf8')) as { name?: string; version?: string };
  } catch {
    return {};
  }
}

export function versionText(): string {
  const p = packageJson();
  return `${p.name ?? 'conch'}-${p.version ?? 'unknown'}\n`;
}

export function licenseText(): string {
  return [
    'conch: console manager for data centres (conman-compatible client)',
    '',
    'conch is free software: you can redistribute it and/or modify it',
    'under the terms of the GNU General Public License as published by',
    'the Free Software Foundation; either version 3 of the License, or',
    '(at your option) any later version.',
    '',
    'conch is distributed in the hope that it will be useful, but WITHOUT',
    'ANY WARRANTY; without even the implied warranty of MERCHANTABILITY or',
    'FITNESS FOR A PARTICULAR PURPOSE.  See the GNU General Public License',
    'for more details.',
    '',
    '',
  ].join('\n');
}

/** What the session needs to word its local messages. */
export interface SessionView {
  command: Command;
  broadcast: boolean;
  consoles: string[];
  echo: boolean;
  quiet: boolean;
  reset: boolean;
  host: string; // short host name, as conman shows it
  port: number;
}

const notice = (text: string): string => NOTICE_PREFIX + text + NOTICE_SUFFIX;

/** `Connection to console [x] <what>.` or `Broadcast to N consoles <what>.` */
export function statusLine(v: SessionView, what: string): string {
  return v.consoles.length === 1
    ? notice(`Connection to console [${v.consoles[0]}] ${what}`)
    : notice(`Broadcast to ${v.consoles.length} consoles ${what}`);
}

/** The `&I` line. */
export function infoLine(v: SessionView): string {
  const where = `<${hostPort(v.host, v.port)}>`;
  return v.consoles.length === 1
    ? notice(`Connected ${v.command === 'monitor' ? 'R/O' : 'R/W'} to console [${v.consoles[0]}] on ${where}`)
    : notice(`Broadcasting to ${v.consoles.length} consoles on ${where}`);
}

/** The `&?` list; only the escapes that do something in the current mode. */
export function escapeHelp(v: SessionView, escape: number): string {
  const esc = escName(escape);
  const row = (key: string, text: string): string => `  ${esc.padStart(2)}${key.padEnd(2)} -  ${text}.\r\n`;
  const rw = v.command === 'connect';
  const ro = v.command === 'monitor';
  let s = '\r\nSupported ConMan Escape Sequences:\r\n';
  s += row('?', 'Display this help message');
  s += row('.', 'Terminate the connection');
  s += row(esc, 'Send the escape character');
  if (rw) s += row('B', 'Transmit a serial-break');
  if (rw) s += row('D', 'Transmit a DEL character');
  if (rw) s += row('E', `${v.echo ? 'Disable' : 'Enable'} echoing of client input`);
  if (ro) s += row('F', 'Force write-privileges (console-stealing)');
  s += row('I', 'Display connection information');
  if (ro) s += row('J', 'Join write-privileges (console-sharing)');
  if (!v.broadcast) s += row('L', "Replay the console's recent output (server replaybuffer, 16 KiB by default)");
  if (rw && !v.broadcast) s += row('M', 'Monitor without write-privileges (read-only)');
  s += row('Q', v.quiet ? 'Disable quiet-mode (display info msgs)' : 'Enable quiet-mode (suppress info msgs)');
  if (rw && v.reset) s += row('R', `Reset node${v.consoles.length === 1 ? '' : 's'} associated with this console`);
  s += row('Z', 'Suspend the client');
  return s;
}

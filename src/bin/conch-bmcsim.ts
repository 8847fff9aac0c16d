#!/usr/bin/env node
// conch-bmcsim: a fleet of simulated BMCs (RMCP+/SOL on UDP) with a
// simulated host behind each serial console, plus optional telnet
// terminal-server ports. Prints a manifest, then "# ready".

import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { BmcFleet, type FleetOptions } from '../simulator/bmc-fleet.js';
import { startControl } from '../simulator/bmc-control.js';
import { conmanConf, manifestTsv, readCredentials, writeManifest } from '../simulator/bmc-manifest.js';
import { profileByName, type BmcProfile } from '../simulator/bmc-profiles.js';
import { TelnetFleet } from '../simulator/telnet-fleet.js';

const USAGE = `usage: conch-bmcsim [options]
  --count N              simulated BMCs (default 1; 0 with --telnet-count only)
  --base-port P          UDP port of the first BMC, the others follow (default 16201)
  --address A            address to bind (default 127.0.0.1)
  --per-address          one address per BMC (A, A+1, ...) all on --base-port (e.g. 127.0.1.1, port 623)
  --prefix S             BMC names S01, S02, ... (default node)
  --user U --password P  credentials of every BMC (default admin / password)
  --credentials FILE     per-BMC credentials: lines "name user password"
  --profile NAME         ipmi_sim (default) or openbmc
  --session-timeout S    override the profile's session inactivity timeout (seconds)
  --heartbeat S          seconds between "[seq N] NAME heartbeat" host lines (default 5; 0 = none)
  --rate B               steady host output in bytes/s per host (default 0)
  --no-boot              hosts start at the login prompt without a boot log
  --manifest FILE        write the manifest (.json = JSON, else TSV)
  --conman-conf FILE     write a conman.conf with one ipmi: console per BMC
  --conman-line LINE     a line for the top of that conman.conf (repeatable), e.g. 'server port=7890'
  --control-port P       HTTP control channel on 127.0.0.1:P (0 = any free port)
  --telnet-count N       terminal-server mode: N telnet ports with a host each
  --telnet-base-port P   first telnet port (default 17201)
  --telnet-prefix S      telnet host names (default tel)
  --quiet                do not print the manifest on stdout
`;

function fail(msg: string): never {
  process.stderr.write(`conch-bmcsim: ${msg}\n`);
  process.exit(2);
}

function int(v: string | undefined, name: string, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) fail(`${name}: '${v}' is not a whole number from ${min} to ${max}`);
  return n;
}

const OPTIONS = {
  count: { type: 'string' },
  'base-port': { type: 'string' },
  address: { type: 'string' },
  'per-address': { type: 'boolean' },
  prefix: { type: 'string' },
  user: { type: 'string' },
  password: { type: 'string' },
  credentials: { type: 'string' },
  profile: { type: 'string' },
  heartbeat: { type: 'string' },
  'session-timeout': { type: 'string' },
  rate: { type: 'string' },
  'no-boot': { type: 'boolean' },
  manifest: { type: 'string' },
  'conman-conf': { type: 'string' },
  'conman-line': { type: 'string', multiple: true },
  'control-port': { type: 'string' },
  'telnet-count': { type: 'string' },
  'telnet-base-port': { type: 'string' },
  'telnet-prefix': { type: 'string' },
  quiet: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Args = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: false }>>['values'];

/** The command line, or the usage on stderr and exit 2. */
function readArgs(): Args {
  try {
    return parseArgs({ options: OPTIONS, allowPositionals: false }).values;
  } catch (e) {
    fail(`${(e as Error).message}\n${USAGE}`);
  }
}

/** --profile with --session-timeout applied. */
function profileOf(a: Args): BmcProfile {
  let profile;
  try {
    profile = profileByName(a.profile ?? 'ipmi_sim');
  } catch (e) {
    fail(`--profile: ${(e as Error).message}`);
  }
  if (a['session-timeout'] !== undefined) {
    const t = Number(a['session-timeout']);
    if (!Number.isFinite(t) || t <= 0) fail(`--session-timeout: '${a['session-timeout']}' is not a number of seconds`);
    profile = { ...profile, sessionTimeoutMs: t * 1000 };
  }
  return profile;
}

/** The BMC fleet's options, each checked (exit 2 on the first that is wrong), and the telnet host count. */
function fleetOptions(a: Args): { opts: FleetOptions; telnetCount: number } {
  const telnetCount = int(a['telnet-count'], '--telnet-count', 0, 0, 60000);
  const count = int(a.count, '--count', telnetCount > 0 ? 0 : 1, 0, 60000);
  const basePort = int(a['base-port'], '--base-port', 16201, 1, 65535);
  if (!a['per-address'] && basePort + count - 1 > 65535) fail(`--base-port ${basePort} + --count ${count} runs past port 65535`);
  const user = a.user ?? 'admin';
  const password = a.password ?? 'password';
  if (Buffer.byteLength(user) > 16) fail('--user: longer than 16 bytes');
  if (Buffer.byteLength(password) > 20) fail('--password: longer than 20 bytes');
  const profile = profileOf(a);
  let credentials;
  if (a.credentials) {
    try {
      credentials = readCredentials(a.credentials);
    } catch (e) {
      fail(`--credentials: ${(e as Error).message}`);
    }
  }
  const heartbeat = Number(a.heartbeat ?? 5);
  if (!Number.isFinite(heartbeat) || heartbeat < 0) fail(`--heartbeat: '${a.heartbeat}' is not a number of seconds`);
  const rate = Number(a.rate ?? 0);
  if (!Number.isFinite(rate) || rate < 0) fail(`--rate: '${a.rate}' is not a byte rate`);
  const opts: FleetOptions = {
    count,
    basePort,
    address: a.address ?? '127.0.0.1',
    perAddress: a['per-address'] ?? false,
    prefix: a.prefix ?? 'node',
    user,
    password,
    credentials,
    profile,
    heartbeat,
    rate,
    boot: !a['no-boot'],
  };
  return { opts, telnetCount };
}

/** Bind both fleets and start their hosts (the telnet hosts on the BMC fleet's clock); stop on a signal. */
async function startFleets(fleet: BmcFleet, telnet: TelnetFleet, count: number): Promise<void> {
  const stop = (): void => {
    fleet.stop();
    telnet.stop();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  try {
    await fleet.start();
    await telnet.start((h, i) => fleet.drive(h, count + i));
  } catch (e) {
    fleet.stop();
    telnet.stop();
    fail((e as Error).message);
  }
}

/** Start the HTTP control channel; its `# control` line. */
async function controlLine(a: Args, fleet: BmcFleet, telnet: TelnetFleet): Promise<string | null> {
  try {
    const srv = await startControl(fleet, int(a['control-port'], '--control-port', 0, 0, 65535));
    const addr = srv.address();
    return addr && typeof addr === 'object' ? `# control http://127.0.0.1:${addr.port}` : null;
  } catch (e) {
    fleet.stop();
    telnet.stop();
    fail((e as Error).message);
  }
}

async function main(): Promise<void> {
  const a = readArgs();
  if (a.help) {
    process.stdout.write(USAGE);
    return;
  }
  const { opts, telnetCount } = fleetOptions(a);
  const { count, address, profile } = opts;
  const fleet = new BmcFleet(opts);
  const telnet = new TelnetFleet(telnetCount, int(a['telnet-base-port'], '--telnet-base-port', 17201, 1, 65535), address, a['telnet-prefix'] ?? 'tel', !a['no-boot']);
  await startFleets(fleet, telnet, count);
  const m = fleet.manifest();
  if (a.manifest) writeManifest(a.manifest, m);
  if (a['conman-conf']) fs.writeFileSync(a['conman-conf'], conmanConf(m, a['conman-line'] ?? []));
  const lines: string[] = [];
  if (!a.quiet) {
    if (count > 0) lines.push(manifestTsv(m).trimEnd());
    for (const t of telnet.entries) lines.push(`# telnet\t${t.name}\t${t.address}\t${t.port}`);
  }
  if (a['control-port'] !== undefined) {
    const control = await controlLine(a, fleet, telnet);
    if (control) lines.push(control);
  }
  lines.push(`# ready: ${count} BMCs (${profile.name}), ${telnetCount} telnet hosts`);
  process.stdout.write(lines.join('\n') + '\n');
}

main().catch((e) => fail(String((e as Error)?.stack ?? e)));

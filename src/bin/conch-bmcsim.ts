#!/usr/bin/env node
// conch-bmcsim: a fleet of simulated BMCs (RMCP+/SOL on UDP) with a
// simulated host behind each serial console, plus optional telnet
// terminal-server ports and SSH BMCs (OpenBMC, iLO, iDRAC, ILOM or XCC
// fronts). Prints a manifest, then "# ready".

import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { BmcFleet, type FleetOptions } from '../simulator/bmc-fleet.js';
import { startControl } from '../simulator/bmc-control.js';
import { conmanConf, manifestTsv, readCredentials, writeManifest } from '../simulator/bmc-manifest.js';
import { profileByName, type BmcProfile } from '../simulator/bmc-profiles.js';
import { TelnetFleet } from '../simulator/telnet-fleet.js';
import { SshFleet, sshConsoleLines, sshPswd, type SshFleetOptions } from '../simulator/ssh-fleet.js';
import { FRONT_KINDS, type FrontKind } from '../simulator/ssh-front.js';
import { defaultHostKeyFile } from '../simulator/ssh-keys.js';

const USAGE = `usage: conch-bmcsim [options]
  --count N              simulated BMCs (default 1; 0 with --telnet-count or --ssh-count)
  --base-port P          UDP port of the first BMC, the others follow (default 16201)
  --address A            address to bind (default 127.0.0.1; an IPv6 one such as ::1 too)
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
  --ssh-count N          SSH mode: N SSH servers (BMCs serving their host's console over SSH) with a host each
  --ssh-base-port P      TCP port of the first (default 18201), the others follow; 0: any free ports
  --ssh-prefix S         their names (default ssh)
  --ssh-front F          what a session meets: openbmc (the console at once; default), ilo, idrac, ilom or xcc
  --ssh-host-key FILE    the fleet's host key, made (ed25519) if missing
                         (default ~/.local/state/conch-bmcsim/ssh_host_ed25519_key)
  --ssh-authorized-keys FILE  public keys that may log in as the user (authorized_keys format); passwords always may
  --conman-pswd FILE     write a conman.pswd with the SSH passwords; --conman-conf then names it (server pswdfile=)
  --conman-ssh-key FILE  the conman.conf's SSH consoles log in with this private key (sshopts key=)
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
  'ssh-count': { type: 'string' },
  'ssh-base-port': { type: 'string' },
  'ssh-prefix': { type: 'string' },
  'ssh-front': { type: 'string' },
  'ssh-host-key': { type: 'string' },
  'ssh-authorized-keys': { type: 'string' },
  'conman-pswd': { type: 'string' },
  'conman-ssh-key': { type: 'string' },
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
  const others = telnetCount > 0 || int(a['ssh-count'], '--ssh-count', 0, 0, 60000) > 0;
  const count = int(a.count, '--count', others ? 0 : 1, 0, 60000);
  const basePort = int(a['base-port'], '--base-port', 16201, 1, 65535);
  if (!a['per-address'] && basePort + count - 1 > 65535) fail(`--base-port ${basePort} + --count ${count} runs past port 65535`);
  const user = a.user ?? 'admin';
  const password = a.password ?? 'password';
  if (Buffer.byteLength(user) > 16) fail('--user: longer than 16 bytes');
  // IPMI's limit; an SSH login's password may be longer
  if (count > 0 && Buffer.byteLength(password) > 20) fail('--password: longer than 20 bytes');
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

/** The SSH hosts' options (SSH mode), checked; the IPMI fleet's give the address and credentials. */
function sshOptions(a: Args, base: FleetOptions): SshFleetOptions {
  const count = int(a['ssh-count'], '--ssh-count', 0, 0, 60000);
  const basePort = int(a['ssh-base-port'], '--ssh-base-port', 18201, 0, 65535);
  if (basePort + count - 1 > 65535) fail(`--ssh-base-port ${basePort} + --ssh-count ${count} runs past port 65535`);
  const front = (a['ssh-front'] ?? 'openbmc') as FrontKind;
  if (!FRONT_KINDS.includes(front)) fail(`--ssh-front: '${front}' (use ${FRONT_KINDS.join(', ')})`);
  const keys = a['ssh-authorized-keys'];
  if (keys !== undefined && !fs.existsSync(keys)) fail(`--ssh-authorized-keys: ${keys} does not exist`);
  return {
    count,
    basePort,
    address: base.address,
    prefix: a['ssh-prefix'] ?? 'ssh',
    front,
    user: base.user,
    password: base.password,
    credentials: base.credentials,
    hostKeyFile: path.resolve(a['ssh-host-key'] ?? defaultHostKeyFile()),
    authorizedKeys: keys ?? null,
    boot: base.boot,
  };
}

interface Fleets {
  fleet: BmcFleet;
  telnet: TelnetFleet;
  ssh: SshFleet;
}

function stopAll(f: Fleets): void {
  f.fleet.stop();
  f.telnet.stop();
  f.ssh.stop();
}

/** Bind every fleet and start their hosts (telnet and SSH hosts on the BMC fleet's clock); stop on a signal. */
async function startFleets(f: Fleets, count: number, telnetCount: number): Promise<void> {
  const stop = (): void => {
    stopAll(f);
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  try {
    await f.fleet.start();
    await f.telnet.start((h, i) => f.fleet.drive(h, count + i));
    await f.ssh.start((h, i) => f.fleet.drive(h, count + telnetCount + i));
  } catch (e) {
    stopAll(f);
    fail((e as Error).message);
  }
}

/** Start the HTTP control channel; its `# control` line. */
async function controlLine(a: Args, f: Fleets): Promise<string | null> {
  try {
    const srv = await startControl(f.fleet, int(a['control-port'], '--control-port', 0, 0, 65535), f.ssh);
    const addr = srv.address();
    return addr && typeof addr === 'object' ? `# control http://127.0.0.1:${addr.port}` : null;
  } catch (e) {
    stopAll(f);
    fail((e as Error).message);
  }
}

/** --conman-conf (and --conman-pswd): a console per BMC and per SSH host. */
function writeConman(a: Args, f: Fleets): void {
  const server = [...(a['conman-line'] ?? [])];
  const entries = f.ssh.entries();
  if (a['conman-pswd']) {
    try {
      fs.writeFileSync(a['conman-pswd'], sshPswd(entries), { mode: 0o600 });
    } catch (e) {
      stopAll(f);
      fail(`--conman-pswd: ${(e as Error).message}`);
    }
    server.push(`server pswdfile="${path.resolve(a['conman-pswd'])}"`);
  }
  if (!a['conman-conf']) return;
  const key = a['conman-ssh-key'] ? path.resolve(a['conman-ssh-key']) : undefined;
  const ssh = entries.length ? sshConsoleLines(entries, key).join('\n') + '\n' : '';
  fs.writeFileSync(a['conman-conf'], conmanConf(f.fleet.manifest(), server) + ssh);
}

/** What is printed: the manifest lines (unless --quiet) and the SSH host key. */
function manifestLines(a: Args, f: Fleets, count: number): string[] {
  const lines: string[] = [];
  if (!a.quiet) {
    if (count > 0) lines.push(manifestTsv(f.fleet.manifest()).trimEnd());
    for (const t of f.telnet.entries) lines.push(`# telnet\t${t.name}\t${t.address}\t${t.port}`);
    for (const e of f.ssh.entries()) lines.push(`# ssh\t${e.name}\t${e.address}\t${e.port}\t${e.front}`);
  }
  const k = f.ssh.hostKey;
  if (k) lines.push(`# ssh host key ${k.file} ${k.fingerprint}`);
  return lines;
}

async function main(): Promise<void> {
  const a = readArgs();
  if (a.help) {
    process.stdout.write(USAGE);
    return;
  }
  const { opts, telnetCount } = fleetOptions(a);
  const { count, address, profile } = opts;
  const sshOpts = sshOptions(a, opts);
  const f: Fleets = {
    fleet: new BmcFleet(opts),
    telnet: new TelnetFleet(telnetCount, int(a['telnet-base-port'], '--telnet-base-port', 17201, 1, 65535), address, a['telnet-prefix'] ?? 'tel', !a['no-boot']),
    ssh: new SshFleet(sshOpts),
  };
  await startFleets(f, count, telnetCount);
  if (a.manifest) writeManifest(a.manifest, f.fleet.manifest());
  writeConman(a, f);
  const lines = manifestLines(a, f, count);
  if (a['control-port'] !== undefined) {
    const control = await controlLine(a, f);
    if (control) lines.push(control);
  }
  const ssh = sshOpts.count > 0 ? `, ${sshOpts.count} SSH hosts (${sshOpts.front})` : '';
  lines.push(`# ready: ${count} BMCs (${profile.name}), ${telnetCount} telnet hosts${ssh}`);
  process.stdout.write(lines.join('\n') + '\n');
}

main().catch((e) => fail(String((e as Error)?.stack ?? e)));

// A real OpenSSH sshd for the SSH console tests: its own config, host key,
// authorized_keys and pid file in a temp dir, on a free loopback port, and a
// ForceCommand that plays the BMC (ssh-fake-bmc.ts), which reports to the
// test over a unix socket (FakeBmc). The system's ssh service is never
// touched. As root, sshd needs its privilege separation directory
// (/run/sshd, which the ssh service would make): it is made if missing.

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type Child, type Cleanup, freePort, waitFor } from './wait.js';

export const SSHD = '/usr/sbin/sshd';
const FAKE_BMC = path.join(path.dirname(fileURLToPath(import.meta.url)), 'ssh-fake-bmc.js');

/** a new ed25519 key pair (OpenSSH format, no passphrase) at `file` and `file.pub` */
export function keygen(file: string): void {
  fs.rmSync(file, { force: true });
  fs.rmSync(`${file}.pub`, { force: true });
  const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'conch-test', '-f', file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
}

/** `SHA256:…` of a public key file, as ssh-keygen -l prints it */
export function keyFingerprint(pubFile: string): string {
  const r = spawnSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', pubFile], { encoding: 'utf8' });
  const m = /SHA256:[A-Za-z0-9+/]+/.exec(r.stdout);
  if (!m) throw new Error(`no fingerprint for ${pubFile}: ${r.stdout}${r.stderr}`);
  return m[0];
}

interface BmcMessage {
  t: string;
  pid?: number;
  data?: string;
  cmd?: string;
  result?: string;
}

/** The test's side of the fake BMC sessions: what they report, and the host's output to them. */
export class FakeBmc {
  readonly ctl: string;
  /** every message of every session, in order */
  readonly messages: BmcMessage[] = [];
  private sessions: net.Socket[] = [];
  private server: net.Server;

  constructor(dir: string) {
    this.ctl = path.join(dir, 'ctl.sock');
    this.server = net.createServer((s) => {
      this.sessions.push(s);
      let buf = '';
      s.on('data', (d) => {
        buf += d.toString('latin1');
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          this.messages.push(JSON.parse(buf.slice(0, nl)) as BmcMessage);
          buf = buf.slice(nl + 1);
        }
      });
      s.on('error', () => {});
      s.on('close', () => (this.sessions = this.sessions.filter((x) => x !== s)));
    });
  }

  listen(): Promise<void> {
    return new Promise((resolve) => this.server.listen(this.ctl, resolve));
  }

  /** sessions connected now */
  get live(): number {
    return this.sessions.length;
  }

  /** console input every session received (latin1) */
  get received(): string {
    return this.messages
      .filter((m) => m.t === 'in')
      .map((m) => Buffer.from(m.data ?? '', 'base64').toString('latin1'))
      .join('');
  }

  /** wait until `n` sessions in all have started, and one is connected now (the host's output reaches it) */
  async started(n: number, timeoutMs = 30000): Promise<void> {
    await waitFor(() => this.count('hello') >= n && this.sessions.length > 0, `${n} fake BMC session(s)`, timeoutMs);
  }

  count(t: string, result?: string): number {
    return this.messages.filter((m) => m.t === t && (result === undefined || m.result === result)).length;
  }

  /** the host prints (to every session in its console) */
  write(text: string): void {
    const line = `${JSON.stringify({ t: 'out', data: Buffer.from(text, 'latin1').toString('base64') })}\n`;
    for (const s of this.sessions) s.write(line);
  }

  /** iLO: another session takes the virtual serial port (a session in it is put back at its prompt) */
  takeOver(): void {
    for (const s of this.sessions) s.write(`${JSON.stringify({ t: 'takeover' })}\n`);
  }

  /** iLO: whether `vsp` answers "in use by another session" */
  setBusy(busy: boolean): void {
    if (busy) fs.writeFileSync(`${this.ctl}.busy`, '');
    else fs.rmSync(`${this.ctl}.busy`, { force: true });
  }

  close(): Promise<void> {
    for (const s of this.sessions) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

export interface SshdOptions {
  /** openbmc or ilo (see ssh-fake-bmc.ts) */
  mode: 'openbmc' | 'ilo';
  /** 127.0.0.1 (default) or ::1 */
  address?: string;
}

export class Sshd {
  child: Child | null = null;
  port = 0;
  readonly dir: string;
  readonly bmc: FakeBmc;
  /** the client key conch logs in with (authorized for the user the tests run as) */
  readonly clientKey: string;
  readonly hostKey: string;
  readonly conf: string;
  readonly user = os.userInfo().username;

  constructor(
    private readonly cleanup: Cleanup,
    readonly opts: SshdOptions,
  ) {
    this.dir = cleanup.dir('sshd-');
    this.bmc = new FakeBmc(this.dir);
    this.clientKey = path.join(this.dir, 'client_ed25519');
    this.hostKey = path.join(this.dir, 'host_ed25519');
    this.conf = path.join(this.dir, 'sshd_config');
  }

  get address(): string {
    return this.opts.address ?? '127.0.0.1';
  }

  /** `[::1]` or `127.0.0.1`, as a dev= host */
  get hostForDev(): string {
    return this.address.includes(':') ? `[${this.address}]` : this.address;
  }

  get hostFingerprint(): string {
    return keyFingerprint(`${this.hostKey}.pub`);
  }

  async start(): Promise<void> {
    await this.bmc.listen();
    this.cleanup.add(() => this.bmc.close());
    keygen(this.clientKey);
    keygen(this.hostKey);
    fs.copyFileSync(`${this.clientKey}.pub`, path.join(this.dir, 'authorized_keys'));
    this.port = await freePort(this.address);
    this.cleanup.add(() => this.kill());
    await this.run();
  }

  /** a new host key, as a BMC replaced or reset would have (takes effect at the next start) */
  newHostKey(): void {
    keygen(this.hostKey);
  }

  private writeConfig(): void {
    const listen = this.address.includes(':') ? `[${this.address}]:${this.port}` : `${this.address}:${this.port}`;
    fs.writeFileSync(
      this.conf,
      [
        `ListenAddress ${listen}`,
        `HostKey ${this.hostKey}`,
        `PidFile ${path.join(this.dir, 'sshd.pid')}`,
        `AuthorizedKeysFile ${path.join(this.dir, 'authorized_keys')}`,
        'StrictModes no',
        'UsePAM no',
        'PubkeyAuthentication yes',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PermitRootLogin prohibit-password',
        'UseDNS no',
        'PrintMotd no',
        'PrintLastLog no',
        'X11Forwarding no',
        'AllowTcpForwarding no',
        'AllowAgentForwarding no',
        'PermitTTY yes',
        'MaxStartups 100',
        // DEBUG1: sshd names each channel request it gets (the break request among them)
        'LogLevel DEBUG1',
        `ForceCommand ${process.execPath} ${FAKE_BMC} ${this.opts.mode} ${this.bmc.ctl}`,
        '',
      ].join('\n'),
    );
  }

  private async run(): Promise<void> {
    if (process.getuid?.() === 0) fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
    this.writeConfig();
    const child = this.cleanup.child(SSHD, ['-D', '-e', '-f', this.conf]);
    this.child = child;
    await child.waitOutput(`Server listening on ${this.address} port ${this.port}`, 20000);
  }

  /**
   * Kill sshd and every process it started (the sessions and the fake BMCs
   * in them), as a BMC reboot would, and wait until they are gone.
   */
  async kill(): Promise<void> {
    const pid = this.child?.proc.pid;
    if (pid === undefined || this.child?.proc.exitCode !== null || this.child?.proc.signalCode !== null) {
      if (pid !== undefined) killAll(descendants(pid));
      return;
    }
    const all = [pid, ...descendants(pid)];
    killAll(all);
    await this.child!.exited;
    await waitFor(() => all.every((p) => !alive(p)), 'sshd and its sessions to be gone', 10000);
  }

  /** kill everything and start again on the same port (with the host key as it is now) */
  async restart(): Promise<void> {
    await this.kill();
    await this.run();
  }

  /** what sshd logged (stderr, -e) */
  get log(): string {
    return this.child?.output ?? '';
  }
}

/** a test sshd running the fake BMC in `mode` */
export async function startSshd(cleanup: Cleanup, opts: SshdOptions): Promise<Sshd> {
  const s = new Sshd(cleanup, opts);
  await s.start();
  return s;
}

/** every descendant of `root` (by parent pid in /proc) */
function descendants(root: number): number[] {
  const parent = new Map<number, number>();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'latin1');
      // pid (comm) state ppid …; comm may hold spaces and parentheses
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parent.set(Number(d), ppid);
    } catch {
      /* gone meanwhile */
    }
  }
  const out: number[] = [];
  const todo = [root];
  while (todo.length > 0) {
    const p = todo.pop()!;
    for (const [c, pp] of parent) {
      if (pp === p && !out.includes(c)) {
        out.push(c);
        todo.push(c);
      }
    }
  }
  return out;
}

function killAll(pids: number[]): void {
  for (const p of pids) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

// An SSH console (`dev="ssh://[user@]host[:port]"`, docs/ssh.md): conch is
// the SSH client (the ssh2 library, in-process: no ssh, expect or sshpass),
// asks for a pty as `ssh -t` does, runs a shell (or sshopts cmd=), and
// reaches the serial port through the entry profile's dialog (ssh-entry.ts).
// Host keys are checked against an OpenSSH known_hosts file
// (ssh-known-hosts.ts); keepalives notice a dead BMC within 20 s. A serial
// port that another session holds is waited for, never taken; one taken
// over while conch is in it (the BMC puts the session back at its CLI) is
// noticed, told, waited for and entered again; on close the profile's leave
// sequence goes out first, so the BMC frees the port at once.

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import type * as Ssh2 from 'ssh2';
import type { AuthenticationType, ClientChannel } from 'ssh2';
import type { SshHostKeys, SshOpts } from '../config/types.js';
import { INPUT_HIGH_WATER, type Backoff, type Device, type DeviceHandler } from './device.js';
import { socketErrorReason, bareHost } from './socket-util.js';
import { DEFAULT_DIALOG_TIMING, ENTRY_PROFILES, EntryDialog, quoteBmc, type DialogTiming, type EntryProfile } from './ssh-entry.js';
import { blobType, fingerprint, knownHostsFile, knownHostsName, type KnownHosts } from './ssh-known-hosts.js';
import { longTime, stampTime, timeDelta } from '../util/notice.js';
import { lazyRequire } from '../util/lazy-require.js';

/** the ssh2 library, loaded at the first SSH console's first attempt */
const ssh2 = lazyRequire<typeof Ssh2>('ssh2');
/** ssh2's packet writer, for the break request it has no call for */
const ssh2Protocol = lazyRequire<{ sendPacket?: unknown }>('ssh2/lib/protocol/utils.js');
type SshClient = Ssh2.Client;

// conman's IPMI numbers: 15 s doubling to 30 min; a minute up counts as healthy
export const SSH_BACKOFF: Backoff = { minMs: 15000, maxMs: 1800000, healthyMs: 60000 };

export interface SshTiming extends DialogTiming {
  /** keepalive@openssh.com every this long; the second unanswered one ends the connection */
  keepaliveMs: number;
  /** on close: how long the leave sequence may take to be acted on */
  leaveMs: number;
}

/** a dead peer is noticed 10-20 s after its last answer */
export const DEFAULT_SSH_TIMING: SshTiming = { ...DEFAULT_DIALOG_TIMING, keepaliveMs: 10000, leaveMs: 1500 };

/** bytes a server may send before the key exchange is done (a garbage or flooding server) */
const MAX_PREAUTH_BYTES = 256 * 1024;
/** the pty asked for, as `ssh -t` from an 80x24 terminal */
const PTY_ROWS = 24;
const PTY_COLS = 80;
/** the server's first bytes kept for an error message */
const FIRST_BYTES = 64;
/** RFC 4335 break length asked for, ms */
const BREAK_MS = 500;

export interface SshSpec {
  host: string;
  port: number;
  opts: SshOpts;
}

export interface SshDeviceContext {
  consoleName: string;
  /** the known_hosts file (server sshknownhosts=, or the state directory's) */
  knownHosts: string;
  hostKeys: SshHostKeys;
  /** tests: faster polls and keepalives */
  timing?: Partial<SshTiming>;
}

/** `<ssh://host:port>`, an IPv6 host in brackets */
export function sshLabel(host: string, port: number): string {
  const bare = bareHost(host);
  return `<ssh://${bare.includes(':') ? `[${bare}]` : bare}:${port}>`;
}

interface Attempt {
  h: DeviceHandler;
  client: SshClient;
  sock: net.Socket | null;
  chan: ClientChannel | null;
  dialog: EntryDialog | null;
  /** onUp said (the console reached, or its serial port found in use) */
  up: boolean;
  /** the console's bytes flow (dialog done) */
  inConsole: boolean;
  done: boolean;
  timer: NodeJS.Timeout | null;
  /** the host key was refused: why (said instead of the library's words) */
  refused: string | null;
  /** how the console program ended (exit status or signal), once told */
  exit: string | null;
  /** write() said the peer is not keeping up: report onDrain at the channel's next 'drain' */
  full: boolean;
  closed: Promise<void>;
  /** the server's first bytes, quoted when the key exchange fails */
  first: Buffer;
  /** the key exchange is done */
  keyed: boolean;
}

export class SshDevice implements Device {
  readonly type = 'ssh' as const;
  readonly backoff = SSH_BACKOFF;
  private readonly host: string;
  private readonly timing: SshTiming;
  private readonly profile: EntryProfile;
  private cur: Attempt | null = null;
  /** when the serial port was found in use by another session (ms), or null */
  private busySince: number | null = null;
  /** when another session took the serial port from conch's (ms), until it is entered again */
  private takenAt: number | null = null;
  /** the last attempt ended on a refused host key: wait for the known_hosts file to change */
  private keyRefused = false;
  private unwatch: (() => void) | null = null;

  constructor(
    private readonly spec: SshSpec,
    private readonly ctx: SshDeviceContext,
  ) {
    this.host = bareHost(spec.host);
    this.timing = { ...DEFAULT_SSH_TIMING, stepMs: spec.opts.timeout * 1000, ...ctx.timing };
    const base = ENTRY_PROFILES[spec.opts.entry];
    this.profile = { ...base, leave: spec.opts.leave ?? base.leave, breakSeq: spec.opts.breakSeq ?? base.breakSeq };
  }

  label(): string {
    return sshLabel(this.host, this.spec.port);
  }

  detail(): string | null {
    return this.cur?.up && this.busySince !== null ? `serial port in use by another session since ${stampTime(new Date(this.busySince))}` : null;
  }

  connect(h: DeviceHandler): void {
    if (this.cur) return; // one attempt at a time; the live one will report
    this.stopWatching();
    const a: Attempt = {
      h,
      client: new (ssh2().Client)(),
      sock: null,
      chan: null,
      dialog: null,
      up: false,
      inConsole: false,
      done: false,
      timer: null,
      refused: null,
      exit: null,
      full: false,
      closed: Promise.resolve(),
      first: Buffer.alloc(0),
      keyed: false,
    };
    this.cur = a;
    this.begin(a).catch((e: unknown) => this.end(a, `internal error: ${(e as Error)?.message ?? String(e)}`));
  }

  /** the attempt's steps up to the SSH session: key file, known_hosts, TCP, handshake, login */
  private async begin(a: Attempt): Promise<void> {
    const o = this.spec.opts;
    let privateKey: Buffer | undefined;
    if (o.key !== null) {
      try {
        privateKey = await fs.promises.readFile(o.key);
      } catch (e) {
        this.end(a, `cannot read key ${o.key}: ${socketErrorReason(e)}`);
        return;
      }
      const parsed = ssh2().utils.parseKey(privateKey);
      if (parsed instanceof Error) {
        this.end(a, `cannot use key ${o.key}: ${parsed.message} (an OpenSSH private key without a passphrase is needed)`);
        return;
      }
    }
    if (a.done) return;
    const kh = knownHostsFile(this.ctx.knownHosts);
    kh.refresh();
    if (kh.error) {
      this.end(a, `cannot read known hosts file ${kh.file}: ${kh.error}`);
      return;
    }
    const algs = kh.algorithmsFor(this.host, this.spec.port);
    const methods: AuthenticationType[] = [];
    if (privateKey) methods.push('publickey');
    if (o.password.length > 0) methods.push('password', 'keyboard-interactive');
    if (methods.length === 0) methods.push('none');

    // net.connect resolves names asynchronously (getaddrinfo off the main thread)
    const sock = net.connect({ host: this.host, port: this.spec.port });
    sock.setNoDelay(true); // keystrokes go out at once
    a.sock = sock;
    a.closed = new Promise((resolve) => sock.once('close', () => resolve()));
    a.timer = setTimeout(() => this.end(a, `no SSH session within ${o.timeout} s (connection, key exchange and login)`), o.timeout * 1000);
    const c = a.client;
    c.on('keyboard-interactive', (_name, _instructions, _lang, prompts, finish) => {
      // a BMC asks for the password this way (one prompt); every prompt gets it
      const pw = o.password.toString('utf8');
      finish(prompts.map(() => pw));
    });
    c.on('ready', () => this.ready(a));
    c.on('error', (e: Error & { level?: string }) => this.end(a, this.errorReason(a, e, methods, algs !== null, kh)));
    c.on('close', () => this.end(a, a.up ? 'connection closed' : 'connection closed before the console was reached'));
    c.connect({
      sock,
      username: o.user || os.userInfo().username,
      privateKey,
      password: o.password.length > 0 ? o.password.toString('utf8') : undefined,
      tryKeyboard: o.password.length > 0,
      authHandler: methods,
      keepaliveInterval: this.timing.keepaliveMs,
      keepaliveCountMax: 1,
      // the attempt's own timer covers this
      readyTimeout: o.timeout * 1000 + 5000,
      hostVerifier: (key: Buffer, verify: (ok: boolean) => void) => verify(this.hostKeyOk(a, kh, key)),
      ...(algs ? { algorithms: { serverHostKey: algs as never } } : {}),
    });
    // a server that floods before the key exchange is done is cut off
    let pre = 0;
    const count = (d: Buffer): void => {
      if (pre < FIRST_BYTES) a.first = Buffer.concat([a.first, d.subarray(0, FIRST_BYTES - pre)]);
      pre += d.length;
      if (pre > MAX_PREAUTH_BYTES) this.end(a, `the server sent ${MAX_PREAUTH_BYTES} bytes without completing the SSH key exchange (not an SSH server?)`);
    };
    sock.on('data', count);
    c.once('handshake', () => {
      a.keyed = true;
      sock.off('data', count);
    });
  }

  /** the server's host key against known_hosts and the sshhostkeys policy */
  private hostKeyOk(a: Attempt, kh: KnownHosts, key: Buffer): boolean {
    if (a.done) return false;
    kh.refresh();
    const name = knownHostsName(this.host, this.spec.port);
    const offered = `${fingerprint(key)} (${blobType(key) || 'unknown type'})`;
    const v = kh.verdict(this.host, this.spec.port, key);
    switch (v.status) {
      case 'known':
        return true;
      case 'revoked':
        a.refused = `host key ${offered} of ${name} is marked @revoked in ${kh.file} line ${v.line}: refused`;
        return false;
      case 'changed': {
        const pinned = v.pinned.map((k) => `${fingerprint(k.blob)} (${k.type}, line ${k.line})`).join(', ');
        a.refused = `host key of ${name} changed: the server offers ${offered}, ${kh.file} pins ${pinned}; refused until an operator fixes that file`;
        return false;
      }
      case 'new':
        if (this.ctx.hostKeys === 'strict') {
          a.refused = `host key ${offered} of ${name} is not in ${kh.file} (server sshhostkeys=strict): add it there to trust it`;
          return false;
        }
        try {
          kh.append(this.host, this.spec.port, key);
        } catch (e) {
          a.refused = `cannot pin host key ${offered} of ${name}: cannot write ${kh.file}: ${socketErrorReason(e)}`;
          return false;
        }
        a.h.onNotice(`SSH host key ${offered} of ${name} pinned in ${kh.file} (first connection)`);
        return true;
    }
  }

  /** what the library's error means, in a line for the daemon log (never a password) */
  private errorReason(a: Attempt, e: Error & { level?: string }, methods: AuthenticationType[], restricted: boolean, kh: KnownHosts): string {
    if (a.refused) return a.refused;
    const msg = e?.message ?? String(e);
    switch (e?.level) {
      case 'client-socket':
        return socketErrorReason(e);
      case 'client-authentication': {
        const user = this.spec.opts.user || os.userInfo().username;
        const none = methods[0] === 'none' ? ': no key= in sshopts and no password for this host in the pswdfile' : '';
        return `authentication refused for user "${user}" (tried ${methods.join(', ')})${none}`;
      }
      case 'client-timeout':
        return /keepalive/i.test(msg) ? `no answer to keepalives for ${Math.round((2 * this.timing.keepaliveMs) / 1000)} s (the BMC or the link is down)` : msg;
      case 'handshake':
        if (restricted && /host key/i.test(msg)) {
          return `SSH ${msg.replace(/^Handshake failed: /, 'handshake failed: ')}: the server offers no host key of the type ${kh.file} pins for it (host key changed?)`;
        }
        return `SSH ${msg.replace(/^Handshake failed: /, 'handshake failed: ')}`;
      default: {
        if (a.keyed) return msg;
        // before the key exchange: say what the server sent instead
        const sent = a.first.length > 0 ? `; the server sent ${quoteBmc(a.first.toString('latin1'))}` : '';
        return `SSH handshake failed: ${msg}${sent}`;
      }
    }
  }

  /** logged in: open the session channel with a pty, and start the entry dialog */
  private ready(a: Attempt): void {
    if (a.done) return;
    const o = this.spec.opts;
    const pty = { term: o.term, rows: PTY_ROWS, cols: PTY_COLS };
    const opened = (err: Error | undefined, chan: ClientChannel): void => {
      if (a.done) {
        chan?.close();
        return;
      }
      if (err) {
        this.end(a, `the SSH server refused the ${o.command === null ? 'shell' : `command "${o.command}"`}: ${err.message}`);
        return;
      }
      if (a.timer) clearTimeout(a.timer);
      a.timer = null;
      a.chan = chan;
      chan.on('data', (d: Buffer) => this.fromChannel(a, d));
      chan.stderr.on('data', (d: Buffer) => this.fromChannel(a, d));
      chan.on('exit', (code: number | null, signal?: string) => {
        a.exit = code !== null && code !== undefined ? `exit status ${code}` : `signal ${signal ?? '?'}`;
      });
      chan.on('close', () => this.channelClosed(a));
      // a stream error (a write after the peer closed) ends the attempt instead of the daemon
      chan.on('error', (e: Error) => this.end(a, `SSH channel error: ${e.message}`));
      chan.on('drain', () => {
        if (!a.full || a.done) return;
        a.full = false;
        a.h.onDrain?.();
      });
      a.dialog = new EntryDialog(this.profile, this.timing, {
        send: (b) => chan.writable && chan.write(b),
        entered: (rest, note) => this.entered(a, rest, note),
        busy: (said) => this.busy(a, said),
        takenOver: (said, at) => this.takenOver(a, said, at),
        notTakenOver: (b) => this.notTakenOver(a, b),
        failed: (reason) => this.end(a, reason),
      });
      a.dialog.start();
    };
    try {
      if (o.command === null) a.client.shell(pty, opened);
      else a.client.exec(o.command, { pty }, opened);
    } catch (e) {
      this.end(a, `cannot open the SSH session: ${(e as Error).message}`);
    }
  }

  private fromChannel(a: Attempt, d: Buffer): void {
    if (a.done) return;
    // in the console the dialog watches the bytes for a takeover
    if (a.inConsole) a.h.onData(d);
    a.dialog?.feed(d);
  }

  /** the dialog reached the console */
  private entered(a: Attempt, rest: Buffer, note: string | null): void {
    if (a.done) return;
    a.inConsole = true;
    const since = this.busySince;
    this.busySince = null;
    if (!a.up) {
      a.up = true;
      a.h.onUp();
    }
    if (note) a.h.onNotice(note);
    const taken = this.takenAt;
    this.takenAt = null;
    const now = Date.now();
    if (taken !== null) a.h.onNotice(`serial port resumed at ${longTime(new Date(now))} after ${timeDelta(now - taken)}`);
    else if (since !== null) a.h.onNotice(`serial port taken at ${longTime(new Date(now))} after ${timeDelta(now - since)} in use by another session`);
    if (rest.length > 0) a.h.onData(rest);
  }

  /** another session holds the serial port: up (the session is), and waiting politely */
  private busy(a: Attempt, said: string): void {
    if (a.done) return;
    const first = this.busySince === null;
    if (first) this.busySince = Date.now();
    if (!a.up) {
      a.up = true;
      a.h.onUp();
    }
    if (first) {
      const every = Math.round(this.timing.busyPollMs / 1000);
      a.h.onNotice(`serial port in use by another session (the BMC said ${said}); waiting for it to be released, asking again every ${every} s`);
    }
  }

  /** in the console, the BMC put the session back at its CLI: another session has the serial port */
  private takenOver(a: Attempt, said: string, at: number): void {
    if (a.done) return;
    a.inConsole = false;
    this.busySince = at;
    this.takenAt = at;
    const every = Math.round(this.timing.busyPollMs / 1000);
    a.h.onNotice(`serial port taken over by another session at ${longTime(new Date(at))} (${said}); waiting for it to be released, asking again every ${every} s`);
  }

  /** after a takeover was told, before asking again, the host's output went on: the console was conch's all along */
  private notTakenOver(a: Attempt, b: Buffer): void {
    if (a.done) return;
    a.inConsole = true;
    const at = this.takenAt ?? Date.now();
    this.busySince = null;
    this.takenAt = null;
    a.h.onNotice(`serial port not taken over after all: the host printed more after what looked like the BMC's prompt (${timeDelta(Date.now() - at)} ago); still in the console`);
    a.h.onData(b);
  }

  private channelClosed(a: Attempt): void {
    if (a.done) return;
    if (!a.inConsole) {
      a.dialog?.closed(); // ends the attempt, quoting the BMC
      this.end(a, 'the SSH server closed the session');
      return;
    }
    this.end(a, a.exit ? `the console ended (${a.exit})` : 'the SSH server closed the console');
  }

  write(buf: Buffer): boolean {
    const a = this.cur;
    if (!a || !a.inConsole || a.done || !a.chan?.writable) return true;
    a.chan.write(buf);
    if (a.chan.writableLength < INPUT_HIGH_WATER) return true;
    a.full = true;
    return false;
  }

  queued(): number {
    const a = this.cur;
    return a && a.inConsole && !a.done && a.chan ? a.chan.writableLength : 0;
  }

  sendBreak(): void {
    const a = this.cur;
    if (!a || !a.inConsole || a.done || !a.chan?.writable) return;
    if (this.profile.breakSeq) {
      a.chan.write(this.profile.breakSeq);
      return;
    }
    const why = requestBreak(a.client, a.chan, BREAK_MS);
    if (why) a.h.onNotice(`break not sent: ${why}`);
  }

  /** while down after a refused host key: try again as soon as the known_hosts file changes */
  watch(h: DeviceHandler): void {
    if (!this.keyRefused || this.cur || this.unwatch) return;
    this.unwatch = knownHostsFile(this.ctx.knownHosts).onChange(() => {
      this.unwatch = null;
      h.onReady();
    });
  }

  private stopWatching(): void {
    this.unwatch?.();
    this.unwatch = null;
  }

  async close(): Promise<void> {
    this.stopWatching();
    const a = this.cur;
    this.cur = null;
    if (!a) return;
    a.done = true; // close() is the engine's doing: no onDown for it
    if (a.timer) clearTimeout(a.timer);
    a.timer = null;
    a.dialog?.stop();
    if (a.inConsole && a.chan) await this.leave(a, a.chan);
    this.busySince = null;
    this.takenAt = null;
    // a polite SSH disconnect; a peer that does not answer is cut off
    a.client.end();
    const cut = setTimeout(() => a.client.destroy(), 500);
    await a.closed;
    clearTimeout(cut);
  }

  /** Send the leave sequence and give the BMC a moment to act on it (the channel closes, or the CLI prompt is back). */
  private async leave(a: Attempt, chan: ClientChannel): Promise<void> {
    const prompt = this.profile.prompt;
    let seen = '';
    let onData: ((d: Buffer) => void) | null = null;
    let onClose: (() => void) | null = null;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      if (!chan.writable) return resolve();
      onClose = resolve;
      onData = (d: Buffer) => {
        seen = (seen + d.toString('latin1')).slice(-256);
        if (prompt?.test(seen)) resolve();
      };
      chan.on('data', onData);
      chan.once('close', onClose);
      timer = setTimeout(resolve, this.timing.leaveMs);
      chan.write(this.profile.leave);
    });
    clearTimeout(timer);
    if (onData) chan.off('data', onData);
    if (onClose) chan.off('close', onClose);
  }

  /** End an attempt: exactly once, resources first, then the handler. */
  private end(a: Attempt, reason: string): void {
    if (a.done) return;
    a.done = true;
    if (a.timer) clearTimeout(a.timer);
    a.timer = null;
    a.dialog?.stop();
    a.client.destroy();
    if (this.cur === a) this.cur = null;
    this.keyRefused = a.refused !== null;
    if (!a.up) {
      this.busySince = null;
      this.takenAt = null;
    }
    a.h.onDown(reason);
  }
}

interface Ssh2Internals {
  _protocol?: {
    _packetRW?: { write?: { allocStart: number; alloc(n: number): Buffer; finalize(p: Buffer): Buffer } };
  };
}

/** ssh2's packet sender (lib/protocol/utils.js): queues during a re-key, encrypts otherwise */
let sendPacket: ((proto: unknown, packet: Buffer) => void) | null | undefined;

/**
 * An RFC 4335 "break" channel request (no reply wanted). ssh2 has no call
 * for it, so it is built with ssh2's own packet writer, like its "signal"
 * request. Returns null when sent, else why not.
 */
export function requestBreak(client: SshClient, chan: ClientChannel, ms: number): string | null {
  if (sendPacket === undefined) {
    try {
      const utils = ssh2Protocol();
      sendPacket = typeof utils.sendPacket === 'function' ? (utils.sendPacket as (p: unknown, b: Buffer) => void) : null;
    } catch {
      sendPacket = null;
    }
  }
  const proto = (client as unknown as Ssh2Internals)._protocol;
  const w = proto?._packetRW?.write;
  const id = (chan as unknown as { outgoing?: { id?: number; state?: string } }).outgoing;
  if (!sendPacket || !proto || !w || typeof id?.id !== 'number') return 'this ssh2 version has no way to send a break request';
  if (id.state !== 'open') return 'the channel is not open';
  const name = 'break';
  let p = w.allocStart;
  const packet = w.alloc(1 + 4 + 4 + name.length + 1 + 4);
  packet[p] = 98; // SSH_MSG_CHANNEL_REQUEST
  packet.writeUInt32BE(id.id, ++p);
  packet.writeUInt32BE(name.length, (p += 4));
  packet.write(name, (p += 4), 'latin1');
  packet[(p += name.length)] = 0; // want reply: no
  packet.writeUInt32BE(ms, ++p);
  sendPacket(proto, w.finalize(packet));
  return null;
}

// A simulated server behind a serial console: boot log, login prompt, a tiny
// shell that echoes and answers a few commands, periodic sequence-numbered
// lines (so a test can prove nothing was lost or duplicated), and SysRq after
// a BREAK. Transport-agnostic: feed it input(), read what it write()s.

export interface HostOptions {
  name: string;
  /** seconds between `[seq N]` heartbeat lines; 0 = none */
  interval: number;
  /** print the boot log at start */
  boot: boolean;
}

const BOOT_LOG = [
  'BIOS v2.4 - memory test ... 65536 MB OK',
  'Booting from disk 0',
  '[    0.000000] Linux version 6.1.0-conch (sim@conch) #1 SMP PREEMPT_DYNAMIC',
  '[    0.000000] Command line: console=ttyS0,115200n8 root=/dev/sda1',
  '[    0.412345] Serial: 8250/16550 driver, 4 ports, IRQ sharing enabled',
  '[    1.204211] EXT4-fs (sda1): mounted filesystem with ordered data mode',
  '[    2.008100] systemd[1]: Reached target Multi-User System.',
];

const SYSRQ: Record<string, string> = {
  b: 'Resetting',
  h: 'HELP : loglevel(0-9) reboot(b) crash(c) show-all-locks(d) terminate-all-tasks(e) show-memory-usage(m) show-task-states(t)',
  m: 'Show Memory',
  s: 'Emergency Sync',
  t: 'Show State',
  w: 'Show Blocked State',
};

const FILLER = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';

export class SimHost {
  private line = '';
  private loggedIn = false;
  private awaitingPassword = false;
  private sysrqPending = false;
  private lastWasCR = false;
  private seq = 0;
  private timer: NodeJS.Timeout | null = null;
  private readonly started = Date.now();
  /** BREAK conditions seen (for tests and counters) */
  breaks = 0;

  private midLine = false;
  private readonly out: (s: string) => void;

  constructor(
    private readonly opts: HostOptions,
    write: (s: string) => void,
  ) {
    this.out = (s) => {
      if (s.length > 0) this.midLine = !s.endsWith('\n');
      write(s);
    };
  }

  start(): void {
    if (this.opts.boot) for (const l of BOOT_LOG) this.println(l);
    this.prompt();
    if (this.opts.interval > 0) {
      // a heartbeat starts on its own line, as kernel messages do on a real console
      this.timer = setInterval(() => this.heartbeat(), this.opts.interval * 1000);
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One `[seq N]` heartbeat line now; for callers that schedule hosts themselves (interval 0). */
  heartbeat(): void {
    // on its own line, as kernel messages are on a real console
    if (this.midLine) this.out('\r\n');
    this.println(`[seq ${++this.seq}] ${this.opts.name} heartbeat`);
  }

  /** About `bytes` of `[seq N]` lines padded with filler (rate-controlled output); returns what was written. */
  emit(bytes: number): number {
    let n = 0;
    while (n < bytes) {
      const head = `[seq ${++this.seq}] ${this.opts.name} data `;
      const fill = Math.max(0, Math.min(60, bytes - n - head.length - 2));
      const l = head + FILLER.slice(0, fill);
      this.println(l);
      n += l.length + 2;
    }
    return n;
  }

  /** the last `[seq N]` number printed */
  get lastSeq(): number {
    return this.seq;
  }

  /** A serial BREAK; the next key is a SysRq command, as on Linux. */
  breakSignal(): void {
    this.breaks++;
    this.sysrqPending = true;
  }

  input(data: Buffer | string): void {
    const s = typeof data === 'string' ? data : data.toString('latin1');
    for (const ch of s) this.key(ch);
  }

  private key(ch: string): void {
    if (this.sysrqPending) {
      this.sysrqPending = false;
      this.println(`[${this.uptime()}] sysrq: ${SYSRQ[ch] ?? `HELP : unknown key '${ch}'`}`);
      return;
    }
    if (ch === '\r' || ch === '\n') {
      if (ch === '\n' && this.lastWasCR) {
        this.lastWasCR = false;
        return;
      }
      this.lastWasCR = ch === '\r';
      this.out('\r\n');
      const l = this.line;
      this.line = '';
      this.command(l);
      return;
    }
    this.lastWasCR = false;
    if (ch === '\x7f' || ch === '\b') {
      if (this.line.length > 0) {
        this.line = this.line.slice(0, -1);
        if (!this.awaitingPassword) this.out('\b \b');
      }
      return;
    }
    if (ch === '\x03') {
      this.line = '';
      this.out('^C\r\n');
      this.prompt();
      return;
    }
    this.line += ch;
    if (!this.awaitingPassword) this.out(ch);
  }

  private command(l: string): void {
    if (!this.loggedIn) {
      if (this.awaitingPassword) {
        this.awaitingPassword = false;
        this.loggedIn = true;
        this.println(`Last login: ${new Date().toUTCString()} on ttyS0`);
      } else if (l.trim()) {
        this.awaitingPassword = true;
        this.out('Password: ');
        return;
      }
      this.prompt();
      return;
    }
    const [cmd, ...args] = l.trim().split(/\s+/);
    switch (cmd) {
      case '':
      case undefined:
        break;
      case 'help':
        this.println('commands: help hostname uptime echo seq N reboot logout');
        break;
      case 'hostname':
        this.println(this.opts.name);
        break;
      case 'uptime':
        this.println(`up ${this.uptime()} s`);
        break;
      case 'echo':
        this.println(args.join(' '));
        break;
      case 'seq': {
        const n = Math.min(Number(args[0]) || 10, 100000);
        for (let i = 1; i <= n; i++) this.println(`[seq ${++this.seq}] ${this.opts.name} burst ${i}/${n}`);
        break;
      }
      case 'reboot':
        this.println('reboot: Restarting system');
        this.loggedIn = false;
        this.bootAgain();
        return;
      case 'logout':
      case 'exit':
        this.loggedIn = false;
        break;
      default:
        this.println(`-sh: ${cmd}: command not found`);
    }
    this.prompt();
  }

  private bootAgain(): void {
    for (const l of BOOT_LOG) this.println(l);
    this.prompt();
  }

  private prompt(): void {
    this.out(this.loggedIn ? `root@${this.opts.name}:~# ` : `\r\n${this.opts.name} login: `);
  }

  private println(s: string): void {
    this.out(s + '\r\n');
  }

  private uptime(): string {
    return ((Date.now() - this.started) / 1000).toFixed(6).padStart(12, ' ');
  }
}

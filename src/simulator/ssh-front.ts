// What a simulated BMC's SSH server shows a session: its "front". OpenBMC
// (obmc-console behind the SSH server) gives the host's console at once and
// lets any number of sessions watch it; `~.` after a CR ends the session.
// The vendor command lines (HPE iLO, Dell iDRAC, Oracle ILOM, Lenovo XCC)
// print a banner and a prompt, echo what is typed, and start the serial
// console with one command; their serial port has one owner at a time, so
// a second session (or the control channel's "in use" switch) is told that
// another session holds it, and the switch puts a session in the console
// back at its prompt (a takeover), with its vendor's words if any. The texts
// are those conchd's entry dialogs (src/devices/ssh-entry.ts) look for. Transport-agnostic: a FrontSession
// is fed the session's input and writes through a callback.

import type { SimHost } from './host.js';

export type FrontKind = 'openbmc' | 'ilo' | 'idrac' | 'ilom' | 'xcc';
export const FRONT_KINDS: readonly FrontKind[] = ['openbmc', 'ilo', 'idrac', 'ilom', 'xcc'];

/** sshopts entry= that reaches the console behind each front (docs/ssh.md) */
export const FRONT_ENTRY: Record<FrontKind, string> = { openbmc: 'none', ilo: 'ilo', idrac: 'idrac', ilom: 'ilom', xcc: 'xcc' };

/** A vendor command line: its texts and the command that starts the console. */
interface CliFront {
  banner(name: string, user: string): string;
  prompt: string;
  /** the command that starts the console, lower case, single spaces */
  command: string;
  /** asked after the command; 'y' goes on, anything else back to the prompt */
  confirm: string | null;
  started: string;
  busy: string;
  /** what a session in the console sees before its prompt when another session takes the serial port */
  takenOver: string;
  /** leaves the console for the prompt: ESC ( or Ctrl-\ */
  leave: string;
  refused(cmd: string): string;
}

const CLP_REFUSED = (cmd: string): string => `\r\nstatus=2\r\nstatus_tag=COMMAND PROCESSING FAILED\r\nerror_tag=COMMAND NOT RECOGNIZED (${cmd.split(' ')[0]})\r\n`;

const CLI: Record<Exclude<FrontKind, 'openbmc'>, CliFront> = {
  ilo: {
    banner: (name, user) => `User:${user} logged-in to ${name}.(127.0.0.1)\r\niLO 5 Standard 2.78 (simulated by conch-bmcsim)\r\nServer Name: ${name}\r\nServer Power: On\r\n`,
    prompt: '\r\n</>hpiLO-> ',
    command: 'vsp',
    confirm: null,
    started: "\r\n\r\nVirtual Serial Port Active: COM2\r\n\r\nStarting virtual serial port.\r\nPress 'ESC (' to return to the CLI Session.\r\n\r\n",
    busy: '\r\n\r\nVirtual Serial Port is currently in use by another session.\r\n',
    // back at the prompt, nothing said (what conman's hp-ilo.exp goes by)
    takenOver: '',
    leave: '\x1b(',
    refused: CLP_REFUSED,
  },
  idrac: {
    banner: (name) => `\r\nConnection to ${name} (iDRAC 9, simulated by conch-bmcsim)\r\n`,
    prompt: '\r\nracadm>> ',
    command: 'console com2',
    confirm: null,
    started: '\r\nConnected to Serial Device 2. To end type: ^\\\r\n',
    busy: '\r\nSerial Device 2 is busy: in use by another session.\r\n',
    takenOver: '\r\n\r\nSerial Device 2 disconnected: taken over by another session.\r\n',
    leave: '\x1c',
    refused: (cmd) => `\r\nERROR: Invalid subcommand specified: ${cmd.split(' ')[0]}\r\n`,
  },
  ilom: {
    banner: (name) => `\r\nOracle(R) Integrated Lights Out Manager (simulated by conch-bmcsim)\r\nHostname: ${name}\r\n`,
    prompt: '\r\n-> ',
    command: 'start /host/console',
    confirm: '\r\nAre you sure you want to start /HOST/console (y/n)? ',
    started: '\r\n\r\nSerial console started.  To stop, type ESC (\r\n\r\n',
    busy: '\r\nstart: /HOST/console is in use by another session\r\n',
    // as when left with ESC ( (conman's sun-ilom.exp goes by it after a stop /SP/console elsewhere)
    takenOver: '\r\nSerial console stopped.\r\n',
    leave: '\x1b(',
    refused: CLP_REFUSED,
  },
  xcc: {
    banner: (name) => `\r\nLenovo XClarity Controller ${name} (simulated by conch-bmcsim)\r\n`,
    prompt: '\r\nsystem> ',
    command: 'console 1',
    confirm: null,
    started: '\r\nSOL session started: press ESC ( to return to the command line.\r\n',
    busy: '\r\nThe console is already in use by another user.\r\n',
    takenOver: '\r\n',
    leave: '\x1b(',
    refused: (cmd) => `\r\nCommand not recognized: ${cmd.split(' ')[0]}\r\n`,
  },
};

/** console bytes a session may have queued before the port drops its output (a BMC's buffer) */
export const SESSION_BUFFER_MAX = 1 << 20;

/** What a front does to its SSH session. */
export interface SessionIo {
  /** bytes for the session; false when its queue is over SESSION_BUFFER_MAX (the bytes are dropped) */
  write(b: Buffer): boolean;
  /** end the session (exit status) */
  end(code: number): void;
}

export interface PortCounters {
  /** SSH sessions logged in */
  sessions: number;
  /** host output written to console sessions */
  bytesToConsole: number;
  /** host output dropped because a session did not read it */
  bytesDropped: number;
  /** console input given to the host */
  bytesFromConsole: number;
  /** break requests that reached the host */
  breaks: number;
  /** times a session asked for the console and was told it is in use */
  busyAnswers: number;
  /** times the console was started */
  consoleStarts: number;
  /** times the leave sequence was used */
  leaves: number;
  /** times a session in the console was put back at its prompt by another session taking the port */
  takeovers: number;
  /** failed logins */
  authFailures: number;
}

/** The host's serial port as the SSH front sees it: who watches, who owns it. */
export class SerialPort {
  front: FrontKind;
  readonly viewers = new Set<FrontSession>();
  /** the control channel's switch: another (simulated) session holds the port */
  heldElsewhere = false;
  private releaseTimer: NodeJS.Timeout | null = null;
  readonly counters: PortCounters = { sessions: 0, bytesToConsole: 0, bytesDropped: 0, bytesFromConsole: 0, breaks: 0, busyAnswers: 0, consoleStarts: 0, leaves: 0, takeovers: 0, authFailures: 0 };

  constructor(
    readonly host: SimHost,
    front: FrontKind,
  ) {
    this.front = front;
  }

  /** the host printed `s`: to every session in the console */
  hostOutput(s: string): void {
    if (this.viewers.size === 0) return;
    const b = Buffer.from(s, 'latin1');
    for (const v of this.viewers) {
      if (v.io.write(b)) this.counters.bytesToConsole += b.length;
      else this.counters.bytesDropped += b.length;
    }
  }

  /** a session asks for the console: true when it is its now */
  acquire(s: FrontSession): boolean {
    if (this.front !== 'openbmc' && (this.heldElsewhere || [...this.viewers].some((v) => v !== s))) {
      this.counters.busyAnswers++;
      return false;
    }
    this.viewers.add(s);
    this.counters.consoleStarts++;
    return true;
  }

  release(s: FrontSession): void {
    this.viewers.delete(s);
  }

  /**
   * The "in use" switch: on, another session holds the serial port (the
   * session that had it is put back at its prompt) for `seconds`, or until
   * switched off (seconds undefined).
   */
  setHeldElsewhere(on: boolean, seconds?: number): void {
    if (this.releaseTimer) clearTimeout(this.releaseTimer);
    this.releaseTimer = null;
    this.heldElsewhere = on;
    if (!on) return;
    if (this.front !== 'openbmc') for (const v of [...this.viewers]) v.takenOver();
    if (seconds !== undefined) {
      this.releaseTimer = setTimeout(() => this.setHeldElsewhere(false), seconds * 1000);
      this.releaseTimer.unref();
    }
  }

  /** a new front for later sessions; the ones in the console stay there */
  setFront(front: FrontKind): void {
    this.front = front;
  }

  stop(): void {
    if (this.releaseTimer) clearTimeout(this.releaseTimer);
    this.releaseTimer = null;
  }
}

/** One SSH session's view of the front: a command line, or the console. */
export class FrontSession {
  private mode: 'cli' | 'confirm' | 'console' | 'ended' = 'cli';
  private line = '';
  /** the last input byte was a CR (a LF after it is part of the same newline) */
  private lastCR = false;
  /** console input held back: the start of a leave sequence */
  private held = '';
  /** openbmc: at the start of a line (a `~` there may start `~.`) */
  private lineStart = true;
  /** console input waiting to go to the host (everything but a held leave sequence) */
  private pending = '';
  private readonly front: FrontKind;

  constructor(
    private readonly port: SerialPort,
    readonly io: SessionIo,
    private readonly name: string,
    private readonly user: string,
  ) {
    this.front = port.front;
  }

  get inConsole(): boolean {
    return this.mode === 'console';
  }

  /** The session's shell started: the console (OpenBMC) or the banner and prompt; `command`: exec'd instead. */
  start(command?: string): void {
    if (this.front === 'openbmc') {
      this.port.acquire(this);
      this.mode = 'console';
      return;
    }
    const cli = CLI[this.front];
    if (command === undefined) this.say(cli.banner(this.name, this.user) + cli.prompt);
    else this.command(command);
  }

  input(d: Buffer): void {
    for (const c of d.toString('latin1')) {
      if (this.mode === 'ended') return;
      if (this.mode === 'console') this.consoleKey(c);
      else this.cliKey(c);
    }
    this.flushConsole();
  }

  /** an RFC 4335 break request: a BREAK on the serial port when in the console */
  breakSignal(): void {
    if (this.mode !== 'console') return;
    this.flushConsole();
    this.port.counters.breaks++;
    this.port.host.breakSignal();
  }

  /** the session is gone */
  detach(): void {
    this.mode = 'ended';
    this.port.release(this);
  }

  /** someone else took the serial port: back to the prompt, with the vendor's words if it has any */
  takenOver(): void {
    if (this.mode !== 'console' || this.front === 'openbmc') return;
    this.flushConsole();
    this.port.release(this);
    this.port.counters.takeovers++;
    this.mode = 'cli';
    this.line = '';
    this.held = '';
    this.say(this.cli().takenOver + this.cli().prompt);
  }

  // ---------------------------------------------------------------- console

  private consoleKey(c: string): void {
    if (this.front === 'openbmc') {
      this.openbmcKey(c);
      return;
    }
    const leave = this.cli().leave;
    if (this.held) {
      const cand = this.held + c;
      if (cand === leave) {
        this.held = '';
        this.leaveConsole();
        return;
      }
      if (leave.startsWith(cand)) {
        this.held = cand;
        return;
      }
      this.pending += this.held;
      this.held = '';
    }
    if (c === leave) this.leaveConsole();
    else if (leave.startsWith(c)) this.held = c;
    else this.pending += c;
  }

  /** obmc-console's escape: `~.` at the start of a line ends the session; `~` then anything else is both */
  private openbmcKey(c: string): void {
    if (this.held === '~') {
      this.held = '';
      if (c === '.') {
        this.flushConsole();
        this.port.counters.leaves++;
        this.mode = 'ended';
        this.port.release(this);
        this.io.end(0);
        return;
      }
      this.pending += '~';
    } else if (c === '~' && this.lineStart) {
      this.held = '~';
      return;
    }
    this.pending += c;
    this.lineStart = c === '\r' || c === '\n';
  }

  private flushConsole(): void {
    if (!this.pending) return;
    const s = this.pending;
    this.pending = '';
    this.port.counters.bytesFromConsole += s.length;
    this.port.host.input(s);
  }

  private leaveConsole(): void {
    this.flushConsole();
    this.port.counters.leaves++;
    this.port.release(this);
    this.mode = 'cli';
    this.line = '';
    this.say(this.cli().prompt);
  }

  // ---------------------------------------------------------------- command line

  private cliKey(c: string): void {
    if (c === '\n' && this.lastCR) {
      this.lastCR = false;
      return;
    }
    this.lastCR = c === '\r';
    if (c === '\r' || c === '\n') {
      const l = this.line;
      this.line = '';
      if (this.mode === 'confirm') this.confirmed(l.trim().toLowerCase());
      else this.command(l);
      return;
    }
    if (c === '\x7f' || c === '\b') {
      if (this.line.length > 0) {
        this.line = this.line.slice(0, -1);
        this.say('\b \b');
      }
      return;
    }
    if (c === '\x03') {
      this.line = '';
      this.say('^C' + this.cli().prompt);
      return;
    }
    if (c < ' ') return; // other control keys do nothing at a prompt
    this.line += c;
    this.say(c); // the command line echoes
  }

  private cli(): CliFront {
    return CLI[this.front as Exclude<FrontKind, 'openbmc'>];
  }

  private command(raw: string): void {
    const cli = this.cli();
    const cmd = raw.trim().replace(/\s+/g, ' ');
    const lc = cmd.toLowerCase();
    if (lc === '') this.say(cli.prompt);
    else if (lc === 'exit' || lc === 'quit' || lc === 'logout') {
      this.mode = 'ended';
      this.say('\r\n');
      this.io.end(0);
    } else if (lc === cli.command && cli.confirm) {
      this.mode = 'confirm';
      this.say(cli.confirm);
    } else if (lc === cli.command) this.startConsole();
    else this.say(cli.refused(cmd) + cli.prompt);
  }

  private confirmed(answer: string): void {
    this.mode = 'cli';
    if (answer === 'y' || answer === 'yes') this.startConsole();
    else this.say(this.cli().prompt);
  }

  private startConsole(): void {
    const cli = this.cli();
    if (!this.port.acquire(this)) {
      this.say(cli.busy + cli.prompt);
      return;
    }
    this.mode = 'console';
    this.held = '';
    this.say(cli.started);
  }

  private say(s: string): void {
    this.io.write(Buffer.from(s, 'latin1'));
  }
}

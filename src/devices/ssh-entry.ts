// The dialogs that reach a host's serial port behind a BMC's SSH command
// line (sshopts entry=, docs/ssh.md), each an explicit state machine:
//
//   prompt ──(CLI prompt)──▶ command sent ──(console started)──────────▶ console
//     │                        │  ├─(asks y/n: answered)─▶ confirming ──▶ console
//     │                        │  ├─(in use by another session)─▶ busy ──(prompt; wait)──▶ command sent …
//     │                        │  ├─(prompt again, no console)─▶ failed "refused"
//     │                        │  └─(quiet, no prompt, for settleMs)─▶ console (told: unconfirmed)
//     └─(no prompt in time)─▶ failed
//
//   console ──(back at the CLI: takeover signs, then quiet for takeoverQuietMs)──▶ resting (told: taken over)
//   resting after a takeover ──(output not ending at the prompt)──▶ console (told: not taken over after all)
//
// Every waiting state has a timeout; a failure quotes (bounded) what the BMC
// printed. The dialog never forces the serial port: "in use" is waited out,
// asking again every busyPollMs (the SOL `polite` manners). In the console it
// watches for the session being put back at the CLI (another session took
// the serial port, docs/ssh.md): only the end of the output counts, the
// prompt at the start of a line, and nothing after it for takeoverQuietMs.

import type { SshEntry } from '../config/types.js';

export interface EntryProfile {
  entry: SshEntry;
  /** the CLI's prompt at the end of what it printed; null: the console at once (no dialog) */
  prompt: RegExp | null;
  /** what starts the console (a CR follows) */
  command: string;
  /** a confirmation question the command may ask, and the answer (a CR follows) */
  confirm: { ask: RegExp; answer: string } | null;
  /** printed when the console started */
  started: RegExp;
  /** printed when another session holds the serial port */
  busy: RegExp;
  /** leaves the console (back to the CLI, or the end of the session) */
  leave: Buffer;
  /** what the profile sends for a break; null: an RFC 4335 break request */
  breakSeq: Buffer | null;
  /** how the console looks once another session took the serial port; null: not watched (OpenBMC: any number of viewers) */
  takeover: TakeoverSigns | null;
}

/**
 * The signs that the session is back at the BMC's command line: the CLI's
 * prompt at the start of a line as the last thing printed, and before it
 * (blank lines between allowed) the vendor's line saying the serial session
 * ended, unless the prompt alone is distinctive enough.
 */
export interface TakeoverSigns {
  /** the prompt as the very end of the output, after a CR or LF (built by `signs`) */
  end: RegExp;
  /** the vendor's line before the prompt (trimmed, escapes removed) */
  message: RegExp;
  /** the prompt alone is a sign (`</>hpiLO->`, `racadm>>`); false: it needs the message (ILOM's bare `->`) */
  promptAlone: boolean;
}

function signs(prompt: RegExp, message: RegExp, promptAlone: boolean): TakeoverSigns {
  return { end: new RegExp(`[\\r\\n](${prompt.source})[ \\t]*$`, prompt.flags), message, promptAlone };
}

/** a line saying the serial port or session ended or was taken (assumed wording, docs/ssh.md): only quoted */
const TAKEN_WHAT = '(?:serial|console|session|port|VSP|SOL)';
const TAKEN_HOW = '(?:taken over|stolen|terminated|disconnected|stopped|ended|closed)';
const TAKEN_LINE = new RegExp(`\\b${TAKEN_WHAT}\\b.*\\b${TAKEN_HOW}\\b|\\b${TAKEN_HOW}\\b.*\\b${TAKEN_WHAT}\\b`, 'i');

const ESC_PAREN = Buffer.from('\x1b(', 'latin1');
/** the "prompt" of SMASH CLP command lines (iLO `</>hpiLO->`, ILOM `->`, iDRAC `/admin1->`) */
const CLP_PROMPT = /->\s*$/;

export const ENTRY_PROFILES: Record<SshEntry, EntryProfile> = {
  // OpenBMC (obmc-console behind its SSH server, port 2200) and anything that gives the console at once
  none: { entry: 'none', prompt: null, command: '', confirm: null, started: /$^/, busy: /$^/, leave: Buffer.from('\r~.', 'latin1'), breakSeq: null, takeover: null },
  // HPE iLO 3 and later: the virtual serial port
  ilo: {
    entry: 'ilo',
    prompt: CLP_PROMPT,
    command: 'vsp',
    confirm: null,
    // "Virtual Serial Port Active: COM2", "Starting virtual serial port.", then this line: the console follows it
    started: /Press 'ESC \(' to return/i,
    busy: /Virtual Serial Port is currently in use|in use by another session/i,
    leave: ESC_PAREN,
    breakSeq: null,
    // the session is put back at `</>hpiLO->` (`</system1>hpiLO->` after a cd; iLO 6: `</>iLO->`)
    takeover: signs(/<\/[^>\r\n]{0,40}>(?:hp)?iLO->/, TAKEN_LINE, true),
  },
  // Dell iDRAC: the host's COM2
  idrac: {
    entry: 'idrac',
    prompt: /(?:->|racadm>>|admin1->)\s*$/,
    command: 'console com2',
    confirm: null,
    started: /Connected to Serial Device|To end type/i,
    busy: /in use|already (?:in use|connected)|is busy/i,
    leave: Buffer.from([0x1c]),
    breakSeq: null,
    // racadm>> or /admin1->; a bare -> is not taken for a sign
    takeover: signs(/racadm>>|\/?admin1->/, TAKEN_LINE, true),
  },
  // Oracle ILOM: start /HOST/console, confirmed with y
  ilom: {
    entry: 'ilom',
    prompt: CLP_PROMPT,
    command: 'start /HOST/console',
    confirm: { ask: /\(y\/n\)\s*\??\s*$/i, answer: 'y' },
    started: /Serial console started|To stop, type/i,
    busy: /in use|already (?:in use|started|connected)/i,
    leave: ESC_PAREN,
    breakSeq: null,
    // a bare -> is too common to go by: "Serial console stopped." before it (as when left with ESC ()
    takeover: signs(/->/, /^Serial console stopped\b|taken over by another (?:session|user)/i, false),
  },
  // Lenovo XCC
  xcc: {
    entry: 'xcc',
    prompt: /system>\s*$/,
    command: 'console 1',
    confirm: null,
    started: /ESC \(|SOL session/i,
    busy: /in use|already (?:in use|active|connected)|is busy/i,
    leave: ESC_PAREN,
    breakSeq: null,
    takeover: signs(/system>/, TAKEN_LINE, true),
  },
};

export interface DialogTiming {
  /** each waiting step (prompt, answer to the command) may take this long */
  stepMs: number;
  /** busy: ask again after this long (±20 %) */
  busyPollMs: number;
  /** after the command: no known answer and no prompt for this long counts as the console */
  settleMs: number;
  /** in the console: the takeover signs at the end of the output, and nothing after them for this long */
  takeoverQuietMs: number;
}

/**
 * 8-12 s between asks: the serial port is taken within 30 s of its release, and a BMC is asked at most every 8 s;
 * a takeover is told 1.5 s after the BMC put the session back at its prompt
 */
export const DEFAULT_DIALOG_TIMING: DialogTiming = { stepMs: 30000, busyPollMs: 10000, settleMs: 5000, takeoverQuietMs: 1500 };

/** what a dialog tells its device */
export interface DialogEvents {
  /** bytes for the BMC */
  send(b: Buffer): void;
  /** the console is reached; `rest` followed the confirmation in the same read; `note`: said why, when unconfirmed */
  entered(rest: Buffer, note: string | null): void;
  /** another session holds the serial port; `said` is what the BMC printed (quoted, bounded) */
  busy(said: string): void;
  /** in the console, the session was put back at the CLI (another session took the port) at `at` (ms); `said`: the signs, quoted */
  takenOver(said: string, at: number): void;
  /** after takenOver, before the command was sent again: output that is not the CLI's; the console was ours after all, `b` is its */
  notTakenOver(b: Buffer): void;
  /** the dialog cannot go on (said in the daemon log) */
  failed(reason: string): void;
}

export type DialogState = 'prompt' | 'command' | 'confirming' | 'busy' | 'resting' | 'console' | 'failed';

/** what the dialog keeps of the BMC's output to match against (its tail) */
const TAIL_CHARS = 4096;
/** bytes a dialog reads at most before it gives up (a BMC flooding its prompt) */
export const MAX_DIALOG_BYTES = 1024 * 1024;
/** characters of the BMC's output quoted in a message */
const QUOTE_CHARS = 160;
/** what the console watch keeps of the output (the prompt and a few lines before it) */
const TAKEOVER_TAIL = 512;
/** escape sequences (CSI, OSC, character set choice) and NULs: not looked at by the console watch */
// eslint-disable-next-line no-control-regex -- terminal escapes are the point
const ESCAPES = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x00/g;
/** blank lines allowed between the vendor's message and the prompt */
const BLANK_LINES = 3;

/**
 * Whether the end of the console output (`tail`) shows the session back at
 * the CLI: the signs quoted for the log, or null. The prompt must follow a CR
 * or LF and be the very end (spaces aside); the line before it (up to
 * BLANK_LINES blank lines between) is the vendor's message, required unless
 * the prompt alone is distinctive.
 */
export function takeoverSign(t: TakeoverSigns, tail: string): string | null {
  const text = tail.replace(ESCAPES, '');
  const m = t.end.exec(text);
  if (!m) return null;
  const prompt = quoteBmc(m[1]!);
  const lines = text.slice(0, m.index).split(/\r\n|\r|\n/);
  let line = '';
  for (let i = lines.length - 1; i >= 0 && i >= lines.length - 1 - BLANK_LINES && !line; i--) line = lines[i]!.trim();
  if (line && t.message.test(line)) return `the BMC said ${quoteBmc(line)} and is back at its prompt ${prompt}`;
  return t.promptAlone ? `the BMC is back at its prompt ${prompt}` : null;
}

/** The tail of what the BMC printed, one line, control characters shown, in quotes. */
export function quoteBmc(text: string): string {
  const flat = text
    .replace(/\r?\n|\r/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  const cut = flat.length > QUOTE_CHARS ? `…${flat.slice(-QUOTE_CHARS)}` : flat;
  // eslint-disable-next-line no-control-regex -- showing control bytes is the point
  return `"${cut.replace(/[\x00-\x1f\x7f]/g, (c) => `^${String.fromCharCode(c.charCodeAt(0) ^ 0x40)}`)}"`;
}

export class EntryDialog {
  private _state: DialogState = 'prompt';
  private tail = '';
  private received = 0;
  private timer: NodeJS.Timeout | null = null;
  /** resting after a takeover, nothing sent since: output there is looked at (is it still the console?) */
  private afterTakeover = false;

  constructor(
    readonly profile: EntryProfile,
    private readonly timing: DialogTiming,
    private readonly ev: DialogEvents,
    private readonly random: () => number = Math.random,
  ) {}

  get state(): DialogState {
    return this._state;
  }

  /** Begin: no dialog (the console at once), or wait for the CLI's prompt. */
  start(): void {
    if (this.profile.prompt === null) {
      this.enter(Buffer.alloc(0), null);
      return;
    }
    this.to('prompt', this.timing.stepMs, () => this.fail(`no command-line prompt within ${secs(this.timing.stepMs)} (entry=${this.profile.entry}; a changed login banner or prompt?)`));
  }

  /** Bytes from the BMC: the dialog's while it runs; in the console, watched for a takeover. */
  feed(b: Buffer): void {
    if (this._state === 'failed') return;
    if (this._state === 'console') {
      this.watch(b);
      return;
    }
    if (this.afterTakeover) {
      this.checkTakeover(b);
      return;
    }
    this.received += b.length;
    if (this.received > MAX_DIALOG_BYTES) {
      this.fail(`the BMC sent ${MAX_DIALOG_BYTES} bytes without reaching the console`);
      return;
    }
    const chunk = b.toString('latin1');
    this.tail = (this.tail + chunk).slice(-TAIL_CHARS);
    const p = this.profile;
    switch (this._state) {
      case 'prompt':
        if (p.prompt!.test(this.tail)) this.sendCommand();
        return;
      case 'command':
      case 'confirming':
        this.answer(chunk.length, b);
        return;
      case 'busy':
        // the CLI is back at its prompt after saying "in use": ask again later
        if (p.prompt!.test(this.tail)) this.rest();
        return;
      // resting: the BMC's output is not looked at until the next ask
    }
  }

  /** after the command (or the answer to its question): what did the BMC say? `n`: the newest chunk's length */
  private answer(n: number, b: Buffer): void {
    const p = this.profile;
    const started = p.started.exec(this.tail);
    if (started) {
      // what follows the confirmation's line is the host's: the part of it in this chunk goes to the console
      let end = started.index + started[0].length;
      const nl = /\r?\n/.exec(this.tail.slice(end));
      end = nl ? end + nl.index + nl[0].length : this.tail.length;
      this.enter(b.subarray(Math.max(0, end - (this.tail.length - n))), null);
      return;
    }
    const busy = p.busy.exec(this.tail);
    if (busy) {
      const said = quoteBmc(lineAround(this.tail, busy.index));
      const atPrompt = p.prompt!.test(this.tail);
      this.tail = '';
      if (atPrompt) this.rest();
      else this.to('busy', this.timing.stepMs, () => this.rest());
      this.ev.busy(said);
      return;
    }
    if (this._state === 'command' && p.confirm?.ask.test(this.tail)) {
      this.tail = '';
      this.to('confirming', this.timing.stepMs, () => this.settled());
      this.ev.send(Buffer.from(`${p.confirm.answer}\r`, 'latin1'));
      return;
    }
    if (p.prompt!.test(this.tail)) this.fail(`the BMC refused "${p.command}": ${quoteBmc(this.tail)}`);
  }

  /** the session ended while the dialog ran */
  closed(): void {
    if (this._state === 'console' || this._state === 'failed') return;
    const what = this._state === 'prompt' ? 'before its prompt' : `after "${this.profile.command}"`;
    this.fail(`the BMC ended the session ${what}${this.tail.trim() ? `: ${quoteBmc(this.tail)}` : ''}`);
  }

  /**
   * In the console: the end of the output is looked at for the takeover
   * signs; found, a timer waits takeoverQuietMs, and any output before it
   * fires (the host's) disarms it. Cheap when it is not: a `>` near the end
   * first (every profile's prompt ends with one).
   */
  private watch(b: Buffer): void {
    const t = this.profile.takeover;
    if (!t) return;
    this.tail = b.length >= TAKEOVER_TAIL ? b.toString('latin1', b.length - TAKEOVER_TAIL) : (this.tail + b.toString('latin1')).slice(-TAKEOVER_TAIL);
    const sign = this.tail.lastIndexOf('>') >= this.tail.length - 16 ? takeoverSign(t, this.tail) : null;
    if (sign) {
      const at = Date.now();
      this.to('console', this.timing.takeoverQuietMs, () => this.takenOver(sign, at));
    } else if (this.timer) this.to('console');
  }

  /** the session is back at the CLI: wait as for "in use", then ask again */
  private takenOver(sign: string, at: number): void {
    this.tail = '';
    this.received = 0;
    this.rest();
    this.afterTakeover = true;
    this.ev.takenOver(sign, at);
  }

  /** output while resting after a takeover: the CLI says nothing unasked; anything but its prompt again is the host's */
  private checkTakeover(b: Buffer): void {
    this.tail = (this.tail + b.toString('latin1')).slice(-TAKEOVER_TAIL);
    if (/^\s*$/.test(this.tail.replace(ESCAPES, '')) || takeoverSign(this.profile.takeover!, this.tail) !== null) return;
    this.afterTakeover = false;
    // the tail goes on from there: the host's output continues the line of what looked like the prompt
    this.to('console');
    this.ev.notTakenOver(b);
  }

  /** stop every timer (the device is closing) */
  stop(): void {
    this.clearTimer();
    if (this._state !== 'console') this._state = 'failed';
  }

  private sendCommand(): void {
    this.afterTakeover = false;
    this.tail = '';
    this.to('command', this.timing.settleMs, () => this.settled());
    this.ev.send(Buffer.from(`${this.profile.command}\r`, 'latin1'));
  }

  /** busy: wait busyPollMs (±20 %), then ask again */
  private rest(): void {
    const ms = Math.round(this.timing.busyPollMs * (0.8 + 0.4 * this.random()));
    this.to('resting', ms, () => {
      this.tail = '';
      this.sendCommand();
    });
  }

  /** no known answer to the command for settleMs */
  private settled(): void {
    const p = this.profile;
    if (p.prompt!.test(this.tail)) {
      this.fail(`the BMC refused "${p.command}": ${quoteBmc(this.tail)}`);
      return;
    }
    const note = `no confirmation from the BMC after "${p.command}"${this.tail.trim() ? ` (it printed ${quoteBmc(this.tail)})` : ''}; taking what follows as the console`;
    this.enter(Buffer.alloc(0), note);
  }

  private enter(rest: Buffer, note: string | null): void {
    this.to('console');
    // the console starts at the start of a line
    this.tail = '\n';
    this.ev.entered(rest, note);
    if (rest.length > 0) this.watch(rest);
  }

  private fail(reason: string): void {
    this.to('failed');
    this.ev.failed(reason);
  }

  private to(s: DialogState, ms = 0, onTimeout?: () => void): void {
    this.clearTimer();
    this._state = s;
    if (onTimeout) this.timer = setTimeout(onTimeout, ms);
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

/** the line of `text` that holds position `at` */
function lineAround(text: string, at: number): string {
  const start = Math.max(text.lastIndexOf('\n', at), text.lastIndexOf('\r', at)) + 1;
  const end = text.slice(at).search(/[\r\n]/);
  return text.slice(start, end < 0 ? undefined : at + end);
}

function secs(ms: number): string {
  return `${Number((ms / 1000).toFixed(1))} s`;
}

// Reading a password from the terminal with echo off: /dev/tty when the
// process has one, else stdin if that is a terminal. Raw mode turns echo off
// and makes ^C a key rather than a signal, so this code decides what happens:
// the terminal is put back on every way out (Enter, ^C, ^D, EOF, a signal
// from elsewhere, process exit).

import * as fs from 'node:fs';
import * as tty from 'node:tty';
import { FatalError } from './errors.js';

interface PromptTerminal {
  input: tty.ReadStream;
  write(text: string): void;
  close(): void;
}

function openTerminal(): PromptTerminal | undefined {
  const fds: number[] = [];
  try {
    fds.push(fs.openSync('/dev/tty', 'r'), fs.openSync('/dev/tty', 'w'));
    const [inFd, outFd] = fds;
    const input = new tty.ReadStream(inFd);
    return {
      input,
      write: (text) => fs.writeSync(outFd, text),
      close: () => {
        input.destroy();
        fs.closeSync(outFd);
      },
    };
  } catch {
    // no controlling terminal (a daemon, cron, setsid)
    for (const fd of fds) fs.closeSync(fd);
  }
  if (!tty.isatty(0)) return undefined;
  const input = process.stdin as tty.ReadStream;
  return { input, write: (text) => process.stderr.write(text), close: () => input.pause() };
}

/** Drop the last UTF-8 character: its continuation bytes and its lead byte. */
function dropLastChar(bytes: number[]): void {
  while (bytes.length && (bytes[bytes.length - 1] & 0xc0) === 0x80) bytes.pop();
  bytes.pop();
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as const;

/** The line typed after `prompt`, or undefined when there is no terminal to ask on. */
export function promptHidden(prompt: string): Promise<string | undefined> {
  const term = openTerminal();
  if (!term) return Promise.resolve(undefined);
  const { input } = term;

  return new Promise<string | undefined>((resolve, reject) => {
    const bytes: number[] = [];
    let finished = false;
    const restore = (): void => {
      try {
        input.setRawMode(false);
      } catch {
        /* terminal already gone */
      }
    };
    const finish = (err?: Error): void => {
      if (finished) return;
      finished = true;
      input.removeListener('data', onData);
      input.removeListener('end', onEnd);
      input.removeListener('error', onEnd);
      for (const s of SIGNALS) process.removeListener(s, onSignal);
      process.removeListener('exit', restore);
      restore();
      term.write('\n'); // the Enter the user typed was not echoed
      term.close();
      const typed = Buffer.from(bytes).toString('utf8');
      bytes.fill(0);
      if (err) reject(err);
      else resolve(typed);
    };
    // Put the terminal back, then let the signal do what it would have done.
    const onSignal = (sig: NodeJS.Signals): void => {
      finish(new FatalError('Password prompt interrupted'));
      process.kill(process.pid, sig);
    };
    const onEnd = (): void => finish(new FatalError('No password given'));
    const onData = (chunk: Buffer): void => {
      for (const b of chunk) {
        if (finished) return;
        if (b === 0x0d || b === 0x0a) finish();
        else if (b === 0x03) finish(new FatalError('Password prompt interrupted'));
        else if (b === 0x04) {
          if (bytes.length === 0) finish(new FatalError('No password given'));
        } else if (b === 0x7f || b === 0x08) dropLastChar(bytes);
        else if (b === 0x15) {
          bytes.fill(0); // ^U: start over
          bytes.length = 0;
        } else if (b >= 0x20) bytes.push(b); // other control keys are not part of a password
      }
    };

    for (const s of SIGNALS) process.on(s, onSignal);
    process.on('exit', restore);
    input.on('data', onData);
    input.on('end', onEnd);
    input.on('error', onEnd);
    input.setRawMode(true);
    term.write(prompt);
    input.resume();
  });
}

// Reading a password typed at the terminal, without echo. The terminal is
// put in raw mode before the first prompt shows and kept so until the last
// answer is read: a key typed early, or between two prompts, is never echoed
// by the terminal driver. Line editing is ours: backspace, ^U, ^C, ^D.

export class PromptError extends Error {}

/** Ask each prompt in turn on stderr; the answers, as typed (bytes). */
export async function askHidden(prompts: string[], maxBytes: number): Promise<Buffer[]> {
  const stdin = process.stdin;
  const typed: number[] = [];
  let wake: (() => void) | null = null;
  let ended = false;
  const onData = (chunk: Buffer): void => {
    for (const c of chunk) typed.push(c);
    wake?.();
  };
  const onEnd = (): void => {
    ended = true;
    wake?.();
  };
  const nextByte = async (): Promise<number | null> => {
    while (typed.length === 0) {
      if (ended) return null;
      await new Promise<void>((resolve) => (wake = resolve));
      wake = null;
    }
    return typed.shift()!;
  };
  const readLine = async (prompt: string): Promise<Buffer> => {
    process.stderr.write(prompt);
    const bytes: number[] = [];
    try {
      for (;;) {
        const c = await nextByte();
        if (c === null || (c === 0x04 && bytes.length === 0)) throw new PromptError('no password given');
        if (c === 0x03) throw new PromptError('interrupted');
        if (c === 0x0d || c === 0x0a) return Buffer.from(bytes);
        if (c === 0x15) bytes.length = 0; // ^U: start over
        else if (c === 0x7f || c === 0x08) {
          // erase one character: its UTF-8 continuation bytes, then its first byte
          while (bytes.length > 0 && (bytes[bytes.length - 1]! & 0xc0) === 0x80) bytes.pop();
          bytes.pop();
        } else if (c >= 0x20) bytes.push(c);
        if (bytes.length > maxBytes) throw new PromptError(`password longer than ${maxBytes} bytes`);
      }
    } finally {
      bytes.fill(0);
      process.stderr.write('\n');
    }
  };
  stdin.setRawMode(true);
  stdin.on('data', onData).on('end', onEnd);
  stdin.resume();
  try {
    const answers: Buffer[] = [];
    for (const p of prompts) answers.push(await readLine(p));
    return answers;
  } finally {
    stdin.off('data', onData).off('end', onEnd);
    stdin.setRawMode(false);
    stdin.pause();
    typed.fill(0);
  }
}

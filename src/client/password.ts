// Where the daemon password comes from, in order: the first line of
// CONCH_PASSWORD_FILE, CONCH_PASSWORD, then the terminal. Never taken from
// the command line (it would show in `ps`), never printed or logged.

import * as fs from 'node:fs';
import { FatalError, sysText } from './errors.js';
import { promptHidden } from './password-prompt.js';

/** A protocol line cannot carry a line break, so such a password could never match. */
function checked(where: string, password: string): string {
  if (/[\r\n]/.test(password)) throw new FatalError(`${where} holds a line break, which a password cannot contain`);
  return password;
}

/** The password set up in the environment, if any (read only when a TLS daemon asks). */
export function configuredPassword(env: NodeJS.ProcessEnv): string | undefined {
  const file = env.CONCH_PASSWORD_FILE;
  if (file) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      throw new FatalError(`Unable to open CONCH_PASSWORD_FILE "${file}": ${sysText(e)}`);
    }
    const first = text.split('\n')[0].replace(/\r$/, '');
    if (first === '') throw new FatalError(`CONCH_PASSWORD_FILE "${file}" has an empty first line`);
    return first;
  }
  const inline = env.CONCH_PASSWORD;
  return inline ? checked('CONCH_PASSWORD', inline) : undefined;
}

/**
 * Ask on the terminal; `undefined` when there is none. An empty answer is
 * refused here rather than sent (the daemon would only say it failed).
 */
export async function askPassword(user: string, host: string): Promise<string | undefined> {
  const answer = await promptHidden(`Password for ${user}@${host}: `);
  if (answer === '') throw new FatalError('No password given');
  return answer;
}

// Reading the users and rules files: a failure is said in words, and a
// file with more mistakes than anyone reads is cut short.

import * as fs from 'node:fs';
import { ConfigError, ConfigErrors } from '../config/types.js';
import { READ_ERRORS } from '../config/parse.js';

/** The file's text; throws an Error saying why it could not be read. */
export function readText(file: string, what: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    throw new Error(`cannot read the ${what}: ${READ_ERRORS[code] ?? (e as Error).message}`, { cause: e });
  }
}

/** Past this many errors in one file the rest are counted, not listed. */
export const MAX_LISTED = 100;

/** One error per bad line, every one named (up to MAX_LISTED) in the message. */
export class FileErrors extends ConfigErrors {
  constructor(file: string, errors: ConfigError[]) {
    const listed = errors.slice(0, MAX_LISTED);
    if (errors.length > MAX_LISTED) listed.push(new ConfigError({ file, line: 0, col: 0 }, `${errors.length - MAX_LISTED} more errors not listed`));
    super(listed);
  }
}

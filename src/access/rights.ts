// What a client may do to a console. Each right is independent: a rule that
// should let someone type into a console lists both monitor and attach.

export type Right = 'monitor' | 'attach' | 'force' | 'break' | 'reset' | 'broadcast';

export const RIGHTS: readonly Right[] = Object.freeze(['monitor', 'attach', 'force', 'break', 'reset', 'broadcast']);

export const isRight = (s: string): s is Right => (RIGHTS as readonly string[]).includes(s);

/** A bad word in a rights list; `offset` is where it starts in the text (for file:line:col). */
export class RightsError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
    this.name = 'RightsError';
  }
}

/** `monitor,attach` or `all` (case-insensitive). Throws RightsError naming the bad word. */
export function parseRights(text: string): Set<Right> {
  const out = new Set<Right>();
  let offset = 0;
  for (const raw of text.split(',')) {
    const word = raw.trim().toLowerCase();
    const at = offset + (raw.length - raw.trimStart().length);
    offset += raw.length + 1;
    if (word === '') throw new RightsError(`empty right in "${text}"; expected a comma-separated list of ${RIGHTS.join(', ')} or all`, at);
    if (word === 'all') {
      for (const r of RIGHTS) out.add(r);
    } else if (isRight(word)) {
      out.add(word);
    } else {
      throw new RightsError(`unknown right "${raw.trim()}"; expected ${RIGHTS.join(', ')} or all`, at);
    }
  }
  return out;
}

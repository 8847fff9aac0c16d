// A set of characters for the pattern engine. Console names and patterns are
// 7-bit ASCII, so a set is a 128-entry table plus one flag for everything
// above (only a negated bracket or `.` can match there).

export interface CharSet {
  /** 1 where code < 128 is a member */
  readonly ascii: Uint8Array;
  /** whether codes >= 128 are members */
  readonly high: boolean;
}

export const inSet = (s: CharSet, c: number): boolean => (c < 128 ? s.ascii[c] === 1 : s.high);

/** A mutable table being filled; `freeze` turns it into a set. */
export class CharSetBuilder {
  readonly ascii = new Uint8Array(128);
  addRange(lo: number, hi: number): void {
    for (let c = Math.max(0, lo); c <= Math.min(127, hi); c++) this.ascii[c] = 1;
  }
  addChar(c: number): void {
    if (c < 128) this.ascii[c] = 1;
  }
  static isClass(name: string): boolean {
    return Object.hasOwn(CLASS_RANGES, name);
  }
  addClass(name: string): boolean {
    if (!CharSetBuilder.isClass(name)) return false;
    const r = CLASS_RANGES[name];
    for (let i = 0; i < r.length; i += 2) this.addRange(r[i], r[i + 1]);
    return true;
  }
  /** `icase`: every letter matches in both cases (like JS /i, ASCII only). */
  freeze(negate: boolean, icase: boolean): CharSet {
    const a = this.ascii.slice();
    if (icase) {
      for (let c = 65; c <= 90; c++) {
        if (a[c] || a[c + 32]) a[c] = a[c + 32] = 1;
      }
    }
    if (negate) for (let c = 0; c < 128; c++) a[c] ^= 1;
    return { ascii: a, high: negate };
  }
}

const cc = (s: string): number => s.charCodeAt(0);

/** POSIX classes in the C locale, as [lo, hi] pairs. */
const CLASS_RANGES: Record<string, number[]> = {
  alpha: [65, 90, 97, 122],
  upper: [65, 90],
  lower: [97, 122],
  digit: [48, 57],
  xdigit: [48, 57, 65, 70, 97, 102],
  alnum: [48, 57, 65, 90, 97, 122],
  space: [9, 13, 32, 32],
  blank: [9, 9, 32, 32],
  punct: [cc('!'), cc('/'), cc(':'), cc('@'), cc('['), cc('`'), cc('{'), cc('~')],
  print: [32, 126],
  graph: [33, 126],
  cntrl: [0, 31, 127, 127],
};

/** One character (case-folded for icase). */
export function charSet(c: number, icase: boolean): CharSet {
  const b = new CharSetBuilder();
  b.addChar(c);
  return b.freeze(false, icase);
}

export function classSet(name: 'alnum' | 'space', negate: boolean, extra = ''): CharSet {
  const b = new CharSetBuilder();
  b.addClass(name);
  for (const ch of extra) b.addChar(cc(ch));
  return b.freeze(negate, false);
}

/** `.` and `?`: any character */
export const ANY: CharSet = { ascii: new Uint8Array(128).fill(1), high: true };

/** \w's members: letters, digits and `_` */
export const WORD = classSet('alnum', false, '_');
export const isWord = (c: number): boolean => c < 128 && WORD.ascii[c] === 1;

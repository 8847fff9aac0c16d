// Parsers for the option strings of conman.conf: logopts, seropts, testopts,
// ipmiopts and sshopts. Each takes the current defaults and returns a new value; a
// bad string throws OptError, which the config parser turns into a
// ConfigError pointing into the quoted string.

import { inspect } from 'node:util';
import { SSH_ENTRIES, type IpmiOpts, type LogOpts, type SerOpts, type SshEntry, type SshOpts, type TestOpts } from './types.js';

export class OptError extends Error {
  /** index into the option string where the problem starts */
  constructor(
    message: string,
    public readonly offset = 0,
  ) {
    super(message);
    this.name = 'OptError';
  }
}

/** Splits on any of `seps`, keeping each piece's offset. Empty pieces are dropped. */
function pieces(str: string, seps: RegExp): { text: string; offset: number }[] {
  const out: { text: string; offset: number }[] = [];
  const re = new RegExp(`[^${seps.source}]+`, 'g');
  for (let m = re.exec(str); m; m = re.exec(str)) out.push({ text: m[0], offset: m.index });
  return out;
}

// ---------------------------------------------------------------- logopts

export const DEFAULT_LOG_OPTS: LogOpts = { lock: true, sanitize: false, timestamp: false };

const LOG_WORDS: Record<string, [keyof LogOpts, boolean]> = {
  lock: ['lock', true],
  nolock: ['lock', false],
  sanitize: ['sanitize', true],
  nosanitize: ['sanitize', false],
  timestamp: ['timestamp', true],
  notimestamp: ['timestamp', false],
};

/** "lock,sanitize,notimestamp" (commas, spaces or semicolons between words). */
export function parseLogOpts(str: string, base: LogOpts = DEFAULT_LOG_OPTS): LogOpts {
  const words = pieces(str, /\s,;./);
  if (words.length === 0) throw new OptError('logopts is empty; expected lock|nolock, sanitize|nosanitize, timestamp|notimestamp');
  const out = { ...base };
  for (const w of words) {
    const hit = LOG_WORDS[w.text.toLowerCase()];
    if (!hit) {
      throw new OptError(
        `unknown logopts word "${w.text}"; expected lock|nolock, sanitize|nosanitize, timestamp|notimestamp`,
        w.offset,
      );
    }
    out[hit[0]] = hit[1];
  }
  return out;
}

// ---------------------------------------------------------------- seropts

export const DEFAULT_SER_OPTS: SerOpts = { bps: 9600, dataBits: 8, parity: 'none', stopBits: 1 };

/** The speeds conman knows; others are rounded down to one of these. */
export const STANDARD_BPS = [
  50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800,
];

const SEROPTS_FORM = 'expected "bps[,databits[parity[stopbits]]]" such as "115200,8n1"';

/** "bps[,databits[parity[stopbits]]]", e.g. "115200,8n1". */
export function parseSerOpts(str: string, base: SerOpts = DEFAULT_SER_OPTS): SerOpts {
  const m = /^\s*(\d+)\s*(?:,\s*(\d+)\s*(?:([A-Za-z])\s*(\d+)?)?)?\s*$/.exec(str);
  if (!m) throw new OptError(`bad seropts "${str}": ${SEROPTS_FORM}`);
  const out = { ...base };
  const bps = Number(m[1]);
  let rounded = 0;
  for (const s of STANDARD_BPS) if (s <= bps) rounded = s;
  if (rounded === 0) throw new OptError(`seropts bps must be at least 50, got "${m[1]}"`, str.indexOf(m[1]));
  out.bps = rounded;
  if (m[2] !== undefined) {
    const db = Number(m[2]);
    if (db < 5 || db > 8) throw new OptError(`seropts databits must be 5..8, got "${m[2]}"`, str.indexOf(m[2], m[1].length));
    out.dataBits = db as SerOpts['dataBits'];
  }
  if (m[3] !== undefined) {
    const p = m[3].toLowerCase();
    const parity = p === 'n' ? 'none' : p === 'e' ? 'even' : p === 'o' ? 'odd' : null;
    if (!parity) throw new OptError(`seropts parity must be n, e or o, got "${m[3]}"`, str.lastIndexOf(m[3]));
    out.parity = parity;
  }
  if (m[4] !== undefined) {
    const sb = Number(m[4]);
    if (sb !== 1 && sb !== 2) throw new OptError(`seropts stopbits must be 1 or 2, got "${m[4]}"`, str.lastIndexOf(m[4]));
    out.stopBits = sb;
  }
  return out;
}

// --------------------------------------------------------------- testopts

/** testopts as written: -1 means "not given" for the delays, as in conman. */
export interface TestOptsSpec {
  bytes: number;
  maxMs: number;
  minMs: number;
  prob: number;
}

export const DEFAULT_TEST_OPTS_SPEC: TestOptsSpec = { bytes: 1024, maxMs: -1, minMs: -1, prob: 100 };
const TEST_DEFAULT_DELAY_MS = 100;

/** "b:<bytes>,m:<max ms>,n:<min ms>,p:<probability %>", comma-separated, any order. */
export function parseTestOpts(str: string, base: TestOptsSpec = DEFAULT_TEST_OPTS_SPEC): TestOptsSpec {
  const out = { ...base };
  for (const w of pieces(str, /,/)) {
    const m = /^([BbMmNnPp]):(.*)$/.exec(w.text);
    if (!m) throw new OptError(`bad testopts item "${w.text}"; expected b:<bytes>, m:<max ms>, n:<min ms> or p:<percent>`, w.offset);
    const n = parseCInt(m[2].trim());
    if (n === null || n < 0 || n > 0x7fffffff) {
      throw new OptError(`testopts ${m[1]}: needs a non-negative integer, got "${m[2]}"`, w.offset + 2);
    }
    switch (m[1].toLowerCase()) {
      case 'b':
        out.bytes = n;
        break;
      case 'm':
        out.maxMs = n;
        break;
      case 'n':
        out.minMs = n;
        break;
      default:
        out.prob = Math.min(n, 100);
    }
  }
  return out;
}

/**
 * conman's delay rule made explicit: no max means a fixed 100 ms; a missing
 * or too large min means a fixed max. The engine then waits a uniformly
 * random minMs..maxMs between bursts.
 */
export function resolveTestOpts(s: TestOptsSpec): TestOpts {
  if (s.maxMs < 0) return { bytes: s.bytes, maxMs: TEST_DEFAULT_DELAY_MS, minMs: TEST_DEFAULT_DELAY_MS, prob: s.prob };
  const minMs = s.minMs < 0 || s.minMs >= s.maxMs ? s.maxMs : s.minMs;
  return { bytes: s.bytes, maxMs: s.maxMs, minMs, prob: s.prob };
}

/** strtol(…, 0) for whole strings: decimal, 0x hex or leading-0 octal. */
function parseCInt(s: string): number | null {
  const m = /^([+-]?)(?:0[xX]([0-9a-fA-F]+)|0([0-7]+)|(\d+))$/.exec(s);
  if (!m) return null;
  const v = m[2] !== undefined ? Number.parseInt(m[2], 16) : m[3] !== undefined ? Number.parseInt(m[3], 8) : Number(m[4]);
  return m[1] === '-' ? -v : v;
}

// --------------------------------------------------------------- ipmiopts

export function defaultIpmiOpts(): IpmiOpts {
  return cloneIpmi({ user: '', password: Buffer.alloc(0), kg: null, cipherSuite: null, privilege: 'admin', workarounds: [] });
}

/** libipmiconsole workaround names and their bits (for the numeric form). */
export const IPMI_WORKAROUNDS: Record<string, number> = {
  authcap: 0x1,
  intel20: 0x2,
  supermicro20: 0x4,
  sun20: 0x8,
  opensesspriv: 0x10,
  integritycheckvalue: 0x20,
  nochecksumcheck: 0x40,
  serialalertsdeferred: 0x80,
  solpacketseq: 0x100,
  solpayloadsize: 0x01000000,
  solport: 0x02000000,
  solstatus: 0x04000000,
  solchannelsupport: 0x08000000,
};
const IPMI_DEFAULT_FLAGS = 0xffffffff;

/** Cipher suite IDs libipmiconsole accepts. */
export const IPMI_CIPHER_SUITES = [0, 1, 2, 3, 6, 7, 8, 11, 12, 15, 16, 17];

const IPMI_MAX_USER = 16;
const IPMI_MAX_KEY = 20;

/** Keeps the password and K_g out of JSON.stringify and console.log output. */
function redacted(o: IpmiOpts): IpmiOpts {
  return hideSecrets(o, () => ({ ...o, password: '<redacted>', kg: o.kg ? '<redacted>' : null }));
}

/** `o` as JSON.stringify and console.log show it: `shown()` instead of its fields (a secret among them) */
function hideSecrets<T extends object>(o: T, shown: () => object): T {
  Object.defineProperty(o, 'toJSON', { value: shown, enumerable: false });
  Object.defineProperty(o, inspect.custom, { value: () => shown(), enumerable: false });
  return o;
}

function cloneIpmi(o: IpmiOpts): IpmiOpts {
  return redacted({
    user: o.user,
    password: Buffer.from(o.password),
    kg: o.kg ? Buffer.from(o.kg) : null,
    cipherSuite: o.cipherSuite,
    privilege: o.privilege,
    workarounds: [...o.workarounds],
  });
}

/** A password or K_g: ASCII, or "0x" + hex digits for binary. Never echoes the value. */
export function parseKey(what: string, v: string, offset: number): Buffer {
  let buf: Buffer;
  if (/^0[xX][0-9a-fA-F]*$/.test(v)) {
    const hex = v.slice(2);
    if (hex.length % 2) throw new OptError(`IPMI ${what} in hex needs an even number of digits`, offset);
    if (hex.length > IPMI_MAX_KEY * 2) throw new OptError(`IPMI ${what} exceeds ${IPMI_MAX_KEY * 2} hex digits`, offset);
    buf = Buffer.from(hex, 'hex');
  } else {
    // ASCII only, so the bytes do not depend on the file's encoding
    // eslint-disable-next-line no-control-regex -- an ASCII range, not a control byte
    if (/[^\x00-\x7f]/.test(v)) throw new OptError(`IPMI ${what} has non-ASCII characters; write it as 0x followed by hex digits`, offset);
    buf = Buffer.from(v, 'latin1');
    if (buf.length > IPMI_MAX_KEY) throw new OptError(`IPMI ${what} exceeds ${IPMI_MAX_KEY} bytes`, offset);
  }
  return buf;
}

function setWorkaround(o: IpmiOpts, v: string, offset: number): void {
  const name = v.toLowerCase();
  if (name === '' || name === 'default') {
    o.workarounds = [];
    return;
  }
  if (name === 'none') {
    o.workarounds = ['none'];
    return;
  }
  let names: string[];
  if (name in IPMI_WORKAROUNDS) {
    names = [name];
  } else {
    const n = parseCInt(v);
    if (n === null) {
      throw new OptError(
        `unknown IPMI workaround "${v}"; known: ${Object.keys(IPMI_WORKAROUNDS).join(', ')}, default, none`,
        offset,
      );
    }
    if (n === 0) {
      o.workarounds = ['none'];
      return;
    }
    if (n === IPMI_DEFAULT_FLAGS) {
      o.workarounds = [];
      return;
    }
    names = Object.keys(IPMI_WORKAROUNDS).filter((k) => (n & IPMI_WORKAROUNDS[k]) >>> 0 !== 0);
    const known = names.reduce((acc, k) => (acc | IPMI_WORKAROUNDS[k]) >>> 0, 0);
    if (n < 0 || n > 0xffffffff || known !== n) throw new OptError(`invalid IPMI workaround flags "${v}"`, offset);
  }
  // as conman: a flag after "none" or the default replaces it, else adds to it
  const cur = o.workarounds[0] === 'none' ? [] : o.workarounds;
  o.workarounds = [...cur, ...names.filter((k) => !cur.includes(k))];
}

function ipmiItem(o: IpmiOpts, tag: string, v: string, offset: number): void {
  switch (tag) {
    case 'U':
      // eslint-disable-next-line no-control-regex -- an ASCII range, not a control byte
      if (/[^\x00-\x7f]/.test(v)) throw new OptError('IPMI username must be ASCII', offset);
      if (Buffer.byteLength(v, 'latin1') > IPMI_MAX_USER) throw new OptError(`IPMI username exceeds ${IPMI_MAX_USER} bytes`, offset);
      o.user = v;
      break;
    case 'P': {
      const pw = parseKey('password', v, offset);
      // conman: anything after a NUL in the password is ignored
      const nul = pw.indexOf(0);
      o.password = nul >= 0 ? pw.subarray(0, nul) : pw;
      break;
    }
    case 'K':
      o.kg = v === '' ? null : parseKey('K_g', v, offset);
      break;
    case 'C': {
      if (v === '') {
        o.cipherSuite = null;
        break;
      }
      const n = parseCInt(v);
      if (n === null || !IPMI_CIPHER_SUITES.includes(n)) {
        throw new OptError(`invalid IPMI cipher suite "${v}"; supported: ${IPMI_CIPHER_SUITES.join(', ')}`, offset);
      }
      o.cipherSuite = n;
      break;
    }
    case 'L': {
      const l = v.toLowerCase();
      if (l === '' || l === 'admin' || l === 'administrator' || l === '2') o.privilege = 'admin';
      else if (l === 'user' || l === '0') o.privilege = 'user';
      else if (l === 'op' || l === 'operator' || l === '1') o.privilege = 'operator';
      else throw new OptError(`invalid IPMI privilege level "${v}"; expected user, op or admin`, offset);
      break;
    }
    case 'W':
      setWorkaround(o, v, offset);
      break;
  }
}

/**
 * "U:user,P:pass,K:kg,C:cipher,L:level,W:flag,...", or conman's old
 * positional form "user[,pass[,kg[,flag...]]]" ("-" = default).
 */
export function parseIpmiOpts(str: string, base: IpmiOpts = defaultIpmiOpts()): IpmiOpts {
  const o = cloneIpmi(base);
  const items = pieces(str, /,/);
  if (str.length > 0 && str[1] !== ':') {
    // the deprecated positional form, told apart as conman does
    const order = ['U', 'P', 'K'];
    items.forEach((w, idx) => {
      const v = w.text === '-' ? '' : w.text;
      ipmiItem(o, idx < order.length ? order[idx] : 'W', v, w.offset);
    });
    return o;
  }
  let prev = '';
  for (const w of items) {
    const m = /^([UuPpKkCcLlWw]):(.*)$/.exec(w.text);
    if (!m) {
      // after P: or K: a bad item may be the tail of a secret with a comma in it: never echo it then
      const key = /^([A-Za-z]):/.exec(w.text);
      throw new OptError(
        key && prev !== 'P' && prev !== 'K'
          ? `unknown ipmiopts key "${key[1]}:"; expected U:, P:, K:, C:, L: or W: followed by a value`
          : 'ipmiopts item without a key; expected U:, P:, K:, C:, L: or W: followed by a value (a password with a comma in it must be given in hex: P:0x…)',
        w.offset,
      );
    }
    prev = m[1].toUpperCase();
    ipmiItem(o, prev, m[2], w.offset + 2);
  }
  return o;
}

// ---------------------------------------------------------------- sshopts

/** seconds an SSH console gives each step (connect and log in; each step of the entry dialog) */
export const SSH_DEFAULT_TIMEOUT = 30;

export function defaultSshOpts(): SshOpts {
  return cloneSsh({ user: '', key: null, password: Buffer.alloc(0), entry: 'none', term: 'vt100', command: null, leave: null, breakSeq: null, timeout: SSH_DEFAULT_TIMEOUT });
}

/** a private copy (no two consoles share a mutable options object), its password kept out of logs */
export function cloneSsh(o: SshOpts): SshOpts {
  const c: SshOpts = { ...o, password: Buffer.from(o.password), leave: o.leave && Buffer.from(o.leave), breakSeq: o.breakSeq && Buffer.from(o.breakSeq) };
  return hideSecrets(c, () => ({ ...c, password: c.password.length > 0 ? '<redacted>' : '' }));
}

const SSH_KEYS = ['user', 'key', 'entry', 'term', 'cmd', 'leave', 'break', 'timeout'];

/**
 * Bytes written with escapes: \e (ESC), \r, \n, \t, \\, \, (a comma) and
 * \xHH; everything else as it stands (UTF-8).
 */
export function parseEscapes(v: string, offset: number): Buffer {
  const out: number[] = [];
  for (let i = 0; i < v.length; i++) {
    const ch = v[i]!;
    if (ch !== '\\') {
      out.push(...Buffer.from(ch, 'utf8'));
      continue;
    }
    const n = v[++i];
    const simple: Record<string, number> = { e: 0x1b, r: 0x0d, n: 0x0a, t: 0x09, '\\': 0x5c, ',': 0x2c };
    if (n !== undefined && n in simple) out.push(simple[n]!);
    else if (n === 'x' && /^[0-9a-fA-F]{2}$/.test(v.slice(i + 1, i + 3))) {
      out.push(Number.parseInt(v.slice(i + 1, i + 3), 16));
      i += 2;
    } else throw new OptError(`bad escape "\\${n ?? ''}"; known: \\e \\r \\n \\t \\\\ \\, \\xHH`, offset + i - 1);
  }
  return Buffer.from(out);
}

/** "key=value" items split at commas that are not escaped (\,) */
function sshItems(str: string): { text: string; offset: number }[] {
  const out: { text: string; offset: number }[] = [];
  let start = 0;
  for (let i = 0; i <= str.length; i++) {
    if (i < str.length && str[i] === '\\') {
      i++;
      continue;
    }
    if (i < str.length && str[i] !== ',') continue;
    const text = str.slice(start, i);
    const lead = text.length - text.trimStart().length;
    if (text.trim() !== '') out.push({ text: text.trim(), offset: start + lead });
    start = i + 1;
  }
  return out;
}

function sshItem(o: SshOpts, key: string, v: string, offset: number): void {
  switch (key) {
    case 'user':
      if (/[\s@:]/.test(v)) throw new OptError(`sshopts user "${v}" must not contain spaces, "@" or ":"`, offset);
      o.user = v;
      break;
    case 'key':
      o.key = v === '' ? null : v;
      break;
    case 'entry': {
      const e = v.toLowerCase() as SshEntry;
      if (!SSH_ENTRIES.includes(e)) throw new OptError(`sshopts entry must be one of ${SSH_ENTRIES.join(', ')}, got "${v}"`, offset);
      o.entry = e;
      break;
    }
    case 'term':
      if (!/^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(v)) throw new OptError(`sshopts term "${v}" is not a terminal type name`, offset);
      o.term = v;
      break;
    case 'cmd':
      o.command = v === '' ? null : parseEscapes(v, offset).toString('utf8');
      break;
    case 'leave':
      o.leave = v === '' ? null : parseEscapes(v, offset);
      break;
    case 'break':
      o.breakSeq = v === '' ? null : parseEscapes(v, offset);
      break;
    default: {
      const n = /^\d+$/.test(v) ? Number(v) : NaN;
      if (!(n >= 1 && n <= 600)) throw new OptError(`sshopts timeout must be 1..600 seconds, got "${v}"`, offset);
      o.timeout = n;
    }
  }
}

/**
 * "key=FILE,entry=ilo,term=vt100,user=NAME,cmd=COMMAND,leave=SEQ,break=SEQ,timeout=SECONDS"
 * (docs/ssh.md). Passwords never come from here: they are in the pswdfile.
 */
export function parseSshOpts(str: string, base: SshOpts = defaultSshOpts()): SshOpts {
  const o = cloneSsh(base);
  for (const w of sshItems(str)) {
    const eq = w.text.indexOf('=');
    const key = (eq < 0 ? w.text : w.text.slice(0, eq)).trim().toLowerCase();
    if (eq < 0 || !SSH_KEYS.includes(key)) {
      const hint = key === 'password' || key === 'pass' ? ' (SSH passwords go in the pswdfile, never in conman.conf)' : '';
      throw new OptError(`unknown sshopts item "${eq < 0 ? w.text : key}"; expected key=value with key one of ${SSH_KEYS.join(', ')}${hint}`, w.offset);
    }
    const raw = w.text.slice(eq + 1);
    const lead = raw.length - raw.trimStart().length;
    sshItem(o, key, raw.trim(), w.offset + eq + 1 + lead);
  }
  if (o.command !== null && o.entry !== 'none') throw new OptError(`sshopts cmd= goes with entry=none (entry=${o.entry} runs its own dialog)`);
  return o;
}

// Keys of the simulated SSH fleet: one host key for every simulated BMC,
// kept in a file so that a client's known_hosts stays right across runs
// (made, mode 600, with a `.pub` beside it, when the file does not exist),
// and the public keys that may log in (OpenSSH authorized_keys format).

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import ssh2 from 'ssh2';
import type { ParsedKey } from 'ssh2';
import { fingerprint } from '../devices/ssh-known-hosts.js';

const { utils } = ssh2;

export interface HostKey {
  file: string;
  /** the private key, OpenSSH format */
  private: Buffer;
  /** `ssh-ed25519 AAAA…` (a known_hosts line's key part) */
  publicLine: string;
  /** SHA256:… as ssh-keygen -l shows it */
  fingerprint: string;
}

/** where the host key is kept when no file is named: the user's state directory, so that it outlives a run */
export function defaultHostKeyFile(): string {
  const state = process.env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state');
  return path.join(state, 'conch-bmcsim', 'ssh_host_ed25519_key');
}

function parsed(data: Buffer | string, what: string): ParsedKey {
  const k = utils.parseKey(data);
  if (k instanceof Error) throw new Error(`${what}: ${k.message}`);
  return first(k);
}

/** parseKey may answer a list (OpenSSH files can hold several keys): the first */
const first = (k: ParsedKey | ParsedKey[]): ParsedKey => (Array.isArray(k) ? k[0]! : k);

/** an SSH wire string: uint32 length, then the bytes */
const sshString = (b: Buffer | string): Buffer => {
  const body = typeof b === 'string' ? Buffer.from(b) : b;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
};

/** PKCS #8 DER of an ed25519 private key, before its 32-byte seed (RFC 8410) */
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');

/**
 * A new ed25519 key pair in OpenSSH's formats (unencrypted `openssh-key-v1`
 * private key, `ssh-ed25519 AAAA… comment` public line), made with node:crypto.
 * ssh2's own generator writes a key that neither it nor ssh-keygen can read
 * again about once in 250 (measured: 83 of 20,000).
 */
export function newEd25519Key(comment: string): { private: string; public: string } {
  // the key from a random seed, not generateKeyPairSync: Node 20 can deadlock when a collection
  // finalizes the generating job while a JWK export of its key holds the key's lock (seen in CI)
  const seed = crypto.randomBytes(32);
  const privateKey = crypto.createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: 'der', type: 'pkcs8' });
  const pub = crypto.createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).subarray(-32);
  const pubBlob = Buffer.concat([sshString('ssh-ed25519'), sshString(pub)]);
  const check = crypto.randomBytes(4);
  let secret = Buffer.concat([check, check, pubBlob, sshString(Buffer.concat([seed, pub])), sshString(comment)]);
  // padded with 1, 2, 3, … to the cipher's block size (8 for "none")
  const pad = (8 - (secret.length % 8)) % 8;
  secret = Buffer.concat([secret, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1))]);
  const count = Buffer.alloc(4);
  count.writeUInt32BE(1);
  const body = Buffer.concat([
    Buffer.from('openssh-key-v1\0'),
    sshString('none'),
    sshString('none'),
    sshString(''),
    count,
    sshString(pubBlob),
    sshString(secret),
  ]);
  const b64 = body.toString('base64').replace(/.{1,70}/g, '$&\n');
  return {
    private: `-----BEGIN OPENSSH PRIVATE KEY-----\n${b64}-----END OPENSSH PRIVATE KEY-----\n`,
    public: `ssh-ed25519 ${pubBlob.toString('base64')} ${comment}`,
  };
}

/** The fleet's host key: read from `file`, or made (ed25519) and written there first. */
export function loadHostKey(file: string): HostKey {
  if (!fs.existsSync(file)) {
    const pair = newEd25519Key('conch-bmcsim');
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    // exclusive: two simulators starting at once keep the first one's key
    try {
      fs.writeFileSync(file, pair.private, { mode: 0o600, flag: 'wx' });
      fs.writeFileSync(`${file}.pub`, `${pair.public}\n`, { mode: 0o644 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new Error(`cannot write host key ${file}: ${(e as Error).message}`);
    }
  }
  let priv: Buffer;
  try {
    priv = fs.readFileSync(file);
  } catch (e) {
    throw new Error(`cannot read host key ${file}: ${(e as Error).message}`);
  }
  const key = parsed(priv, `host key ${file}`);
  if (!key.isPrivateKey()) throw new Error(`host key ${file}: not a private key`);
  const blob = key.getPublicSSH();
  return { file, private: priv, publicLine: `${key.type} ${blob.toString('base64')}`, fingerprint: fingerprint(blob) };
}

/** A key that may log in: its wire form (what a client offers) and the key that checks its signatures. */
export interface AuthorizedKey {
  blob: Buffer;
  key: ParsedKey;
}

/** The public keys of an authorized_keys file (options before the key type are skipped, as are lines it cannot read). */
export function readAuthorizedKeys(file: string): AuthorizedKey[] {
  const text = fs.readFileSync(file, 'utf8');
  const out: AuthorizedKey[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    // `[options] type base64 [comment]`: the key is the first field that parses
    const f = line.split(/\s+/);
    for (let i = 0; i + 1 < f.length; i++) {
      const k = utils.parseKey(`${f[i]} ${f[i + 1]}`);
      if (!(k instanceof Error)) {
        const key = first(k);
        out.push({ blob: key.getPublicSSH(), key });
        break;
      }
    }
  }
  if (out.length === 0) throw new Error(`${file}: no public key in it`);
  return out;
}

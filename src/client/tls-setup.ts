// `--tls`: the daemon connection wrapped in TLS. The PEM files are read
// before anything touches the network so a bad path is reported by name.
// The server certificate is checked against --ca alone when given, else the
// system's CA bundle (Node's built-in list only when no bundle is found), and
// against the host name the user typed, not the address it resolved to.

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { FatalError, sysText } from './errors.js';

export interface TlsFiles {
  ca?: string;
  cert?: string;
  key?: string;
}

/** Where distributions keep the system trust store (OpenSSL's SSL_CERT_FILE first). */
const SYSTEM_BUNDLES = [
  '/etc/ssl/certs/ca-certificates.crt', // Debian, Ubuntu, Alpine
  '/etc/pki/tls/certs/ca-bundle.crt', // RHEL, Fedora
  '/etc/ssl/ca-bundle.pem', // SUSE
  '/etc/ssl/cert.pem', // BSDs
];

/** A daemon that accepts TCP but never finishes the handshake is probably not speaking TLS. */
const HANDSHAKE_TIMEOUT_MS = 20_000;

function readPem(what: string, file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new FatalError(`Unable to open ${what} "${file}": ${sysText(e)}`);
  }
}

function systemCas(env: NodeJS.ProcessEnv): Buffer | undefined {
  for (const file of [env.SSL_CERT_FILE, ...SYSTEM_BUNDLES]) {
    if (!file) continue;
    try {
      return fs.readFileSync(file);
    } catch {
      /* not this distribution's path */
    }
  }
  return undefined;
}

/** OpenSSL's own short reason when the error comes from OpenSSL, else Node's message. */
const reasonOf = (e: unknown): string => {
  const err = e as { library?: string; reason?: string; message?: string };
  if (err?.library && err.reason) return err.reason;
  return err?.message ?? String(e);
};

/** The trust anchors and client identity, checked now so that failures name the file. */
export function loadTlsContext(files: TlsFiles, env: NodeJS.ProcessEnv = process.env): tls.SecureContext {
  let ca: Buffer | undefined;
  if (files.ca) {
    ca = readPem('CA file', files.ca);
    // Node accepts a file without certificates and then trusts nothing: say so instead.
    if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw new FatalError(`CA file "${files.ca}" holds no PEM certificate`);
    try {
      tls.createSecureContext({ ca });
    } catch (e) {
      throw new FatalError(`Unable to use CA file "${files.ca}": ${reasonOf(e)}`);
    }
  } else {
    ca = systemCas(env);
  }
  if (!files.cert || !files.key) return tls.createSecureContext({ ca });
  const cert = readPem('certificate file', files.cert);
  const key = readPem('key file', files.key);
  try {
    return tls.createSecureContext({ ca, cert, key });
  } catch (e) {
    throw new FatalError(`Unable to use certificate "${files.cert}" with key "${files.key}": ${reasonOf(e)}`);
  }
}

/**
 * What went wrong, with a hint where OpenSSL's text does not say what to do.
 * `handshake`: a reset or silence then suggests a port that does not speak TLS.
 */
export function tlsErrorText(e: unknown, handshake: boolean): string {
  const err = e as NodeJS.ErrnoException;
  const code = err?.code ?? '';
  const text = typeof err?.errno === 'number' ? sysText(e) : reasonOf(e);
  if (code.includes('CERTIFICATE_REQUIRED')) return `${text} (the daemon wants a client certificate: --cert and --key)`;
  if (handshake && ['ERR_SSL_WRONG_VERSION_NUMBER', 'ECONNRESET', 'ETIMEDOUT'].includes(code)) {
    return `${text} (is this the daemon's TLS port?)`;
  }
  return text;
}

/** TLS over an open TCP connection to `host` (as typed: it names the certificate to expect). */
export function startTls(raw: net.Socket, host: string, secureContext: tls.SecureContext): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({
      socket: raw,
      secureContext,
      // SNI carries names only, never addresses.
      servername: net.isIP(host) ? undefined : host,
      checkServerIdentity: (_name, cert) => tls.checkServerIdentity(host, cert),
    });
    const fail = (e: Error): void => {
      clearTimeout(timer);
      s.destroy();
      reject(e);
    };
    const timer = setTimeout(() => {
      const e: NodeJS.ErrnoException = new Error('TLS handshake timed out');
      e.code = 'ETIMEDOUT';
      fail(e);
    }, HANDSHAKE_TIMEOUT_MS);
    s.once('error', fail);
    s.once('secureConnect', () => {
      clearTimeout(timer);
      s.removeListener('error', fail);
      resolve(s);
    });
  });
}

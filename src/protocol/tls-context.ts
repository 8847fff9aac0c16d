// The TLS listener's certificate, key and client CA, read from the files
// `server tlscert=`, `tlskey=` and `tlsclientca=` name — at start and again on
// every reload, so a renewed certificate is served without a restart (the
// connections already open keep theirs). And what a client's certificate
// proves: its subject's CN, once verified against the client CA.

import * as fs from 'node:fs';
import type * as tls from 'node:tls';
import type { ServerConfig } from '../config/types.js';

export class TlsSetupError extends Error {}

/** The listener's options from the files; a clear error naming the key and file otherwise. */
export function tlsOptions(s: ServerConfig): tls.SecureContextOptions & { requestCert: boolean } {
  if (!s.tlsCert || !s.tlsKey) throw new TlsSetupError('server tlscert= and tlskey= are both needed for the TLS listener');
  const cert = readPem('tlscert', s.tlsCert, 'CERTIFICATE');
  const key = readPem('tlskey', s.tlsKey, 'PRIVATE KEY');
  const ca = s.tlsClientCa ? readPem('tlsclientca', s.tlsClientCa, 'CERTIFICATE') : undefined;
  return { cert, key, ca, requestCert: ca !== undefined };
}

/** Whether a listener is wanted: a certificate or key named (one without the other is an error at start). */
export const wantsTls = (s: ServerConfig): boolean => s.tlsCert !== null || s.tlsKey !== null;

function readPem(keyName: string, file: string, kind: string): Buffer {
  let b: Buffer;
  try {
    b = fs.readFileSync(file);
  } catch (e) {
    throw new TlsSetupError(`server ${keyName}=${file}: cannot read it: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (!b.toString('latin1').includes(`-----BEGIN `) || !b.toString('latin1').includes(kind)) {
    throw new TlsSetupError(`server ${keyName}=${file}: not a PEM ${kind.toLowerCase()}`);
  }
  return b;
}

/**
 * The identity a TLS client's certificate proves: null when it presented
 * none; an error text when it presented one the client CA does not vouch for.
 */
export function peerCertificate(sock: tls.TLSSocket): { user: string | null; error: string | null } {
  const cert = sock.getPeerCertificate();
  if (!cert || Object.keys(cert).length === 0) return { user: null, error: null };
  if (!sock.authorized) return { user: null, error: String(sock.authorizationError ?? 'not verified') };
  const cn = cert.subject?.CN;
  const name = Array.isArray(cn) ? cn[0] : cn;
  if (!name) return { user: null, error: 'the certificate has no subject CN' };
  return { user: name, error: null };
}

// `conchd -t`: the files the server keys name (users, access rules, TLS
// material, the alert rules) are checked as the start would read them, so a
// typo in a rules file is found before the restart, not by it.

import { effectiveRules } from '../alerts/rules.js';
import type { ServerConfig } from '../config/types.js';
import { tlsOptions, wantsTls } from '../protocol/tls-context.js';
import { AccessRules } from './rules.js';
import { UsersFile } from './users.js';

/** Every problem found, one line each (none: all good). */
export function checkAccessFiles(s: ServerConfig, warn: (m: string) => void): string[] {
  const errors: string[] = [];
  const attempt = (fn: () => void): void => {
    try {
      fn();
    } catch (e) {
      errors.push(...(e as Error).message.split('\n'));
    }
  };
  if (s.usersFile) attempt(() => UsersFile.load(s.usersFile!, warn));
  if (s.accessFile) attempt(() => AccessRules.load(s.accessFile!));
  if (wantsTls(s)) attempt(() => tlsOptions(s));
  else if (s.tlsClientCa) errors.push('server tlsclientca= needs tlscert= and tlskey= (there is no TLS listener without them)');
  // the alert rules as the daemon's AlertManager reads them: every bad line as file:line:col
  if (s.alertsFile) attempt(() => effectiveRules({ defaults: s.alertDefaults, file: s.alertsFile }));
  return errors;
}

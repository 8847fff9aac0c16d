// What a reload says: the clients' notices and the daemon log's lines.
// Key names only, never a value (credentials are values).

import type { ServerConfig } from '../config/types.js';
import type { ConfigDiff, ConsoleKey, ServerChange } from './config-diff.js';

/** to a changed console's clients (and its log) */
export const changedNotice = (keys: ConsoleKey[]): string =>
  `configuration changed by a reload (${keys.join(', ')}): reconnecting`;

/** the one summary line of a reload that was applied */
export function summaryLine(file: string, d: ConfigDiff, failed: number): string {
  const s = `Reloaded ${file}: ${d.added.length} added, ${d.removed.length} removed, ${d.changed.length} changed, ${d.unchanged.length} unchanged`;
  return failed > 0 ? `${s} (${failed} not applied, see above)` : s;
}

/** the one line of a reload that was refused (each error has a line of its own before it) */
export const refusedLine = (file: string, errors: number): string =>
  `Reload of ${file} refused: ${errors} error${errors === 1 ? '' : 's'}; nothing changed, the configuration in force stays (logs reopened)`;

/** a SERVER value for the log: never a file's content, just the setting */
function shown(v: unknown): string {
  if (v === null || v === undefined) return '(unset)';
  if (typeof v === 'boolean') return v ? 'on' : 'off';
  if (Array.isArray(v)) return `"${v.join(':')}"`;
  if (typeof v === 'object') return `"${(v as { path?: string }).path ?? JSON.stringify(v)}"`;
  return typeof v === 'string' ? `"${v}"` : String(v);
}

/** a SERVER key that needs a restart, or that conch does not use */
export function serverKeyLine(ch: ServerChange, before: ServerConfig, after: ServerConfig): string {
  // ipmithreads unset means chosen from the IPMI console count
  const show = (v: unknown): string => (v === null && ch.field === 'ipmiThreads' ? 'auto' : shown(v));
  const was = show(before[ch.field]);
  const now = show(after[ch.field]);
  if (ch.apply === 'restart') return `Reload: server ${ch.key} changed (${was} → ${now}) but takes a restart of conchd; ${was} stays in force`;
  return `Reload: server ${ch.key} changed (${was} → ${now}); conch does not use it`;
}

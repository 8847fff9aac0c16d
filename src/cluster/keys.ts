// The cluster's keys in etcd, under `server clusterprefix=` (P):
//
//   P nodes/NODE       {"addr","alive","started"}  bound to NODE's lease: the live nodes
//   P owner/CONSOLE    {"node","at"}               bound to the owner's lease; its create
//                                                  revision is the owner's fencing token
//   P released/CONSOLE {"node","rev","at"}         no lease: the owner of token `rev`
//                                                  stopped at `at` and handed it back
//   P held/CONSOLE     {"node","at","sessions"}    no lease: the last owner, when it
//                                                  last said so, and its IPMI sessions
//                                                  that may hold SOL at the BMC
//
// Values are read as hostile: anything malformed is ignored.

import type { EtcdKv } from './etcd.js';
import type { SessionRecordEntry } from '../ipmi/session-record.js';

export interface NodeValue {
  addr: string;
  /** wall clock ms of its last renewal */
  alive: number;
  started: number;
}
export interface OwnerValue {
  node: string;
  at: number;
}
export interface ReleasedValue {
  node: string;
  rev: number;
  at: number;
}
export interface HeldValue {
  node: string;
  at: number;
  sessions: SessionRecordEntry[];
}

export type Kind = 'nodes' | 'owner' | 'released' | 'held';
const KINDS: Kind[] = ['nodes', 'owner', 'released', 'held'];

export class Keys {
  constructor(readonly prefix: string) {}
  node(n: string): string {
    return `${this.prefix}nodes/${n}`;
  }
  owner(c: string): string {
    return `${this.prefix}owner/${c}`;
  }
  released(c: string): string {
    return `${this.prefix}released/${c}`;
  }
  held(c: string): string {
    return `${this.prefix}held/${c}`;
  }
  /** which kind of key, and the node or console it names */
  parse(key: string): { kind: Kind; name: string } | null {
    if (!key.startsWith(this.prefix)) return null;
    const rest = key.slice(this.prefix.length);
    const slash = rest.indexOf('/');
    const kind = rest.slice(0, slash) as Kind;
    if (slash <= 0 || !KINDS.includes(kind) || slash === rest.length - 1) return null;
    return { kind, name: rest.slice(slash + 1) };
  }
}

function obj(kv: EtcdKv | null): Record<string, unknown> | null {
  if (!kv || kv.value.length > 64 * 1024) return null;
  try {
    const j = JSON.parse(kv.value) as unknown;
    return typeof j === 'object' && j !== null && !Array.isArray(j) ? (j as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
const str = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 256;
const time = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

export function nodeValue(kv: EtcdKv | null): NodeValue | null {
  const j = obj(kv);
  return j && str(j.addr) && time(j.alive) && time(j.started) ? { addr: j.addr, alive: j.alive, started: j.started } : null;
}
export function ownerValue(kv: EtcdKv | null): OwnerValue | null {
  const j = obj(kv);
  return j && str(j.node) && time(j.at) ? { node: j.node, at: j.at } : null;
}
export function releasedValue(kv: EtcdKv | null): ReleasedValue | null {
  const j = obj(kv);
  return j && str(j.node) && time(j.rev) && time(j.at) ? { node: j.node, rev: j.rev, at: j.at } : null;
}
export function heldValue(kv: EtcdKv | null): HeldValue | null {
  const j = obj(kv);
  if (!j || !str(j.node) || !time(j.at) || !Array.isArray(j.sessions)) return null;
  const sessions = j.sessions
    .filter((e: unknown): e is SessionRecordEntry => {
      const x = e as SessionRecordEntry;
      return typeof e === 'object' && e !== null && Number.isInteger(x.sid) && x.sid > 0 && x.sid <= 0xffffffff && time(x.at);
    })
    .slice(-16)
    .map((e) => ({ sid: e.sid, at: e.at }));
  return { node: j.node, at: j.at, sessions };
}

/** an error's text on one line, for the daemon log (OpenSSL's end in a newline; a peer's may hold anything): controls as one space, at most 300 characters */
export function oneLine(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\s*[\x00-\x1f\x7f]+\s*/g, ' ').trim().slice(0, 300);
}

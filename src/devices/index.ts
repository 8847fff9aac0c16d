// dev= spec → device module. One module per console type lives beside this file.

import type { ConsoleConfig, ServerConfig } from '../config/types.js';
import type { Device } from './device.js';
import { TelnetDevice } from './telnet.js';
import { UnixDevice } from './unix.js';
import { SerialDevice } from './serial.js';
import { ProcessDevice } from './process.js';
import { TestDevice } from './test-device.js';
import { IpmiDevice } from './ipmi.js';
import { SshDevice } from './ssh.js';
import { defaultStateDir } from '../daemon/state-dir.js';
import * as path from 'node:path';
import type { IpmiThreads } from './ipmi-threads.js';
import type { SessionRecordEntry, SessionStore } from '../ipmi/session-record.js';
import type { IpmiSpec } from './ipmi.js';
import { bareHost } from './socket-util.js';

/** what a cluster hands from one owner of an IPMI console to the next (src/cluster/) */
export interface SolHandover {
  /** the previous owner's sessions at the BMC: SOL held by one of them is taken back at once */
  earlier: SessionRecordEntry[];
  /** told this node's sessions that may hold SOL, to publish for the next owner */
  onSessions: (list: SessionRecordEntry[]) => void;
}

/** `ipmiThreads`: the IPMI threads, if IPMI consoles run on threads of their own */
/**
 * The device of console `c`. An IPMI console's sessions (those that may hold
 * SOL at its BMC) come from and go to `sessions`, the daemon's record of
 * them across restarts, and to and from a cluster's `handover`; the device
 * itself only sees earlier sessions and is told of changes.
 */
export function createDevice(c: ConsoleConfig, server: ServerConfig, ipmiThreads: IpmiThreads | null = null, handover?: SolHandover, sessions?: SessionStore | null): Device {
  const spec = c.spec;
  switch (spec.type) {
    case 'telnet':
      return new TelnetDevice(spec, { keepalive: server.keepalive });
    case 'unix':
      return new UnixDevice(spec);
    case 'serial':
      return new SerialDevice(spec);
    case 'process':
      return new ProcessDevice(spec, { consoleName: c.name, ptyMode: c.ptyMode });
    case 'test':
      return new TestDevice(spec);
    case 'ipmi': {
      const ctx = { consoleName: c.name, steal: c.solSteal, ...solSessions(c.name, spec, handover, sessions) };
      return ipmiThreads ? ipmiThreads.device(spec, ctx) : new IpmiDevice(spec, ctx);
    }
    case 'ssh':
      return new SshDevice(spec, { consoleName: c.name, knownHosts: server.sshKnownHosts ?? path.join(server.stateDir ?? defaultStateDir(), 'known_hosts'), hostKeys: server.sshHostKeys });
  }
}

/** an IPMI console's earlier sessions (recorded by the previous run, handed over by another node) and who is told of changes */
function solSessions(name: string, spec: IpmiSpec, handover?: SolHandover, store?: SessionStore | null): { earlier?: SessionRecordEntry[]; onSessions?: (list: SessionRecordEntry[]) => void } {
  if (!store && !handover) return {};
  const bmc = `${bareHost(spec.host)}:${spec.port}`;
  return {
    earlier: [...(store?.recorded(name, bmc) ?? []), ...(handover?.earlier ?? [])],
    onSessions: (list) => {
      store?.save(name, bmc, list);
      handover?.onSessions(list);
    },
  };
}

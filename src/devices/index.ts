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
import type { SessionRecordEntry } from '../ipmi/session-record.js';

/** what a cluster hands from one owner of an IPMI console to the next (src/cluster/) */
export interface SolHandover {
  /** the previous owner's sessions at the BMC: SOL held by one of them is taken back at once */
  earlier: SessionRecordEntry[];
  /** told this node's sessions that may hold SOL, to publish for the next owner */
  onSessions: (list: SessionRecordEntry[]) => void;
}

/** `ipmiThreads`: the IPMI threads, if IPMI consoles run on threads of their own */
export function createDevice(c: ConsoleConfig, server: ServerConfig, ipmiThreads: IpmiThreads | null = null, handover?: SolHandover): Device {
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
    case 'ipmi':
      if (ipmiThreads) return ipmiThreads.device(spec, { consoleName: c.name, steal: c.solSteal, stateDir: server.stateDir, ...handover });
      return new IpmiDevice(spec, { consoleName: c.name, steal: c.solSteal, stateDir: server.stateDir, ...handover });
    case 'ssh':
      return new SshDevice(spec, { consoleName: c.name, knownHosts: server.sshKnownHosts ?? path.join(server.stateDir ?? defaultStateDir(), 'known_hosts'), hostKeys: server.sshHostKeys });
  }
}

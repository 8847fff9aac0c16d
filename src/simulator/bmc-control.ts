// The control channel: a small HTTP/JSON API on a loopback address.
//
//   GET  /bmcs                      every BMC: status and counters
//   GET  /bmcs/NAME                 one BMC
//   GET  /counters                  fleet totals
//   POST /bmcs/NAME/steal    {"seconds": T}           someone else takes SOL now for T s
//   POST /bmcs/NAME/burst    {"bytes": N}             the host prints about N bytes of [seq] lines now
//   POST /bmcs/NAME/input    {"data": "text"}         type at the host's serial port directly
//   POST /bmcs/NAME/faults   {"loss": 0.1, "delayMs": 50, "jitterMs": 20}
//   POST /bmcs/NAME/profile  {"profile": "openbmc", "sessionTimeout": S}   (timeout optional, seconds)
//   POST /bmcs/NAME/restart  {"seconds": T}           BMC restart: sessions gone, silent for T s
//   POST /bmcs/NAME/rate     {"bytesPerSec": R}       steady output of this host
//   POST /fleet/rate         {"bytesPerSec": R}       steady output of every host (IPMI, telnet and SSH)
//
// SSH mode (ssh-fleet.ts), one simulated BMC's SSH server and host each:
//   GET  /ssh                       every SSH host: status and counters
//   GET  /ssh/NAME                  one
//   POST /ssh/NAME/inuse    {"on": true}              another session holds the serial port (CLI fronts:
//                                                     the session in the console is put back at the prompt)
//                                                     until {"on": false}
//   POST /ssh/NAME/steal    {"seconds": T}            the same for T seconds
//   POST /ssh/NAME/burst, /input, /rate               as for /bmcs
//   POST /ssh/NAME/front    {"front": "ilo"}          the front later sessions get
//   POST /ssh/NAME/restart  {"seconds": T}            sessions cut off, connections refused for T s
//
// NAME may be `*` for every BMC (every SSH host). Answers are JSON; errors are {"error": "..."}
// with status 400/404. Credentials never appear in answers.

import * as http from 'node:http';
import type { BmcFleet } from './bmc-fleet.js';
import { profileByName } from './bmc-profiles.js';
import type { Bmc } from './bmc-server.js';
import type { SshBmc, SshFleet } from './ssh-fleet.js';
import { FRONT_KINDS, type FrontKind } from './ssh-front.js';

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function num(body: Record<string, unknown>, key: string, min: number, max: number, dflt?: number): number {
  const v = body[key] ?? dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw new HttpError(400, `"${key}" must be a number from ${min} to ${max}`);
  }
  return v;
}

export function totals(fleet: BmcFleet, ssh?: SshFleet | null): Record<string, number> {
  // sessions: opened since the start (each BMC's counter); liveSessions: open now
  const t: Record<string, number> = { bmcs: fleet.bmcs.length, liveSessions: 0, activeSol: 0 };
  for (const b of fleet.bmcs) {
    t.liveSessions += b.sessionCount;
    if (b.solOwner()) t.activeSol++;
    for (const [k, v] of Object.entries(b.counters)) t[k] = (t[k] ?? 0) + v;
  }
  return ssh && ssh.hosts.length > 0 ? { ...t, ...ssh.totals() } : t;
}

/** what the host behind a BMC or an SSH server is told: the same for both */
function hostAction(fleet: BmcFleet, host: Bmc['host'], action: string, body: Record<string, unknown>): boolean {
  switch (action) {
    case 'burst':
      host.emit(num(body, 'bytes', 1, 10_000_000));
      return true;
    case 'input':
      if (typeof body.data !== 'string') throw new HttpError(400, '"data" must be a string');
      host.input(body.data);
      return true;
    case 'rate':
      fleet.setHostRate(host, num(body, 'bytesPerSec', 0, 10_000_000));
      return true;
  }
  return false;
}

function sshAct(fleet: BmcFleet, b: SshBmc, action: string, body: Record<string, unknown>): void {
  if (hostAction(fleet, b.host, action, body)) return;
  switch (action) {
    case 'inuse':
      if (typeof body.on !== 'boolean') throw new HttpError(400, '"on" must be true or false');
      b.port.setHeldElsewhere(body.on);
      return;
    case 'steal':
      b.port.setHeldElsewhere(true, num(body, 'seconds', 0, 86400, 10));
      return;
    case 'front':
      if (!FRONT_KINDS.includes(body.front as FrontKind)) throw new HttpError(400, `"front" must be one of ${FRONT_KINDS.join(', ')}`);
      b.port.setFront(body.front as FrontKind);
      return;
    case 'restart':
      b.restart(num(body, 'seconds', 0, 3600, 0));
      return;
  }
  throw new HttpError(404, `unknown action '${action}'`);
}

/** /ssh, /ssh/NAME and /ssh/NAME/ACTION */
function sshRoute(fleet: BmcFleet, ssh: SshFleet | null, method: string, parts: string[], body: Record<string, unknown>): unknown {
  const all = ssh?.hosts ?? [];
  if (method === 'GET' && parts.length === 1) return all.map((b) => b.status());
  const targets = parts[1] === '*' ? all : [ssh?.get(parts[1]!)].filter((b): b is SshBmc => !!b);
  if (targets.length === 0) throw new HttpError(404, `no SSH host named '${parts[1]}'`);
  if (method === 'GET' && parts.length === 2) return parts[1] === '*' ? targets.map((b) => b.status()) : targets[0]!.status();
  if (method === 'POST' && parts.length === 3) {
    for (const b of targets) sshAct(fleet, b, parts[2]!, body);
    return { ok: true, hosts: targets.length };
  }
  throw new HttpError(404, `no such endpoint: ${method} /${parts.join('/')}`);
}

function act(fleet: BmcFleet, b: Bmc, action: string, body: Record<string, unknown>): void {
  if (hostAction(fleet, b.host, action, body)) return;
  switch (action) {
    case 'steal':
      b.steal(num(body, 'seconds', 0, 86400, 10));
      return;
    case 'faults':
      b.faults = {
        loss: num(body, 'loss', 0, 1, b.faults.loss),
        delayMs: num(body, 'delayMs', 0, 60000, b.faults.delayMs),
        jitterMs: num(body, 'jitterMs', 0, 60000, b.faults.jitterMs),
      };
      return;
    case 'profile':
      try {
        b.profile = profileByName(String(body.profile));
      } catch (e) {
        throw new HttpError(400, (e as Error).message);
      }
      if (body.sessionTimeout !== undefined) b.profile = { ...b.profile, sessionTimeoutMs: num(body, 'sessionTimeout', 0.1, 86400) * 1000 };
      return;
    case 'restart':
      b.restart(num(body, 'seconds', 0, 3600, 0));
      return;
  }
  throw new HttpError(404, `unknown action '${action}'`);
}

function route(fleet: BmcFleet, ssh: SshFleet | null, method: string, url: string, body: Record<string, unknown>): unknown {
  const parts = url.split('?')[0].split('/').filter(Boolean).map(decodeURIComponent);
  if (method === 'GET' && parts.length === 1 && parts[0] === 'counters') return totals(fleet, ssh);
  if (parts[0] === 'ssh') return sshRoute(fleet, ssh, method, parts, body);
  if (method === 'GET' && parts.length === 1 && parts[0] === 'bmcs') return fleet.bmcs.map((b) => b.status());
  if (method === 'POST' && parts.length === 2 && parts[0] === 'fleet' && parts[1] === 'rate') {
    fleet.setRate(num(body, 'bytesPerSec', 0, 10_000_000));
    return { ok: true };
  }
  if (parts[0] === 'bmcs' && parts.length >= 2) {
    const targets = parts[1] === '*' ? fleet.bmcs : [fleet.get(parts[1])].filter((b): b is Bmc => !!b);
    if (targets.length === 0) throw new HttpError(404, `no BMC named '${parts[1]}'`);
    if (method === 'GET' && parts.length === 2) return parts[1] === '*' ? targets.map((b) => b.status()) : targets[0].status();
    if (method === 'POST' && parts.length === 3) {
      for (const b of targets) act(fleet, b, parts[2], body);
      return { ok: true, bmcs: targets.length };
    }
  }
  throw new HttpError(404, `no such endpoint: ${method} ${url}`);
}

/** Start the control server (of the BMC fleet, and of the SSH hosts when there are some); resolves with the server. */
export async function startControl(fleet: BmcFleet, port: number, ssh: SshFleet | null = null, host = '127.0.0.1'): Promise<http.Server> {
  const srv = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= 1 << 20) chunks.push(c);
    });
    req.on('end', () => {
      let status = 200;
      let answer: unknown;
      try {
        const text = Buffer.concat(chunks).toString('utf8').trim();
        let body: Record<string, unknown> = {};
        if (text) {
          try {
            body = JSON.parse(text) as Record<string, unknown>;
          } catch {
            throw new HttpError(400, 'request body is not JSON');
          }
          if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'request body must be a JSON object');
        }
        answer = route(fleet, ssh, req.method ?? 'GET', req.url ?? '/', body);
      } catch (e) {
        status = e instanceof HttpError ? e.status : 500;
        answer = { error: (e as Error).message };
      }
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer) + '\n');
    });
  });
  await new Promise<void>((resolve, reject) => {
    srv.once('error', (e) => reject(new Error(`control channel: cannot listen on ${host}:${port}: ${e.message}`)));
    srv.listen(port, host, () => resolve());
  });
  return srv;
}

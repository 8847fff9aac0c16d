#!/usr/bin/env node
// The built-in demo: starts a conch-bmcsim fleet of simulated servers behind
// IPMI BMCs, writes a conman.conf for them plus a few other console types
// (conman's `test:` load generators, simulated hosts on process and
// unix-socket consoles) into ./demo-run, starts conchd on it in the
// foreground and says how to attach. Ctrl-C stops everything.
//   demo [--port N] [--http-port N] [--dir DIR] [--bmcs N]

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const opt = (k: string): string | undefined => {
  const i = argv.indexOf(k);
  return i >= 0 ? argv[i + 1] : undefined;
};

/** Start the BMC fleet; resolves with its control URL once it is ready. */
function startFleet(bmcs: number, basePort: number, children: ChildProcess[]): Promise<{ control: string; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    [path.join(here, 'conch-bmcsim.js'), '--count', String(bmcs), '--base-port', String(basePort), '--heartbeat', '10', '--control-port', '0', '--quiet'],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /# control (\S+)/.exec(out);
      if (m && out.includes('# ready')) resolve({ control: m[1]!, child });
    });
    child.once('exit', (code) => reject(new Error(`conch-bmcsim exited (${code}): is UDP port range ${basePort}+ in use? try --bmc-port`)));
  });
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

interface Demo {
  dir: string;
  logdir: string;
  confFile: string;
  /** unix socket of the simulated VM console */
  sock: string;
  bmcs: number;
}

/** The demo's conman.conf: the BMC fleet's consoles, conman's test: consoles, simulated hosts. */
function demoConf(d: Demo, port: number, httpPort: number, bmcPort: number): string {
  const node = process.execPath;
  const hostBin = path.join(here, 'conch-host.js');
  const nodes = Array.from({ length: d.bmcs }, (_, i) => {
    const name = `node${String(i + 1).padStart(2, '0')}`;
    return `console name="${name}" dev="ipmi:127.0.0.1:${bmcPort + i}" ipmiopts="U:admin,P:password"`;
  }).join('\n');

  return `# conch demo configuration (conman.conf syntax)
server port=${port}
server httpport=${httpPort}
server loopback=on
server logdir="${d.logdir}"
server pidfile="${path.join(d.dir, 'conchd.pid')}"
server statedir="${path.join(d.dir, 'state')}"
server timestamp=1h
global log="%N.log"
global logopts="timestamp"

# simulated servers behind IPMI BMCs (conch-bmcsim), native SOL
${nodes}

# conman's load-test device: bursts of printable text
console name="test1" dev="test:" testopts="b:80,m:3000,n:1000,p:100"
console name="test2" dev="test:" testopts="b:200,m:10000,n:2000,p:50"
console name="test3" dev="test:" testopts="b:40,m:5000,n:5000,p:100"

# simulated servers on a pseudo-terminal (process consoles):
# boot log, login prompt (any user/password), a small shell, heartbeat lines
console name="host1" dev="${node} ${hostBin} --name %N --interval 5"
console name="host2" dev="${node} ${hostBin} --name %N --interval 15"

# a simulated VM console on a unix socket
console name="vm1" dev="unix:${d.sock}"
`;
}

/** What to do next, once conchd listens on `port` (and its web terminal on `http`). */
function banner(d: Demo, port: string, http: string, control: string): string {
  const conch = path.relative(process.cwd(), path.join(here, 'conch.js'));
  const logdir = path.relative(process.cwd(), d.logdir);
  return `
  conch demo is running: conchd holds ${d.bmcs + 6} consoles (config: ${path.relative(process.cwd(), d.confFile)}):
  node01..node${String(d.bmcs).padStart(2, '0')} are simulated servers behind simulated IPMI BMCs (SOL), host1/host2
  simulated servers on process consoles, vm1 a VM on a unix socket, test1..3 conman's load generators.

  In a browser: http://127.0.0.1:${http}/   (the console list; click one for its terminal)
  In another terminal:
    node ${conch} -d 127.0.0.1:${port} -q          list the consoles
    node ${conch} -d 127.0.0.1:${port} node01      attach (log in with any name/password)
    node ${conch} -d 127.0.0.1:${port} -m test1    watch read-only
  Inside a session: &. leaves, &? lists the escapes, &B sends a break (then t for SysRq), &L replays.
  The Debian conman client works too: conman -d 127.0.0.1:${port} node01

  A takeover: someone else grabs node01's SOL for 30 s; conch tells you (attached to node01)
  and logs it, waits without taking it back, and resumes when it is free:
    curl -s -X POST ${control}/bmcs/node01/steal -d '{"seconds":30}'
    tail -f ${logdir}/node01.log

  Console logs: ${logdir}/<name>.log   (tail -f ${logdir}/host1.log)
  Ctrl-C stops the demo.
`;
}

/** conchd in the foreground; its stderr passes through, and the banner follows its "Listening" line. */
function startConchd(d: Demo, control: string, children: ChildProcess[]): ChildProcess {
  const conchd = spawn(process.execPath, [path.join(here, 'conchd.js'), '-F', '-c', d.confFile], { stdio: ['ignore', 'inherit', 'pipe'] });
  children.push(conchd);
  let announced = false;
  let said = '';
  conchd.stderr!.on('data', (chunk: Buffer) => {
    process.stderr.write(chunk);
    if (announced) return;
    said += chunk.toString();
    const tcp = /Listening on TCP port (\d+)/.exec(said);
    const http = /Listening on HTTP port (\d+)/.exec(said);
    if (tcp && http) {
      announced = true;
      process.stdout.write(banner(d, tcp[1]!, http[1]!, control));
    }
  });
  return conchd;
}

async function main(): Promise<void> {
  const dir = path.resolve(opt('--dir') ?? 'demo-run');
  let port = Number(opt('--port') ?? 7890);
  if (!(await portFree(port))) port = 0;
  let httpPort = Number(opt('--http-port') ?? 7892);
  if (!(await portFree(httpPort))) httpPort = 0;
  const d: Demo = { dir, logdir: path.join(dir, 'log'), confFile: path.join(dir, 'conman.conf'), sock: path.join(dir, 'vm1.sock'), bmcs: Number(opt('--bmcs') ?? 24) };
  fs.mkdirSync(d.logdir, { recursive: true });
  const bmcPort = Number(opt('--bmc-port') ?? 16201);
  const children: ChildProcess[] = [];
  const fleet = await startFleet(d.bmcs, bmcPort, children);
  fs.writeFileSync(d.confFile, demoConf(d, port, httpPort, bmcPort));
  fs.chmodSync(d.confFile, 0o600); // it holds the BMC passwords
  const vm = spawn(process.execPath, [path.join(here, 'conch-host.js'), '--name', 'vm1', '--interval', '10', '--unix', d.sock], { stdio: 'ignore' });
  children.push(vm);
  const conchd = startConchd(d, fleet.control, children);

  const stop = (): void => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  conchd.on('exit', (code) => {
    for (const c of [vm, fleet.child]) if (c.exitCode === null) c.kill('SIGTERM');
    process.exit(code ?? 0);
  });
}

main().catch((e: unknown) => {
  process.stderr.write(`demo: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});

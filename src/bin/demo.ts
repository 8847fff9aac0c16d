#!/usr/bin/env node
// The built-in demo: writes a conman.conf with simulated consoles (conman's
// `test:` load generators, simulated hosts on process and unix-socket
// consoles) into ./demo-run, starts conchd on it in the foreground and says
// how to attach. Ctrl-C stops everything.
//   demo [--port N] [--dir DIR]

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

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

async function main(): Promise<void> {
  const dir = path.resolve(opt('--dir') ?? 'demo-run');
  let port = Number(opt('--port') ?? 7890);
  if (!(await portFree(port))) port = 0;
  const logdir = path.join(dir, 'log');
  fs.mkdirSync(logdir, { recursive: true });
  const node = process.execPath;
  const hostBin = path.join(here, 'conch-host.js');
  const sock = path.join(dir, 'vm1.sock');

  const conf = `# conch demo configuration (conman.conf syntax)
server port=${port}
server loopback=on
server logdir="${logdir}"
server pidfile="${path.join(dir, 'conchd.pid')}"
server timestamp=1h
global log="%N.log"
global logopts="timestamp"

# conman's load-test device: bursts of printable text
console name="test1" dev="test:" testopts="b:80,m:3000,n:1000,p:100"
console name="test2" dev="test:" testopts="b:200,m:10000,n:2000,p:50"
console name="test3" dev="test:" testopts="b:40,m:5000,n:5000,p:100"

# simulated servers on a pseudo-terminal (process consoles):
# boot log, login prompt (any user/password), a small shell, heartbeat lines
console name="host1" dev="${node} ${hostBin} --name %N --interval 5"
console name="host2" dev="${node} ${hostBin} --name %N --interval 15"

# a simulated VM console on a unix socket
console name="vm1" dev="unix:${sock}"
`;
  const confFile = path.join(dir, 'conman.conf');
  fs.writeFileSync(confFile, conf);

  const children: ChildProcess[] = [];
  const vm = spawn(node, [hostBin, '--name', 'vm1', '--interval', '10', '--unix', sock], { stdio: 'ignore' });
  children.push(vm);
  const conchd = spawn(node, [path.join(here, 'conchd.js'), '-F', '-c', confFile], { stdio: ['ignore', 'inherit', 'pipe'] });
  children.push(conchd);

  let announced = false;
  conchd.stderr!.on('data', (d: Buffer) => {
    process.stderr.write(d);
    const m = /Listening on TCP port (\d+)/.exec(d.toString());
    if (m && !announced) {
      announced = true;
      const p = m[1];
      const conch = path.relative(process.cwd(), path.join(here, 'conch.js'));
      process.stdout.write(`
  conch demo is running: conchd holds 6 consoles (config: ${path.relative(process.cwd(), confFile)}).

  In another terminal:
    node ${conch} -d 127.0.0.1:${p} -q          list the consoles
    node ${conch} -d 127.0.0.1:${p} host1       attach (log in with any name/password)
    node ${conch} -d 127.0.0.1:${p} -m test1    watch read-only
  Inside a session: &. leaves, &? lists the escapes, &B sends a break (then t for SysRq), &L replays.
  The Debian conman client works too: conman -d 127.0.0.1:${p} host1

  Console logs: ${path.relative(process.cwd(), logdir)}/<name>.log   (tail -f ${path.relative(process.cwd(), logdir)}/host1.log)
  Ctrl-C stops the demo.
`);
    }
  });

  const stop = (): void => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  conchd.on('exit', (code) => {
    if (vm.exitCode === null) vm.kill('SIGTERM');
    process.exit(code ?? 0);
  });
}

void main();

// The far end of a test SSH console: sshd runs this as its ForceCommand on
// the pty conch asked for (`node ssh-fake-bmc.js MODE CTL`). It plays an
// OpenBMC console (MODE openbmc: the console at once, `~.` after a CR leaves)
// or an HPE iLO command line (MODE ilo: `vsp` starts the virtual serial
// port unless the file CTL.busy exists, `ESC (` returns to the CLI). It
// reports to the test over the unix socket CTL, one JSON object a line:
//   {t:'hello',pid,mode}  {t:'in',data}  (console input, base64)
//   {t:'cli',cmd,result}  {t:'leave'}  {t:'takenover'}
// and prints {t:'out',data} (base64) from the test while in the console;
// {t:'takeover'} puts an iLO session in the console back at its prompt, as
// another session taking the virtual serial port does.

import * as fs from 'node:fs';
import * as net from 'node:net';

const [mode, ctl] = process.argv.slice(2) as [string, string];
const ILO_PROMPT = '\r\n</>hpiLO-> ';

const sock = net.connect(ctl);
const report = (o: object): void => {
  sock.write(`${JSON.stringify(o)}\n`);
};
let inConsole = mode === 'openbmc';
let line = '';
/** console input: the last bytes, to see `ESC (` or CR `~.` across reads */
let recent = '';

sock.on('error', () => process.exit(3));
sock.on('close', () => process.exit(0));
let buf = '';
sock.on('data', (d) => {
  buf += d.toString('latin1');
  for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
    const m = JSON.parse(buf.slice(0, nl)) as { t: string; data?: string };
    buf = buf.slice(nl + 1);
    if (m.t === 'out' && inConsole) process.stdout.write(Buffer.from(m.data ?? '', 'base64'));
    if (m.t === 'takeover' && inConsole && mode === 'ilo') {
      inConsole = false;
      line = '';
      report({ t: 'takenover' });
      process.stdout.write(ILO_PROMPT);
    }
  }
});

report({ t: 'hello', pid: process.pid, mode });
if (process.stdin.isTTY) process.stdin.setRawMode(true);
if (mode === 'ilo') {
  process.stdout.write('User:admin logged-in to ILOFAKE.(127.0.0.1)\r\niLO 5 Standard 2.72 at Sep 04 2022\r\nServer Name: testhost\r\nServer Power: On\r\n' + ILO_PROMPT);
}

function cli(cmd: string): void {
  if (cmd === 'vsp') {
    if (fs.existsSync(`${ctl}.busy`)) {
      report({ t: 'cli', cmd, result: 'busy' });
      process.stdout.write('\r\n\r\nVirtual Serial Port is currently in use by another session.\r\n' + ILO_PROMPT);
      return;
    }
    report({ t: 'cli', cmd, result: 'console' });
    process.stdout.write("\r\n\r\nVirtual Serial Port Active: COM2\r\n\r\nStarting virtual serial port.\r\nPress 'ESC (' to return to the CLI Session.\r\n");
    inConsole = true;
    recent = '';
    return;
  }
  if (cmd === 'exit') {
    report({ t: 'cli', cmd, result: 'exit' });
    process.exit(0);
  }
  report({ t: 'cli', cmd, result: 'unknown' });
  process.stdout.write('\r\nstatus=2\r\nstatus_tag=COMMAND PROCESSING FAILED\r\nerror_tag=COMMAND NOT RECOGNIZED\r\n' + ILO_PROMPT);
}

process.stdin.on('data', (d: Buffer) => {
  if (inConsole) {
    report({ t: 'in', data: d.toString('base64') });
    recent = (recent + d.toString('latin1')).slice(-8);
    if (mode === 'openbmc' && /(?:^|\r)~\.$/.test(recent)) {
      report({ t: 'leave' });
      sock.end(); // exits once the report is out (on 'close')
    }
    if (mode === 'ilo' && recent.endsWith('\x1b(')) {
      report({ t: 'leave' });
      inConsole = false;
      line = '';
      process.stdout.write(ILO_PROMPT);
    }
    return;
  }
  for (const ch of d.toString('latin1')) {
    if (ch === '\r' || ch === '\n') {
      const cmd = line.trim();
      line = '';
      if (cmd) cli(cmd);
      else process.stdout.write(ILO_PROMPT);
      if (inConsole) return;
    } else {
      line += ch;
      process.stdout.write(ch); // the CLI echoes
    }
  }
});
process.stdin.on('end', () => process.exit(0));

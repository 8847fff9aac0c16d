// conchd's command line: conmand's options with the same meanings, plus
// -t/--check to validate a configuration like `nginx -t`.

export interface DaemonArgs {
  config: string;
  foreground: boolean;
  help: boolean;
  kill: boolean;
  license: boolean;
  port: number | null;
  pidfile: string | null;
  query: boolean;
  reconfig: boolean;
  verbose: boolean;
  version: boolean;
  truncate: boolean;
  check: boolean;
}

export const DEFAULT_CONFIG = '/etc/conman.conf';

export const USAGE = `Usage: conchd [OPTIONS]
       conchd passwd [-c FILE] [-g GROUP,GROUP] [--password-file FILE] [-d] USER
       conchd token create NAME -u USER | list | revoke NAME  [-c FILE]

  -c FILE   Specify configuration (default: ${DEFAULT_CONFIG}).
  -F        Run in foreground.
  -h        Display this help.
  -k        Kill daemon running with the same configuration.
  -L        Display license information.
  -p PORT   Specify port number (overrides "server port").
  -P FILE   Specify pidfile (overrides "server pidfile").
  -q        Query whether a daemon runs with the same configuration.
  -r        Reconfigure daemon (SIGHUP): re-read the configuration, apply
            what changed console by console, and reopen its log files. A
            configuration with errors changes nothing but the reopen.
  -t, --check
            Check the configuration and exit (0 if valid, 1 if not).
  -v        Be verbose (log to stderr, debug messages included).
  -V        Display version information.
  -z        Truncate console log files on start.
`;

export class UsageError extends Error {}

export function parseDaemonArgs(argv: string[]): DaemonArgs {
  const a: DaemonArgs = {
    config: process.env.CONCHD_CONF || DEFAULT_CONFIG,
    foreground: false,
    help: false,
    kill: false,
    license: false,
    port: null,
    pidfile: null,
    query: false,
    reconfig: false,
    verbose: false,
    version: false,
    truncate: false,
    check: false,
  };
  const flags: Record<string, keyof DaemonArgs> = {
    F: 'foreground', h: 'help', k: 'kill', L: 'license', q: 'query', r: 'reconfig',
    t: 'check', v: 'verbose', V: 'version', z: 'truncate',
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--check') { a.check = true; continue; }
    if (arg === '--help') { a.help = true; continue; }
    if (arg === '--version') { a.version = true; continue; }
    if (!arg.startsWith('-') || arg === '-') throw new UsageError(`unexpected argument "${arg}"`);
    // bundled short options: -Fv, -c file, -cfile
    for (let j = 1; j < arg.length; j++) {
      const ch = arg[j]!;
      if (ch === 'c' || ch === 'p' || ch === 'P') {
        const val = arg.length > j + 1 ? arg.slice(j + 1) : argv[++i];
        if (val === undefined) throw new UsageError(`option -${ch} requires an argument`);
        if (ch === 'c') a.config = val;
        else if (ch === 'P') a.pidfile = val;
        else {
          const n = Number(val);
          if (!/^\d+$/.test(val) || n > 65535) throw new UsageError(`invalid port "${val}"`);
          a.port = n;
        }
        break;
      }
      const key = flags[ch];
      if (!key) throw new UsageError(`invalid option -- '${ch}'`);
      (a as unknown as Record<string, boolean>)[key] = true;
    }
  }
  return a;
}

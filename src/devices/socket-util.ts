// Small helpers shared by the network devices (telnet, unix, SSH, IPMI): readable
// reasons for socket errors, bare host names, and a guard so that no exception ever escapes a
// socket or timer callback (that would crash the daemon).

/** A short, human-readable reason for a failed or broken socket. */
export function socketErrorReason(err: unknown): string {
  const e = err as NodeJS.ErrnoException | null;
  switch (e?.code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ECONNRESET':
      return 'connection reset by peer';
    case 'ETIMEDOUT':
      return 'connection timed out';
    case 'EHOSTUNREACH':
      return 'host unreachable';
    case 'ENETUNREACH':
      return 'network unreachable';
    case 'ENOTFOUND':
      return 'host not found';
    case 'EAI_AGAIN':
      return 'host lookup failed (temporary)';
    case 'EPIPE':
      return 'broken pipe';
    case 'ENOENT':
      return 'no such file or directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ENOTSOCK':
      return 'not a socket';
    case 'EADDRNOTAVAIL':
      return 'address not available';
    default:
      // socket errors carry no secrets; keep the text short
      return e?.code ?? (e?.message || 'unknown error');
  }
}

/**
 * Wrap a callback so that an exception is reported instead of thrown.
 * `report` itself is guarded too: a failing reporter is ignored.
 */
export function guarded<A extends unknown[]>(
  where: string,
  report: (text: string) => void,
  fn: (...args: A) => void,
): (...args: A) => void {
  return (...args: A) => {
    try {
      fn(...args);
    } catch (e) {
      reportFault(where, report, e);
    }
  };
}

/** An exception caught in a callback of `where`, reported; a failing reporter is ignored. */
export function reportFault(where: string, report: (text: string) => void, e: unknown): void {
  try {
    report(`internal error in ${where}: ${(e as Error)?.message ?? String(e)}`);
  } catch {
    /* nothing more we can do without risking the daemon */
  }
}

/** A host as written in `dev=` (an IPv6 address in brackets) as the network calls want it: no brackets. */
export function bareHost(host: string): string {
  return host.replace(/^\[(.*)\]$/, '$1');
}

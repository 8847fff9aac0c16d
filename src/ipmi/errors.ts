// Errors from the IPMI layer. Messages name the place (which packet, which
// field) and never contain passwords, K_g or derived keys.

/** A datagram or payload that does not parse; the caller drops and counts it. */
export class IpmiDecodeError extends Error {
  constructor(where: string, detail: string) {
    super(`${where}: ${detail}`);
    this.name = 'IpmiDecodeError';
  }
}

/** A protocol step that failed (bad status, completion code, timeout). */
export class IpmiError extends Error {
  constructor(
    message: string,
    /** IPMI completion code or RMCP+ status code when there is one */
    public readonly code: number | null = null,
  ) {
    super(message);
    this.name = 'IpmiError';
  }
}

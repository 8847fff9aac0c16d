// Telnet option negotiation by the "Q method" of RFC 1143. Each option has
// two independent sides: `us` (WILL/WONT, what we do) and `him` (DO/DONT,
// what the peer does). Each side is NO, YES, WANTNO or WANTYES plus a queue
// bit (`opposite`) for a request made while another one is pending.
//
// Why: conman#9 burned 15 % CPU in a negotiation loop between conmand and a
// terminal server. The Q method never answers an acknowledgment with a new
// request, so two compliant ends cannot loop.
//
// Pure logic: every call returns the bytes to send to the peer.

export const IAC = 0xff;
export const DONT = 0xfe;
export const DO = 0xfd;
export const WONT = 0xfc;
export const WILL = 0xfb;
export const SB = 0xfa;
export const BRK = 0xf3;
export const SE = 0xf0;

export const OPT_BINARY = 0;
export const OPT_ECHO = 1;
export const OPT_SGA = 3;

export type QState = 'NO' | 'YES' | 'WANTNO' | 'WANTYES';

interface Side {
  state: QState;
  /** the queue bit: a request for the opposite state is pending */
  opposite: boolean;
  /** replies we sent to requests the peer started */
  answered: number;
}

/**
 * A peer that answers each of our acknowledgments with a fresh request (for
 * example DONT → WILL → DO → WONT → DONT ...) would ping-pong forever even
 * with the Q method. Past this many answers on one option side we follow the
 * peer's word silently. Real negotiation needs a handful.
 */
export const MAX_ANSWERS_PER_OPTION = 20;

export interface OptionPolicy {
  /** options we agree to perform (peer's DO x is answered with WILL x) */
  us: readonly number[];
  /** options we agree the peer performs (peer's WILL x is answered with DO x) */
  him: readonly number[];
}

/** What conman HEAD asks for: DO BINARY, DO ECHO, DO SGA, WILL BINARY, WILL SGA. */
export const CONMAN_POLICY: OptionPolicy = {
  us: [OPT_BINARY, OPT_SGA],
  him: [OPT_BINARY, OPT_ECHO, OPT_SGA],
};

export class TelnetOptions {
  // Sides by option number (0-255), made when first used: a connection
  // negotiates three or four. Arrays, not Maps and Sets: at 9,500 telnet
  // consoles those four hash tables each were 4 MB of the daemon's memory.
  private readonly usSides: Side[] = [];
  private readonly himSides: Side[] = [];

  constructor(private readonly policy: OptionPolicy = CONMAN_POLICY) {}

  /** The requests to send when the connection opens (DO ... first, then WILL ...). */
  start(): number[] {
    const out: number[] = [];
    for (const opt of this.policy.him) out.push(...this.askHim(opt, true));
    for (const opt of this.policy.us) out.push(...this.askUs(opt, true));
    return out;
  }

  /** Is the option enabled on our side (we sent/acknowledged WILL)? */
  usState(opt: number): QState {
    return this.side(this.usSides, opt).state;
  }

  /** Is the option enabled on the peer's side (it sent/acknowledged WILL)? */
  himState(opt: number): QState {
    return this.side(this.himSides, opt).state;
  }

  /** Ask the peer to enable (DO) or disable (DONT) an option. */
  askHim(opt: number, enable: boolean): number[] {
    return this.ask(this.side(this.himSides, opt), enable, enable ? DO : DONT, opt);
  }

  /** Offer (WILL) or withdraw (WONT) an option on our side. */
  askUs(opt: number, enable: boolean): number[] {
    return this.ask(this.side(this.usSides, opt), enable, enable ? WILL : WONT, opt);
  }

  /** The peer sent `cmd` (WILL/WONT/DO/DONT) for `opt`; returns our reply. */
  receive(cmd: number, opt: number): number[] {
    switch (cmd) {
      case WILL:
        return this.gotYes(this.side(this.himSides, opt), this.policy.him.includes(opt), DO, DONT, opt);
      case WONT:
        return this.gotNo(this.side(this.himSides, opt), DO, DONT, opt);
      case DO:
        return this.gotYes(this.side(this.usSides, opt), this.policy.us.includes(opt), WILL, WONT, opt);
      case DONT:
        return this.gotNo(this.side(this.usSides, opt), WILL, WONT, opt);
      default:
        return [];
    }
  }

  private side(sides: Side[], opt: number): Side {
    return (sides[opt & 0xff] ??= { state: 'NO', opposite: false, answered: 0 });
  }

  // RFC 1143 §7, "we want to enable / disable the option"
  private ask(s: Side, enable: boolean, verb: number, opt: number): number[] {
    const want: QState = enable ? 'WANTYES' : 'WANTNO';
    const other: QState = enable ? 'WANTNO' : 'WANTYES';
    const done: QState = enable ? 'YES' : 'NO';
    if (s.state === done) return [];
    if (s.state === (enable ? 'NO' : 'YES')) {
      s.state = want;
      return [IAC, verb, opt];
    }
    if (s.state === other) {
      // a request the other way is in flight: queue ours (or cancel a queued one)
      s.opposite = true;
      return [];
    }
    // already asking for what we want: drop a queued reversal, if any
    s.opposite = false;
    return [];
  }

  // RFC 1143 §7, "upon receipt of WILL" (him) / "upon receipt of DO" (us)
  private gotYes(s: Side, agree: boolean, yes: number, no: number, opt: number): number[] {
    switch (s.state) {
      case 'NO':
        if (agree) s.state = 'YES';
        return answer(s, [IAC, agree ? yes : no, opt]);
      case 'YES':
        return []; // acknowledgment of what is already true: never answered
      case 'WANTNO':
        // the peer answered our disable request with WILL/DO: its error; settle as RFC 1143 says
        if (s.opposite) {
          s.state = 'YES';
          s.opposite = false;
        } else {
          s.state = 'NO';
        }
        return [];
      case 'WANTYES':
        if (s.opposite) {
          s.state = 'WANTNO';
          s.opposite = false;
          return [IAC, no, opt];
        }
        s.state = 'YES';
        return [];
    }
  }

  // RFC 1143 §7, "upon receipt of WONT" (him) / "upon receipt of DONT" (us)
  private gotNo(s: Side, yes: number, no: number, opt: number): number[] {
    switch (s.state) {
      case 'NO':
        return [];
      case 'YES':
        s.state = 'NO';
        return answer(s, [IAC, no, opt]); // the required acknowledgment of a disable
      case 'WANTNO':
        if (s.opposite) {
          s.state = 'WANTYES';
          s.opposite = false;
          return [IAC, yes, opt];
        }
        s.state = 'NO';
        return [];
      case 'WANTYES':
        // refused: stay off and forget any queued request
        s.state = 'NO';
        s.opposite = false;
        return [];
    }
  }
}

/** Reply to a request the peer started, unless it has asked too often. */
function answer(s: Side, reply: number[]): number[] {
  if (s.answered >= MAX_ANSWERS_PER_OPTION) return [];
  s.answered++;
  return reply;
}

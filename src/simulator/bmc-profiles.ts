// Behaviour profiles: what real BMCs differ in when SOL is shared, lost or
// idle, as observed on ipmi_sim and OpenBMC (docs/ipmi.md, "Simulated BMC
// profiles"). Switchable per BMC.

export type ProfileName = 'ipmi_sim' | 'openbmc';

export interface BmcProfile {
  name: ProfileName;
  /** how the displaced SOL owner learns of a Deactivate by someone else */
  notifyDisplaced: 'none' | 'activating' | 'deactivating-bit';
  /** who may Deactivate the SOL payload */
  deactivateBy: 'anyone' | 'owner-or-admin';
  /** session inactivity timeout */
  sessionTimeoutMs: number;
  /** which traffic resets the inactivity timer */
  timeoutRefresh: 'ipmi' | 'any';
  /** BMC→console SOL retransmission interval and resends before giving up */
  solRetryMs: number;
  solRetries: number;
  /** inbound SOL seq must be exactly the next one (else dropped, no ACK); false = re-ACK duplicates */
  strictSeq: boolean;
  /** refuse Activate without the encryption bit on an encrypted session (CC 0x84) */
  requireEncryptBit: boolean;
  /** Get SOL Configuration answers only params 0, 1, 5, 6 (CC 0x80 for the rest) */
  minimalSolConfig: boolean;
}

export const PROFILES: Record<ProfileName, BmcProfile> = {
  ipmi_sim: {
    name: 'ipmi_sim',
    notifyDisplaced: 'none',
    deactivateBy: 'anyone',
    sessionTimeoutMs: 30_000,
    timeoutRefresh: 'ipmi',
    solRetryMs: 1000,
    solRetries: 5,
    strictSeq: false,
    requireEncryptBit: false,
    minimalSolConfig: true,
  },
  openbmc: {
    name: 'openbmc',
    notifyDisplaced: 'activating',
    deactivateBy: 'owner-or-admin',
    sessionTimeoutMs: 60_000,
    timeoutRefresh: 'any',
    solRetryMs: 100,
    solRetries: 7,
    strictSeq: true,
    requireEncryptBit: true,
    minimalSolConfig: false,
  },
};

export function profileByName(name: string): BmcProfile {
  const p = (PROFILES as Record<string, BmcProfile>)[name.replace('-', '_')];
  if (!p) throw new Error(`unknown BMC profile '${name}' (known: ${Object.keys(PROFILES).join(', ')})`);
  return p;
}

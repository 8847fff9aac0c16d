// Network function codes and command numbers of the IPMI commands conch
// (src/ipmi/) and its simulated BMCs (src/simulator/) send or answer. The
// numbers are those of the IPMI v2.0 specification (rev. 1.1): network
// functions in §5.1, Table 5-1 "Network Function Codes"; command numbers in
// Appendix G, Table G-1 "Command Number Assignments and Privilege Levels";
// each command's request and response in the section named next to it.

/** Application requests (IPMI v2.0 §5.1, Table 5-1); a response's netFn is the request's + 1. */
export const NETFN_APP = 0x06;
/** Transport requests (IPMI v2.0 §5.1, Table 5-1): SOL configuration and SOL Activating. */
export const NETFN_TRANSPORT = 0x0c;

// NetFn App (0x06)
/** Get Device ID (IPMI v2.0 §20.1) */
export const CMD_GET_DEVICE_ID = 0x01;
/** Get System GUID (IPMI v2.0 §22.14) */
export const CMD_GET_SYSTEM_GUID = 0x37;
/** Get Channel Authentication Capabilities (IPMI v2.0 §22.13) */
export const CMD_GET_CHANNEL_AUTH_CAPS = 0x38;
/** Set Session Privilege Level (IPMI v2.0 §22.18) */
export const CMD_SET_SESSION_PRIVILEGE = 0x3b;
/** Close Session (IPMI v2.0 §22.19) */
export const CMD_CLOSE_SESSION = 0x3c;
/** Activate Payload (IPMI v2.0 §24.1) */
export const CMD_ACTIVATE_PAYLOAD = 0x48;
/** Deactivate Payload (IPMI v2.0 §24.2) */
export const CMD_DEACTIVATE_PAYLOAD = 0x49;
/** Get Payload Activation Status (IPMI v2.0 §24.3, Table 24-3) */
export const CMD_GET_PAYLOAD_ACTIVATION_STATUS = 0x4a;
/** Get Payload Instance Info (IPMI v2.0 §24.4, Table 24-4) */
export const CMD_GET_PAYLOAD_INSTANCE_INFO = 0x4b;
/** Get Channel Payload Support (IPMI v2.0 §24.8) */
export const CMD_GET_CHANNEL_PAYLOAD_SUPPORT = 0x4e;
/** Get Channel Payload Version (IPMI v2.0 §24.9) */
export const CMD_GET_CHANNEL_PAYLOAD_VERSION = 0x4f;
/** Get Channel Cipher Suites (IPMI v2.0 §22.15) */
export const CMD_GET_CHANNEL_CIPHER_SUITES = 0x54;

// NetFn Transport (0x0C)
/** SOL Activating (IPMI v2.0 §26.1): sent by the BMC, e.g. OpenBMC's to a displaced SOL owner */
export const CMD_SOL_ACTIVATING = 0x20;
/** Set SOL Configuration Parameters (IPMI v2.0 §26.2) */
export const CMD_SET_SOL_CONFIG = 0x21;
/** Get SOL Configuration Parameters (IPMI v2.0 §26.3) */
export const CMD_GET_SOL_CONFIG = 0x22;

/** Names of the App commands above, for error messages. */
export const CMD_NAMES: Record<number, string> = {
  [CMD_GET_DEVICE_ID]: 'Get Device ID',
  [CMD_GET_CHANNEL_AUTH_CAPS]: 'Get Channel Authentication Capabilities',
  [CMD_SET_SESSION_PRIVILEGE]: 'Set Session Privilege Level',
  [CMD_GET_CHANNEL_CIPHER_SUITES]: 'Get Channel Cipher Suites',
  [CMD_CLOSE_SESSION]: 'Close Session',
  [CMD_ACTIVATE_PAYLOAD]: 'Activate Payload',
  [CMD_DEACTIVATE_PAYLOAD]: 'Deactivate Payload',
  [CMD_GET_PAYLOAD_ACTIVATION_STATUS]: 'Get Payload Activation Status',
  [CMD_GET_PAYLOAD_INSTANCE_INFO]: 'Get Payload Instance Info',
};

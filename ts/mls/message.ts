/** Looking at an MLSMessage (RFC 9420 §6) without processing it. */
import { Client as CoreClient } from '../../pkg/paired_mls_core.js';
import { call } from './init.js';
import type { MessageWireFormat } from './types.js';

/** Wire format of an MLSMessage (RFC 9420 §6), declared in types.ts. */
export type { MessageWireFormat as WireFormat } from './types.js';

/** What `inspectMessage` reads from an MLSMessage without any group state. */
export interface MessageInfo {
  wireFormat: MessageWireFormat;
  /** The message decoded and encoded again: equal to the input when canonical. */
  encoded: Uint8Array;
}

/** Decode an MLSMessage; throws `MALFORMED` unless every byte is valid. */
export function inspectMessage(bytes: Uint8Array): MessageInfo {
  return call(() => ({
    wireFormat: CoreClient.inspectWireFormat(bytes),
    encoded: CoreClient.reencodeMessage(bytes),
  }));
}

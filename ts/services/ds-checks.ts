/**
 * What the Delivery Service can check in the bytes it relays without
 * group secrets (docs/PROTOCOL.md §8.5): that a GroupInfo is a GroupInfo of
 * this group at the epoch the commit creates, that a Welcome is a
 * well-formed Welcome, and the clear header of handshake messages.
 */
import { Reader } from '../codec/tls.js';
import { bytesEqual } from '../mls/bytes.js';

/** A GroupInfo MLSMessage's group id and epoch; undefined when the bytes are not exactly one GroupInfo. */
export function readGroupInfoHeader(bytes: Uint8Array): { groupId: Uint8Array; epoch: bigint } | undefined {
  try {
    const r = new Reader(bytes);
    if (r.u16() !== 1 || r.u16() !== 4) return undefined;
    // GroupContext (RFC 9420 §8.1), then GroupInfo's own fields (§12.4.3).
    if (r.u16() !== 1) return undefined;
    r.u16();
    const groupId = r.vector();
    const epoch = r.u64();
    r.vector(); // tree_hash
    r.vector(); // confirmed_transcript_hash
    r.vector(); // group context extensions
    r.vector(); // extensions
    r.vector(); // confirmation_tag
    r.u32(); // signer
    r.vector(); // signature
    return r.done ? { groupId, epoch } : undefined;
  } catch {
    return undefined;
  }
}

/** True when `bytes` is exactly one Welcome MLSMessage (RFC 9420 §12.4.3.1) with at least one recipient. */
export function isWelcome(bytes: Uint8Array): boolean {
  try {
    const r = new Reader(bytes);
    if (r.u16() !== 1 || r.u16() !== 3) return false;
    r.u16(); // cipher_suite
    const secrets = r.list((x) => [x.vector(), x.vector(), x.vector()]);
    r.vector(); // encrypted_group_info
    return r.done && secrets.length > 0;
  } catch {
    return false;
  }
}

/** A GroupInfo fit to publish after a commit: this group, the epoch the commit creates. */
export function groupInfoFits(bytes: Uint8Array, groupId: Uint8Array, epoch: number): boolean {
  const header = readGroupInfoHeader(bytes);
  return header !== undefined && bytesEqual(header.groupId, groupId) && header.epoch === BigInt(epoch);
}

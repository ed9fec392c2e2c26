/**
 * Leaves of revoked clients in a verified group (docs/PROTOCOL.md §8.5):
 * which leaves of a commit's new tree the AS binds to a client since
 * revoked, and which of them the DS has already proposed to remove.
 */
import { Reader } from '../codec/tls.js';
import type { PublicLeaf } from '../mls/types.js';
import type { CredentialCheck } from './credential-check.js';

/** The client a leaf's credential was bound to when that client is revoked; undefined for an active or unknown one. */
export async function revokedClientOf(auth: CredentialCheck | undefined, leaf: PublicLeaf): Promise<string | undefined> {
  return auth?.revokedClientOf ? auth.revokedClientOf(leaf.identity, leaf.signatureKey) : undefined;
}

/**
 * The leaf an external sender's Remove proposal (a PublicMessage, RFC 9420
 * §6, §12.1.3) removes; undefined for any other message. The DS reads its
 * own proposals with it, so that it proposes each removal once an epoch.
 */
export function externalRemoveOf(bytes: Uint8Array): number | undefined {
  try {
    const r = new Reader(bytes);
    if (r.u16() !== 1 || r.u16() !== 1) return undefined;
    r.vector(); // group_id
    r.u64();
    if (r.u8() !== 2) return undefined;
    r.u32(); // sender_index
    r.vector(); // authenticated_data
    if (r.u8() !== 2 || r.u16() !== 3) return undefined;
    return r.u32();
  } catch {
    return undefined;
  }
}

/**
 * The Authentication Service's answer to "which members are associated
 * with this one" (draft-kohbrok-mls-leaf-operation-intents §2.5; RFC 9750
 * §5.3 "same user"), for `remove_associated_members`. The engine removes
 * by its own rule, the same as `sameIdentityAssociation` (same credential
 * type and identity; crates/core/src/leaf_operation_intent.rs), so this
 * interface lets an application ask which devices an intent will take
 * along; a different rule does not change what the engine removes
 * (docs/PROTOCOL.md §5.4).
 */
import { bytesEqual } from '../mls/bytes.js';
import type { Member } from '../mls/types.js';

export interface LeafAssociation {
  /** Leaf indices of the members associated with `leafIndex` (not including it). */
  associatedLeaves(members: readonly Member[], leafIndex: number): number[];
}

/** Default: members whose credentials have the same type and identity are the same user. */
export const sameIdentityAssociation: LeafAssociation = {
  associatedLeaves(members, leafIndex) {
    const sender = members.find((m) => m.leafIndex === leafIndex);
    if (!sender) return [];
    return members
      .filter((m) => m.leafIndex !== leafIndex && sameCredential(m, sender))
      .map((m) => m.leafIndex)
      .sort((a, b) => a - b);
  },
};

function sameCredential(a: Member, b: Member): boolean {
  return a.credential.credentialType === b.credential.credentialType && bytesEqual(a.credential.identity, b.credential.identity);
}

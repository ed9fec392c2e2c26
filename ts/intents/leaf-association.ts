/**
 * The Authentication Service's answer to "which members are associated
 * with this one" (draft-kohbrok-mls-leaf-operation-intents §2.5; RFC 9750
 * §5.3 "same user"), for `remove_associated_members`. A client installs one
 * (`MlsClient.open({ association })`, `client.setLeafAssociation`) and the
 * engine calls it for every such LeafOperationProposal; without one the
 * engine uses the rule of `sameIdentityAssociation` (same credential type
 * and identity; crates/core/src/leaf_operation_intent.rs). Every member must
 * give the same answer (docs/PROTOCOL.md §5.4).
 */
import { bytesEqual } from '../mls/bytes.js';
import type { Member } from '../mls/types.js';

/** Which members are associated with a leaf (for `removeAssociatedMembers`), as the Authentication Service decides. */
export interface LeafAssociation {
  /**
   * Leaf indices of the members associated with `leafIndex` (the sender,
   * whose credential and signature key are in `members`). Synchronous and
   * deterministic; must not call into the client that runs it.
   */
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

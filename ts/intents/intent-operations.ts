/**
 * LeafOperationIntent operations (draft-kohbrok-mls-leaf-operation-intents
 * §2.2–2.4; rules in docs/PROTOCOL.md §5): create an intent from a
 * member's current leaf, validate one, propose it, commit it. Receiving
 * needs nothing here: `group.process` runs the engine, which validates every
 * LeafOperationProposal and removes the leaves it implies
 * (crates/core/src/leaf_operation_intent.rs, docs/ENGINE.md).
 */
import type { Group, StagedCommit } from '../mls/group.js';
import type { MlsClient } from '../mls/client.js';
import type { CommitOptions, CommitResult, Member } from '../mls/types.js';
import { invalidArgument } from '../mls/errors.js';
import { bytesEqual } from '../mls/bytes.js';
import { CodecError } from '../codec/tls.js';
import {
  INTENT_SIGNATURE_LABEL,
  LEAF_NODE_REF_LABEL,
  LEAF_OPERATION_PROPOSAL_TYPE,
  decodeIntent,
  encodeIntent,
  encodeIntentTbs,
  removalModeCode,
  type LeafOperationIntent,
  type RemovalMode,
} from './leaf-operation-intent.js';
import { IntentError } from './intent-error.js';

interface LeafInfo {
  ref: Uint8Array;
  source: 'keyPackage' | 'update' | 'commit';
  member: Member;
}

function leafInfo(group: Group, leafIndex: number): LeafInfo | undefined {
  const member = group.members().find((m) => m.leafIndex === leafIndex);
  if (!member) return undefined;
  const cs = group.state().ciphersuite;
  const { leafNode, source } = group.leafNode(leafIndex);
  return { ref: group.client.refHash(cs, LEAF_NODE_REF_LABEL, leafNode), source, member };
}

/**
 * Create an intent to leave from this member's current leaf (draft §2.2).
 * A leaf that still holds its KeyPackage's LeafNode must update first
 * (`key-package-leaf`): such an intent could be replayed after a re-add
 * with the same KeyPackage (draft §3).
 */
export function createIntent(group: Group, removalMode: RemovalMode = 'senderRemovalOnly'): LeafOperationIntent {
  try {
    removalModeCode(removalMode);
  } catch {
    throw invalidArgument(`removalMode must be 'senderRemovalOnly' or 'removeAssociatedMembers', not ${String(removalMode)}`);
  }
  const own = group.ownLeafIndex;
  const leaf = leafInfo(group, own);
  if (!leaf) throw new IntentError('unknown-leaf', 'this client has no leaf in the group');
  if (leaf.source === 'keyPackage') throw new IntentError('key-package-leaf', 'the leaf still holds its KeyPackage LeafNode; update it (selfUpdate) first');
  const tbs = { groupId: group.id, senderIndex: own, senderLeafRef: leaf.ref, removalMode };
  const cs = group.state().ciphersuite;
  const signature = group.client.signWithLabel({ signaturePublicKey: leaf.member.signatureKey, ciphersuite: cs }, INTENT_SIGNATURE_LABEL, encodeIntentTbs(tbs));
  return { ...tbs, signature };
}

/** The recipient checks of draft §2.3, plus the KeyPackage-leaf rule; throws `IntentError`. */
export function validateIntent(group: Group, intent: LeafOperationIntent): void {
  try {
    checkIntent(group, intent);
  } catch (err) {
    // An intent that cannot be encoded (an unknown removal mode, a field out of range) is no intent.
    if (err instanceof CodecError) throw new IntentError('malformed', `unencodable intent: ${err.message}`);
    throw err;
  }
}

function checkIntent(group: Group, intent: LeafOperationIntent): void {
  if (!bytesEqual(intent.groupId, group.id)) throw new IntentError('wrong-group', 'the intent is for another group');
  const leaf = leafInfo(group, intent.senderIndex);
  if (!leaf) throw new IntentError('unknown-leaf', `no member at leaf ${intent.senderIndex}`);
  if (!bytesEqual(leaf.ref, intent.senderLeafRef)) throw new IntentError('stale-leaf', `the leaf at ${intent.senderIndex} changed since the intent was made`);
  const cs = group.state().ciphersuite;
  const valid = group.client.verifyWithLabel(cs, leaf.member.signatureKey, INTENT_SIGNATURE_LABEL, encodeIntentTbs(intent), intent.signature);
  if (!valid) throw new IntentError('bad-signature', 'the intent signature does not verify');
  if (leaf.source === 'keyPackage') throw new IntentError('key-package-leaf', 'the sender leaf still holds its KeyPackage LeafNode (replayable)');
}

/**
 * The leaves `intent` removes in the group's current epoch (draft §2.4:
 * its sender and, for `removeAssociatedMembers`, every member the AS
 * associates with it), after the recipient checks (throws `IntentError`).
 * A member that receives its own user's leave learns here that it is
 * covered; it cannot commit that leave itself (`leaveAnswer`,
 * docs/PROTOCOL.md §5.4).
 */
export function leavesRemovedBy(group: Group, intent: LeafOperationIntent): number[] {
  validateIntent(group, intent);
  return group.removedLeaves(intentProposal(intent));
}

/**
 * The recipient checks of draft §2.3 (and the KeyPackage-leaf rule) by a
 * party that holds only the group's public state: `groupInfo`, a GroupInfo
 * of the group's current epoch with its ratchet tree (the DS). Returns the
 * leaves the intent removes by `client`'s association rule; throws
 * `IntentError`, or `MlsError` `INVALID_GROUP_INFO`.
 */
export function validateIntentPublic(client: MlsClient, groupInfo: Uint8Array, intent: LeafOperationIntent): number[] {
  const { proposalType, payload } = intentProposal(intent);
  return client.publicRemovedLeaves(groupInfo, proposalType, payload);
}

/** The LeafOperationProposal body of `intent`, for `group.commit({ custom })` or a proposal. */
export function intentProposal(intent: LeafOperationIntent): { proposalType: number; payload: Uint8Array } {
  return { proposalType: LEAF_OPERATION_PROPOSAL_TYPE, payload: encodeIntent(intent) };
}

/** A member proposes a (validated) intent by reference; returns the message for the group. An invalid intent rejects with `IntentError`. */
export async function proposeIntent(group: Group, intent: LeafOperationIntent): Promise<Uint8Array> {
  validateIntent(group, intent);
  return group.propose({ type: 'custom', ...intentProposal(intent) });
}

/** Commit intents by value, each LeafOperationProposal alone (the engine removes what it implies); pending ones go in by reference. An invalid intent rejects with `IntentError`. */
export async function commitIntents(group: Group, intents: LeafOperationIntent[], options: { commit?: CommitOptions } = {}): Promise<CommitResult> {
  for (const intent of intents) validateIntent(group, intent);
  return group.commit({ ...options.commit, custom: [...(options.commit?.custom ?? []), ...intents.map(intentProposal)] });
}

/** The intents a staged commit carries (by value or by reference); the leaves they remove are `staged.impliedRemoves`. */
export function intentsIn(staged: StagedCommit): LeafOperationIntent[] {
  return intentsAmong(staged.custom);
}

/** The LeafOperationProposals among custom proposals, decoded. */
function intentsAmong(custom: readonly { proposalType: number; payload: Uint8Array }[]): LeafOperationIntent[] {
  return custom
    .filter((p) => p.proposalType === LEAF_OPERATION_PROPOSAL_TYPE)
    .map((p) => {
      try {
        return decodeIntent(p.payload);
      } catch (err) {
        if (err instanceof CodecError) throw new IntentError('malformed', `undecodable LeafOperationProposal: ${err.message}`);
        throw err;
      }
    });
}

/**
 * The intents a commit of this member left out because they ask this very
 * member to leave (its own user's `removeAssociatedMembers`, or its own
 * intent): no commit may remove its committer (RFC 9420 §12.2), and the new
 * epoch drops every pending proposal. What to propose about each, once the
 * commit is merged: `leaveAnswer` (docs/PROTOCOL.md §5.4).
 */
export function leaveRequestsIn(result: Pick<CommitResult, 'askedToLeave'>): LeafOperationIntent[] {
  return intentsAmong(result.askedToLeave ?? []);
}

/**
 * The intent this member proposes (`proposeIntent`, or a paired device's
 * `propose`) to do what a leave request covering it asks: `request` is one
 * it was told of (`leaveRequestsIn`, or a received proposal
 * `leavesRemovedBy` accepted), in the group's current epoch.
 *
 * - While `request` is still valid: the request itself, proposed again,
 *   so the next committer removes its sender and every device it covers,
 *   this one included. Leaving alone instead would split the user's leave,
 *   and its sender (perhaps a stolen device that made the request) would
 *   stay.
 * - Once its sender is gone (`unknown-leaf`): this member's own
 *   `senderRemovalOnly` intent, the rest of the user's leave.
 * - This member's own request, which its own commit made stale: made again
 *   from its current leaf, same removal mode.
 *
 * Anything else throws: `IntentError` when the request is refused
 * otherwise (its sender's leaf changed, `stale-leaf`: whether the user
 * still wants this device out is the application's question), and
 * `INVALID_ARGUMENT` when it does not remove this member.
 */
export function leaveAnswer(group: Group, request: LeafOperationIntent): LeafOperationIntent {
  // Its own request, which its own commit made stale (a new leaf): made again from the current leaf.
  if (bytesEqual(request.groupId, group.id) && request.senderIndex === group.ownLeafIndex) {
    try {
      validateIntent(group, request);
    } catch (err) {
      if (err instanceof IntentError && err.reason === 'stale-leaf') return createIntent(group, request.removalMode);
      throw err;
    }
    return request;
  }
  let leaves: number[];
  try {
    leaves = leavesRemovedBy(group, request);
  } catch (err) {
    if (err instanceof IntentError && err.reason === 'unknown-leaf') return createIntent(group, 'senderRemovalOnly');
    throw err;
  }
  if (!leaves.includes(group.ownLeafIndex)) throw invalidArgument('the request does not remove this member');
  return request;
}

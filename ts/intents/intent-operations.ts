/**
 * LeafOperationIntent operations (draft-kohbrok-mls-leaf-operation-intents
 * §2.2–2.4; rules in docs/PROTOCOL.md §5): create an intent from a
 * member's current leaf, validate one, compute the Removes it implies,
 * propose it, commit it, and check a received commit that carries intents.
 */
import type { Group, ProcessResult, StagedCommit } from '../mls/group.js';
import type { CommitOptions, Member } from '../mls/types.js';
import { bytesEqual } from '../mls/bytes.js';
import { CodecError } from '../codec/tls.js';
import {
  INTENT_SIGNATURE_LABEL,
  LEAF_NODE_REF_LABEL,
  LEAF_OPERATION_PROPOSAL_TYPE,
  decodeIntent,
  decodeIntentMessage,
  encodeIntent,
  encodeIntentTbs,
  type LeafOperationIntent,
  type RemovalMode,
} from './leaf-operation-intent.js';
import { IntentError } from './intent-error.js';
import { sameIdentityAssociation, type LeafAssociation } from './leaf-association.js';
import { readExternalRemove } from './external-sender.js';

interface LeafInfo {
  ref: Uint8Array;
  source: 'keyPackage' | 'update' | 'commit';
  member: Member;
}

function leafInfo(group: Group, leafIndex: number): LeafInfo | undefined {
  const member = group.members().find((m) => m.leafIndex === leafIndex);
  if (!member) return undefined;
  const cs = group.state().ciphersuite;
  return group.client.read((core) => {
    const { leafNode, source } = core.leafNode(group.id, leafIndex) as { leafNode: Uint8Array; source: LeafInfo['source'] };
    return { ref: core.refHash(cs, LEAF_NODE_REF_LABEL, leafNode), source, member };
  });
}

/**
 * Create an intent to leave from this member's current leaf (draft §2.2).
 * A leaf that still holds its KeyPackage's LeafNode must update first
 * (`key-package-leaf`): such an intent could be replayed after a re-add
 * with the same KeyPackage (draft §3).
 */
export function createIntent(group: Group, removalMode: RemovalMode = 'senderRemovalOnly'): LeafOperationIntent {
  const own = group.ownLeafIndex;
  const leaf = leafInfo(group, own);
  if (!leaf) throw new IntentError('unknown-leaf', 'this client has no leaf in the group');
  if (leaf.source === 'keyPackage') throw new IntentError('key-package-leaf', 'the leaf still holds its KeyPackage LeafNode; update it (selfUpdate) first');
  const tbs = { groupId: group.id, senderIndex: own, senderLeafRef: leaf.ref, removalMode };
  const cs = group.state().ciphersuite;
  const signature = group.client.read((core) => core.signWithLabel(leaf.member.signatureKey, cs, INTENT_SIGNATURE_LABEL, encodeIntentTbs(tbs)));
  return { ...tbs, signature };
}

/** The recipient checks of draft §2.3, plus the KeyPackage-leaf rule; throws `IntentError`. */
export function validateIntent(group: Group, intent: LeafOperationIntent): void {
  if (!bytesEqual(intent.groupId, group.id)) throw new IntentError('wrong-group', 'the intent is for another group');
  const leaf = leafInfo(group, intent.senderIndex);
  if (!leaf) throw new IntentError('unknown-leaf', `no member at leaf ${intent.senderIndex}`);
  if (!bytesEqual(leaf.ref, intent.senderLeafRef)) throw new IntentError('stale-leaf', `the leaf at ${intent.senderIndex} changed since the intent was made`);
  const cs = group.state().ciphersuite;
  const valid = group.client.read((core) => core.verifyWithLabel(cs, leaf.member.signatureKey, INTENT_SIGNATURE_LABEL, encodeIntentTbs(intent), intent.signature));
  if (!valid) throw new IntentError('bad-signature', 'the intent signature does not verify');
  if (leaf.source === 'keyPackage') throw new IntentError('key-package-leaf', 'the sender leaf still holds its KeyPackage LeafNode (replayable)');
}

/** Leaves the intent removes (draft §2.4): the sender, plus associated members when asked. */
export function impliedRemovals(members: readonly Member[], intent: LeafOperationIntent, association: LeafAssociation = sameIdentityAssociation): number[] {
  const leaves = new Set([intent.senderIndex]);
  if (intent.removalMode === 'removeAssociatedMembers') for (const l of association.associatedLeaves(members, intent.senderIndex)) leaves.add(l);
  return [...leaves].sort((a, b) => a - b);
}

/** The LeafOperationProposal body of `intent`, for `group.commit({ custom })` or a proposal. */
export function intentProposal(intent: LeafOperationIntent): { proposalType: number; payload: Uint8Array } {
  return { proposalType: LEAF_OPERATION_PROPOSAL_TYPE, payload: encodeIntent(intent) };
}

/** A member proposes a (validated) intent by reference; returns the message for the group. */
export function proposeIntent(group: Group, intent: LeafOperationIntent): Promise<Uint8Array> {
  validateIntent(group, intent);
  return group.propose({ type: 'custom', ...intentProposal(intent) });
}

/**
 * Commit intents: each LeafOperationProposal by value, together with the
 * Remove proposals they imply (openmls cannot make a custom proposal
 * remove a leaf). Intents proposed earlier by reference must be passed in
 * `byReference`, so that their Removes are included; Removes already
 * proposed (by an external sender) in `pendingRemoves`.
 */
export function commitIntents(
  group: Group,
  intents: LeafOperationIntent[],
  options: { association?: LeafAssociation; byReference?: LeafOperationIntent[]; pendingRemoves?: number[]; commit?: CommitOptions } = {},
): ReturnType<Group['commit']> {
  const all = [...intents, ...(options.byReference ?? [])];
  for (const intent of all) validateIntent(group, intent);
  const members = group.members();
  const removes = new Set<number>();
  for (const intent of all) for (const leaf of impliedRemovals(members, intent, options.association)) removes.add(leaf);
  // Removes already proposed (e.g. by an external sender) go in by reference.
  for (const leaf of options.pendingRemoves ?? []) removes.delete(leaf);
  return group.commit({
    ...options.commit,
    custom: [...(options.commit?.custom ?? []), ...intents.map(intentProposal)],
    remove: [...removes].sort((a, b) => a - b),
  });
}

/** The intents a staged commit carries (by value or by reference). */
export function intentsIn(staged: StagedCommit): LeafOperationIntent[] {
  return staged.custom
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
 * Check a received commit (before merging it): every intent it carries is
 * valid in the current epoch, and the leaves it removes are exactly the
 * union of the intents' implied sets — no Remove missing, none extra.
 */
export function checkIntentCommit(group: Group, staged: StagedCommit, association: LeafAssociation = sameIdentityAssociation): void {
  const intents = intentsIn(staged);
  if (intents.length === 0) return;
  for (const intent of intents) validateIntent(group, intent);
  const members = group.members();
  const implied = new Set<number>();
  for (const intent of intents) for (const leaf of impliedRemovals(members, intent, association)) implied.add(leaf);
  const removed = new Set(staged.removes.map((r) => r.leafIndex));
  const missing = [...implied].filter((l) => !removed.has(l));
  const extra = [...removed].filter((l) => !implied.has(l));
  if (missing.length > 0 || extra.length > 0) {
    throw new IntentError('removes-mismatch', `implied removes ${fmt(implied)}, committed ${fmt(removed)}`);
  }
}

const fmt = (s: Set<number>) => `[${[...s].sort((a, b) => a - b).join(', ')}]`;

/**
 * `group.process(message)` with the intent rules applied: an external
 * Remove proposal that carries an intent (in its authenticated data) is
 * processed only if the intent is valid and implies that Remove; a
 * LeafOperationProposal is validated; a commit carrying intents is checked
 * with `checkIntentCommit` and discarded when it fails. Throws `IntentError`.
 */
export async function processWithIntents(group: Group, message: Uint8Array, association: LeafAssociation = sameIdentityAssociation): Promise<ProcessResult> {
  const external = readExternalRemove(message);
  if (external && external.authenticatedData.length > 0) {
    let intent: LeafOperationIntent;
    try {
      intent = decodeIntentMessage(external.authenticatedData);
    } catch (err) {
      if (err instanceof CodecError) throw new IntentError('malformed', `external Remove with undecodable intent: ${err.message}`);
      throw err;
    }
    validateIntent(group, intent);
    if (!impliedRemovals(group.members(), intent, association).includes(external.removed)) {
      throw new IntentError('removes-mismatch', `the intent does not imply removing leaf ${external.removed}`);
    }
  }
  const result = await group.process(message);
  if (result.kind === 'commit') {
    try {
      checkIntentCommit(group, result.staged, association);
    } catch (err) {
      result.staged.discard();
      throw err;
    }
  } else if (result.kind === 'proposal' && result.proposal.type === 'custom' && result.proposal.proposalType === LEAF_OPERATION_PROPOSAL_TYPE) {
    let intent: LeafOperationIntent;
    try {
      intent = decodeIntent(result.proposal.payload);
    } catch (err) {
      if (err instanceof CodecError) throw new IntentError('malformed', `undecodable LeafOperationProposal: ${err.message}`);
      throw err;
    }
    validateIntent(group, intent);
  }
  return result;
}

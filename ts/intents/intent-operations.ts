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
import type { AskedToLeave, CommitOptions, CommitResult, Member } from '../mls/types.js';
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
import { reportedEntries } from '../mls/asked-to-leave.js';

interface LeafInfo {
  ref: Uint8Array;
  source: 'keyPackage' | 'update' | 'commit';
  member: Member;
}

function leafInfo(group: Group, leafIndex: number): LeafInfo | undefined {
  // Any number (an intent's senderIndex as given): one that is no leaf index names no member.
  const member = Number.isInteger(leafIndex) && leafIndex >= 0 && leafIndex <= 0xffffffff ? group.member(leafIndex) : undefined;
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

/** `f()`, an intent that cannot be encoded (an unknown removal mode, a field out of range) refused as no intent: `IntentError` `malformed`. */
function encodable<T>(f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof CodecError) throw new IntentError('malformed', `unencodable intent: ${err.message}`);
    throw err;
  }
}

/** The recipient checks of draft §2.3, plus the KeyPackage-leaf rule; throws `IntentError`. */
export function validateIntent(group: Group, intent: LeafOperationIntent): void {
  encodable(() => checkIntent(group, intent));
}

function checkIntent(group: Group, intent: LeafOperationIntent): void {
  if (!bytesEqual(intent.groupId, group.id)) throw new IntentError('wrong-group', 'the intent is for another group');
  const leaf = leafInfo(group, intent.senderIndex);
  if (!leaf) throw new IntentError('unknown-leaf', `no member at leaf ${intent.senderIndex}`);
  if (!bytesEqual(leaf.ref, intent.senderLeafRef)) throw new IntentError('stale-leaf', `the leaf at ${intent.senderIndex} changed since the intent was made`);
  if (!signedBy(group, leaf.member.signatureKey, intent)) throw new IntentError('bad-signature', 'the intent signature does not verify');
  if (leaf.source === 'keyPackage') throw new IntentError('key-package-leaf', 'the sender leaf still holds its KeyPackage LeafNode (replayable)');
}

/**
 * The leaves `intent` removes in the group's current epoch (draft §2.4:
 * its sender and, for `removeAssociatedMembers`, every member the AS
 * associates with it), after the recipient checks (throws `IntentError`).
 * A member that receives its own user's leave learns here that it is
 * covered; it cannot commit that leave itself, and is told when a commit
 * drops it (`leaveRequestsIn`, `leaveAnswers`; docs/PROTOCOL.md §5.4).
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
  const proposal = encodable(() => intentProposal(intent));
  return client.publicRemovedLeaves(groupInfo, proposal.proposalType, proposal.payload);
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

/** What tells a member it was asked to leave: its `CommitResult` or `PairedCommit`, or a `StagedCommit` it received. */
export interface LeaveRequests {
  askedToLeave?: readonly AskedToLeave[];
}

/**
 * The intents removing this member that a commit (its own, or a received
 * one) did not carry though they were pending; the new epoch drops them.
 * What to propose about them: `leaveAnswers` (docs/PROTOCOL.md §5.4).
 */
export function leaveRequestsIn(told: LeaveRequests): LeafOperationIntent[] {
  return intentsAmong(checkedTold(told).askedToLeave ?? []);
}

/** `told`, when it is an object (`INVALID_ARGUMENT` otherwise). */
function checkedTold(told: LeaveRequests): LeaveRequests {
  if (typeof told !== 'object' || told === null) throw invalidArgument('expected a CommitResult, PairedCommit or StagedCommit');
  return told;
}

/** One request and what to propose about it (`leaveAnswers`). */
export interface LeaveAnswer {
  request: LeafOperationIntent;
  /** The intent to propose (`proposeIntent`, or a paired device's `propose`), for another member to commit. */
  answer?: LeafOperationIntent;
  /** Why there is none (`stale-leaf`, `unknown-leaf`, `bad-signature`): asking the user is the application's. Neither field: the request no longer covers this member. */
  refused?: IntentError;
}

/**
 * What this member proposes about each request `told` reports, once the
 * commit that reported it is merged (docs/PROTOCOL.md §5.4): the request
 * itself while it is valid (its sender and every device it covers go
 * together); this member's own intent in the request's mode when that
 * commit removed the sender; its own request made again from its new leaf
 * when signed by its current key; else `refused`. `told` must be a report
 * this library made for this group at this client (`INVALID_ARGUMENT`
 * otherwise, and before the merge).
 */
export function leaveAnswers(group: Group, told: LeaveRequests): LeaveAnswer[] {
  const requests = requestsOf(group, told).filter((r) => r.proposalType === LEAF_OPERATION_PROPOSAL_TYPE);
  const intents = intentsAmong(requests);
  // Read once for all requests.
  const epoch = group.epoch;
  const authenticator = requests.length ? group.epochAuthenticator() : new Uint8Array(0);
  return requests.map((reported, i) => {
    const request = intents[i]!;
    if (epoch < reported.epoch) throw invalidArgument(`merge the commit that reported the request first (epoch ${reported.epoch}; the group is in ${epoch})`);
    if (!bytesEqual(request.groupId, group.id)) throw invalidArgument('the request is for another group');
    const inItsEpoch = epoch === reported.epoch && bytesEqual(authenticator, reported.epochAuthenticator);
    if (inItsEpoch && reported.senderRemoved) return { request, answer: createIntent(group, request.removalMode) };
    if (inItsEpoch && request.senderIndex === group.ownLeafIndex) {
      const stale = refusal(() => validateIntent(group, request));
      if (stale?.reason !== 'stale-leaf') return stale ? { request, refused: stale } : { request, answer: request };
      const own = leafInfo(group, group.ownLeafIndex);
      return own && signedBy(group, own.member.signatureKey, request)
        ? { request, answer: createIntent(group, request.removalMode) }
        : { request, refused: new IntentError('bad-signature', "this member's own request was not signed by its current signature key") };
    }
    let leaves: number[] = [];
    const refused = refusal(() => (leaves = leavesRemovedBy(group, request)));
    if (refused) return { request, refused };
    return leaves.includes(group.ownLeafIndex) ? { request, answer: request } : { request };
  });
}

/** Whether `intent`'s signature verifies under `signatureKey` (draft §2.2, the intent's TBS and label). */
function signedBy(group: Group, signatureKey: Uint8Array, intent: LeafOperationIntent): boolean {
  return group.client.verifyWithLabel(group.state().ciphersuite, signatureKey, INTENT_SIGNATURE_LABEL, encodeIntentTbs(intent), intent.signature);
}

/** The requests `told` reports: a list this library made for `group`, or none. */
function requestsOf(group: Group, told: LeaveRequests): readonly AskedToLeave[] {
  if (checkedTold(told).askedToLeave === undefined) return [];
  // Answered from the library's own copy: the handed-out bytes can be edited.
  const requests = reportedEntries(told.askedToLeave, group.client, group.id);
  if (!requests) {
    throw invalidArgument('askedToLeave is not a report this library made for this group at this client (a CommitResult, PairedCommit or StagedCommit of it)');
  }
  return requests;
}

/** The IntentError `check` throws, if any (other errors go on). */
function refusal(check: () => unknown): IntentError | undefined {
  try {
    check();
    return undefined;
  } catch (err) {
    if (err instanceof IntentError) return err;
    throw err;
  }
}

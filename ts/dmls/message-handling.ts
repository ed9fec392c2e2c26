/**
 * One message received (seed 003 §4, §5 UNPROTECT): a Welcome into a new
 * send group, or a message of a followed one, processed under the
 * send-group rules; whether it waits in the buffer, is dropped, or fails.
 */
import { readMlsHeader } from '../codec/mls-header.js';
import { bytesEqual, fromHex, toHex } from '../mls/bytes.js';
import { MlsError } from '../mls/errors.js';
import type { Group } from '../mls/group.js';
import { isCheckFailure } from './credential-check.js';
import type { DmlsEvent } from './member-types.js';
import { DmlsError } from './dmls-error.js';
import type { DmlsMessage } from './dmls-messages.js';
import { compareChecks, epochChecks } from './epoch-checks.js';
import { checkPastOwnerKey, checkTree, ownerLeaf, noteOwnerKey } from './member-credentials.js';
import type { MemberSession } from './member-session.js';
import { coveredProposals, ownEpoch } from './own-commits.js';
import { ackedEpoch, followFromWelcome, storePsk } from './psk-imports.js';
import { checkRejoinKeyPackage, rejoinWelcome } from './rejoin.js';
import { checkAnnounce, checkBinding, checkSuite, decodeMessage } from './universe-founding.js';

/** Failures that mean "not yet": the message waits for something else first. */
const RETRY_CODES = new Set(['PSK_NOT_FOUND', 'WRONG_EPOCH', 'UNKNOWN_GROUP', 'MESSAGE_TOO_FAR_AHEAD', 'PROTOCOL', 'INVALID_COMMIT']);

/** One delivery: `retry` when it cannot be processed yet (kept in the buffer), else its events. */
export async function handleMessage(member: MemberSession, message: Uint8Array): Promise<{ retry: boolean; events: DmlsEvent[] }> {
  const header = readMlsHeader(message);
  if (!header) return { retry: false, events: [{ type: 'dropped', reason: 'not-for-us' }] };
  if (header.wireFormat === 'welcome') return joinSendGroup(member, message);
  if (!header.groupId || header.epoch === undefined) return { retry: false, events: [{ type: 'dropped', reason: 'not-for-us' }] };
  const hex = toHex(header.groupId);
  if (!member.client.groupIds().some((g) => toHex(g) === hex)) {
    return expectingWelcome(member) ? { retry: true, events: [] } : { retry: false, events: [{ type: 'dropped', reason: 'unknown-group' }] };
  }
  const group = member.client.group(header.groupId);
  if (header.epoch > BigInt(group.epoch)) {
    const far = header.epoch > BigInt(group.epoch + member.options.maxEpochsAhead) && !member.state.rejoining.includes(hex);
    return far ? { retry: false, events: [{ type: 'dropped', reason: 'too-far-ahead' }] } : { retry: true, events: [] };
  }
  try {
    return { retry: false, events: await member.atomically(() => processInSendGroup(member, group, message)) };
  } catch (err) {
    // The credential check's own failure (the AS unreachable) reaches the caller whatever its type (§6.10): an MlsError
    // it threw was taken for the message's own by its code (PROTOCOL: buffered; of a past epoch: dropped, its data lost).
    if (err instanceof DmlsError || isCheckFailure(err)) throw err;
    if (!(err instanceof MlsError)) throw err;
    if (err.code === 'NOT_A_MEMBER') return { retry: false, events: [{ type: 'dropped', reason: 'not-for-us' }] };
    if (err.code === 'MESSAGE_REPLAYED' || err.code === 'MESSAGE_TOO_OLD' || (header.epoch < BigInt(group.epoch) && RETRY_CODES.has(err.code))) {
      return { retry: false, events: [{ type: 'dropped', reason: 'duplicate' }] };
    }
    // Failed at the key schedule, so decrypted and verified: its epoch checks (§6.11), authentic now, tell an
    // epoch seen otherwise (final) from a commit waiting for a proposal.
    if (err.code === 'INVALID_COMMIT' && header.epoch === BigInt(group.epoch) && hex !== member.state.ownGroupId) await compareChecks(member, header, group, hex);
    // A send group being rejoined may be held on another branch (§6.11): its owner's messages wait for the Welcome.
    if (RETRY_CODES.has(err.code) || member.state.rejoining.includes(hex)) return { retry: true, events: [] };
    throw err;
  }
}

/** A Welcome: into a new send group of a universe member, else (`GROUP_EXISTS`) a rejoin answer. */
async function joinSendGroup(member: MemberSession, welcome: Uint8Array): Promise<{ retry: boolean; events: DmlsEvent[] }> {
  try {
    const group = await member.atomically(async () => {
      const g = await member.client.joinFromWelcome(welcome, member.options.sendGroup);
      checkSuite(member, g);
      const owner = g.member(0);
      // Only members of the universe own send groups (seed 003 §2): anyone
      // holding one of our published KeyPackages could make us join theirs.
      if (!(owner && member.state.members.includes(toHex(owner.credential.identity)))) {
        throw new DmlsError('universe', 'a Welcome into a group whose owner is not a member of the universe');
      }
      // Each member owns one send group (seed 003 §1, §2). A second one
      // under a followed owner's identity (or ours) is a forgery (basic
      // credentials are not checked here): its rejoin requests would have
      // every owner remove that member's leaves and add the forger's.
      if (Object.values(member.state.owners).includes(toHex(owner.credential.identity))) {
        throw new DmlsError('universe', 'a Welcome into a second send group of a member');
      }
      // The first key seen of this owner: the AS tells a forger claiming its identity from it (`credential`) ...
      await checkTree(member, g, 'a new send group');
      // ... and, with or without one, the founder's send group bound this owner's send group id and key (`universe`).
      checkBinding(member, g, owner);
      member.state.owners[toHex(g.id)] = toHex(owner.credential.identity);
      await followFromWelcome(member, g);
      return g;
    });
    return { retry: false, events: [{ type: 'joined', sendGroupId: group.id }] };
  } catch (err) {
    // The credential check's own failure (the AS unreachable) reaches the caller, whatever its type.
    if (isCheckFailure(err)) throw err;
    if (err instanceof MlsError && err.code === 'GROUP_EXISTS') return rejoinWelcome(member, welcome);
    if (err instanceof MlsError && (err.code === 'NO_MATCHING_KEY_PACKAGE' || err.code === 'MALFORMED')) {
      return { retry: false, events: [{ type: 'dropped', reason: 'not-for-us' }] };
    }
    throw err;
  }
}

/**
 * Send-group rules (seed 003 §4): the owner (leaf 0) is the only sender
 * of commits and application messages; Update proposals are the only
 * proposals, from any member — the owner accepts them for its next
 * commit, the others hold them only so they can process that commit
 * (Update proposals go by reference, RFC 9420 §12.4). Commits and
 * proposals are held to them by the process check `SEND_GROUP_RULES`.
 */
async function processInSendGroup(member: MemberSession, group: Group, message: Uint8Array): Promise<DmlsEvent[]> {
  const own = toHex(group.id) === member.state.ownGroupId;
  const result = await group.process(message, { checks: member.checks });
  const fromOwner = result.sender.type === 'member' && result.sender.leafIndex === 0;
  switch (result.kind) {
    case 'commit': {
      const imported = new Set(result.staged.psks.map((p) => toHex(p.pskId)));
      try {
        if (epochChecks(member, group, result.aad)?.some((c) => !imported.has(toHex(c.pskId)))) throw new DmlsError('malformed', 'a commit with an epoch check for a PSK it does not import');
      } catch (err) {
        result.staged.discard();
        throw err;
      }
      const withPath = result.staged.hasPath;
      const removed = result.staged.selfRemoved;
      const acked = ackedEpoch(member, result.staged.psks);
      const newOwner = result.staged.pathCredential?.identity;
      const ownerKey = ownerLeaf(group)?.signatureKey;
      // The key of the epochs before this commit (a state saved before keys were kept has none).
      if (!own) noteOwnerKey(member, group);
      await result.staged.merge();
      if (removed) return [{ type: 'commit', sendGroupId: group.id, epoch: group.epoch, imported: false }];
      // The UpdatePath's key is not in the staged view: checked on the merged
      // epoch (a refusal undoes the merge). `held`: its owner decided, and a
      // member processing it after the owner's next rotation revoked this
      // key must still follow it like the others did.
      const owner = ownerLeaf(group);
      if (withPath && owner && !(ownerKey && bytesEqual(owner.signatureKey, ownerKey))) {
        await member.checkCredential(owner.credential.identity, owner.signatureKey, 'held', 'an owner\'s UpdatePath to a new key');
      }
      const hex = toHex(group.id);
      if (acked !== undefined) member.state.acks[hex] = Math.max(member.state.acks[hex] ?? 0, acked);
      if (newOwner) member.state.owners[hex] = toHex(newOwner);
      if (!own) noteOwnerKey(member, group);
      // Every epoch's PSK is kept (others' REJOIN acks may name it); one
      // with fresh randomness from its owner is worth importing.
      await storePsk(member, group, withPath && !own, withPath);
      await member.save();
      return [{ type: 'commit', sendGroupId: group.id, epoch: group.epoch, imported: withPath && !own }];
    }
    case 'proposal':
      if (own) {
        // A PublicMessage processes again when replayed: keep (and send again) one copy.
        const hex = toHex(message);
        if (!member.state.proposals.includes(hex)) member.state.proposals.push(hex);
        await member.save();
      }
      return [{ type: 'updateProposal', sendGroupId: group.id }];
    case 'application': {
      if (!fromOwner) throw new DmlsError('not-owner', 'an application message in a send group from someone other than its owner');
      if (!own) await checkPastOwnerKey(member, group, result.epoch);
      return onMessage(member, group, ownerOf(member, group), decodeMessage(result.data));
    }
    default:
      return [{ type: 'dropped', reason: 'duplicate' }];
  }
}

/** An owner's application message in its send group: data, an announcement, or a rejoin request to answer. */
async function onMessage(member: MemberSession, group: Group, owner: Uint8Array, m: DmlsMessage): Promise<DmlsEvent[]> {
  switch (m.type) {
    case 'data':
      return [{ type: 'data', sendGroupId: group.id, sender: owner, data: m.data }];
    case 'announce':
      checkAnnounce(member, m);
      return [{ type: 'announce', sendGroupId: group.id, owner }];
    case 'rejoinRequest': {
      const hex = toHex(group.id);
      const own = member.sendGroup;
      const acked = member.state.acks[hex];
      // Behind = the newest epoch of this send group it acknowledged is older than the current one.
      const behind = acked === undefined || acked < own.epoch;
      const mine = m.entries.find((e) => toHex(e.sendGroupId) === member.state.ownGroupId);
      if (!behind || !mine) return [{ type: 'rejoinRequest', from: owner, behind: false, messages: [] }];
      await checkRejoinKeyPackage(member, group, owner, mine.keyPackage, own.state().ciphersuite);
      const stale = own.members().filter((x) => bytesEqual(x.credential.identity, owner)).map((x) => x.leafIndex);
      // No PSK imports here: the rejoiner would need them to read the Welcome.
      // The Update proposals held are covered (and sent again first, as with
      // every own commit): the new epoch would drop them, and a member's
      // credential rotation proposed here before would be lost.
      const covered = coveredProposals(member);
      const { commit, welcome } = await own.commit({ remove: stale, add: [mine.keyPackage], includePending: true, selfUpdate: true });
      await own.mergePendingCommit();
      await ownEpoch(member, own, true);
      // Only the requester's own ack says it joined: were its Welcome lost, a later request is answered again.
      await member.save();
      return [{ type: 'rejoinRequest', from: owner, behind: true, messages: [...covered, commit, welcome!] }];
    }
  }
}

/** The owner identity of a followed send group (leaf 0's when not announced). */
function ownerOf(member: MemberSession, group: Group): Uint8Array {
  const known = member.state.owners[toHex(group.id)];
  if (known) return fromHex(known);
  return group.member(0)?.credential.identity ?? new Uint8Array(0);
}

/** A member of the universe whose send group this member does not follow yet (its Welcome may come). */
function expectingWelcome(member: MemberSession): boolean {
  const followed = new Set(Object.values(member.state.owners));
  return member.state.members.some((m) => !followed.has(m));
}

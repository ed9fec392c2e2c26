/**
 * REJOIN (seed 003 §5, docs/PROTOCOL.md §6.11): the request with its acks,
 * the owner's checks of the KeyPackage it answers with, and the Welcome
 * that replaces a stale send group.
 */
import { bytesEqual, fromHex, toHex } from '../mls/bytes.js';
import { MlsError } from '../mls/errors.js';
import type { Group } from '../mls/group.js';
import { isCheckFailure } from './credential-check.js';
import type { DmlsEvent } from './member-types.js';
import { DmlsError } from './dmls-error.js';
import { encodeDmlsMessage, pskGroupId } from './dmls-messages.js';
import { checkTree } from './member-credentials.js';
import type { MemberSession } from './member-session.js';
import { commitOwn } from './own-commits.js';
import { followFromWelcome, followable, withheld } from './psk-imports.js';
import { checkSuite } from './universe-founding.js';

/** A rejoin Welcome tried against a send group it is not for (rolls the attempt back). */
class OtherGroup extends Error {}

/** A rejoin Welcome into an older epoch than the state it would replace (rolls the attempt back). */
class StaleWelcome extends Error {}

/** `DMember.requestRejoin`, in the client's turn. */
export async function requestRejoin(member: MemberSession): Promise<Uint8Array[]> {
  return member.atomically(async () => {
    const acks: Uint8Array[] = [];
    const entries = [];
    for (const hex of Object.keys(member.state.owners)) {
      if (hex === member.state.ownGroupId) continue;
      const id = fromHex(hex);
      const group = member.client.group(id);
      const epoch = group.epoch;
      // No ack of a send group whose owner removed us: the commit that did so has no epoch secrets for us, so no PSK.
      // Nor of an epoch an importer disputed (§6.11): the members on the other branch would refuse the commit.
      if (group.state().active && member.state.pending[hex] !== epoch && !withheld(member, hex, epoch) && followable(member, hex)) acks.push(pskGroupId(epoch, id));
      entries.push({ sendGroupId: id, keyPackage: await member.client.createKeyPackage(member.identity) });
      if (!member.state.rejoining.includes(hex)) member.state.rejoining.push(hex);
    }
    const out = await commitOwn(member, member.sendGroup.state().pendingProposals > 0, undefined, acks);
    out.push(await member.sendGroup.encrypt(encodeDmlsMessage({ type: 'rejoinRequest', entries })));
    return out;
  });
}

/**
 * A Welcome into a send group this member still has a (stale) state of:
 * the REJOIN answer, or a duplicate. Only a send group this member asked
 * to be re-added to is replaced, and only by a group its owner (the same
 * identity at leaf 0) leads: a group id is the creator's choice, so
 * anyone holding one of our KeyPackages can make a Welcome under it.
 * Nor is a send group taken back to an epoch older than the one held:
 * the window stays open while a request goes unanswered, and a Welcome
 * answering an earlier request, held back by the network, would restore
 * a state the owner has since removed our leaf from.
 */
export async function rejoinWelcome(member: MemberSession, welcome: Uint8Array): Promise<{ retry: boolean; events: DmlsEvent[] }> {
  for (const hex of member.state.rejoining) {
    try {
      const group = await member.atomically(async () => {
        const held = member.client.group(fromHex(hex)).epoch;
        // Those of a disputed epoch and after (another branch, §6.11) go with the state replaced, their checks too.
        const cut = member.state.disputed[hex];
        for (const map of cut === undefined ? [] : [member.state.stored, member.state.ackOnly]) {
          for (const e of map[hex] ?? []) if (e >= cut!) delete member.state.checks[toHex(pskGroupId(e, fromHex(hex)))];
          map[hex] = (map[hex] ?? []).filter((e) => e < cut!);
        }
        // A later epoch of the other branch, withheld while rejoining, is not imported after it either.
        if (cut !== undefined && (member.state.pending[hex] ?? -1) >= cut) delete member.state.pending[hex];
        delete member.state.disputed[hex];
        // The PSKs of the epochs held before stay (imports may name them), bound again to the group joined.
        const psks = [...(member.state.stored[hex] ?? []), ...(member.state.ackOnly[hex] ?? [])].map((epoch) => pskGroupId(epoch, fromHex(hex)));
        for (const pskId of psks) await member.client.psks.unbind(pskId);
        await member.client.deleteGroup(fromHex(hex));
        const g = await member.client.joinFromWelcome(welcome, member.options.sendGroup);
        if (toHex(g.id) !== hex) throw new OtherGroup();
        for (const pskId of psks) await member.client.psks.bind(pskId, g.id);
        if (g.epoch < held) throw new StaleWelcome();
        const owner = g.member(0)?.credential.identity;
        if (!owner || toHex(owner) !== member.state.owners[hex]) throw new DmlsError('not-owner', 'a rejoin Welcome into a send group led by someone other than its owner');
        // The new group is the owner's (or a forger's) choice as much as the first was: same rule (seed 003 §6).
        checkSuite(member, g);
        // The owner may come under a new key (it rotated meanwhile): only the AS tells a forger claiming its identity from it.
        await checkTree(member, g, 'a send group rejoined');
        member.state.rejoining = member.state.rejoining.filter((x) => x !== hex);
        delete member.state.ownerKeys[hex];
        await followFromWelcome(member, g);
        return g;
      });
      return { retry: false, events: [{ type: 'joined', sendGroupId: group.id }] };
    } catch (err) {
      // Not this group's Welcome (or our KeyPackage is already used): state
      // restored, try the next. A refusal, or a failure from elsewhere (an
      // Authentication Service that cannot be reached), reaches the caller:
      // taken for "not this group", the Welcome would be dropped.
      if (isCheckFailure(err) || err instanceof DmlsError || !(err instanceof OtherGroup || err instanceof StaleWelcome || err instanceof MlsError)) throw err;
    }
  }
  return { retry: false, events: [{ type: 'dropped', reason: 'duplicate' }] };
}

/**
 * The KeyPackage of a rejoin request must be its sender's (seed 003 §5
 * REJOIN: "a keyPackage message for Charlie"): the requester's identity
 * and the signature key it signs its own send group with, in this send
 * group's ciphersuite. Otherwise any member could have every owner it
 * claims to be behind add someone else's KeyPackage to its send group.
 * With a `credentialCheck`, the AS must bind it too (`credential`): the
 * requester's key may have been revoked since this member accepted it.
 */
export async function checkRejoinKeyPackage(member: MemberSession, requesterGroup: Group, requester: Uint8Array, keyPackage: Uint8Array, ciphersuite: number): Promise<void> {
  let info;
  try {
    info = member.client.inspectKeyPackage(keyPackage);
  } catch (err) {
    if (err instanceof MlsError) throw new DmlsError('rejoin', `a rejoin request with an undecodable KeyPackage: ${err.message}`);
    throw err;
  }
  const key = requesterGroup.member(0)?.signatureKey;
  if (!bytesEqual(info.credential.identity, requester) || !key || !bytesEqual(info.signatureKey, key)) {
    throw new DmlsError('rejoin', 'a rejoin request with a KeyPackage that is not its sender\'s');
  }
  if (info.ciphersuite !== ciphersuite) throw new DmlsError('rejoin', 'a rejoin request with a KeyPackage of another ciphersuite');
  await member.checkCredential(info.credential.identity, info.signatureKey, 'introduced', 'the KeyPackage of a rejoin request');
}

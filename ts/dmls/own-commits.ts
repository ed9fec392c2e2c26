/**
 * The own send group (seed 003 §5 UPDATE, COMMIT, PROTECT): commits that
 * import the others' epochs, credential rotations, removals, and the
 * proposals each commit covers.
 */
import { bytesEqual, fromHex, toHex } from '../mls/bytes.js';
import type { Identity } from '../mls/client.js';
import type { Group } from '../mls/group.js';
import { dmlsProposeCredentialUpdate } from '../mls/layer-calls.js';
import { DmlsError } from './dmls-error.js';
import { encodeDmlsMessage, pskGroupId } from './dmls-messages.js';
import { checksAad } from './epoch-checks.js';
import type { MemberSession } from './member-session.js';
import { importable, markImported, storePsk } from './psk-imports.js';

/** `DMember.update`, in the client's turn. */
export async function updateOwn(member: MemberSession, options: { newIdentity?: Identity }): Promise<Uint8Array[]> {
  const next = options.newIdentity;
  if (!next) return member.atomically(async () => [...(await rotationsAgain(member)), ...(await commitOwn(member, true))]);
  if (next.ciphersuite !== member.identity.ciphersuite) throw new DmlsError('universe', 'a new credential must keep the ciphersuite');
  // The universe is its members' identities; a new credential is a new signature key (SEND_GROUP_RULES).
  if (!bytesEqual(next.identity, member.identity.identity)) throw new DmlsError('identity', 'a new credential must keep the identity');
  // Every other member would refuse it (register the new key with the AS first).
  await member.checkCredential(next.identity, next.signaturePublicKey, 'introduced', 'a new credential of this member');
  return member.atomically(async () => {
    const out: Uint8Array[] = [];
    for (const hex of Object.keys(member.state.owners)) {
      // A send group whose owner removed us has no leaf of ours to update (a rejoin KeyPackage carries the new key).
      if (hex === member.state.ownGroupId || !member.client.group(fromHex(hex)).state().active) continue;
      out.push(await dmlsProposeCredentialUpdate(member.client, fromHex(hex), next.identity, next.signaturePublicKey));
      member.state.rotations[hex] = member.client.group(fromHex(hex)).epoch;
    }
    const own = await commitOwn(member, true, next);
    member.identity = next;
    member.state.owners[member.state.ownGroupId] = toHex(next.identity);
    await member.save();
    return [...own, ...out];
  });
}

/** `DMember.commit`, in the client's turn. */
export async function commitImports(member: MemberSession): Promise<Uint8Array[]> {
  return member.atomically(async () => {
    const again = await rotationsAgain(member);
    const updates = member.sendGroup.state().pendingProposals > 0;
    if (importable(member).length === 0 && !updates) {
      await member.save();
      return again;
    }
    // Covering Update proposals needs an UpdatePath (RFC 9420 §12.4): a full commit.
    return [...again, ...(await commitOwn(member, updates))];
  });
}

/**
 * A credential rotation (§6.6) proposed in another owner's send group is
 * lost when that owner commits without it — the proposal reached it after
 * that commit (it is then of a past epoch, dropped), or the commit was
 * made without it: the leaf there would keep the key this member rotated
 * away (revoked at the AS, perhaps stolen). Wherever the own leaf still
 * has another key than the current identity's, the rotation is proposed
 * again, once per epoch of that send group (sent with `commit`, `protect`
 * and `update`).
 */
async function rotationsAgain(member: MemberSession): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  const { identity, signaturePublicKey } = member.identity;
  for (const hex of Object.keys(member.state.owners)) {
    if (hex === member.state.ownGroupId || member.state.rejoining.includes(hex)) continue;
    const group = member.client.group(fromHex(hex));
    if (!group.state().active) continue;
    const leaf = group.ownLeaf();
    if (!leaf || bytesEqual(leaf.signatureKey, signaturePublicKey)) {
      delete member.state.rotations[hex];
      continue;
    }
    const last = member.state.rotations[hex];
    if (last !== undefined && group.epoch <= last) continue;
    out.push(await dmlsProposeCredentialUpdate(member.client, group.id, identity, signaturePublicKey));
    member.state.rotations[hex] = group.epoch;
  }
  return out;
}

/** A commit of the own send group importing every importable pending epoch (and `extraPsks`), with its epoch checks; merged at once. */
export async function commitOwn(member: MemberSession, withPath: boolean, newIdentity?: Identity, extraPsks: Uint8Array[] = []): Promise<Uint8Array[]> {
  return member.atomically(async () => {
    const group = member.sendGroup;
    const imports = importable(member);
    const psks = [...imports.map(([hex, epoch]) => pskGroupId(epoch, fromHex(hex))), ...extraPsks];
    const newSigner = newIdentity ? { identity: newIdentity.identity, signaturePublicKey: newIdentity.signaturePublicKey } : undefined;
    const covered = coveredProposals(member);
    const { commit } = await group.commit({ psks, selfUpdate: withPath, includePending: true, newSigner, aad: checksAad(member, group, psks) });
    await group.mergePendingCommit();
    markImported(member, imports);
    await ownEpoch(member, group, withPath);
    await member.save();
    return [...covered, commit];
  });
}

/** `DMember.protect`, in the client's turn. */
export async function protectData(member: MemberSession, data: Uint8Array, options: { pcs?: boolean }): Promise<Uint8Array[]> {
  return member.atomically(async () => {
    const out = options.pcs ? await updateOwn(member, {}) : await commitImports(member);
    out.push(await member.sendGroup.encrypt(encodeDmlsMessage({ type: 'data', data })));
    return out;
  });
}

/** `DMember.removeMember`, in the client's turn. */
export async function removeFromSendGroup(member: MemberSession, identity: Uint8Array): Promise<Uint8Array[]> {
  const group = member.sendGroup;
  const leaves = group.members().filter((m) => bytesEqual(m.credential.identity, identity)).map((m) => m.leafIndex);
  if (leaves.length === 0) return [];
  return member.atomically(async () => {
    const imports = importable(member, leaves);
    const psks = imports.map(([hex, epoch]) => pskGroupId(epoch, fromHex(hex)));
    const covered = coveredProposals(member);
    const { commit } = await group.commit({ remove: leaves, psks, selfUpdate: true, aad: checksAad(member, group, psks) });
    await group.mergePendingCommit();
    markImported(member, imports);
    await ownEpoch(member, group, true);
    await member.save();
    return [...covered, commit];
  });
}

/** `DMember.forget`, in the client's turn. */
export async function forgetSendGroup(member: MemberSession, sendGroupId: Uint8Array): Promise<void> {
  const hex = toHex(sendGroupId);
  await member.atomically(async () => {
    await member.dropSendGroup(hex);
    await member.client.deleteGroup(sendGroupId);
    await member.save();
  });
}

/**
 * The Update proposals the next own commit covers, to send again before
 * it. Updates are committed by reference (RFC 9420 §12.4), and a member
 * may have sent one to the owner alone: the others could then never
 * process the owner's commit (the proposal is missing), and the send
 * group would stall for them. Those who have it drop the copy.
 */
export function coveredProposals(member: MemberSession): Uint8Array[] {
  return member.state.proposals.map(fromHex);
}

/** A new epoch of the own send group: keep its PSK (others' imports and acks name it); its proposals are gone. */
export async function ownEpoch(member: MemberSession, group: Group, fresh: boolean): Promise<void> {
  member.state.proposals = [];
  if (fresh) member.state.lastUpdateEpoch = group.epoch;
  await storePsk(member, group, false, fresh);
}

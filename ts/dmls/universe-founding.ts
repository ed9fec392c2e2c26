/**
 * A universe and its send groups as founded (seed 003 §6.1,
 * docs/PROTOCOL.md §6.1, §6.4): the export length, the send group ids the
 * founder's send group binds to its members, the own send group created
 * with its announcement, and the checks a send group joined must pass.
 */
import { CodecError } from '../codec/tls.js';
import { bytesEqual, toHex } from '../mls/bytes.js';
import type { Group } from '../mls/group.js';
import { DmlsError } from './dmls-error.js';
import { type Announce, type DmlsMessage, decodeDmlsMessage, encodeDmlsMessage } from './dmls-messages.js';
import { DMLS_PROFILE_CODES, type DmlsProfile, storeEpochPsk } from './dmls-profile.js';
import type { MemberSession } from './member-session.js';
import type { State } from './member-state.js';
import { ownEpoch } from './own-commits.js';

/** Decode a DMLS message of a send group (`malformed` when it does not decode). */
export function decodeMessage(bytes: Uint8Array): DmlsMessage {
  try {
    return decodeDmlsMessage(bytes);
  } catch (err) {
    if (err instanceof CodecError) throw new DmlsError('malformed', err.message);
    throw err;
  }
}

/**
 * The export length L a universe derives with (seed 003 §6 leaves it to
 * the application; docs/PROTOCOL.md §6.4): 16..255 bytes, 32 under
 * `distributed-mls`. An imported PSK is L bytes: with fewer than 16, a
 * copy of an importer's state from before the import guesses it (8·L
 * bits) against the importing commit's confirmation tag and follows on,
 * so the import gives no PCS at the suites' 128-bit level. Checked
 * before anything is derived, so a definition outside it is refused as
 * such, not by the core's derivation midway.
 */
export function checkExportLength(profile: DmlsProfile, length: number): void {
  if (!Number.isInteger(length) || length < 16 || length > 255) throw new DmlsError('universe', `an export length of ${length} (16..255 bytes)`);
  if (profile === 'distributed-mls' && length !== 32) throw new DmlsError('universe', 'the distributed-mls profile exports 32 bytes');
}

/**
 * The send group id and owner key the founder's send group binds to each
 * of its leaves but its own (leaf 0 owns that group, whose id is the
 * universe's under `multi-mls`): seed 003 §4's derived groupid,
 * `MLS-Exporter("derivedGroupId", leafNodePublicSigningKey, L)`, "to
 * facilitate binding Send Groups together", taken at the epoch of the
 * universe definition — the one the founder makes it in and every joiner
 * joins at, so all compute the same. Each joiner's send group has that id
 * under that key; a Welcome into a new send group is checked against it
 * (`checkBinding`). Group ids are their creator's choice and in every
 * message's clear header: otherwise a member could found its send group
 * under another member's id, and whoever got its Welcome first dropped
 * the real one as a duplicate for good; and a forger claiming a member's
 * identity under its own key could found that member's send group.
 */
export async function bindSendGroups(member: MemberSession, founderGroup: Group): Promise<void> {
  const bound: State['sendGroupIds'] = {};
  const suite = founderGroup.state().ciphersuite;
  for (const m of founderGroup.members()) {
    if (m.leafIndex === 0) continue;
    const { derivedGroupId } = await storeEpochPsk(founderGroup, member.params(), m.signatureKey);
    (bound[toHex(m.credential.identity)] ??= []).push({ id: toHex(derivedGroupId), key: toHex(m.signatureKey), suite });
  }
  member.state.sendGroupIds = bound;
}

/**
 * A new send group must have the id bound to its owner (`bindSendGroups`)
 * and, in the founder's ciphersuite, the bound key at leaf 0 (in another
 * one the universe accepts, the owner signs with a key of that
 * ciphersuite, which the founder's send group does not show). Nothing is
 * checked where no bindings are kept.
 */
export function checkBinding(member: MemberSession, g: Group, owner: { credential: { identity: Uint8Array }; signatureKey: Uint8Array }): void {
  const bound = member.state.sendGroupIds;
  if (Object.keys(bound).length === 0) return;
  const id = toHex(g.id);
  const key = toHex(owner.signatureKey);
  const suite = g.state().ciphersuite;
  // A binding saved without its suite (a state of 0528f36's) is checked by key: fail closed, not by id only.
  if (!(bound[toHex(owner.credential.identity)] ?? []).some((b) => b.id === id && ((b.suite !== undefined && b.suite !== suite) || b.key === key))) {
    throw new DmlsError('universe', 'a send group whose id and owner key are not those the founder\'s send group binds to its owner');
  }
}

/** Create the own send group (under `groupId` when bound), add `keyPackages`, send the universe definition. */
export async function createSendGroup(member: MemberSession, keyPackages: Uint8Array[], how: { named?: (groupId: Uint8Array) => void; groupId?: Uint8Array } = {}): Promise<Uint8Array[]> {
  checkExportLength(member.universe.profile, member.universe.exportLength);
  if (!member.universe.ciphersuites.includes(member.identity.ciphersuite)) throw new DmlsError('universe', 'the identity uses a ciphersuite the universe does not accept');
  if (member.credentialCheck) {
    for (const keyPackage of keyPackages) {
      const info = member.client.inspectKeyPackage(keyPackage);
      await member.checkCredential(info.credential.identity, info.signatureKey, 'introduced', 'a KeyPackage for the own send group');
    }
  }
  const group = await member.client.createGroup(member.identity, how.groupId ? { ...member.options.sendGroup, groupId: how.groupId } : member.options.sendGroup);
  how.named?.(group.id);
  member.state.ownGroupId = toHex(group.id);
  member.state.owners[toHex(group.id)] = toHex(member.identity.identity);
  const messages: Uint8Array[] = [];
  if (keyPackages.length > 0) {
    const { welcome } = await group.commit({ add: keyPackages });
    await group.mergePendingCommit();
    // Nobody is in the group before the Welcome: the commit goes nowhere.
    messages.push(welcome!);
  }
  await ownEpoch(member, group, true);
  const members = group.members().map((m) => m.credential.identity);
  // Founded or INIT here: the universe is the members of this send group (seed 003 §6.1).
  if (member.state.members.length === 0) member.state.members = members.map(toHex);
  const u = member.universe;
  messages.push(await group.encrypt(encodeDmlsMessage({ type: 'announce', profile: DMLS_PROFILE_CODES[u.profile], universeId: u.id, exportLength: u.exportLength, ciphersuites: u.ciphersuites, members })));
  await member.save();
  return messages;
}

/** A send group must be of a ciphersuite the universe accepts (seed 003 §6). */
export function checkSuite(member: MemberSession, g: Group): void {
  if (!member.universe.ciphersuites.includes(g.state().ciphersuite)) {
    throw new DmlsError('universe', `a send group with ciphersuite ${g.state().ciphersuite}, which the universe does not accept`);
  }
}

/** An owner's announcement repeats the universe definition (seed 003 §6.1). */
export function checkAnnounce(member: MemberSession, m: Announce): void {
  const u = member.universe;
  if (!bytesEqual(m.universeId, u.id)) throw new DmlsError('universe', 'a send group of another universe');
  if (m.profile !== DMLS_PROFILE_CODES[u.profile] || m.exportLength !== u.exportLength) throw new DmlsError('universe', 'a send group announcing another profile or export length');
  if (!m.members.some((id) => bytesEqual(id, member.identity.identity))) throw new DmlsError('universe', 'announced without this member');
}

/**
 * The credentials a DMember accepts (docs/PROTOCOL.md §6.6, §6.10): every
 * leaf of a send group joined, and the keys each owner signed with over
 * its send group's readable epochs.
 */
import { fromHex, toHex } from '../mls/bytes.js';
import type { Group } from '../mls/group.js';
import type { MemberSession } from './member-session.js';

/**
 * Every leaf of a group joined by Welcome but our own: its owner (leaf 0)
 * presents its credential first hand (`introduced`), the others are
 * leaves the owner holds (`held`: a key rotated away since still names
 * its holder).
 */
export async function checkTree(member: MemberSession, group: Group, what: string): Promise<void> {
  if (!member.credentialCheck) return;
  for (const m of group.members()) {
    if (m.leafIndex === group.ownLeafIndex) continue;
    const owner = m.leafIndex === 0;
    await member.checkCredential(m.credential.identity, m.signatureKey, owner ? 'introduced' : 'held', owner ? `the owner of ${what}` : `a leaf of ${what}`);
  }
}

/**
 * Record the key leaf 0 of a followed send group signs with from its
 * current epoch on, and forget those of epochs that can no longer be read
 * (`maxPastEpochs`).
 */
export function noteOwnerKey(member: MemberSession, group: Group): void {
  const leaf0 = ownerLeaf(group);
  if (!leaf0) return;
  const keys = (member.state.ownerKeys[toHex(group.id)] ??= []);
  const key = toHex(leaf0.signatureKey);
  if (keys.at(-1)?.key !== key) keys.push({ epoch: group.epoch, key });
  const readable = group.epoch - (member.options.sendGroup.maxPastEpochs ?? 16);
  while (keys.length > 1 && keys[1]!.epoch <= readable) keys.shift();
}

/**
 * An owner's application message of an epoch before its latest key
 * rotation is signed by the key it had then: the send group keeps past
 * epochs' secrets (`maxPastEpochs`), so a thief holding the owner's state
 * and key from before a rotation (the reason for one, §6.6) could go on
 * speaking as the owner in those epochs for as long as they stay
 * readable — for a quiet owner, a long time. With a `credentialCheck`
 * that key must still be the owner's now (`validate`): revoked by the
 * rotation (`AuthenticationDirectory`, §8.4), the message is refused
 * (`credential`); so is a message of the owner's delayed past the
 * rotation.
 */
export async function checkPastOwnerKey(member: MemberSession, group: Group, epoch: number): Promise<void> {
  if (!member.credentialCheck || epoch >= group.epoch) return;
  const owner = ownerLeaf(group);
  const then = member.state.ownerKeys[toHex(group.id)]?.filter((k) => k.epoch <= epoch).at(-1);
  if (!owner || !then || then.key === toHex(owner.signatureKey)) return;
  await member.checkCredential(owner.credential.identity, fromHex(then.key), 'introduced', 'an owner\'s message signed with a key it has rotated since');
}

/** Leaf 0 of `group`: its owner. */
export function ownerLeaf(group: Group) {
  return group.member(0);
}

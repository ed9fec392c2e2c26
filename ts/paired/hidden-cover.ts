/**
 * Cover for Paired MLS hidden mode (docs/PROTOCOL.md §4.13): an ordinary
 * member's self-update made to look like a hidden-mode anchor's paired
 * update. The anchor leaf is an ordinary member's (the virtual-clients
 * derivation info travels to the sibling in the Notify, not in the leaf),
 * but it gets a new signature key on every paired commit;
 * `anchorCoverOptions` replaces the member's signature key by a
 * fresh one (same credential) in the same way.
 */
import type { Group } from '../mls/group.js';
import type { CommitOptions } from '../mls/types.js';
import { invalidArgument } from '../mls/errors.js';

/**
 * The commit options that make `options` (a self-update) a covered one:
 * `group.commit(await anchorCoverOptions(group))`.
 */
export async function anchorCoverOptions(group: Group, options: CommitOptions = {}): Promise<CommitOptions> {
  if (options.newSigner || options.vcEpochId || options.leafAppData) {
    throw invalidArgument('the anchor cover is an ordinary self-update: no newSigner, vcEpochId or leafAppData');
  }
  const own = group.ownLeaf();
  if (!own) throw invalidArgument('this client is not a member of the group');
  const ciphersuite = group.state().ciphersuite;
  const signaturePublicKey = await group.client.generateSignatureKey(ciphersuite);
  return { ...options, selfUpdate: true, newSigner: { identity: own.credential.identity, signaturePublicKey } };
}

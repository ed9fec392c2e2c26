/**
 * Cover for Paired MLS hidden mode (docs/PROTOCOL.md §4.13): an ordinary
 * member's self-update made to look like a hidden-mode anchor's paired
 * update. The anchor leaf must carry the virtual-clients derivation info
 * (its sibling reads it to rebuild the leaf's keys) and gets a new
 * signature key on every paired commit; `anchorCoverOptions` does
 * the same with random material: the leaf lists AppDataDictionary, its
 * dictionary has AppComponents = [0x667A] and a 0x667A entry shaped like
 * a DerivationInfo (`opaque epoch_id<V>; opaque ciphertext<V>;`, both
 * random, of the real lengths: the real epoch id is an exporter output
 * and the real ciphertext an AEAD output, so without the emulation
 * epoch's key neither can be told from random), and the leaf's signature
 * key is replaced by a fresh one (same credential).
 */
import type { Group } from '../mls/group.js';
import type { CommitOptions } from '../mls/types.js';
import { invalidArgument } from '../mls/errors.js';
import { Writer } from '../codec/tls.js';

/** Component ids (draft-ietf-mls-extensions AppComponents; openmls' virtual-clients component). */
const APP_COMPONENTS = 1;
const VIRTUAL_CLIENTS_COMPONENT = 0x667a;
/**
 * Field lengths of a real DerivationInfo on a member commit's leaf, as
 * openmls 0.9.2 writes them: a 32-byte exporter output, and the AEAD of the
 * 9-byte LeafNode DerivationInfoTbe with its 16-byte tag
 * (test/paired-hidden.test.ts compares them with a real anchor leaf).
 */
const EPOCH_ID_LENGTH = 32;
const CIPHERTEXT_LENGTH = 25;

/**
 * The commit options that make `options` (a self-update) a covered one:
 * `group.commit(await anchorCoverOptions(group))`.
 */
export async function anchorCoverOptions(group: Group, options: CommitOptions = {}): Promise<CommitOptions> {
  const rest = options;
  if (rest.newSigner || rest.vcEpochId || rest.leafAppData) {
    throw invalidArgument('anchorCover is an ordinary self-update: no newSigner, vcEpochId or leafAppData');
  }
  const own = group.members().find((m) => m.leafIndex === group.ownLeafIndex);
  if (!own) throw invalidArgument('this client is not a member of the group');
  const ciphersuite = group.state().ciphersuite;
  const signaturePublicKey = await group.client.generateSignatureKey(ciphersuite);
  const random = (n: number) => crypto.getRandomValues(new Uint8Array(n));
  const derivationInfo = new Writer().vector(random(EPOCH_ID_LENGTH)).vector(random(CIPHERTEXT_LENGTH)).finish();
  return {
    ...rest,
    selfUpdate: true,
    newSigner: { identity: own.credential.identity, signaturePublicKey },
    leafAppData: [
      { componentId: APP_COMPONENTS, data: new Writer().list([VIRTUAL_CLIENTS_COMPONENT], (w, id) => w.u16(id)).finish() },
      { componentId: VIRTUAL_CLIENTS_COMPONENT, data: derivationInfo },
    ],
  };
}

/**
 * Review 62d (attacker) of the ReInit old-key rule (PROTOCOL §1.6 items 4
 * and 5): without `authenticate`, every member of a successor must hold a
 * signature key the old group had for its identity.
 *
 * Found as a limit, now closed by the default credential-succession policy
 * (PROTOCOL §8.4, RFC 9420 §5.3.1): mal (leaf 2), on paired-mls and with
 * its public API only, renamed her leaf "ann" with a key of her own
 * (`commit({ selfUpdate, newSigner })`), which every member merged; after
 * the ReInit her successor as ann passed the key rule, ranked as ann's
 * lowest leaf, 0, and pulled dee out of ben's honest successor. Now her
 * own client refuses the rename (INVALID_ARGUMENT, nothing built) and
 * every member refuses one sent by another engine (CREDENTIAL_CHANGED,
 * crate tests in credential_succession.rs and reinit/review62d_tests.rs,
 * test/credential-succession): the old group keeps leaf 2 as mal, her
 * successor as ann can no longer be created on paired-mls (and one built
 * elsewhere is refused: a new key at leaf 0), and dee stays in ben's.
 */
import { describe, expect, it } from 'vitest';
import { toHex } from 'paired-mls';
import { deliverCommit, mlsError, newMember, stillWorks } from './helpers.js';

async function renameRefusedBeforeReInit() {
  const [ann, ben, mal, dee] = await Promise.all(['ann', 'ben', 'mal', 'dee'].map((n) => newMember(`${n}-62d`)));
  ann!.group = await ann!.client.createGroup(ann!.identity);
  const add = await ann!.group.commit({ add: await Promise.all([ben!, mal!, dee!].map((m) => m.client.createKeyPackage(m.identity))) });
  await ann!.group.mergePendingCommit();
  for (const m of [ben!, mal!, dee!]) m.group = await m.client.joinFromWelcome(add.welcome!);
  // mal's leaf renamed ann, under a key of her own: refused before anything is built.
  const asAnn = await mal!.client.createIdentity(ann!.identity.identity, 1);
  const refused = await mlsError(() => mal!.group!.commit({ selfUpdate: true, newSigner: { identity: asAnn.identity, signaturePublicKey: asAnn.signaturePublicKey } }));
  expect([refused.code, refused.message]).toEqual([
    'INVALID_ARGUMENT',
    "the new credential has another identity than this member's leaf 2: a leaf's credential may change only within its type and identity (RFC 9420 §5.3.1)",
  ]);
  expect(mal!.group!.state().pendingCommit).toBeFalsy();
  const reinit = await ann!.group.commitReInit({ ciphersuite: 1 });
  await ann!.group.mergePendingCommit();
  await deliverCommit(reinit.commit, [ben!, mal!, dee!]);
  return { ann: ann!, ben: ben!, mal: mal!, dee: dee!, asAnn };
}

describe('review 62d: the old-key rule and a leaf renamed in the old group', () => {
  it('a leaf can no longer be renamed to another identity in the old group: mal cannot pose as ann in a successor, and dee stays in the honest one', async () => {
    const { ann, ben, mal, dee, asAnn } = await renameRefusedBeforeReInit();
    const annHex = toHex(ann.identity.identity);
    expect(dee.group!.members().filter((m) => toHex(m.credential.identity) === annHex).map((m) => m.leafIndex)).toEqual([0]);

    // ben's honest successor (old keys): dee joins it.
    const byBen = await ben.client.createReInitSuccessor(ben.group!, ben.identity, [await dee.client.createKeyPackage(dee.identity)]);
    await byBen.group.mergePendingCommit();
    const deeIn = await dee.client.joinReInitSuccessor(dee.group!, byBen.welcome!);
    expect([deeIn.creatorLeaf, deeIn.replaced]).toEqual([1, false]);

    // mal's own client no longer lets her create a successor as ann (her leaf stayed mal's) …
    const deeKp = await dee.client.createKeyPackage(dee.identity);
    const own = await mlsError(() => mal.client.createReInitSuccessor(mal.group!, asAnn, [deeKp]));
    expect([own.code, own.message]).toEqual(['INVALID_ARGUMENT', "the successor credential must carry this member's identity in the old group"]);
    // … and one built by another engine with the key the rename would have given her leaf is
    // refused by dee: not an old key of ann's (crate test
    // a_leaf_renamed_in_the_old_group_ranks_as_that_identity builds it with raw openmls).
    expect(dee.group!.reinitState()?.successorCreator).toBe(1);
    await stillWorks([{ ...ben, group: byBen.group }, { ...dee, group: deeIn.group }]);
  });
});

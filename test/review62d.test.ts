/**
 * Review 62d (attacker) of the ReInit old-key rule (PROTOCOL §1.6 items 4
 * and 5): without `authenticate`, every member of a successor must hold a
 * signature key the old group had for its identity.
 *
 * Limit found (not fixed here): the rule takes the old group's leaves as
 * the old group held them at the ReInit's epoch, and an ordinary group
 * does not fix a leaf's identity. mal (leaf 2), on paired-mls and with
 * its public API only, renames her leaf "ann" with a key of her own
 * (`commit({ selfUpdate, newSigner })`), which every member merges; after
 * the ReInit her successor as ann passes the key rule (`oldKey` true for
 * every member), ranks as ann's lowest leaf, 0, and pulls dee out of
 * ben's honest successor (leaf 1), deleting it. An Authentication Service
 * stops it: the join with `authenticate` over the AS that registered ann's
 * real key refuses mal's creator. Her key from before the rename is no
 * longer an old key of anyone's.
 */
import { describe, expect, it } from 'vitest';
import { toHex } from 'paired-mls';
import { AuthenticationService, credentialAuthenticator } from 'paired-mls/services';
import { type Member, deliverCommit, mlsError, newMember, stillWorks } from './helpers.js';

const newKeyAt = (leaf: number) =>
  `the successor's member at leaf ${leaf} has a signature key the old group did not have for its identity: pass authenticate to have the Authentication Service vouch for a new key`;

async function renamedBeforeReInit() {
  const [ann, ben, mal, dee] = await Promise.all(['ann', 'ben', 'mal', 'dee'].map((n) => newMember(`${n}-62d`)));
  ann!.group = await ann!.client.createGroup(ann!.identity);
  const add = await ann!.group.commit({ add: await Promise.all([ben!, mal!, dee!].map((m) => m.client.createKeyPackage(m.identity))) });
  await ann!.group.mergePendingCommit();
  for (const m of [ben!, mal!, dee!]) m.group = await m.client.joinFromWelcome(add.welcome!);
  // mal's leaf renamed ann, under a key of her own: every member merges it.
  const asAnn = await mal!.client.createIdentity(ann!.identity.identity, 1);
  const rename = await mal!.group!.commit({ selfUpdate: true, newSigner: { identity: asAnn.identity, signaturePublicKey: asAnn.signaturePublicKey } });
  await mal!.group!.mergePendingCommit();
  await deliverCommit(rename.commit, [ann!, ben!, dee!]);
  const reinit = await ann!.group.commitReInit({ ciphersuite: 1 });
  await ann!.group.mergePendingCommit();
  await deliverCommit(reinit.commit, [ben!, mal!, dee!]);
  return { ann: ann!, ben: ben!, mal: mal!, dee: dee!, asAnn };
}

describe('review 62d: the old-key rule and a leaf renamed in the old group', () => {
  it('a leaf renamed to another identity in the old group ranks as that identity without authenticate (limit), and the AS refuses it', async () => {
    const { ann, ben, mal, dee, asAnn } = await renamedBeforeReInit();
    const annHex = toHex(ann.identity.identity);
    expect(dee.group!.members().filter((m) => toHex(m.credential.identity) === annHex).map((m) => m.leafIndex)).toEqual([0, 2]);

    // ben's honest successor (old keys): dee joins it.
    const byBen = await ben.client.createReInitSuccessor(ben.group!, ben.identity, [await dee.client.createKeyPackage(dee.identity)]);
    await byBen.group.mergePendingCommit();
    const deeIn = await dee.client.joinReInitSuccessor(dee.group!, byBen.welcome!);
    expect([deeIn.creatorLeaf, deeIn.replaced]).toEqual([1, false]);

    // mal, as ann with her renamed leaf's key: ranks as leaf 0, every key "old".
    const byMal = await mal.client.createReInitSuccessor(mal.group!, asAnn, [await dee.client.createKeyPackage(dee.identity)]);
    expect(byMal.creatorLeaf).toBe(0);
    await byMal.group.mergePendingCommit();
    const seen = dee.client.inspectReInitSuccessor(dee.group!, byMal.welcome!);
    expect([seen.creatorLeaf, seen.replaces, seen.members.map((m) => m.oldKey)]).toEqual([0, true, [true, true]]);

    // With an AS that registered ann's real key, mal's creator is refused, nothing changed.
    const as = new AuthenticationService();
    for (const m of [ann, ben, dee] as Member[]) as.register({ clientId: m.name, userId: m.name, identity: m.identity.identity, signatureKey: m.identity.signaturePublicKey });
    const refused = await mlsError(() => dee.client.joinReInitSuccessor(dee.group!, byMal.welcome!, { authenticate: credentialAuthenticator(as) }));
    expect([refused.code, refused.message]).toEqual(['REINIT_UNAUTHENTICATED', "the Authentication Service did not accept the successor's member at leaf 0"]);
    expect(dee.group!.reinitState()?.successorCreator).toBe(1);

    // Without it: the limit. dee drops ben's successor for mal's.
    const moved = await dee.client.joinReInitSuccessor(dee.group!, byMal.welcome!);
    expect([moved.creatorLeaf, moved.replaced]).toEqual([0, true]);
    expect(dee.group!.reinitState()?.successorCreator).toBe(0);
    await stillWorks([{ ...mal, group: byMal.group }, { ...dee, group: moved.group }]);
  });

  it("the renamed member's key from before the rename is no old key: refused under the name she took (REINIT_UNAUTHENTICATED), KeyPackage kept", async () => {
    const { mal, dee } = await renamedBeforeReInit();
    // mal's first identity (her leaf's key before the rename), now under no leaf.
    const byMal = await mal.client.createReInitSuccessor(mal.group!, { ...mal.identity, identity: new TextEncoder().encode('ann-62d') }, [await dee.client.createKeyPackage(dee.identity)]);
    await byMal.group.mergePendingCommit();
    const refused = await mlsError(() => dee.client.joinReInitSuccessor(dee.group!, byMal.welcome!));
    expect([refused.code, refused.message]).toEqual(['REINIT_UNAUTHENTICATED', newKeyAt(0)]);
    expect(dee.group!.reinitState()?.successorCreator).toBeUndefined();
    // The KeyPackage is kept: the inspection still reads the Welcome, the creator's key not an old one.
    expect(dee.client.inspectReInitSuccessor(dee.group!, byMal.welcome!).members.map((m) => m.oldKey)).toEqual([false, true]);
  });
});

/**
 * The default credential-succession policy (docs/PROTOCOL.md §8.4
 * "Credential succession", RFC 9420 §5.3.1): a leaf's credential may change
 * only within its type and identity; its signature key may change. Real
 * groups: paired-mls members (alice, carol) and a ts-mls member (bob),
 * whose engine checks nothing of the kind, so it can send a commit that
 * renames its leaf (its tree's own leaf credential swapped before the
 * commit: ts-mls copies it into the UpdatePath leaf).
 */
import { describe, expect, it } from 'vitest';
import { MlsClient, bytesEqual, utf8 } from 'paired-mls';
import { TsActor, commitAll, expectAgree, everyoneTalks } from './interop-actors.js';
import { mlsError } from './helpers.js';
import { RESYNC, RULE, aliceBobCarol, stored } from './credential-succession-helpers.js';




/** bob's self-update commit whose UpdatePath leaf carries `identity` (his state is left as before). */
async function tsRename(bob: TsActor, identity: Uint8Array): Promise<Uint8Array> {
  const before = bob.state!;
  const tree = [...before.ratchetTree];
  const at = bob.leaf() * 2;
  const node = tree[at]!;
  if (node.nodeType !== 'leaf') throw new Error('expected a leaf');
  tree[at] = { ...node, leaf: { ...node.leaf, credential: { credentialType: 'basic', identity } } };
  bob.state = { ...before, ratchetTree: tree };
  try {
    return (await bob.commit({})).commit;
  } finally {
    bob.state = before;
  }
}

describe('credential succession: a leaf keeps its credential type and identity', () => {
  it('a received commit renaming its committer\'s leaf is refused by every member (CREDENTIAL_CHANGED, leaf named), nothing staged; the honest self-update is taken', async () => {
    const { alice, bob, carol } = await aliceBobCarol('cs', (n) => TsActor.create(n));
    const renamed = await tsRename(bob, alice.identity.identity);
    for (const m of [alice, carol]) {
      const epoch = m.group!.epoch;
      const err = await mlsError(() => m.group!.process(renamed));
      expect([err.code, err.message]).toEqual(['CREDENTIAL_CHANGED', `the commit's UpdatePath gives leaf 1 a credential with another identity than its current one: ${RULE}`]);
      expect([m.group!.epoch, utf8(m.group!.members().find((x) => x.leafIndex === 1)!.credential.identity)]).toEqual([epoch, 'bob-cs']);
    }
    // bob's honest self-update (same identity, new path keys) is taken, and the group goes on.
    await commitAll(bob, { update: true }, [alice, bob, carol]);
    await expectAgree([alice, bob, carol]);
    await everyoneTalks([alice, bob, carol], 'after the refused rename');
  });

  it("this member's own newSigner of another identity is refused before anything is built (INVALID_ARGUMENT); a new key under its identity is taken by every member", async () => {
    const { alice, bob, carol } = await aliceBobCarol('cs', (n) => TsActor.create(n));
    const g = carol.group!;
    const asAlice = await carol.client.createIdentity(alice.identity.identity, 1);
    const err = await mlsError(() => g.commit({ selfUpdate: true, newSigner: { identity: asAlice.identity, signaturePublicKey: asAlice.signaturePublicKey } }));
    expect([err.code, err.message]).toEqual(['INVALID_ARGUMENT', `the new credential has another identity than this member's leaf 2: ${RULE}`]);
    expect(g.state().pendingCommit).toBeFalsy();
    // Key rotation under the same identity.
    const rotated = await carol.client.createIdentity(carol.identity.identity, 1);
    const { commit } = await g.commit({ selfUpdate: true, newSigner: { identity: rotated.identity, signaturePublicKey: rotated.signaturePublicKey } });
    await g.mergePendingCommit();
    await alice.receive(commit);
    await bob.receive(commit);
    const leaf = alice.group!.members().find((m) => m.leafIndex === 2)!;
    expect([utf8(leaf.credential.identity), bytesEqual(leaf.signatureKey, rotated.signaturePublicKey)]).toEqual(['carol-cs', true]);
    await expectAgree([alice, bob, carol]);
    await everyoneTalks([alice, bob, carol], 'after the rotation');
  });

  it("this client's own joinExternal removing a leaf of another identity is refused before anything is built (INVALID_ARGUMENT, leaf named): by `remove`, and by the joiner's key (the removal the core adds); storage unchanged, no group; a resync keeping the identity is built and taken", async () => {
    const { alice, carol } = await aliceBobCarol('cs', (n) => TsActor.create(n));
    const info = await alice.group!.exportGroupInfo();
    // A copy of carol's key, under alice's name; and alice's name under a key of the copy's own.
    const copy = await MlsClient.open();
    const carolsKeyAsAlice = await copy.importIdentity(alice.identity.identity, carol.client.exportSignatureKeyPair(carol.identity), 1);
    const ownKeyAsAlice = await copy.createIdentity(alice.identity.identity, 1);
    const before = await stored(copy);
    const byRemove = await mlsError(() => copy.joinExternal(info, ownKeyAsAlice, { remove: [2] }));
    expect([byRemove.code, byRemove.message]).toEqual(['INVALID_ARGUMENT', `remove names leaf 2, whose credential has another identity than the joiner's: ${RESYNC}`]);
    const byKey = `leaf 2 holds the joiner's signature key, so the external commit would remove it (a resync), and its credential has another identity than the joiner's: ${RESYNC}`;
    for (const options of [{}, { remove: [2] }]) {
      const err = await mlsError(() => copy.joinExternal(info, carolsKeyAsAlice, options));
      expect([err.code, err.message]).toEqual(['INVALID_ARGUMENT', byKey]);
    }
    expect(await stored(copy)).toEqual(before);
    expect(copy.groupIds()).toEqual([]);
    // The honest resync: carol's key under carol's name.
    const carolsKey = await copy.importIdentity(carol.identity.identity, carol.client.exportSignatureKeyPair(carol.identity), 1);
    const { group, commit } = await copy.joinExternal(info, carolsKey, { remove: [2] });
    if (group.state().pendingCommit) await group.mergePendingCommit();
    await alice.receive(commit);
    const leaf = alice.group!.members().find((m) => m.leafIndex === 2)!;
    expect([utf8(leaf.credential.identity), bytesEqual(leaf.signatureKey, carol.identity.signaturePublicKey), group.epoch]).toEqual(['carol-cs', true, alice.group!.epoch]);
  });
});

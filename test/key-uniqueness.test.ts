/**
 * Engine change 15 (docs/ENGINE.md) rewrote openmls' key-uniqueness check
 * (RFC 9420 §12.2, ValSem101/103): a commit may not add a KeyPackage whose
 * signature key a member already has. The refusal stays exact and the
 * group goes on with an honest add.
 */
import { describe, expect, it } from 'vitest';
import { MlsClient, MlsError } from 'paired-mls';

describe('key uniqueness (engine change 15)', () => {
  it("refuses to add a member's second KeyPackage (same signature key); an honest add follows", async () => {
    const alice = await MlsClient.open();
    const bob = await MlsClient.open();
    const carol = await MlsClient.open();
    const group = await alice.createGroup(await alice.createIdentity('alice', 1));
    const bobIdentity = await bob.createIdentity('bob', 1);
    const { welcome } = await group.commit({ add: [await bob.createKeyPackage(bobIdentity)] });
    await group.mergePendingCommit();
    const bobGroup = await bob.joinFromWelcome(welcome!);

    // Bob's second KeyPackage carries the signature key of his leaf.
    const refused = await group.commit({ add: [await bob.createKeyPackage(bobIdentity)] }).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(MlsError);
    expect((refused as MlsError).code).toBe('INVALID_MESSAGE');
    expect((refused as MlsError).message).toMatch(/Duplicate signature key/);
    expect(group.state().epoch).toBe(1);

    const added = await group.commit({ add: [await carol.createKeyPackage(await carol.createIdentity('carol', 1))] });
    await group.mergePendingCommit();
    const processed = await bobGroup.process(added.commit);
    expect(processed.kind).toBe('commit');
    if (processed.kind === 'commit') await processed.staged.merge();
    const carolGroup = await carol.joinFromWelcome(added.welcome!);
    expect([group.state().memberCount, bobGroup.state().memberCount, carolGroup.state().memberCount]).toEqual([3, 3, 3]);
    expect(carolGroup.epochAuthenticator()).toEqual(group.epochAuthenticator());
  });
});

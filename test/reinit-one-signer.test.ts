/**
 * ReInit successor races that the creator's old leaf and key do not
 * decide (PROTOCOL §1.6 items 3 and 5).
 *
 * One signer, two successors: a dishonest member (cy, on ts-mls 1.6.4:
 * what this library never sends) builds two successors with one signature
 * key. They tie on the creator's old leaf and key; the successor's
 * first-epoch digest (its GroupContext and confirmation tag, read from the
 * Welcome) decides, so members reading them in different orders end in the
 * same one. Before, each kept the first it read and refused the other:
 * split.
 *
 * Two clients of one user: the one that creates the successor adds its
 * sibling's KeyPackage (refused before: "two KeyPackages for the same
 * member"), up to as many clients of its identity as the old group had.
 */
import { describe, expect, it } from 'vitest';
import { type Group, MlsError } from 'paired-mls';
import { decodeMlsMessage, encodeMlsMessage, joinGroup, makePskIndex, reinitCreateNewGroup, type KeyPackage } from 'ts-mls';
import { encodeRatchetTree } from 'ts-mls/ratchetTree.js';
import { type Member, deliverCommit, mlsError, newMember, retiredGroupOf, stillWorks } from './helpers.js';
import { fastKdfProvider } from './interop-actors.js';
import { SUITE1, kpMessage, tsKeeping, tsMember, tsReceive, welcomeOf } from './reinit-ts-helpers.js';

const tsKeyPackage = (bytes: Uint8Array) => (decodeMlsMessage(bytes, 0)![0] as { keyPackage: KeyPackage }).keyPackage;
/** A successor KeyPackage with the member's old signature key (PROTOCOL §1.6 item 4: the join without `authenticate` takes old keys only). */
const kp = async (m: Member) => m.client.createKeyPackage(m.identity);

describe('two successors built with one signature key (PROTOCOL §1.6 item 5)', () => {
  it('members reading them in either order end in the same one (the lower first-epoch digest), the other REINIT_SUPERSEDED, and go on there', async () => {
    const [ann, ben] = [await newMember('ann-1sig'), await newMember('ben-1sig')];
    const cy = await tsMember('cy-1sig', SUITE1);
    ann.group = await ann.client.createGroup(ann.identity);
    const add = await ann.group.commit({ add: [await ben.client.createKeyPackage(ben.identity), kpMessage(cy.pub)] });
    await ann.group.mergePendingCommit();
    ben.group = await ben.client.joinFromWelcome(add.welcome!);
    cy.state = await joinGroup(welcomeOf(add.welcome!), cy.pub, cy.priv, makePskIndex(undefined, {}), cy.cs);
    const reinit = await ann.group.commitReInit({ ciphersuite: 1 });
    await ann.group.mergePendingCommit();
    await deliverCommit(reinit.commit, [ben]);
    await tsReceive(cy, reinit.commit);
    const old = new Map<Member, Group>([ann, ben].map((m) => [m, m.group!]));

    // cy (old leaf 2) builds two successors with ONE successor key (its
    // old one), each to a fresh KeyPackage of ann and of ben.
    const cyNext = await tsKeeping(cy, SUITE1);
    const newId = old.get(ann)!.reinitState()!.newGroupId;
    const build = async () => {
      const created = await reinitCreateNewGroup(cy.state!, cyNext.pub, cyNext.priv, [tsKeyPackage(await kp(ann)), tsKeyPackage(await kp(ben))], newId, SUITE1, [], fastKdfProvider);
      return { welcome: encodeMlsMessage({ welcome: created.welcome!, wireformat: 'mls_welcome', version: 'mls10' }), ratchetTree: encodeRatchetTree(created.newState.ratchetTree) };
    };
    const [s1, s2] = [await build(), await build()];
    const join = (m: Member, s: typeof s1) => m.client.joinReInitSuccessor(old.get(m)!, s.welcome, { ratchetTree: s.ratchetTree });

    // ann reads s1 then s2, ben s2 then s1.
    const annFirst = await join(ann, s1);
    const benFirst = await join(ben, s2);
    expect([annFirst.creatorLeaf, annFirst.replaced, benFirst.creatorLeaf, benFirst.replaced]).toEqual([2, false, 2, false]);
    const outcome = async (m: Member, s: typeof s1) => join(m, s).then((j) => ({ moved: j }), (e: unknown) => ({ refused: e }));
    const annSecond = await outcome(ann, s2);
    const benSecond = await outcome(ben, s1);
    // Exactly one of them moves to the winner; the other refuses the loser.
    const [moved, stayed] = 'moved' in annSecond ? [annSecond, benSecond] : [benSecond, annSecond];
    expect('moved' in moved && [moved.moved.creatorLeaf, moved.moved.replaced]).toEqual([2, true]);
    const refused = 'refused' in stayed ? stayed.refused : undefined;
    expect(refused).toBeInstanceOf(MlsError);
    expect([(refused as MlsError).code, (refused as MlsError).message]).toEqual([
      'REINIT_SUPERSEDED',
      'already in the successor created by old leaf 2 with the same signature key and a lower or equal first-epoch digest, which wins over this one',
    ]);
    ann.group = 'moved' in annSecond ? annSecond.moved.group : annFirst.group;
    ben.group = 'moved' in benSecond ? benSecond.moved.group : benFirst.group;
    expect(ann.group.epochAuthenticator()).toEqual(ben.group.epochAuthenticator());
    for (const m of [ann, ben]) expect(old.get(m)!.reinitState()!.successorCreator).toBe(2);
    // They go on there: each commits, the other follows, messages cross.
    await stillWorks([ann, ben]);
    await stillWorks([ben, ann]);
  });
});

describe('a creator adds other clients of its own identity (PROTOCOL §1.6 item 3)', () => {
  it("ann's leaf-0 client adds its sibling's (old leaf 2) and bo's KeyPackages, all join and talk; a third client of ann is refused REINIT_MISMATCH", async () => {
    const [ann1, bo, ann2] = (await retiredGroupOf('ann-sib', 'bo-sib', 'ann-sib')) as [Member, Member, Member];
    const old = new Map([ann1, bo, ann2].map((m) => [m, m.group!]));
    const identity = ann1.identity;
    // ann had two old leaves: the creator and one sibling, no third.
    const third = await mlsError(async () => ann1.client.createReInitSuccessor(old.get(ann1)!, identity, [await kp(ann2), await kp(ann2), await kp(bo)]));
    expect([third.code, third.message]).toEqual(['REINIT_MISMATCH', 'more KeyPackages of an identity than the old group had leaves of it (the creator counts as one of its own)']);
    expect(old.get(ann1)!.reinitState()!.successorCreator).toBeUndefined();

    const created = await ann1.client.createReInitSuccessor(old.get(ann1)!, identity, [await kp(ann2), await kp(bo)]);
    await created.group.mergePendingCommit();
    expect(created.creatorLeaf).toBe(0);
    ann1.group = created.group;
    for (const m of [ann2, bo]) {
      const joined = await m.client.joinReInitSuccessor(old.get(m)!, created.welcome!);
      expect([joined.creatorLeaf, joined.replaced]).toEqual([0, false]);
      m.group = joined.group;
    }
    expect(ann1.group.members().map((m) => new TextDecoder().decode(m.credential.identity))).toEqual(['ann-sib', 'ann-sib', 'bo-sib']);
    await stillWorks([ann2, ann1, bo]);
    await stillWorks([bo, ann2, ann1]);
  });
});

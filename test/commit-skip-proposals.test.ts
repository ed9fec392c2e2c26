/**
 * `CommitOptions.skipProposalsFrom` (the core's filter over the proposal
 * store, engine change 39): a commit leaves out the proposals by reference
 * of one leaf and takes the others'; its own proposals by value are kept.
 * Paired MLS uses it for the anchor leaf (docs/PROTOCOL.md §4.5). A value
 * that is no leaf index is INVALID_ARGUMENT, and nothing is committed.
 */
import { describe, expect, it } from 'vitest';
import { utf8 } from 'paired-mls';
import { deliverCommit, expectInSync, mlsError, newMember, type Member } from './helpers.js';

describe('commit({ skipProposalsFrom })', () => {
  it("leaves out one member's proposals by reference, commits the others' and its own; a bad index is INVALID_ARGUMENT", async () => {
    const [alice, bob, carol, dave, erin, frank] = (await Promise.all(['alice', 'bob', 'carol', 'dave', 'erin', 'frank'].map((n) => newMember(n)))) as [Member, Member, Member, Member, Member, Member];
    alice.group = await alice.client.createGroup(alice.identity);
    const add = await alice.group.commit({ add: await Promise.all([bob, carol].map((m) => m.client.createKeyPackage(m.identity))) });
    await alice.group.mergePendingCommit();
    for (const m of [bob, carol]) m.group = await m.client.joinFromWelcome(add.welcome!);
    // bob proposes dave, carol proposes erin; everyone queues both.
    const fromBob = await bob.group!.propose({ type: 'add', keyPackage: await dave.client.createKeyPackage(dave.identity) });
    const fromCarol = await carol.group!.propose({ type: 'add', keyPackage: await erin.client.createKeyPackage(erin.identity) });
    for (const m of [alice, carol]) expect((await m.group!.process(fromBob)).kind).toBe('proposal');
    for (const m of [alice, bob]) expect((await m.group!.process(fromCarol)).kind).toBe('proposal');

    for (const bad of [-1, 1.5, 2 ** 32]) {
      const err = await mlsError(() => alice.group!.commit({ skipProposalsFrom: bad }));
      expect({ code: err.code, message: err.message }).toEqual({ code: 'INVALID_ARGUMENT', message: 'skipProposalsFrom must be an integer between 0 and 4294967295' });
    }
    expect(alice.group.epoch).toBe(1);

    // Alice's own Add by value (frank) goes in beside carol's.
    const { commit, welcome } = await alice.group.commit({ skipProposalsFrom: bob.group!.ownLeafIndex, add: [await frank.client.createKeyPackage(frank.identity)] });
    await alice.group.mergePendingCommit();
    const atCarol = await carol.group!.process(commit);
    if (atCarol.kind !== 'commit') throw new Error(atCarol.kind);
    expect(atCarol.staged.adds.map((a) => utf8(a.credential.identity))).toEqual(['erin', 'frank']);
    await atCarol.staged.merge();
    await deliverCommit(commit, [bob]);
    for (const m of [erin, frank]) m.group = await m.client.joinFromWelcome(welcome!);
    expectInSync([alice, bob, carol, erin, frank]);
  });
});

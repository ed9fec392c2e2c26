/**
 * A member cannot jam a group's commits with a proposal of a type not
 * every member supports (docs/ENGINE.md change 35, RFC 9420 §12.2).
 *
 * Before: bob proposed a custom type no member lists in its capabilities;
 * every receiver queued it, and every commit that takes the pending
 * proposals (the default, and every paired update) failed with
 * `UnsupportedProposalType` for the rest of the epoch. A paired active
 * device could not heal its passive partner while bob kept doing it. Now a
 * committer leaves such a proposal by reference out; by value it is still
 * the committer's own error.
 */
import { describe, expect, it } from 'vitest';
import { MlsError } from 'paired-mls';
import { createIntent, leaveRequestsIn, proposeIntent } from 'paired-mls/intents';
import { deliverCommit, expectInSync, type Member } from './helpers.js';
import { deliver, names, world } from './intents-review-helpers.js';
import { pairedWorld } from './paired-helpers.js';

const UNSUPPORTED = { type: 'custom', proposalType: 0xf1a1, payload: new Uint8Array([1]) } as const;

describe('a proposal of a type some member does not support', () => {
  it('is left out of commits that take pending proposals; by value it is refused; the pending leave still goes in', async () => {
    const w = await world();
    const leave = createIntent(w.alice.group!, 'senderRemovalOnly');
    await deliver(await proposeIntent(w.carol.group!, leave), w.all.filter((m) => m !== w.carol));
    const blocker = await w.bob.group!.propose(UNSUPPORTED);
    for (const m of w.all.filter((m) => m !== w.bob)) expect((await m.group!.process(blocker)).kind).toBe('proposal');

    const byValue = await w.dave.group!.commit({ custom: [{ proposalType: 0xf1a1, payload: new Uint8Array([2]) }] }).then(() => undefined, (e: unknown) => e);
    expect(byValue).toBeInstanceOf(MlsError);
    expect((byValue as MlsError).code).toBe('INVALID_MESSAGE');
    expect((byValue as MlsError).message).toBe('building commit: The proposal type is not supported by all group members.');

    const result = await w.dave.group!.commit();
    expect(leaveRequestsIn(result)).toEqual([]);
    await w.dave.group!.mergePendingCommit();
    const seen = await w.bob.group!.process(result.commit);
    if (seen.kind !== 'commit') throw new Error('not a commit');
    expect(seen.staged.proposals.map((p) => p.proposal.type)).toEqual(['custom']);
    expect(seen.staged.custom.map((p) => p.proposalType)).toEqual([0xf1a0]);
    await seen.staged.merge();
    await deliver(result.commit, [w.alicePhone, w.carol]);
    expect(names(w.dave.group!)).toEqual(['alice', 'bob', 'carol', 'dave']);
    expectInSync([w.alicePhone, w.bob, w.carol, w.dave]);
  });

  it.each(['hidden', 'standard'] as const)('does not stop a paired update (%s mode): the passive partner still heals', async (mode) => {
    const w = await pairedWorld(['bob', 'carol'], mode);
    const [bob, carol] = w.others as [NonNullable<typeof w.others[0]>, NonNullable<typeof w.others[0]>];
    const g = w.a.group!;
    const blocker = await bob.group!.propose(UNSUPPORTED);
    for (const m of [w.a, carol]) expect((await m.group!.process(blocker)).kind).toBe('proposal');
    const before = g.epoch;
    const out = await w.activeDevice.update(g);
    await g.mergePendingCommit();
    await deliverCommit(out.commit, [bob, carol]);
    expect((await w.passiveDevice.applyNotify(out)).kind).toBe('update');
    expect(g.epoch).toBe(before + 1);
    expectInSync([w.a, w.p, bob, carol]);
  });

  it.each(['hidden', 'standard'] as const)('nor do two GroupContextExtensions proposals or the Add of a member\'s KeyPackage (%s mode): the paired update carries what it can', async (mode) => {
    const w = await pairedWorld(['bob', 'carol'], mode);
    const [bob, carol] = w.others as [Member, Member];
    const gce = { type: 'groupContextExtensions' as const, extensions: { externalSenders: [], custom: [] } };
    for (const from of [bob, carol]) {
      const proposal = await from.group!.propose(gce);
      for (const m of [w.a, w.p, bob, carol].filter((m) => m !== from)) expect((await m.group!.process(proposal)).kind).toBe('proposal');
    }
    const carolsOwn = await bob.group!.propose({ type: 'add', keyPackage: await carol.client.createKeyPackage(carol.identity) });
    for (const m of [w.a, w.p, carol]) expect((await m.group!.process(carolsOwn)).kind).toBe('proposal');
    const out = await w.activeDevice.update(w.a.group!);
    await w.a.group!.mergePendingCommit();
    const seen = await bob.group!.process(out.commit);
    if (seen.kind !== 'commit') throw new Error('not a commit');
    // One GroupContextExtensions (bob's, the first); the Add is left out.
    expect(seen.staged.proposals.map((p) => p.proposal.type)).toEqual(['groupContextExtensions']);
    await seen.staged.merge();
    await deliverCommit(out.commit, [carol]);
    expect((await w.passiveDevice.applyNotify(out)).kind).toBe('update');
    expectInSync([w.a, w.p, bob, carol]);
  });
});

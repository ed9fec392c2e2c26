/**
 * Review of the LeafOperationIntent layer (seed 004) as an attacker:
 * proposals by reference that overlap an intent, so that whoever commits
 * the epoch's pending proposals next would fail (RFC 9420 §12.2: the
 * committer picks one of several proposals for one leaf and drops the rest).
 */
import { describe, expect, it } from 'vitest';
import { createIntent, intentsIn, proposeIntent } from 'paired-mls/intents';
import { expectInSync } from './helpers.js';
import { deliver, names, world } from './intents-review-helpers.js';

describe('LeafOperationIntent review: overlapping proposals by reference (RFC 9420 §12.2)', () => {
  it('an intent and a Remove of one of its leaves, both pending, do not block the next commit', async () => {
    const w = await world();
    const intent = createIntent(w.alice.group!, 'removeAssociatedMembers');
    const present = [w.bob, w.carol, w.dave, w.alice, w.alicePhone];
    // carol proposes the intent, bob (racing) a Remove of alice's phone.
    await deliver(await proposeIntent(w.carol.group!, intent), present.filter((m) => m !== w.carol));
    await deliver(await w.bob.group!.propose({ type: 'remove', leafIndex: w.alicePhone.group!.ownLeafIndex }), present.filter((m) => m !== w.bob));
    expect(w.dave.group!.state().pendingProposals).toBe(2);
    // dave commits what is pending: one of the two is dropped, the commit goes through.
    const { commit } = await w.dave.group!.commit({ includePending: true });
    await w.dave.group!.mergePendingCommit();
    await deliver(commit, [w.bob, w.carol]);
    expectInSync([w.bob, w.carol, w.dave]);
    expect(names(w.dave.group!)).not.toContain('alice-phone');
  });

  it('two intents of associated devices, both pending, do not block the next commit', async () => {
    const w = await world();
    const a = createIntent(w.alice.group!, 'removeAssociatedMembers');
    const b = createIntent(w.alicePhone.group!, 'removeAssociatedMembers');
    const present = [w.bob, w.carol, w.dave];
    await deliver(await proposeIntent(w.bob.group!, a), present.filter((m) => m !== w.bob));
    await deliver(await proposeIntent(w.carol.group!, b), present.filter((m) => m !== w.carol));
    const { commit } = await w.dave.group!.commit({ includePending: true });
    await w.dave.group!.mergePendingCommit();
    let intents = 0;
    for (const m of [w.bob, w.carol]) {
      const r = await m.group!.process(commit);
      if (r.kind !== 'commit') throw new Error('not a commit');
      intents = intentsIn(r.staged).length;
      await r.staged.merge();
    }
    expect(intents).toBe(1);
    expectInSync(present);
    expect(names(w.dave.group!)).toEqual(['bob', 'carol', 'dave']);
  });

  it("the intent's sender's own Update, pending with its intent, does not block the next commit", async () => {
    const w = await world();
    const intent = createIntent(w.alice.group!, 'senderRemovalOnly');
    const present = [w.bob, w.carol, w.dave, w.alicePhone];
    // alice's Update proposal (sent before she decided to leave) and her intent.
    await deliver(await w.alice.group!.propose({ type: 'update' }), present);
    await deliver(await proposeIntent(w.bob.group!, intent), present.filter((m) => m !== w.bob));
    const { commit } = await w.dave.group!.commit({ includePending: true });
    await w.dave.group!.mergePendingCommit();
    await deliver(commit, present.filter((m) => m !== w.dave));
    expectInSync(present);
  });
});

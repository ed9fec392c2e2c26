/**
 * Fifth review of the LeafOperationIntent layer (seed 004) as an attacker:
 * cutting a user's leave down to one device. alice leaves with
 * remove_associated_members and deletes her state; her intent is pending by
 * reference. Someone proposes a Remove of alice herself (any member; her own
 * phone, if it is the device she is leaving to get rid of), or alice's own
 * SelfRemove was still pending. The committer kept that one and left the
 * intent out (engine change 29), so alice went and her phone stayed — and
 * for good: the intent names alice's leaf, which is now gone (draft §3: an
 * intent holds "until the sender is either removed from the group or
 * updates its own leaf"), and alice can no longer make another.
 * Both are Removes of alice (draft §2.4), so RFC 9420 §12.2 lets the
 * committer keep either; the intent removes alice too, so keeping it loses
 * nothing the other proposal asked for.
 */
import { describe, expect, it } from 'vitest';
import { createIntent, intentsIn, proposeIntent } from 'paired-mls/intents';
import { expectInSync, type Member } from './helpers.js';
import { deliver, names, world } from './intents-review-helpers.js';

type World = Awaited<ReturnType<typeof world>>;

const races: [string, (w: World) => Member, (w: World) => { type: 'remove'; leafIndex: number } | { type: 'selfRemove' }][] = [
  ['a Remove of alice from bob', (w) => w.bob, (w) => ({ type: 'remove', leafIndex: w.alice.group!.ownLeafIndex })],
  ["a Remove of alice from alice's phone", (w) => w.alicePhone, (w) => ({ type: 'remove', leafIndex: w.alice.group!.ownLeafIndex })],
  // (openmls sends a SelfRemove only as a PublicMessage: this world is plaintext.)
  ["alice's own SelfRemove", (w) => w.alice, () => ({ type: 'selfRemove' })],
];

describe("LeafOperationIntent review 5: a pending Remove of the intent's sender does not cut its associated members out of the leave", () => {
  for (const [what, senderOf, request] of races) {
    it(`${what}, pending after the intent, gives way to it; alice and her phone both leave`, async () => {
      const w = await world(what.includes('SelfRemove') ? 'plaintext' : 'ciphertext');
      const leaves = [w.alice.group!.ownLeafIndex, w.alicePhone.group!.ownLeafIndex].sort((a, b) => a - b);
      const intent = createIntent(w.alice.group!, 'removeAssociatedMembers');
      await deliver(await proposeIntent(w.carol.group!, intent), w.all.filter((m) => m !== w.carol));
      const racer = senderOf(w);
      await deliver(await racer.group!.propose(request(w)), w.all.filter((m) => m !== racer));
      expect(w.dave.group!.state().pendingProposals).toBe(2);

      const { commit } = await w.dave.group!.commit({ includePending: true });
      await w.dave.group!.mergePendingCommit();
      for (const m of [w.bob, w.carol, w.alicePhone]) {
        const r = await m.group!.process(commit);
        if (r.kind !== 'commit') throw new Error('not a commit');
        // Only the intent is committed; the Remove it covers was left out.
        expect(r.staged.proposals.map((p) => p.proposal.type)).toEqual(['custom']);
        expect(intentsIn(r.staged)).toHaveLength(1);
        expect([...r.staged.impliedRemoves]).toEqual(leaves);
        await r.staged.merge();
      }
      expect(w.alicePhone.group!.state().active).toBe(false);
      const present = [w.bob, w.carol, w.dave];
      expectInSync(present);
      expect(names(w.dave.group!)).toEqual(['bob', 'carol', 'dave']);
      const next = await w.bob.group!.selfUpdate();
      await w.bob.group!.mergePendingCommit();
      await deliver(next.commit, [w.carol, w.dave]);
      expectInSync(present);
    });
  }

  it('a pending Remove of a member the intent does not cover stays in the commit beside it', async () => {
    const w = await world();
    const intent = createIntent(w.alice.group!, 'removeAssociatedMembers');
    await deliver(await proposeIntent(w.carol.group!, intent), w.all.filter((m) => m !== w.carol));
    await deliver(await w.bob.group!.propose({ type: 'remove', leafIndex: w.carol.group!.ownLeafIndex }), w.all.filter((m) => m !== w.bob));
    const { commit } = await w.dave.group!.commit({ includePending: true });
    await w.dave.group!.mergePendingCommit();
    const r = await w.bob.group!.process(commit);
    if (r.kind !== 'commit') throw new Error('not a commit');
    expect(r.staged.proposals.map((p) => p.proposal.type).sort()).toEqual(['custom', 'remove']);
    await r.staged.merge();
    expect(names(w.bob.group!)).toEqual(['bob', 'dave']);
    expectInSync([w.bob, w.dave]);
  });
});

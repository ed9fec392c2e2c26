/**
 * Second review of the LeafOperationIntent layer (seed 004) as an attacker,
 * after engine change 29 (docs/ENGINE.md): proposals by reference that
 * overlap an intent the committer commits *by value* (`commitIntents`, the
 * draft §2.4 "commit it directly" path). RFC 9420 §12.2: of several
 * proposals for one leaf "the committer chooses one and includes only that
 * one"; the intent given by value is the committer's choice, so a pending
 * Remove, SelfRemove or Update of a leaf it removes gives way to it.
 */
import { describe, expect, it } from 'vitest';
import { commitIntents, createIntent, intentsIn } from 'paired-mls/intents';
import { expectInSync, type Member } from './helpers.js';
import { deliver, names, world } from './intents-review-helpers.js';

describe('LeafOperationIntent review 2: a pending proposal by reference does not block an intent committed by value', () => {
  type World = Awaited<ReturnType<typeof world>>;
  const pendings: [string, (w: World) => Member, (w: World) => { type: 'remove'; leafIndex: number } | { type: 'update' } | { type: 'selfRemove' }][] = [
    ['a Remove of the associated device (from bob)', (w) => w.bob, (w) => ({ type: 'remove', leafIndex: w.alicePhone.group!.ownLeafIndex })],
    ['an Update of the associated device (from the device itself)', (w) => w.alicePhone, () => ({ type: 'update' })],
    // (openmls sends a SelfRemove only as a PublicMessage: this world is plaintext.)
    ['a SelfRemove of the associated device', (w) => w.alicePhone, () => ({ type: 'selfRemove' })],
    ['a Remove of the intent\'s sender (from bob)', (w) => w.bob, (w) => ({ type: 'remove', leafIndex: w.alice.group!.ownLeafIndex })],
  ];
  for (const [what, senderOf, request] of pendings) {
    it(`${what}, pending, gives way to the intent carol commits by value; everyone follows`, async () => {
      const w = await world(what.includes('SelfRemove') ? 'plaintext' : 'ciphertext');
      const intent = createIntent(w.alice.group!, 'removeAssociatedMembers');
      const present = [w.bob, w.carol, w.dave];
      const sender = senderOf(w);
      const proposal = await sender.group!.propose(request(w));
      await deliver(proposal, w.all.filter((m) => m !== sender));
      expect(w.carol.group!.state().pendingProposals).toBe(1);
      // carol was handed alice's intent and commits it directly (draft §2.4), pending proposals included (the default).
      const { commit } = await commitIntents(w.carol.group!, [intent]);
      await w.carol.group!.mergePendingCommit();
      for (const m of [w.bob, w.dave]) {
        const r = await m.group!.process(commit);
        if (r.kind !== 'commit') throw new Error('not a commit');
        expect(intentsIn(r.staged)).toHaveLength(1);
        // The overlapping proposal by reference was left out: only the intent is committed.
        expect(r.staged.proposals.map((p) => p.proposal.type)).toEqual(['custom']);
        expect([...r.staged.impliedRemoves].sort()).toEqual([w.alice.group!.ownLeafIndex, w.alicePhone.group!.ownLeafIndex].sort());
        await r.staged.merge();
      }
      expectInSync(present);
      expect(names(w.carol.group!)).toEqual(['bob', 'carol', 'dave']);
      // The group goes on.
      const next = await w.dave.group!.selfUpdate();
      await w.dave.group!.mergePendingCommit();
      await deliver(next.commit, [w.bob, w.carol]);
      expectInSync(present);
    });
  }
});

/**
 * Third review of the LeafOperationIntent layer (seed 004) as an attacker,
 * after engine change 29: a pending Remove of the *committer* by
 * reference. RFC 9420 §12.2 makes a commit removing its committer invalid,
 * and openmls refuses to build one (it does not drop the Remove, which
 * would let the member named evade it). So the member named cannot commit
 * the epoch's pending proposals, an intent included — by design — while
 * any other member commits them all and the group moves on (no jam).
 */
import { describe, expect, it } from 'vitest';
import { MlsError } from 'paired-mls';
import { commitIntents, createIntent, intentsIn } from 'paired-mls/intents';
import { expectInSync } from './helpers.js';
import { deliver, names, world } from './intents-review-helpers.js';

describe('LeafOperationIntent review 3: a pending Remove of the committer', () => {
  it('refuses that member\'s commitIntents (PROTOCOL, it would remove itself); another member commits the intent and the Remove together, and the group goes on', async () => {
    const w = await world();
    const intent = createIntent(w.alice.group!, 'removeAssociatedMembers');
    const proposal = await w.bob.group!.propose({ type: 'remove', leafIndex: w.carol.group!.ownLeafIndex });
    await deliver(proposal, w.all.filter((m) => m !== w.bob));
    const epoch = w.carol.group!.epoch;
    const err = await commitIntents(w.carol.group!, [intent]).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(MlsError);
    expect((err as MlsError).code).toBe('PROTOCOL');
    expect((err as MlsError).message).toContain('The Commit tried to remove self from the group');
    expect(w.carol.group!.epoch).toBe(epoch);
    expect(w.carol.group!.state().pendingCommit).toBe(false);
    // dave commits alice's intent by value with the pending Remove of carol.
    const { commit } = await commitIntents(w.dave.group!, [intent]);
    await w.dave.group!.mergePendingCommit();
    for (const m of [w.bob, w.carol]) {
      const r = await m.group!.process(commit);
      if (r.kind !== 'commit') throw new Error('not a commit');
      expect(intentsIn(r.staged)).toHaveLength(1);
      expect(r.staged.proposals.map((p) => p.proposal.type).sort()).toEqual(['custom', 'remove']);
      await r.staged.merge();
    }
    expect(w.carol.group!.state().active).toBe(false);
    expect(names(w.dave.group!)).toEqual(['bob', 'dave']);
    expectInSync([w.bob, w.dave]);
    const next = await w.bob.group!.selfUpdate();
    await w.bob.group!.mergePendingCommit();
    await deliver(next.commit, [w.dave]);
    expectInSync([w.bob, w.dave]);
  });
});

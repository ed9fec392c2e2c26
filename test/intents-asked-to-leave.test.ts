/**
 * A committer is told when its own user's intent asks it to leave
 * (docs/PROTOCOL.md §5.4, `CommitResult.askedToLeave`, `leaveRequestsIn`).
 *
 * An intent that would remove the committer is left out of its commit (no
 * commit may remove its committer, RFC 9420 §12.2) and defers nothing
 * (test/intents-review7 "the cost"). Before this, the committing device was
 * not told: alice's phone, committing while alice's leave and a Remove of
 * alice were pending, stayed in the group alice asked all her devices to
 * leave, and nothing told its application to leave. Now the commit result
 * carries the intent, and the phone asks to leave (its own intent, or a
 * SelfRemove where the wire format allows one).
 *
 * The attacker's side: only a valid intent whose sender the AS associates
 * with the committer is reported. Another member's wide intent, or one the
 * committer is not part of, is not; a forged one never gets pending.
 */
import { describe, expect, it } from 'vitest';
import { createIntent, decodeIntent, encodeIntent, leaveRequestsIn, leavesRemovedBy, proposeIntent, IntentError } from 'paired-mls/intents';
import { expectInSync } from './helpers.js';
import { deliver, names, world } from './intents-review-helpers.js';

describe('a committer asked to leave by its own user is told', () => {
  it.each([
    ['ciphertext', 'its own intent'],
    ['mixed-plaintext', 'a SelfRemove'],
  ] as const)("%s: alice's phone commits with her leave and a Remove of alice pending: its result names the leave; it leaves by %s and ends up out", async (wireFormat, how) => {
    const w = await world(wireFormat);
    const leave = createIntent(w.alice.group!, 'removeAssociatedMembers');
    await deliver(await proposeIntent(w.carol.group!, leave), w.all.filter((m) => m !== w.carol));
    await deliver(await w.bob.group!.propose({ type: 'remove', leafIndex: w.alice.group!.ownLeafIndex }), w.all.filter((m) => m !== w.bob));

    const result = await w.alicePhone.group!.commit({ includePending: true });
    // The exact proposal, and the intent decoded from it.
    expect(result.askedToLeave).toEqual([{ proposalType: 0xf1a0, payload: encodeIntent(leave) }]);
    expect(leaveRequestsIn(result)).toEqual([leave]);
    await w.alicePhone.group!.mergePendingCommit();
    await deliver(result.commit, [w.bob, w.carol, w.dave]);
    // As before: the leave was left out, the Remove of alice went through.
    expect(names(w.dave.group!)).toEqual(['alice', 'bob', 'carol', 'dave']);

    // The phone does what its user asked, committed by dave. A SelfRemove
    // travels as a PublicMessage, which a pure ciphertext group refuses to
    // send; there the phone proposes its own sender_removal_only intent.
    const ask = how === 'a SelfRemove' ? await w.alicePhone.group!.leave() : await proposeIntent(w.alicePhone.group!, createIntent(w.alicePhone.group!, 'senderRemovalOnly'));
    await deliver(ask, [w.bob, w.carol, w.dave]);
    const { commit } = await w.dave.group!.commit({ includePending: true });
    await w.dave.group!.mergePendingCommit();
    await deliver(commit, [w.bob, w.carol]);
    const seen = await w.alicePhone.group!.process(commit);
    expect(seen.kind).toBe('commit');
    if (seen.kind === 'commit') expect(seen.staged.selfRemoved).toBe(true);
    expect(names(w.dave.group!)).toEqual(['bob', 'carol', 'dave']);

    // The honest members keep working.
    const { commit: next } = await w.bob.group!.selfUpdate();
    await w.bob.group!.mergePendingCommit();
    await deliver(next, [w.carol, w.dave]);
    expectInSync([w.bob, w.carol, w.dave]);
  });

  it('the leave alone pending: reported to the phone, left out of its commit, and the next committer removes alice and her phone', async () => {
    const w = await world();
    const leave = createIntent(w.alice.group!, 'removeAssociatedMembers');
    const proposal = await proposeIntent(w.carol.group!, leave);
    await deliver(proposal, w.all.filter((m) => m !== w.carol));
    const result = await w.alicePhone.group!.commit({ includePending: true });
    expect(leaveRequestsIn(result)).toEqual([leave]);
    await w.alicePhone.group!.mergePendingCommit();
    await deliver(result.commit, [w.alice, w.bob, w.carol, w.dave]);
    expect(names(w.dave.group!)).toHaveLength(5);

    // Its sender stays, so the intent is still good: proposed again, dave commits it.
    await deliver(await proposeIntent(w.carol.group!, leave), [w.alice, w.alicePhone, w.bob, w.dave]);
    const second = await w.dave.group!.commit({ includePending: true });
    expect(second.askedToLeave).toBeUndefined();
    await w.dave.group!.mergePendingCommit();
    await deliver(second.commit, [w.bob, w.carol]);
    expect(names(w.dave.group!)).toEqual(['bob', 'carol', 'dave']);
    expectInSync([w.bob, w.carol, w.dave]);
  });

  it('not reported: an intent that does not cover the committer (alice alone), another user\'s wide leave, or a commit that takes no pending proposals', async () => {
    const w = await world();
    // bob's wide leave covers bob's devices only; alice's narrow one only alice.
    const bobLeaves = createIntent(w.bob.group!, 'removeAssociatedMembers');
    const aliceAlone = createIntent(w.alice.group!, 'senderRemovalOnly');
    await deliver(await proposeIntent(w.carol.group!, bobLeaves), w.all.filter((m) => m !== w.carol));
    await deliver(await proposeIntent(w.dave.group!, aliceAlone), w.all.filter((m) => m !== w.dave));

    const without = await w.alicePhone.group!.commit({ includePending: false, selfUpdate: true });
    expect(without.askedToLeave).toBeUndefined();
    await w.alicePhone.group!.clearPendingCommit();

    const result = await w.alicePhone.group!.commit({ includePending: true });
    expect(result.askedToLeave).toBeUndefined();
    expect(leaveRequestsIn(result)).toEqual([]);
    await w.alicePhone.group!.mergePendingCommit();
    await deliver(result.commit, [w.carol, w.dave]);
    // Both intents went in: bob and alice are out, the phone stays.
    expect(names(w.dave.group!)).toEqual(['alice', 'carol', 'dave']);
    expectInSync([w.alicePhone, w.carol, w.dave]);
  });

  it("a receiver learns from the proposal that its user's leave covers it: bob then removes alice by value (her leave dies), and the phone, told before, asks to leave", async () => {
    const w = await world();
    const leave = createIntent(w.alice.group!, 'removeAssociatedMembers');
    const proposal = await proposeIntent(w.carol.group!, leave);
    const phone = w.alicePhone.group!;
    const received = await phone.process(proposal);
    if (received.kind !== 'proposal' || received.proposal.type !== 'custom') throw new Error('not a custom proposal');
    const intent = decodeIntent(received.proposal.payload);
    expect(intent).toEqual(leave);
    const aliceLeaves = [w.alice.group!.ownLeafIndex, phone.ownLeafIndex].sort();
    expect(leavesRemovedBy(phone, intent).sort()).toEqual(aliceLeaves);
    // The same answer at a member of another user, and a narrower intent covers alice alone.
    await deliver(proposal, [w.alice, w.bob, w.dave]);
    expect(leavesRemovedBy(w.bob.group!, intent).sort()).toEqual(aliceLeaves);
    expect(leavesRemovedBy(w.bob.group!, createIntent(w.alice.group!, 'senderRemovalOnly'))).toEqual([w.alice.group!.ownLeafIndex]);
    // A forged copy is refused with the exact reason.
    const forged = { ...leave, signature: leave.signature.map((b, i) => (i === 0 ? b ^ 1 : b)) };
    const err = (() => {
      try {
        return leavesRemovedBy(phone, forged);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(IntentError);
    expect((err as IntentError).reason).toBe('bad-signature');

    // bob removes alice by value: his choice, the leave is dead and the phone stays ...
    const { commit } = await w.bob.group!.commit({ includePending: true, remove: [w.alice.group!.ownLeafIndex] });
    await w.bob.group!.mergePendingCommit();
    await deliver(commit, [w.alicePhone, w.carol, w.dave]);
    expect(names(w.dave.group!)).toEqual(['alice', 'bob', 'carol', 'dave']);
    // ... and, told at the proposal, asks to leave with its own intent.
    await deliver(await proposeIntent(phone, createIntent(phone, 'senderRemovalOnly')), [w.bob, w.carol, w.dave]);
    const { commit: out } = await w.carol.group!.commit({ includePending: true });
    await w.carol.group!.mergePendingCommit();
    await deliver(out, [w.bob, w.dave]);
    expect(names(w.dave.group!)).toEqual(['bob', 'carol', 'dave']);
    expectInSync([w.bob, w.carol, w.dave]);
  });

  it("a forged leave naming alice's phone never gets pending, so it is never reported", async () => {
    const w = await world();
    const leave = createIntent(w.alice.group!, 'removeAssociatedMembers');
    const forged = { ...leave, signature: leave.signature.map((b, i) => (i === 0 ? b ^ 1 : b)) };
    // carol cannot propose it (validated first) ...
    const refused = await proposeIntent(w.carol.group!, forged).then(() => undefined, (e: unknown) => e);
    expect(refused).toBeInstanceOf(IntentError);
    expect((refused as IntentError).reason).toBe('bad-signature');
    // ... and the raw body, which a hostile carol can send, does not get past the phone's engine.
    const raw = await w.carol.group!.propose({ type: 'custom', proposalType: 0xf1a0, payload: encodeIntent(forged) });
    await w.carol.group!.clearPendingProposals();
    const pending = w.alicePhone.group!.state().pendingProposals;
    const atPhone = await w.alicePhone.group!.process(raw).then(() => undefined, (e: unknown) => e);
    expect(atPhone).toBeInstanceOf(IntentError);
    expect((atPhone as IntentError).reason).toBe('bad-signature');
    expect(w.alicePhone.group!.state().pendingProposals).toBe(pending);
    const result = await w.alicePhone.group!.commit({ includePending: true, selfUpdate: true });
    expect(result.askedToLeave).toBeUndefined();
    await w.alicePhone.group!.mergePendingCommit();
    await deliver(result.commit, w.all.filter((m) => m !== w.alicePhone));
    expect(names(w.dave.group!)).toHaveLength(5);
    expectInSync(w.all);
  });
});

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
 * carries the intent, and `leaveAnswer` says what the phone proposes: the
 * request again while it is valid (so its sender goes too: a stolen device
 * that made it cannot stay while the honest phone leaves alone), its own
 * leave once the sender is gone.
 *
 * The attacker's side: only a valid intent whose sender the AS associates
 * with the committer (or the committer's own) is reported. Another member's
 * wide intent, or one the committer is not part of, is not; a forged one
 * never gets pending.
 */
import { describe, expect, it } from 'vitest';
import { MlsError } from 'paired-mls';
import { createIntent, decodeIntent, encodeIntent, intentProposal, leaveAnswer, leaveRequestsIn, leavesRemovedBy, proposeIntent, IntentError, type LeafOperationIntent } from 'paired-mls/intents';
import type { Group } from 'paired-mls';
import { deliverCommit, expectInSync } from './helpers.js';
import { CAPS, deliver, names, world } from './intents-review-helpers.js';
import { device, enrolPaired, pair } from './paired-helpers.js';

/** `fn`'s exception (or undefined). */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

/** The answer `leaveAnswer` gives, proposed at `group`. */
const proposeAnswer = (group: Group, request: LeafOperationIntent) => proposeIntent(group, leaveAnswer(group, request));

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

    // The phone does what its user asked, committed by dave. alice is gone,
    // so her leave is dead: leaveAnswer gives the phone's own leave. A
    // SelfRemove travels as a PublicMessage, which a pure ciphertext group
    // refuses to send, so it is the other way only in the mixed group.
    const answer = leaveAnswer(w.alicePhone.group!, leave);
    expect(answer.senderIndex).toBe(w.alicePhone.group!.ownLeafIndex);
    expect(answer.removalMode).toBe('senderRemovalOnly');
    const ask = how === 'a SelfRemove' ? await w.alicePhone.group!.leave() : await proposeIntent(w.alicePhone.group!, answer);
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

    // Its sender stays, so the intent is still good: the phone proposes it again, dave commits it.
    expect(leaveAnswer(w.alicePhone.group!, leave)).toEqual(leave);
    await deliver(await proposeAnswer(w.alicePhone.group!, leave), [w.alice, w.bob, w.carol, w.dave]);
    const second = await w.dave.group!.commit({ includePending: true });
    expect(second.askedToLeave).toBeUndefined();
    await w.dave.group!.mergePendingCommit();
    await deliver(second.commit, [w.bob, w.carol]);
    expect(names(w.dave.group!)).toEqual(['bob', 'carol', 'dave']);
    expectInSync([w.bob, w.carol, w.dave]);
  });

  it("a stolen device's leave covering the honest phone: the phone proposes that very request, so the thief goes with it (leaving alone would keep the thief in)", async () => {
    const w = await world();
    const stolen = w.alice; // alice's other device, in a thief's hands
    const leave = createIntent(stolen.group!, 'removeAssociatedMembers');
    await deliver(await proposeIntent(stolen.group!, leave), w.all.filter((m) => m !== stolen));
    const result = await w.alicePhone.group!.commit({ includePending: true });
    expect(leaveRequestsIn(result)).toEqual([leave]);
    await w.alicePhone.group!.mergePendingCommit();
    await deliver(result.commit, w.all.filter((m) => m !== w.alicePhone));
    await deliver(await proposeAnswer(w.alicePhone.group!, leave), w.all.filter((m) => m !== w.alicePhone));
    const { commit } = await w.bob.group!.commit({ includePending: true });
    await w.bob.group!.mergePendingCommit();
    await deliver(commit, [w.carol, w.dave]);
    expect(names(w.bob.group!)).toEqual(['bob', 'carol', 'dave']);
    expectInSync([w.bob, w.carol, w.dave]);
  });

  it("a request made stale by its sender's Update in the same commit is not answered for the user (stale-leaf); the committer's own request is made again", async () => {
    const w = await world();
    const leave = createIntent(w.alice.group!, 'removeAssociatedMembers');
    await deliver(await proposeIntent(w.alice.group!, leave), w.all.filter((m) => m !== w.alice));
    await deliver(await w.alice.group!.propose({ type: 'update' }), w.all.filter((m) => m !== w.alice));
    const phone = w.alicePhone.group!;
    const own = createIntent(phone, 'senderRemovalOnly');
    await deliver(await proposeIntent(phone, own), w.all.filter((m) => m !== w.alicePhone));
    const result = await phone.commit({ includePending: true });
    expect(leaveRequestsIn(result)).toEqual([leave, own]);
    await phone.mergePendingCommit();
    await deliver(result.commit, w.all.filter((m) => m !== w.alicePhone));
    expect(names(w.dave.group!)).toHaveLength(5);
    const stale = thrown(() => leaveAnswer(phone, leave));
    expect(stale).toBeInstanceOf(IntentError);
    expect((stale as IntentError).reason).toBe('stale-leaf');
    // Its own request: the commit gave the phone a new leaf; made again from it.
    const again = leaveAnswer(phone, own);
    expect(again.senderIndex).toBe(phone.ownLeafIndex);
    expect(again.removalMode).toBe('senderRemovalOnly');
    expect(again.senderLeafRef).not.toEqual(own.senderLeafRef);
    await deliver(await proposeIntent(phone, again), w.all.filter((m) => m !== w.alicePhone));
    const { commit } = await w.carol.group!.commit({ includePending: true });
    await w.carol.group!.mergePendingCommit();
    await deliver(commit, [w.alice, w.bob, w.dave]);
    expect(names(w.dave.group!)).toEqual(['alice', 'bob', 'carol', 'dave']);
    expectInSync([w.alice, w.bob, w.carol, w.dave]);
  });

  it('reported once when two members proposed it, and also by a commit that takes no pending proposals and by a ReInit (the new epoch drops them all)', async () => {
    const w = await world();
    const leave = createIntent(w.alice.group!, 'removeAssociatedMembers');
    await deliver(await proposeIntent(w.carol.group!, leave), w.all.filter((m) => m !== w.carol));
    await deliver(await proposeIntent(w.dave.group!, leave), w.all.filter((m) => m !== w.dave));
    const phone = w.alicePhone.group!;
    expect(phone.state().pendingProposals).toBe(2);
    expect((await phone.commit({ includePending: true })).askedToLeave).toHaveLength(1);
    await phone.clearPendingCommit();
    expect(leaveRequestsIn(await phone.commit({ includePending: false, selfUpdate: true }))).toEqual([leave]);
    await phone.clearPendingCommit();
    expect(leaveRequestsIn(await phone.commitReInit({ ciphersuite: 1 }))).toEqual([leave]);
    await phone.clearPendingCommit();
  });

  it('inputs: removedLeaves refuses a proposal type past 16 bits and a payload of no bytes (INVALID_ARGUMENT); an intent of an unknown removal mode is IntentError malformed', async () => {
    const w = await world();
    const phone = w.alicePhone.group!;
    const leave = createIntent(w.alice.group!, 'removeAssociatedMembers');
    const { payload } = intentProposal(leave);
    for (const bad of [{ proposalType: 0x1f1a0, payload }, { proposalType: 0xf1a0 + 0.5, payload }, { proposalType: -1, payload }, { proposalType: 0xf1a0, payload: [1, 2] as unknown as Uint8Array }]) {
      const err = thrown(() => phone.removedLeaves(bad));
      expect(err).toBeInstanceOf(MlsError);
      expect((err as MlsError).code).toBe('INVALID_ARGUMENT');
    }
    expect(phone.removedLeaves({ proposalType: 0xf1a1, payload })).toEqual([]);
    const bogus = { ...leave, removalMode: 'everyone' } as unknown as LeafOperationIntent;
    const err = thrown(() => leavesRemovedBy(phone, bogus));
    expect(err).toBeInstanceOf(IntentError);
    expect((err as IntentError).reason).toBe('malformed');
    const rejected = await proposeIntent(phone, bogus).then(() => undefined, (e: unknown) => e);
    expect((rejected as IntentError).reason).toBe('malformed');
    expect(thrown(() => leaveAnswer(phone, createIntent(w.bob.group!, 'senderRemovalOnly')))).toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it.each(['hidden', 'standard'] as const)("a paired anchor (%s mode): PairedCommit carries the report, and the active device proposes the answer for the anchor", async (mode) => {
    // The anchor (alice's paired phone A and its passive partner P), alice's laptop (another alice leaf), bob, carol.
    const a = await device('alice');
    const p = await device('alice-phone');
    const laptop = await device('alice-laptop');
    laptop.identity = await laptop.client.createIdentity('alice', 1);
    const bob = await device('bob');
    const carol = await device('carol');
    const others = [bob, carol, laptop];
    a.group = await a.client.createGroup(a.identity, { capabilities: CAPS });
    const kps = await Promise.all(others.map((m) => m.client.createKeyPackage(m.identity, { capabilities: CAPS })));
    const { welcome } = await a.group.commit({ add: kps });
    await a.group.mergePendingCommit();
    for (const m of others) m.group = await m.client.joinFromWelcome(welcome!);
    const { activeDevice, passiveDevice } = await pair(a, p, mode);
    await enrolPaired(activeDevice, a, [[p, passiveDevice]], others);
    const { commit: laptopUpdate } = await laptop.group!.selfUpdate();
    await laptop.group!.mergePendingCommit();
    await deliverCommit(laptopUpdate, [a, p, bob, carol]);

    // The laptop asks all of alice's devices, the anchor included, to leave.
    const g = a.group!;
    const leave = createIntent(laptop.group!, 'removeAssociatedMembers');
    await deliver(await proposeIntent(laptop.group!, leave), [a, bob, carol]);
    const out = await activeDevice.update(g);
    expect(leaveRequestsIn(out)).toEqual([leave]);
    await g.mergePendingCommit();
    await deliverCommit(out.commit, [bob, carol, laptop]);
    expect(names(bob.group!)).toEqual(['alice', 'alice', 'bob', 'carol']);

    // The active device proposes the answer for the anchor (signed by it in standard mode); bob commits it.
    const answer = leaveAnswer(g, leave);
    expect(answer).toEqual(leave);
    await deliver(await activeDevice.propose(g, { type: 'custom', ...intentProposal(answer) }), [bob, carol, laptop]);
    const { commit } = await bob.group!.commit({ includePending: true });
    await bob.group!.mergePendingCommit();
    await deliverCommit(commit, [carol]);
    expect(names(bob.group!)).toEqual(['bob', 'carol']);
    expectInSync([bob, carol]);
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

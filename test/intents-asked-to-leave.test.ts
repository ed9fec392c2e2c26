/**
 * A member is told when a commit drops a pending request to remove it
 * (docs/PROTOCOL.md §5.4: `askedToLeave` on `CommitResult`, `PairedCommit`
 * and `StagedCommit`; `leaveRequestsIn`, `leaveAnswers`).
 *
 * An intent that would remove the committer is left out of its commit (no
 * commit may remove its committer, RFC 9420 §12.2) and defers nothing
 * (test/intents-review7 "the cost"); a received commit may leave a pending
 * leave out too; the new epoch drops every pending proposal. Before, the
 * device was not told: alice's phone stayed in the group alice asked all
 * her devices to leave. Now it is told, with whether the commit removed the
 * request's sender, and `leaveAnswers` says what it proposes: the request
 * again while its sender stays (so a stolen device that made it goes too,
 * instead of the honest phone leaving alone), its own intent in the same
 * mode once the sender is gone, nothing when the sender's leaf changed.
 *
 * The attacker's side: only a valid intent whose sender the AS associates
 * with the member (or the member's own) is reported; another member's wide
 * intent, or one the member is not part of, is not; a forged one never gets
 * pending; `leaveAnswers` answers only what a commit reported, in the epoch
 * after it.
 */
import { describe, expect, it } from 'vitest';
import { MlsError } from 'paired-mls';
import {
  createIntent,
  decodeIntent,
  encodeIntent,
  intentProposal,
  leaveAnswers,
  leaveRequestsIn,
  leavesRemovedBy,
  proposeIntent,
  IntentError,
  type LeafOperationIntent,
  type LeaveRequests,
} from 'paired-mls/intents';
import { deliverCommit, expectInSync, type Member } from './helpers.js';
import { CAPS, deliver, member, names, world } from './intents-review-helpers.js';
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

/** The one answer `leaveAnswers` gives `m` for `told`. */
function onlyAnswer(m: Member, told: LeaveRequests): LeafOperationIntent {
  const answers = leaveAnswers(m.group!, told);
  expect(answers).toHaveLength(1);
  expect(answers[0]!.refused).toBeUndefined();
  return answers[0]!.answer!;
}

/** `from` commits the pending proposals, everyone in `to` follows. */
async function commitPending(from: Member, to: Member[]): Promise<void> {
  const { commit } = await from.group!.commit({ includePending: true });
  await from.group!.mergePendingCommit();
  await deliver(commit, to);
}

/**
 * The anchor (alice's paired phone A and its passive partner P, in `mode`),
 * alice's laptop (another alice leaf), bob, carol; the laptop asks all of
 * alice's devices, the anchor included, to leave (pending at A, bob, carol).
 */
async function anchorAskedToLeave(mode: 'hidden' | 'standard', propose = true) {
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
  const leave = createIntent(laptop.group!, 'removeAssociatedMembers');
  if (propose) await deliver(await proposeIntent(laptop.group!, leave), [a, bob, carol]);
  return { a, p, laptop, bob, carol, activeDevice, passiveDevice, leave };
}

/**
 * The paired anchor (hidden mode) ceases by route `rejoin`; between its join
 * and its removal of the anchor leaf, bob relays a wide leave the thief
 * signed with the passive copy (as the anchor leaf), the laptop asks all of
 * alice's devices to leave, and with `removeLaptop` bob proposes removing
 * the laptop. Returns the group's options from before, and what the cease
 * reported.
 */
async function rejoinWhileAsked(removeLaptop: boolean) {
  const w = await anchorAskedToLeave('hidden', false);
  const { a, p, laptop, bob, carol } = w;
  const before = a.group!.joinOptions();
  expect(before.capabilities!.proposals).toEqual(expect.arrayContaining(CAPS.proposals));
  const thiefs = createIntent(p.group!, 'removeAssociatedMembers');
  let laptops: LeafOperationIntent | undefined;
  const cease = await w.activeDevice.ceasePair('rejoin', {
    send: async (c) => {
      await deliverCommit(c.commit, [bob, carol, laptop]);
      if (c.kind !== 'join') return;
      laptops = createIntent(laptop.group!, 'removeAssociatedMembers');
      const made: [Uint8Array, Member][] = [
        [await proposeIntent(bob.group!, thiefs), bob],
        [await proposeIntent(laptop.group!, laptops), laptop],
      ];
      if (removeLaptop) made.push([await bob.group!.propose({ type: 'remove', leafIndex: laptop.group!.ownLeafIndex }), bob]);
      for (const [proposal, from] of made) {
        expect((await a.client.group(c.groupId).process(proposal)).kind).toBe('proposal');
        await deliver(proposal, [bob, carol, laptop].filter((m) => m !== from));
      }
    },
  });
  return { ...w, before, ceased: cease.groups[0]!, laptops: laptops! };
}

describe('a member asked to leave by its own user is told', () => {
  it.each([
    ['ciphertext', 'its own intent'],
    ['mixed-plaintext', 'a SelfRemove'],
  ] as const)("%s: alice's phone commits with her leave and a Remove of alice pending: its result names the leave, alice gone; it leaves by %s and ends up out", async (wireFormat, how) => {
    const w = await world(wireFormat);
    const leave = createIntent(w.alice.group!, 'removeAssociatedMembers');
    await deliver(await proposeIntent(w.carol.group!, leave), w.all.filter((m) => m !== w.carol));
    await deliver(await w.bob.group!.propose({ type: 'remove', leafIndex: w.alice.group!.ownLeafIndex }), w.all.filter((m) => m !== w.bob));
    const phone = w.alicePhone.group!;

    const result = await phone.commit({ includePending: true });
    // The exact proposal, that its sender goes with this commit, and the epoch to answer in.
    expect(result.askedToLeave).toEqual([{ proposalType: 0xf1a0, payload: encodeIntent(leave), boundLeaf: leave.senderIndex, senderRemoved: true, epoch: phone.epoch + 1, epochAuthenticator: expect.any(Uint8Array) }]);
    expect(leaveRequestsIn(result)).toEqual([leave]);
    // Not before the commit is merged.
    expect(thrown(() => leaveAnswers(phone, result))).toMatchObject({ code: 'INVALID_ARGUMENT' });
    await phone.mergePendingCommit();
    await deliver(result.commit, [w.bob, w.carol, w.dave]);
    // As before: the leave was left out, the Remove of alice went through.
    expect(names(w.dave.group!)).toEqual(['alice', 'bob', 'carol', 'dave']);

    // alice is gone, so the answer is the phone's own leave, in her mode. A
    // SelfRemove travels as a PublicMessage, which a pure ciphertext group
    // refuses to send, so it is the other way only in the mixed group.
    // Only at the client and group it was made for, and not as a copy.
    for (const [group, told] of [[w.bob.group!, result], [phone, structuredClone(result)]] as const) {
      expect(thrown(() => leaveAnswers(group, told))).toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
    const answer = onlyAnswer(w.alicePhone, result);
    expect(answer.senderIndex).toBe(phone.ownLeafIndex);
    expect(answer.removalMode).toBe('removeAssociatedMembers');
    const ask = how === 'a SelfRemove' ? await phone.leave() : await proposeIntent(phone, answer);
    await deliver(ask, [w.bob, w.carol, w.dave]);
    const { commit } = await w.dave.group!.commit({ includePending: true });
    await w.dave.group!.mergePendingCommit();
    await deliver(commit, [w.bob, w.carol]);
    const seen = await phone.process(commit);
    expect(seen.kind).toBe('commit');
    if (seen.kind === 'commit') expect(seen.staged.selfRemoved).toBe(true);
    expect(names(w.dave.group!)).toEqual(['bob', 'carol', 'dave']);

    // The honest members keep working.
    await commitPending(w.bob, [w.carol, w.dave]);
    expectInSync([w.bob, w.carol, w.dave]);
  });

  it('the leave alone pending: reported to the phone, which proposes it again; the next committer removes alice and her phone', async () => {
    const w = await world();
    const leave = createIntent(w.alice.group!, 'removeAssociatedMembers');
    await deliver(await proposeIntent(w.carol.group!, leave), w.all.filter((m) => m !== w.carol));
    const result = await w.alicePhone.group!.commit({ includePending: true });
    expect(result.askedToLeave?.map((r) => r.senderRemoved)).toEqual([false]);
    await w.alicePhone.group!.mergePendingCommit();
    await deliver(result.commit, [w.alice, w.bob, w.carol, w.dave]);
    expect(names(w.dave.group!)).toHaveLength(5);

    expect(onlyAnswer(w.alicePhone, result)).toEqual(leave);
    await deliver(await proposeIntent(w.alicePhone.group!, leave), [w.alice, w.bob, w.carol, w.dave]);
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
    await w.alicePhone.group!.mergePendingCommit();
    await deliver(result.commit, w.all.filter((m) => m !== w.alicePhone));
    expect(onlyAnswer(w.alicePhone, result)).toEqual(leave);
    await deliver(await proposeIntent(w.alicePhone.group!, leave), w.all.filter((m) => m !== w.alicePhone));
    await commitPending(w.bob, [w.carol, w.dave]);
    expect(names(w.bob.group!)).toEqual(['bob', 'carol', 'dave']);
    expectInSync([w.bob, w.carol, w.dave]);
  });

  it("the sender's Update went in with the same commit: no answer (stale-leaf), the application asks; the member's own request is made again from its new leaf", async () => {
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
    const [stale, mine] = leaveAnswers(phone, result);
    expect(stale!.answer).toBeUndefined();
    expect(stale!.refused).toBeInstanceOf(IntentError);
    expect(stale!.refused!.reason).toBe('stale-leaf');
    const again = mine!.answer!;
    expect(again.senderIndex).toBe(phone.ownLeafIndex);
    expect(again.removalMode).toBe('senderRemovalOnly');
    expect(again.senderLeafRef).not.toEqual(own.senderLeafRef);
    await deliver(await proposeIntent(phone, again), w.all.filter((m) => m !== w.alicePhone));
    await commitPending(w.carol, [w.alice, w.bob, w.dave]);
    expect(names(w.dave.group!)).toEqual(['alice', 'bob', 'carol', 'dave']);
    expectInSync([w.alice, w.bob, w.carol, w.dave]);
  });

  it('reported once when two members proposed it, and also by a commit that takes no pending proposals (the new epoch drops them all); not by a ReInit, which retires the group', async () => {
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
    expect((await phone.commitReInit({ ciphersuite: 1 })).askedToLeave).toBeUndefined();
    await phone.clearPendingCommit();
  });

  it("a receiver is told too: bob removes alice by value and adds eve into her leaf; the phone's staged commit reports the leave with its sender removed, and the phone asks to leave with its user's devices", async () => {
    const w = await world();
    const leave = createIntent(w.alice.group!, 'removeAssociatedMembers');
    const phone = w.alicePhone.group!;
    await deliver(await proposeIntent(w.carol.group!, leave), w.all.filter((m) => m !== w.carol));
    // At the proposal already: the phone can ask which leaves it removes.
    expect(leavesRemovedBy(phone, leave).sort()).toEqual([w.alice.group!.ownLeafIndex, phone.ownLeafIndex].sort());

    const eve = await member('eve');
    const eveKp = await eve.client.createKeyPackage(eve.identity, { capabilities: CAPS });
    const aliceLeaf = w.alice.group!.ownLeafIndex;
    const { commit } = await w.bob.group!.commit({ includePending: false, remove: [aliceLeaf], add: [eveKp] });
    await w.bob.group!.mergePendingCommit();
    const received = await phone.process(commit);
    if (received.kind !== 'commit') throw new Error('not a commit');
    expect(received.staged.askedToLeave).toEqual([{ proposalType: 0xf1a0, payload: encodeIntent(leave), boundLeaf: leave.senderIndex, senderRemoved: true, epoch: received.staged.newEpoch, epochAuthenticator: expect.any(Uint8Array) }]);
    await received.staged.merge();
    await deliver(commit, [w.carol, w.dave]);
    // eve took alice's leaf: the request is stale there, but its sender was removed.
    expect(w.dave.group!.members().some((m) => m.leafIndex === aliceLeaf)).toBe(true);
    const answer = onlyAnswer(w.alicePhone, received.staged);
    expect(answer.removalMode).toBe('removeAssociatedMembers');
    await deliver(await proposeIntent(phone, answer), [w.bob, w.carol, w.dave]);
    await commitPending(w.carol, [w.bob, w.dave]);
    expect(names(w.dave.group!)).toEqual(['bob', 'carol', 'dave', 'eve']);
    expectInSync([w.bob, w.carol, w.dave]);
  });

  it('inputs: removedLeaves refuses a type past 16 bits and a payload of no bytes; an unencodable intent is IntentError malformed; leaveAnswers refuses a report of the wrong shape or epoch', async () => {
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
    // Only a report this library made: a hand-made one, even of the right
    // shape and epoch, would have the phone sign a leave for it.
    const handMade = { askedToLeave: [{ proposalType: 0xf1a0, payload, senderRemoved: true, epoch: phone.epoch, epochAuthenticator: phone.epochAuthenticator() }] };
    for (const told of [null, { askedToLeave: 'x' }, { askedToLeave: [{}] }, handMade]) {
      expect(thrown(() => leaveAnswers(phone, told as unknown as LeaveRequests))).toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
    expect(leaveAnswers(phone, {})).toEqual([]);
  });

  it("a thief with a copy of the phone's old key signs a wide leave as the phone; the phone rotates its key: its own request is not made again (bad-signature)", async () => {
    const w = await world();
    const phone = w.alicePhone.group!;
    const forged = createIntent(phone, 'removeAssociatedMembers'); // what a thief holding the old key can sign
    await deliver(await proposeIntent(w.carol.group!, forged), w.all.filter((m) => m !== w.carol));
    const fresh = await w.alicePhone.client.createIdentity('alice', 1);
    const result = await phone.commit({ includePending: true, newSigner: { identity: fresh.identity, signaturePublicKey: fresh.signaturePublicKey } });
    expect(leaveRequestsIn(result)).toEqual([forged]);
    // A report cannot be edited into another answer: its entries are frozen, and
    // leaveAnswers reads the library's own copy, not bytes edited in place.
    expect(() => Object.assign(result.askedToLeave![0]!, { senderRemoved: true })).toThrow(TypeError);
    const narrow = encodeIntent({ ...forged, removalMode: 'senderRemovalOnly' });
    result.askedToLeave![0]!.payload.set(narrow.subarray(0, result.askedToLeave![0]!.payload.length));
    await phone.mergePendingCommit();
    await deliver(result.commit, w.all.filter((m) => m !== w.alicePhone));
    const [entry] = leaveAnswers(phone, result);
    expect(entry!.request).toEqual(forged);
    expect(entry!.answer).toBeUndefined();
    expect(entry!.refused).toBeInstanceOf(IntentError);
    expect(entry!.refused!.reason).toBe('bad-signature');
    expect(names(w.dave.group!)).toHaveLength(5);
    await commitPending(w.dave, w.all.filter((m) => m !== w.dave));
    expectInSync(w.all);
  });

  it("alice leaves by SelfRemove while her wide leave is pending: her sender counts as removed, and the phone asks to leave with her other devices", async () => {
    const w = await world('mixed-plaintext');
    const leave = createIntent(w.alice.group!, 'removeAssociatedMembers');
    await deliver(await proposeIntent(w.carol.group!, leave), w.all.filter((m) => m !== w.carol));
    await deliver(await w.alice.group!.leave(), w.all.filter((m) => m !== w.alice));
    const phone = w.alicePhone.group!;
    const result = await phone.commit({ includePending: true });
    expect(result.askedToLeave?.map((r) => r.senderRemoved)).toEqual([true]);
    await phone.mergePendingCommit();
    await deliver(result.commit, [w.bob, w.carol, w.dave]);
    expect(names(w.dave.group!)).toEqual(['alice', 'bob', 'carol', 'dave']);
    const answer = onlyAnswer(w.alicePhone, result);
    expect(answer.removalMode).toBe('removeAssociatedMembers');
    await deliver(await proposeIntent(phone, answer), [w.bob, w.carol, w.dave]);
    await commitPending(w.bob, [w.carol, w.dave]);
    expect(names(w.dave.group!)).toEqual(['bob', 'carol', 'dave']);
    expectInSync([w.bob, w.carol, w.dave]);
  });

  it("a report of a commit that lost its epoch is answered as late, from the tree (alice is still there: the request itself); a report answered after a later commit too", async () => {
    const w = await world();
    const leave = createIntent(w.alice.group!, 'removeAssociatedMembers');
    await deliver(await proposeIntent(w.carol.group!, leave), w.all.filter((m) => m !== w.carol));
    await deliver(await w.bob.group!.propose({ type: 'remove', leafIndex: w.alice.group!.ownLeafIndex }), w.all.filter((m) => m !== w.bob));
    const phone = w.alicePhone.group!;
    const lost = await phone.commit({ includePending: true });
    expect(lost.askedToLeave?.map((r) => r.senderRemoved)).toEqual([true]);
    await phone.clearPendingCommit();
    // dave's update wins the epoch (it takes no pending proposals).
    const { commit } = await w.dave.group!.commit({ includePending: false, selfUpdate: true });
    await w.dave.group!.mergePendingCommit();
    const received = await phone.process(commit);
    if (received.kind !== 'commit') throw new Error('not a commit');
    expect(received.staged.askedToLeave?.map((r) => r.senderRemoved)).toEqual([false]);
    await received.staged.merge();
    await deliver(commit, [w.alice, w.bob, w.carol]);
    // Same epoch number, another epoch: not "alice is gone".
    expect(onlyAnswer(w.alicePhone, lost)).toEqual(leave);
    // The winning commit's report, answered after one more commit: still the request, still valid.
    await commitPending(w.bob, [w.alice, w.alicePhone, w.carol, w.dave]);
    expect(onlyAnswer(w.alicePhone, received.staged)).toEqual(leave);
    await deliver(await proposeIntent(phone, leave), w.all.filter((m) => m !== w.alicePhone));
    await commitPending(w.carol, [w.bob, w.dave]);
    expect(names(w.dave.group!)).toEqual(['bob', 'carol', 'dave']);
    expectInSync([w.bob, w.carol, w.dave]);
  });

  it.each(['hidden', 'standard'] as const)('a paired anchor (%s mode): PairedCommit carries the report, and the active device proposes the answer for the anchor', async (mode) => {
    const { a, laptop, bob, carol, activeDevice, leave } = await anchorAskedToLeave(mode);
    const g = a.group!;
    const out = await activeDevice.update(g);
    expect(leaveRequestsIn(out)).toEqual([leave]);
    await g.mergePendingCommit();
    await deliverCommit(out.commit, [bob, carol, laptop]);
    expect(names(bob.group!)).toEqual(['alice', 'alice', 'bob', 'carol']);

    // The active device proposes the answer for the anchor (signed by it in standard mode); bob commits it.
    const answer = onlyAnswer(a, out);
    expect(answer).toEqual(leave);
    await deliver(await activeDevice.propose(g, { type: 'custom', ...intentProposal(answer) }), [bob, carol, laptop]);
    await commitPending(bob, [carol]);
    expect(names(bob.group!)).toEqual(['bob', 'carol']);
    expectInSync([bob, carol]);
  });

  it.each(['hidden', 'standard'] as const)("a paired anchor (%s mode) that ceases its pairing: CeasePair's rekey commit leaves the request out and reports it (it was told nothing); the device, an ordinary member now, proposes the answer", async (mode) => {
    const { a, laptop, bob, carol, activeDevice, leave } = await anchorAskedToLeave(mode);
    const g = a.group!;
    const cease = await activeDevice.ceasePair('rekey');
    const [ceased] = cease.groups;
    expect(ceased).toMatchObject({ ceased: true, commits: [expect.any(Uint8Array)] });
    expect(leaveRequestsIn(ceased!)).toEqual([leave]);
    await deliverCommit(ceased!.commits[0]!, [bob, carol, laptop]);
    expect(names(bob.group!)).toEqual(['alice', 'alice', 'bob', 'carol']);
    expectInSync([a, bob, carol, laptop]);
    // The report is this library's for this group at this client: its answer is the request itself (valid, and covering the device).
    const answer = onlyAnswer(a, ceased!);
    expect(answer).toEqual(leave);
    await deliver(await g.propose({ type: 'custom', ...intentProposal(answer) }), [bob, carol, laptop]);
    await commitPending(bob, [carol]);
    expect(names(bob.group!)).toEqual(['bob', 'carol']);
    expectInSync([bob, carol]);
  });

  it("route rejoin: the anchor leaf's removal withholds a request its sender made (the anchor key's holder, a thief with the passive copy, is whom the cease shuts out; answered, it became the device's own wide leave) and reports the laptop's", async () => {
    const { a, bob, carol, laptop, before, ceased, laptops } = await rejoinWhileAsked(false);
    expect(ceased).toMatchObject({ ceased: true, commits: [expect.any(Uint8Array), expect.any(Uint8Array)] });
    expect(leaveRequestsIn(ceased)).toEqual([laptops]);
    expect(ceased.askedToLeave!.map((r) => r.senderRemoved)).toEqual([false]);
    const g = a.client.group(ceased.groupId);
    expect(leaveAnswers(g, ceased).map((x) => x.answer)).toEqual([laptops]);
    // The joined leaf keeps the group's options and capabilities, an ordinary member's now: the answer is
    // committed (before, the join took the defaults, no member could commit an intent any more, and bob's
    // commit dropped it).
    expect(g.joinOptions()).toEqual({ ...before, capabilities: { ...before.capabilities, virtualClient: false } });
    await deliver(await proposeIntent(g, laptops), [bob, carol, laptop]);
    await commitPending(bob, [carol]);
    expect(names(bob.group!)).toEqual(['bob', 'carol']);
    expectInSync([bob, carol]);
  });

  it("route rejoin: a request whose sender another Remove takes out is still reported (it is the laptop's, not bound to the anchor leaf), and answered with the device's own wide leave; the thief's beside it stays withheld", async () => {
    const { a, bob, carol, ceased, laptops } = await rejoinWhileAsked(true);
    expect(ceased.error).toBeUndefined();
    expect(ceased.ceased).toBe(true);
    // Before: withheld with the thief's (its sender removed too); an ordinary commit reports it.
    expect(leaveRequestsIn(ceased)).toEqual([laptops]);
    expect(ceased.askedToLeave!.map((r) => [r.boundLeaf, r.senderRemoved])).toEqual([[laptops.senderIndex, true]]);
    const g = a.client.group(ceased.groupId);
    const [answer] = leaveAnswers(g, ceased);
    expect(answer!.answer).toMatchObject({ senderIndex: g.ownLeafIndex, removalMode: laptops.removalMode });
    await deliver(await proposeIntent(g, answer!.answer!), [bob, carol]);
    await commitPending(bob, [carol]);
    expect(names(bob.group!)).toEqual(['bob', 'carol']);
    expectInSync([bob, carol]);
  });

  it("not reported: an intent that does not cover the member (alice alone), another user's wide leave, or one a commit carries", async () => {
    const w = await world();
    // bob's wide leave covers bob's devices only; alice's narrow one only alice.
    const bobLeaves = createIntent(w.bob.group!, 'removeAssociatedMembers');
    const aliceAlone = createIntent(w.alice.group!, 'senderRemovalOnly');
    await deliver(await proposeIntent(w.carol.group!, bobLeaves), w.all.filter((m) => m !== w.carol));
    await deliver(await proposeIntent(w.dave.group!, aliceAlone), w.all.filter((m) => m !== w.dave));

    const result = await w.alicePhone.group!.commit({ includePending: true });
    expect(result.askedToLeave).toBeUndefined();
    expect(leaveRequestsIn(result)).toEqual([]);
    await w.alicePhone.group!.mergePendingCommit();
    await deliver(result.commit, [w.carol, w.dave]);
    // Both intents went in: bob and alice are out, the phone stays.
    expect(names(w.dave.group!)).toEqual(['alice', 'carol', 'dave']);
    expectInSync([w.alicePhone, w.carol, w.dave]);

    // alice's wide leave, carried by dave's commit: the phone is removed, not "told".
    const w2 = await world();
    const leave = createIntent(w2.alice.group!, 'removeAssociatedMembers');
    await deliver(await proposeIntent(w2.carol.group!, leave), w2.all.filter((m) => m !== w2.carol));
    const { commit } = await w2.dave.group!.commit({ includePending: true });
    const atPhone = await w2.alicePhone.group!.process(commit);
    if (atPhone.kind !== 'commit') throw new Error('not a commit');
    expect(atPhone.staged.selfRemoved).toBe(true);
    expect(atPhone.staged.askedToLeave).toBeUndefined();
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
    // A received intent proposal decodes to what was sent.
    expect(decodeIntent(encodeIntent(leave))).toEqual(leave);
    expectInSync(w.all);
  });
});

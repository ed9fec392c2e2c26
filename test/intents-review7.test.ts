/**
 * Seventh review of the LeafOperationIntent layer (seed 004) as an attacker,
 * of engine change 29's fifth review (f6e5476) and the DS's intent check
 * (c8a7b63). alice leaves with remove_associated_members and deletes her
 * state; her intent is pending by reference.
 *
 * 1. Her phone commits (a routine selfUpdate with the pending proposals):
 *    the intent would remove the committer, so it is left out, and a pending
 *    Remove of alice by reference is kept: alice goes, the phone stays, and
 *    the intent (its sender gone) is `unknown-leaf` for good. Review 7 made
 *    the leaves of such an intent wait; its re-review showed a stolen
 *    device proposing its own leave (covering its user's other devices)
 *    then shielded itself from every Remove by reference while those
 *    devices committed. An intent left out because it would remove the
 *    committer defers nothing again: the lesser harm is an honest device
 *    that must leave by its own SelfRemove (docs/ENGINE.md change 29,
 *    PROTOCOL §5.4).
 * 2. Of overlapping intents by reference the first to arrive won: an older
 *    sender_removal_only intent of alice, proposed first by anyone, beat her
 *    wider leave. Now the widest is considered first.
 * 3. The DS checked intents against the last GroupInfo a committer uploaded,
 *    which in the basic mode nobody verifies: a member handing it a GroupInfo
 *    of a group of its own made the DS refuse honest intents with a
 *    final-looking `IntentError` `stale-leaf`. In the basic mode a failed
 *    check is now `DsError` `unverifiable-intent`, and a member proposes the
 *    intent instead (verified mode keeps the exact `IntentError`:
 *    test/ds-verified).
 */
import { describe, expect, it } from 'vitest';
import { createIntent, intentsIn, proposeIntent, validateIntent, IntentError } from 'paired-mls/intents';
import { DeliveryService, DsError } from 'paired-mls/services';
import { expectInSync, type Member } from './helpers.js';
import { CAPS, deliver, member, names, world } from './intents-review-helpers.js';

/** `from` commits the pending proposals; the others process it. What the commit held, as `to[0]` saw it. */
async function commitPending(from: Member, to: Member[], options: { remove?: number[] } = {}) {
  const { commit } = await from.group!.commit({ includePending: true, ...options });
  await from.group!.mergePendingCommit();
  const r = await to[0]!.group!.process(commit);
  if (r.kind !== 'commit') throw new Error('not a commit');
  const seen = {
    types: r.staged.proposals.map((p) => p.proposal.type),
    modes: intentsIn(r.staged).map((i) => i.removalMode),
    impliedRemoves: [...r.staged.impliedRemoves].sort(),
  };
  await r.staged.merge();
  await deliver(commit, to.slice(1));
  return seen;
}

const aliceLeaves = (w: Awaited<ReturnType<typeof world>>) => [w.alice.group!.ownLeafIndex, w.alicePhone.group!.ownLeafIndex].sort();

/**
 * A basic-mode DS whose stored GroupInfo is of bob's own making: bob builds
 * a group of his own with the group's id at the epoch after his next
 * commit, and hands its GroupInfo with that commit (which the DS takes and
 * every member processes).
 */
async function dsHoldingFakeGroupInfo() {
  const ds = await DeliveryService.create();
  const w = await world('ciphertext', { externalSenders: [ds.externalSenderSpec], requiredCapabilities: CAPS });
  const g = w.bob.group!;
  await ds.createGroup(g.id, 'bob', { epoch: g.epoch, groupInfo: await g.exportGroupInfo() });
  const bob2 = await member('bob');
  const fake = await bob2.client.createGroup(bob2.identity, { groupId: g.id, capabilities: CAPS, extensions: { externalSenders: [ds.externalSenderSpec], requiredCapabilities: CAPS } });
  while (fake.epoch < g.epoch + 1) {
    await fake.selfUpdate();
    await fake.mergePendingCommit();
  }
  const { commit } = await g.selfUpdate();
  await g.mergePendingCommit();
  expect((await ds.submit(g.id, 'bob', commit, { groupInfo: await fake.exportGroupInfo() })).accepted).toBe(true);
  await deliver(commit, w.all.filter((m) => m !== w.bob));
  return { ds, w, g, fake };
}

describe('LeafOperationIntent review 7: a leave left out for its committer, overlapping intents, the basic-mode DS', () => {
  it("a stolen phone's own leave (covering alice's laptop) does not shield it: the laptop's commit leaves the intent out and commits bob's Remove of the phone (the Remove waited, for as long as alice's devices committed)", async () => {
    const w = await world();
    // The thief holds alice's phone: it proposes its own leave, which would remove the laptop too, each epoch.
    const shield = createIntent(w.alicePhone.group!, 'removeAssociatedMembers');
    await deliver(await proposeIntent(w.alicePhone.group!, shield), w.all.filter((m) => m !== w.alicePhone));
    await deliver(await w.bob.group!.propose({ type: 'remove', leafIndex: w.alicePhone.group!.ownLeafIndex }), w.all.filter((m) => m !== w.bob));
    // Before (review 7's rule): the commit held nothing, the phone stayed and read on.
    const seen = await commitPending(w.alice, [w.dave, w.bob, w.carol]);
    expect(seen).toEqual({ types: ['remove'], modes: [], impliedRemoves: [] });
    expect(names(w.dave.group!)).toEqual(['alice', 'bob', 'carol', 'dave']);
    expectInSync([w.alice, w.bob, w.carol, w.dave]);
  });

  it('an older sender_removal_only intent of alice, proposed first, gives way to her wider leave', async () => {
    const w = await world();
    const leaves = aliceLeaves(w);
    const weak = createIntent(w.alice.group!, 'senderRemovalOnly'); // e.g. an earlier "log this device out"
    const leave = createIntent(w.alice.group!, 'removeAssociatedMembers');
    await deliver(await proposeIntent(w.bob.group!, weak), w.all.filter((m) => m !== w.bob));
    await deliver(await proposeIntent(w.carol.group!, leave), w.all.filter((m) => m !== w.carol));
    expect(w.dave.group!.state().pendingProposals).toBe(2);
    // Before: the weak one (first in) was committed; the phone stayed and the leave was dead.
    const seen = await commitPending(w.dave, [w.bob, w.carol, w.alicePhone]);
    expect(seen).toEqual({ types: ['custom'], modes: ['removeAssociatedMembers'], impliedRemoves: leaves });
    expect(names(w.dave.group!)).toEqual(['bob', 'carol', 'dave']);
    expectInSync([w.bob, w.carol, w.dave]);
  });

  it("the cost (PROTOCOL §5.4): alice's phone commits with her leave and a Remove of alice pending: the leave is left out (it removes the committer) and the Remove is committed; the phone must leave by its own SelfRemove", async () => {
    const w = await world();
    const leave = createIntent(w.alice.group!, 'removeAssociatedMembers');
    await deliver(await proposeIntent(w.carol.group!, leave), w.all.filter((m) => m !== w.carol));
    await deliver(await w.bob.group!.propose({ type: 'remove', leafIndex: w.alice.group!.ownLeafIndex }), w.all.filter((m) => m !== w.bob));
    const seen = await commitPending(w.alicePhone, [w.dave, w.bob, w.carol]);
    expect(seen).toEqual({ types: ['remove'], modes: [], impliedRemoves: [] });
    expect(names(w.dave.group!)).toEqual(['alice', 'bob', 'carol', 'dave']);
    let refused: unknown;
    try {
      validateIntent(w.dave.group!, leave);
    } catch (e) {
      refused = e;
    }
    expect(refused).toBeInstanceOf(IntentError);
    expect((refused as IntentError).reason).toBe('unknown-leaf');
    expectInSync([w.alicePhone, w.bob, w.carol, w.dave]);
  });

  it("a committer removing alice itself: her leave is dead, so a pending Remove of her phone does not wait", async () => {
    const w = await world();
    const leave = createIntent(w.alice.group!, 'removeAssociatedMembers');
    await deliver(await proposeIntent(w.carol.group!, leave), w.all.filter((m) => m !== w.carol));
    await deliver(await w.bob.group!.propose({ type: 'remove', leafIndex: w.alicePhone.group!.ownLeafIndex }), w.all.filter((m) => m !== w.bob));
    // dave removes alice by value (his choice): the leave is left out and can never be valid again.
    const seen = await commitPending(w.dave, [w.bob, w.carol], { remove: [w.alice.group!.ownLeafIndex] });
    expect(seen).toEqual({ types: ['remove', 'remove'], modes: [], impliedRemoves: [] });
    expect(names(w.dave.group!)).toEqual(['bob', 'carol', 'dave']);
    expectInSync([w.bob, w.carol, w.dave]);
  });

  it('basic mode: a GroupInfo of a member\'s own making does not get an honest intent a final refusal; a member proposes it', async () => {
    const { ds, w, g } = await dsHoldingFakeGroupInfo();
    const logged = (await ds.poll('bob', g.id)).length;

    const leave = createIntent(w.alice.group!, 'removeAssociatedMembers');
    // Before: IntentError stale-leaf, as if the intent could never be committed.
    const err = await ds.proposeIntent(g.id, leave).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(DsError);
    expect(err).not.toBeInstanceOf(IntentError);
    expect((err as DsError).reason).toBe('unverifiable-intent');
    expect((err as DsError).message).toContain('stale-leaf');
    expect(await ds.poll('bob', g.id)).toHaveLength(logged);
    // The group id is checked without the tree: still the exact refusal.
    const other = await world();
    const foreign = await ds.proposeIntent(g.id, createIntent(other.alice.group!, 'senderRemovalOnly')).then(() => undefined, (e: unknown) => e);
    expect((foreign as IntentError).reason).toBe('wrong-group');

    // The honest intent is still good: carol proposes it, dave commits it.
    await deliver(await proposeIntent(w.carol.group!, leave), [w.bob, w.dave, w.alicePhone]);
    const seen = await commitPending(w.dave, [w.bob, w.carol, w.alicePhone]);
    expect(seen).toEqual({ types: ['custom'], modes: ['removeAssociatedMembers'], impliedRemoves: aliceLeaves(w) });
    expect(names(w.dave.group!)).toEqual(['bob', 'carol', 'dave']);
    expectInSync([w.bob, w.carol, w.dave]);
  });

  it('basic mode, the limit: an intent valid only in the fake tree is proposed by the DS, and members refuse it', async () => {
    const { ds, w, g, fake } = await dsHoldingFakeGroupInfo();
    const { proposal } = await ds.proposeIntent(g.id, createIntent(fake, 'senderRemovalOnly'));
    const err = await w.carol.group!.process(proposal).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(IntentError);
    expect(w.carol.group!.state().pendingProposals).toBe(0);
  });
});

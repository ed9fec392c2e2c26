/**
 * Proposals sent as the anchor leaf (docs/PROTOCOL.md §4.0, §4.5): a stolen
 * copy of the passive device's state holds the anchor's keys until the next
 * paired update, so it can send proposals that every member, the active
 * device included, takes as the anchor's. The active device cannot tell
 * them from its own, so its paired commits, and the removal of the anchor
 * leaf by a cease of route `rejoin`, cover none of them by reference:
 * before, the healing commit itself added the thief's member and removed
 * whom the thief chose. Also: a paired commit that adds members returns
 * their Welcome (it was dropped) and the GroupInfo asked for.
 */
import { describe, expect, it } from 'vitest';
import { bytesEqual, utf8, type Group } from 'paired-mls';
import { type CeaseCommit, type PairedDevice } from 'paired-mls/paired';
import { deliverCommit, expectInSync, mlsError, newMember, type Member } from './helpers.js';
import { asAnchor, deliverPaired, deliverProposal, pairedWorld, read, stagedBy as staged, stolen } from './paired-helpers.js';

const names = (g: Group) => g.members().map((m) => utf8(m.credential.identity)).sort();

describe.each(['hidden', 'standard'] as const)('Paired MLS (%s mode): proposals sent as the anchor', (mode) => {
  it("the paired update covers none of the stolen copy's proposals (an Add of its own member, a Remove of carol); bob's proposal still goes in and its member gets the Welcome", async () => {
    const w = await pairedWorld(['bob', 'carol'], mode);
    const [bob, carol] = w.others as [Member, Member];
    const copy = await stolen(w.p);
    const eve = await newMember('eve');
    const dave = await newMember('dave');
    const thiefGroup = copy.group(w.a.group!.id);
    const thiefAdd = await asAnchor(w, mode, thiefGroup, { type: 'add', keyPackage: await eve.client.createKeyPackage(eve.identity) });
    const thiefRemove = await asAnchor(w, mode, thiefGroup, { type: 'remove', leafIndex: carol.group!.ownLeafIndex });
    const bobAdd = await bob.group!.propose({ type: 'add', keyPackage: await dave.client.createKeyPackage(dave.identity) });
    // Every member, both real devices included, takes them all as proposals.
    for (const p of [thiefAdd, thiefRemove]) await deliverProposal(p, [w.a, w.p, bob, carol]);
    await deliverProposal(bobAdd, [w.a, w.p, carol]);

    const update = await w.activeDevice.update(w.a.group!);
    await w.a.group!.mergePendingCommit();
    // The commit carries bob's Add only.
    expect(await staged(bob, update.commit)).toEqual({ adds: ['dave'], removes: [], proposals: 1 });
    await deliverCommit(update.commit, [carol]);
    expect((await w.passiveDevice.applyNotify(update)).kind).toBe('update');
    dave.group = await dave.client.joinFromWelcome(update.welcome!);
    expectInSync([w.a, w.p, bob, carol, dave]);
    expect(names(w.a.group!)).toEqual(['alice', 'bob', 'carol', 'dave']);
    // Healed: carol's next message is read by the real devices and dave, not by the copy.
    const m = await carol.group!.encrypt('after the heal');
    for (const reader of [w.a, w.p, dave]) expect(await read(reader, m)).toBe('after the heal');
    expect((await mlsError(() => thiefGroup.process(m))).code).toBe('WRONG_EPOCH');
  });

  it("ceasePair rekey: the rekey commit covers none of the copy's proposals", async () => {
    const w = await pairedWorld(['bob'], mode);
    const [bob] = w.others as [Member];
    const copy = await stolen(w.p);
    const eve = await newMember('eve');
    const thiefAdd = await asAnchor(w, mode, copy.group(w.a.group!.id), { type: 'add', keyPackage: await eve.client.createKeyPackage(eve.identity) });
    await deliverProposal(thiefAdd, [w.a, bob]);
    const result = await w.activeDevice.ceasePair('rekey');
    expect(result.groups[0]!.ceased).toBe(true);
    expect(result.groups[0]!.commits).toHaveLength(1);
    expect(await staged(bob, result.groups[0]!.commits[0]!)).toEqual({ adds: [], removes: [], proposals: 0 });
    expectInSync([w.a, bob]);
    expect(names(bob.group!)).toEqual(['alice', 'bob']);
  });

  it("ceasePair rejoin: the copy follows the external join and proposes as the anchor leaf; the removal of that leaf covers none of it", async () => {
    const w = await pairedWorld(['bob'], mode);
    const [bob] = w.others as [Member];
    const copy = await stolen(w.p);
    const eve = await newMember('eve');
    const copyMember: Member = { ...w.p, client: copy, group: copy.group(w.a.group!.id) };
    const gid = w.a.group!.id;
    const sent: CeaseCommit[] = [];
    const send = async (c: CeaseCommit) => {
      sent.push(c);
      if (c.kind !== 'join') return;
      // The join reaches everyone, the copy too (it still holds the anchor
      // leaf); in the new epoch the copy proposes as that leaf.
      await deliverCommit(c.commit, [bob, copyMember]);
      const thiefAdd = await asAnchor(w, mode, copyMember.group!, { type: 'add', keyPackage: await eve.client.createKeyPackage(eve.identity) });
      await deliverProposal(thiefAdd, [bob, { ...w.a, group: w.a.client.group(gid) }]);
    };
    const result = await w.activeDevice.ceasePair('rejoin', { send });
    expect(sent.map((c) => c.kind)).toEqual(['join', 'remove']);
    expect(result.groups[0]!.ceased).toBe(true);
    const anchorLeaf = copyMember.group!.ownLeafIndex;
    expect(await staged(bob, sent[1]!.commit)).toEqual({ adds: [], removes: [anchorLeaf], proposals: 1 });
    w.a.group = w.a.client.group(gid);
    expectInSync([w.a, bob]);
    expect(names(bob.group!)).toEqual(['alice', 'bob']);
    expect(bob.group!.members().some((m) => bytesEqual(m.signatureKey, w.a.identity.signaturePublicKey))).toBe(false);
  });

  it('a paired commit that adds a member returns its Welcome and the GroupInfo asked for', async () => {
    const w = await pairedWorld(['bob'], mode);
    const [bob] = w.others as [Member];
    const dave = await newMember('dave');
    const frank = await newMember('frank');
    const out = await w.activeDevice.commit(w.a.group!, { add: [await dave.client.createKeyPackage(dave.identity)], groupInfo: true });
    await deliverPaired(out, w.a, w.passiveDevice as PairedDevice, [bob]);
    dave.group = await dave.client.joinFromWelcome(out.welcome!);
    const joined = await frank.client.joinExternal(out.groupInfo!, frank.identity);
    frank.group = joined.group;
    await deliverCommit(joined.commit, [w.a, w.p, bob, dave]);
    expectInSync([w.a, w.p, bob, dave, frank]);
  });
});

/**
 * `Group.member(leafIndex)` and `Group.ownLeaf()`: one leaf read, the same
 * member `members()` lists at that index (real groups, after adds, removes
 * that leave blank leaves, and an update); blank leaves and indices past the
 * tree are undefined; a leaf index that is no u32 is INVALID_ARGUMENT and
 * leaves the instance working.
 */
import { describe, expect, it } from 'vitest';
import type { Group } from 'paired-mls';
import { deliverCommit, mlsError, newMember, stillWorks, type Member } from './helpers.js';

/** For every leaf of the tree and a few past it: `member(i)` is `members()`'s entry for i, or undefined. */
function expectLookupsMatch(group: Group, treeLeaves: number): void {
  const all = group.members();
  for (let i = 0; i < treeLeaves + 3; i++) {
    expect(group.member(i)).toEqual(all.find((m) => m.leafIndex === i));
  }
  expect(group.ownLeaf()).toEqual(group.member(group.ownLeafIndex));
  if (group.state().active) expect(group.ownLeaf()?.leafIndex).toBe(group.ownLeafIndex);
}

describe('Group.member / Group.ownLeaf', () => {
  it('match members() after adds, removes and an update; blank and out-of-range leaves are undefined', async () => {
    const members = await Promise.all(['alice', 'bob', 'carol', 'dave', 'erin'].map((n) => newMember(n)));
    const [alice, bob, carol, dave, erin] = members as [Member, Member, Member, Member, Member];
    alice.group = await alice.client.createGroup(alice.identity);
    expectLookupsMatch(alice.group, 1);
    expect(alice.group.member(1)).toBeUndefined();

    const add = await alice.group.commit({ add: await Promise.all([bob, carol, dave, erin].map((m) => m.client.createKeyPackage(m.identity))) });
    await alice.group.mergePendingCommit();
    for (const m of [bob, carol, dave, erin]) m.group = await m.client.joinFromWelcome(add.welcome!);
    for (const m of members) expectLookupsMatch(m.group!, 5);
    expect(bob.group!.member(1)?.credential.identity).toEqual(bob.identity.identity);
    expect(bob.group!.ownLeaf()?.signatureKey).toEqual(bob.identity.signaturePublicKey);

    // carol (leaf 2) and dave (leaf 3) go: two blank leaves inside the tree.
    const remove = await alice.group.commit({ remove: [2, 3] });
    await alice.group.mergePendingCommit();
    const rest = [alice, bob, erin];
    await deliverCommit(remove.commit, [bob, carol, erin]);
    for (const m of rest) {
      expectLookupsMatch(m.group!, 5);
      expect(m.group!.member(2)).toBeUndefined();
      expect(m.group!.member(3)).toBeUndefined();
      expect(m.group!.member(4)?.credential.identity).toEqual(erin.identity.identity);
      expect(m.group!.member(1000)).toBeUndefined();
      expect(m.group!.member(0xffffffff)).toBeUndefined();
    }

    // erin updates her leaf: every member's lookup sees the new encryption key.
    const before = erin.group!.ownLeaf()!;
    const update = await erin.group!.selfUpdate();
    await erin.group!.mergePendingCommit();
    await deliverCommit(update.commit, [alice, bob]);
    const after = erin.group!.ownLeaf()!;
    expect(after.encryptionKey).not.toEqual(before.encryptionKey);
    for (const m of rest) {
      expectLookupsMatch(m.group!, 5);
      expect(m.group!.member(4)).toEqual(after);
    }

    // A removed member's group no longer lists it: its own leaf is blank.
    expect(carol.group!.state().active).toBe(false);
    expect(carol.group!.ownLeaf()).toBeUndefined();
    expectLookupsMatch(carol.group!, 5);
  });

  it('a leaf index that is no u32 is INVALID_ARGUMENT; the instance still works; an unknown group is UNKNOWN_GROUP', async () => {
    const [alice, bob] = await Promise.all(['alice', 'bob'].map((n) => newMember(n))) as [Member, Member];
    alice.group = await alice.client.createGroup(alice.identity);
    const add = await alice.group.commit({ add: [await bob.client.createKeyPackage(bob.identity)] });
    await alice.group.mergePendingCommit();
    bob.group = await bob.client.joinFromWelcome(add.welcome!);

    const bad: unknown[] = [-1, 1.5, 0x100000000, Number.NaN, Infinity, -Infinity, '1', null, undefined, 1n, {}];
    for (const leafIndex of bad) {
      const err = await mlsError(() => alice.group!.member(leafIndex as number));
      expect(err.code, String(leafIndex)).toBe('INVALID_ARGUMENT');
    }
    expect(alice.group.member(1)).toEqual(alice.group.members().find((m) => m.leafIndex === 1));
    expect(alice.group.ownLeaf()).toEqual(alice.group.members().find((m) => m.leafIndex === 0));
    await stillWorks([alice, bob]);

    expect((await mlsError(() => alice.client.group(new Uint8Array([1, 2, 3])).member(0))).code).toBe('UNKNOWN_GROUP');
    expect((await mlsError(() => alice.client.group(new Uint8Array([1, 2, 3])).ownLeaf())).code).toBe('UNKNOWN_GROUP');
    expect(alice.group.ownLeaf()?.credential.identity).toEqual(alice.identity.identity);
  });
});

/**
 * Paired MLS, hidden mode: pairing, enrolment of a group, paired updates
 * followed by the passive device, and the passive device's traffic.
 */
import { describe, expect, it } from 'vitest';
import { bytesEqual, readMlsHeader, utf8 } from 'paired-mls';
import { PAIRED_DEVICES_COMPONENT } from 'paired-mls/paired';
// Not re-exported from ts-mls' index, but public through its "./*.js" export map.
import { decodeRatchetTree } from 'ts-mls/ratchetTree.js';
import { deliverCommit, expectInSync, type Member } from './helpers.js';
import { deliverPaired, pairedWorld } from './paired-helpers.js';

describe('Paired MLS hidden mode', () => {
  it('pairs, enrolls a group and follows paired updates', async () => {
    const w = await pairedWorld(['bob', 'carol']);
    const everyone = [w.a, w.p, ...w.others];
    expectInSync(everyone);
    expect(w.activeDevice.role).toBe('active');
    expect(w.passiveDevice.role).toBe('passive');
    // Both devices sit on the same (anchor) leaf.
    expect(w.p.group!.ownLeafIndex).toBe(w.a.group!.ownLeafIndex);

    for (let i = 0; i < 3; i++) {
      const update = await w.activeDevice.update(w.a.group!);
      await deliverPaired(update, w.a, w.passiveDevice, w.others);
      expectInSync(everyone);
    }

    // A commit by another member: both devices process it as usual.
    const bob = w.others[0]!;
    const { commit } = await bob.group!.selfUpdate();
    await bob.group!.mergePendingCommit();
    await deliverCommit(commit, [w.a, w.p, w.others[1]!]);
    expectInSync(everyone);

    // Application traffic both ways, including from the passive device.
    const fromBob = await bob.group!.encrypt('hi alice');
    for (const d of [w.a, w.p]) {
      const r = await d.group!.process(fromBob);
      expect(r.kind === 'application' && utf8(r.data)).toBe('hi alice');
    }
    const fromPhone = await w.p.group!.encrypt('sent from the phone');
    for (const m of [w.a, ...w.others]) {
      const r = await m.group!.process(fromPhone);
      expect(r.kind === 'application' && utf8(r.data)).toBe('sent from the phone');
    }
  });

  it('what a member sees of the anchor (docs/PROTOCOL.md §4.13): one member, no device, but a virtual-client leaf', async () => {
    const w = await pairedWorld(['bob', 'carol']);
    const bob = w.others[0]!;
    const anchorLeaf = w.a.group!.ownLeafIndex;
    const update = await w.activeDevice.update(w.a.group!);
    const seen = await bob.group!.process(update.commit);
    if (seen.kind !== 'commit') throw new Error('expected a commit');
    await seen.staged.merge();
    await w.a.group!.mergePendingCommit();
    await deliverCommit(update.commit, [w.others[1]!]);
    await w.passiveDevice.applyNotify(update);
    // One member with alice's credential; no device is named or listed.
    const anchor = bob.group!.members().find((m) => m.leafIndex === anchorLeaf)!;
    expect(utf8(anchor.credential.identity)).toBe('alice');
    expect(bob.group!.members()).toHaveLength(3);
    expect(bob.group!.leafAppData(anchorLeaf, PAIRED_DEVICES_COMPONENT)).toBeUndefined();
    expect(seen.device).toBeUndefined();
    expect(seen.aad).toHaveLength(0);
    // The documented signal: the virtual-clients component (0x667A) sits on the anchor leaf only.
    expect(bob.group!.leafAppData(anchorLeaf, 0x667a)).toBeDefined();
    expect(bob.group!.leafAppData(bob.group!.ownLeafIndex, 0x667a)).toBeUndefined();
    // Same wire format as an ordinary member's commit and application message; same message size.
    const { commit: bobs } = await bob.group!.selfUpdate();
    await bob.group!.clearPendingCommit();
    expect(readMlsHeader(update.commit)!.wireFormat).toBe(readMlsHeader(bobs)!.wireFormat);
    const fromPhone = await w.p.group!.encrypt('x'.repeat(40));
    const fromBob = await bob.group!.encrypt('y'.repeat(40));
    expect(readMlsHeader(fromPhone)!.wireFormat).toBe(readMlsHeader(fromBob)!.wireFormat);
    expect(fromPhone.length).toBe(fromBob.length);
  });

  it('with anchorCover, an ordinary member leaves nothing to tell the anchor by (docs/PROTOCOL.md §4.13)', async () => {
    const w = await pairedWorld(['bob', 'carol']);
    const [bob, carol] = w.others as [Member, Member];
    const anchorLeaf = w.a.group!.ownLeafIndex;
    const bobLeaf = bob.group!.ownLeafIndex;
    const keyOf = (leaf: number) => carol.group!.members().find((m) => m.leafIndex === leaf)!.signatureKey;
    const [anchorKey, bobKey] = [keyOf(anchorLeaf), keyOf(bobLeaf)];
    // The anchor's paired update and Bob's covered self-update, as Carol receives them.
    const update = await w.activeDevice.update(w.a.group!);
    await deliverPaired(update, w.a, w.passiveDevice, w.others);
    const { commit: covered } = await bob.group!.selfUpdate({ anchorCover: true });
    await bob.group!.mergePendingCommit();
    await deliverCommit(covered, [w.a, w.p, carol]);
    expectInSync([w.a, w.p, bob, carol]);

    // Key rotation: both leaves got a new signature key, same credential.
    expect(bytesEqual(keyOf(anchorLeaf), anchorKey)).toBe(false);
    expect(bytesEqual(keyOf(bobLeaf), bobKey)).toBe(false);
    // Leaf contents: the same capabilities, extension types, source, and
    // AppDataDictionary components of the same lengths.
    const tree = decodeRatchetTree(carol.group!.exportRatchetTree(), 0)![0];
    const leafAt = (i: number) => {
      const node = tree[2 * i];
      if (node?.nodeType !== 'leaf') throw new Error('expected a leaf');
      return node.leaf;
    };
    const [anchor, ordinary] = [leafAt(anchorLeaf), leafAt(bobLeaf)];
    expect(ordinary.capabilities).toEqual(anchor.capabilities);
    expect(ordinary.leafNodeSource).toBe(anchor.leafNodeSource);
    expect(ordinary.extensions.map((e) => e.extensionType)).toEqual(anchor.extensions.map((e) => e.extensionType));
    for (const component of [1, 0x667a, PAIRED_DEVICES_COMPONENT]) {
      const [a, o] = [carol.group!.leafAppData(anchorLeaf, component), carol.group!.leafAppData(bobLeaf, component)];
      expect(o?.length, `component ${component}`).toBe(a?.length);
    }
    expect(bytesEqual(carol.group!.leafAppData(bobLeaf, 1)!, carol.group!.leafAppData(anchorLeaf, 1)!)).toBe(true);
    // The 0x667A entry: `opaque epoch_id<V>; opaque ciphertext<V>;` with the same field lengths.
    expect(carol.group!.leafAppData(bobLeaf, 0x667a)![0]).toBe(carol.group!.leafAppData(anchorLeaf, 0x667a)![0]);
    // Message type, wire format and size of the two commits.
    expect(readMlsHeader(covered)!.wireFormat).toBe(readMlsHeader(update.commit)!.wireFormat);
    // The sizes differ only by the credentials' identity lengths ('bob' vs 'alice').
    expect(covered.length - 'bob'.length).toBe(update.commit.length - 'alice'.length);
    // And Bob's cover is no virtual client: it keeps working as an ordinary member.
    const { commit: again } = await bob.group!.selfUpdate({ anchorCover: true });
    await bob.group!.mergePendingCommit();
    await deliverCommit(again, [w.a, w.p, carol]);
    expectInSync([w.a, w.p, bob, carol]);
  });
});

/**
 * Paired MLS, hidden mode: pairing, enrolment of a group, paired updates
 * followed by the passive device, and the passive device's traffic.
 */
import { describe, expect, it } from 'vitest';
import { bytesEqual, readMlsHeader, utf8 } from 'paired-mls';
import { PAIRED_DEVICES_COMPONENT, anchorCoverOptions } from 'paired-mls/paired';
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

  it('what a member and the DS see of the anchor (docs/PROTOCOL.md §4.13): an ordinary member, with no option set', async () => {
    const w = await pairedWorld(['bob', 'carol']);
    const [bob, carol] = w.others as [Member, Member];
    const anchorLeaf = w.a.group!.ownLeafIndex;
    const bobLeaf = bob.group!.ownLeafIndex;
    // Bob's ordinary self-update (no option), as Carol and the DS receive it.
    const { commit: bobs } = await bob.group!.selfUpdate();
    await bob.group!.mergePendingCommit();
    await deliverCommit(bobs, [w.a, w.p, carol]);
    expectInSync([w.a, w.p, bob, carol]);

    // The enrolment was a commit of the ordinary kind: a PrivateMessage
    // commit (no external commit, no resync), of a self-update's size.
    const enrolment = readMlsHeader(w.enrolment.commit)!;
    const ordinary = readMlsHeader(bobs)!;
    expect(enrolment).toMatchObject({ wireFormat: 'private', contentType: 3 });
    expect({ wireFormat: enrolment.wireFormat, contentType: enrolment.contentType }).toEqual({ wireFormat: ordinary.wireFormat, contentType: ordinary.contentType });
    // The sizes differ only by the credentials' identity lengths ('alice' vs 'bob').
    expect(w.enrolment.commit.length - 'alice'.length).toBe(bobs.length - 'bob'.length);

    // A paired update, likewise.
    const update = await w.activeDevice.update(w.a.group!);
    await deliverPaired(update, w.a, w.passiveDevice, w.others);
    const paired = readMlsHeader(update.commit)!;
    expect({ wireFormat: paired.wireFormat, contentType: paired.contentType }).toEqual({ wireFormat: ordinary.wireFormat, contentType: ordinary.contentType });
    expect(update.commit.length - 'alice'.length).toBe(bobs.length - 'bob'.length);

    // Leaf by leaf: one member with alice's credential, no device; the
    // same capabilities, extensions and source as Bob's leaf; no
    // virtual-clients component anywhere.
    expect(carol.group!.members()).toHaveLength(3);
    expect(utf8(carol.group!.members().find((m) => m.leafIndex === anchorLeaf)!.credential.identity)).toBe('alice');
    const tree = decodeRatchetTree(carol.group!.exportRatchetTree(), 0)![0];
    const leafAt = (i: number) => {
      const node = tree[2 * i];
      if (node?.nodeType !== 'leaf') throw new Error('expected a leaf');
      return node.leaf;
    };
    const [anchor, ordinaryLeaf] = [leafAt(anchorLeaf), leafAt(bobLeaf)];
    expect(anchor.capabilities).toEqual(ordinaryLeaf.capabilities);
    expect(anchor.leafNodeSource).toBe(ordinaryLeaf.leafNodeSource);
    expect(anchor.extensions).toEqual(ordinaryLeaf.extensions);
    for (const component of [1, 0x667a, PAIRED_DEVICES_COMPONENT]) {
      expect(carol.group!.leafAppData(anchorLeaf, component), `component ${component}`).toBeUndefined();
    }

    // Messages: same wire format, no AAD, same size.
    const seen = await carol.group!.process((await w.activeDevice.update(w.a.group!)).commit);
    if (seen.kind !== 'commit') throw new Error('expected a commit');
    expect(seen.device).toBeUndefined();
    expect(seen.aad).toHaveLength(0);
    seen.staged.discard();
    await w.a.group!.clearPendingCommit();
    const fromPhone = await w.p.group!.encrypt('x'.repeat(40));
    const fromBob = await bob.group!.encrypt('y'.repeat(40));
    expect(readMlsHeader(fromPhone)!.wireFormat).toBe(readMlsHeader(fromBob)!.wireFormat);
    expect(fromPhone.length).toBe(fromBob.length);
  });

  it('key rotation: the one signal left, and anchorCover removes it (docs/PROTOCOL.md §4.13)', async () => {
    const w = await pairedWorld(['bob', 'carol']);
    const [bob, carol] = w.others as [Member, Member];
    const anchorLeaf = w.a.group!.ownLeafIndex;
    const bobLeaf = bob.group!.ownLeafIndex;
    const keyOf = (leaf: number) => carol.group!.members().find((m) => m.leafIndex === leaf)!.signatureKey;
    const [anchorKey, bobKey] = [keyOf(anchorLeaf), keyOf(bobLeaf)];
    // Without the cover: the anchor's key changes with its paired update, Bob's does not with his self-update.
    const first = await w.activeDevice.update(w.a.group!);
    await w.a.group!.mergePendingCommit();
    await deliverCommit(first.commit, w.others);
    const applied = await w.passiveDevice.applyNotify(first);
    // Both devices report the new anchor key (e.g. for the Authentication Service).
    expect(bytesEqual(first.anchorSignatureKey, keyOf(anchorLeaf))).toBe(true);
    expect(bytesEqual(applied.anchorSignatureKey, keyOf(anchorLeaf))).toBe(true);
    const { commit: plain } = await bob.group!.selfUpdate();
    await bob.group!.mergePendingCommit();
    await deliverCommit(plain, [w.a, w.p, carol]);
    expect(bytesEqual(keyOf(anchorLeaf), anchorKey)).toBe(false);
    expect(bytesEqual(keyOf(bobLeaf), bobKey)).toBe(true);
    // With it, Bob's key changes too (same credential), and his commit still
    // matches a paired update in wire format and size.
    const update = await w.activeDevice.update(w.a.group!);
    await deliverPaired(update, w.a, w.passiveDevice, w.others);
    const { commit: covered } = await bob.group!.commit(await anchorCoverOptions(bob.group!, { selfUpdate: true }));
    await bob.group!.mergePendingCommit();
    await deliverCommit(covered, [w.a, w.p, carol]);
    expectInSync([w.a, w.p, bob, carol]);
    expect(bytesEqual(keyOf(bobLeaf), bobKey)).toBe(false);
    expect(utf8(carol.group!.members().find((m) => m.leafIndex === bobLeaf)!.credential.identity)).toBe('bob');
    expect(readMlsHeader(covered)!.wireFormat).toBe(readMlsHeader(update.commit)!.wireFormat);
    expect(covered.length - 'bob'.length).toBe(update.commit.length - 'alice'.length);
    // And Bob's cover is no virtual client: he keeps working as an ordinary member.
    const { commit: again } = await bob.group!.commit(await anchorCoverOptions(bob.group!, { selfUpdate: true }));
    await bob.group!.mergePendingCommit();
    await deliverCommit(again, [w.a, w.p, carol]);
    expectInSync([w.a, w.p, bob, carol]);
  });
});
